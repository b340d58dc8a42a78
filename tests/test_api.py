"""The top-level notebook API: lazily imported, so `import ablab` stays torch-free."""

from __future__ import annotations

import subprocess
import sys

import ablab


def test_import_ablab_is_torch_free_and_names_resolve_lazily():
    code = ("import sys, ablab; assert 'torch' not in sys.modules, 'torch imported by import ablab'; "
            "names = sorted(ablab.__all__); assert 'torch' not in sys.modules; "
            "s = ablab.summary('lenet5'); assert 'torch' not in sys.modules, 'summary of a spec imported torch'; "
            "print(s.totals.params)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "61706"


def test_every_public_name_exists():
    for name in ablab.__all__:
        assert getattr(ablab, name) is not None, name
    assert ablab.Dataset.from_tensors and ablab.TrainConfig().model == "lenet5"
