# The two commands of README.md. Both set everything up first (idempotent, ~2 min on a fresh machine).
#   make study   - run the preset study fashion-regularization to a finished report
#   make test    - run the test suite (it also builds the documentation site with mkdocs --strict)
#   make docs    - build the documentation site from docs/ into site/ (strict: broken links fail)
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STUDY ?= fashion-regularization
OUT ?= runs/$(STUDY)

.PHONY: setup study test docs lint bench

setup:
	@if command -v apt-get >/dev/null 2>&1 && { [ ! -d /usr/share/datasets/fashion-mnist ] || ! command -v chromium >/dev/null 2>&1; }; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq dataset-fashion-mnist chromium >/dev/null; \
	fi
	$(PYTHON) -m pip install -q 'torch==2.13.0'  # the CPU build first: the range in pyproject.toml would take a CUDA build
	$(PYTHON) -m pip install -q -e '.[dev,ray]'

study: setup
	$(PYTHON) -m ablab study run $(STUDY) --out $(OUT)

test: setup
	$(PYTHON) -m pytest -q

docs: setup
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs build --strict

lint:
	ruff check src tests benchmarks
	mypy

bench:
	$(PYTHON) benchmarks/summary_speed.py
	$(PYTHON) benchmarks/render_speed.py
	$(PYTHON) benchmarks/data_load.py
	$(PYTHON) benchmarks/bounded_read.py
	$(PYTHON) benchmarks/train_speed.py
	$(PYTHON) benchmarks/ray_overhead.py
