"""README's set-up works on a stock Debian/Ubuntu Python, which refuses `pip install` outside a virtual
environment (PEP 668): `make setup` makes .venv and installs only into it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = Path("/usr/bin/python3")


def _externally_managed(python: Path) -> bool:
    if not python.is_file():
        return False
    code = ("import os, sys, sysconfig; "
            "sys.exit(not os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))")
    return subprocess.run([str(python), "-c", code], capture_output=True).returncode == 0


def test_every_install_goes_into_the_venv():
    if shutil.which("make") is None:
        pytest.skip("no make here")
    plan = subprocess.run(["make", "-n", "-B", "setup", "study", "test", "PYTHON=pythonX", "VENV=/v"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout
    assert "pythonX -m venv --system-site-packages /v" in plan
    pip_lines = [line for line in plan.splitlines() if "pip install" in line and "apt-get" not in line]
    assert pip_lines and all(line.strip().startswith("/v/bin/python -m pip install") for line in pip_lines), plan
    assert "/v/bin/python -m ablab study run" in plan and "/v/bin/python -m pytest" in plan


@pytest.mark.skipif(not _externally_managed(SYSTEM), reason="no externally-managed system Python (PEP 668) here")
def test_make_venv_on_the_system_python_installs_where_pip_alone_is_refused(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV", "PYTHON"))}
    refused = subprocess.run([str(SYSTEM), "-m", "pip", "install", "--no-deps", "--no-index", "--dry-run", str(ROOT)],
                             capture_output=True, text=True, env=env)
    assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr + refused.stdout
    venv = tmp_path / "venv"
    subprocess.run(["make", "venv", f"PYTHON={SYSTEM}", f"VENV={venv}"], cwd=ROOT, check=True, env=env,
                   capture_output=True)
    py = venv / "bin" / "python"
    ok = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation",
                         "-e", str(ROOT)], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    out = subprocess.run([str(py), "-c", "import ablab.version as v, sys; print(v.__version__, sys.prefix)"],
                         capture_output=True, text=True, env=env, check=True).stdout
    assert str(venv) in out
