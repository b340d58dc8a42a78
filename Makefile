# The two commands of README.md. Both set everything up first (idempotent, ~2 min on a fresh machine).
#   make study   - run the preset study fashion-regularization to a finished report
#   make test    - run the test suite (it also builds the documentation site with mkdocs --strict)
#   make docs    - build the documentation site from docs/ into site/ (strict: broken links fail)
# Everything runs in a virtual environment, $(VENV) (default .venv), made from $(PYTHON): a stock Debian or
# Ubuntu Python refuses `pip install` outside one (PEP 668, "externally-managed-environment"). The venv sees
# the interpreter's own packages (--system-site-packages), so what is installed already is not fetched again.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STUDY ?= fashion-regularization
OUT ?= runs/$(STUDY)

.PHONY: setup venv study test docs lint bench

venv: $(PY)

$(PY):
	@$(PYTHON) -m venv --system-site-packages $(VENV) 2>/dev/null || { \
		echo "python -m venv needs ensurepip: installing python3-venv"; rm -rf $(VENV); \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv >/dev/null && \
		$(PYTHON) -m venv --system-site-packages $(VENV); }

setup: $(PY)
	@if command -v apt-get >/dev/null 2>&1 && { [ ! -d /usr/share/datasets/fashion-mnist ] || ! command -v chromium >/dev/null 2>&1; }; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq dataset-fashion-mnist chromium >/dev/null; \
	fi
	$(PY) -m pip install -q 'torch==2.13.0'  # the CPU build first: the range in pyproject.toml would take a CUDA build
	$(PY) -m pip install -q -e '.[dev,ray,tensorboard]'

study: setup
	$(PY) -m ablab study run $(STUDY) --out $(OUT)

test: setup
	$(PY) -m pytest -q

docs: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

lint:
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m mypy

bench:
	$(PY) benchmarks/summary_speed.py
	$(PY) benchmarks/render_speed.py
	$(PY) benchmarks/data_load.py
	$(PY) benchmarks/bounded_read.py
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/ray_overhead.py
