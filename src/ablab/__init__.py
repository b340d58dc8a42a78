"""ablab: size up, check the math of, and compare small neural networks.

Torch-free at import: ``import ablab`` and the spec/calculus work without loading PyTorch. The
notebook API below loads what it needs on first use::

    import ablab
    ablab.summary(model, (1, 28, 28))                      # a table in a notebook (_repr_html_)
    ds = ablab.Dataset.from_tensors(x, y)                  # your own images and labels
    result = ablab.fit(ablab.TrainConfig(model="lenet5", epochs=1), dataset=ds)   # progress bar, then
    result.to_pandas()                                     # the history as a DataFrame
    study = ablab.run_study("my-study.toml")               # the report, inline; ablab.load_study(DIR)
"""

import importlib
from typing import TYPE_CHECKING, Any

from ablab.errors import UserError
from ablab.models.source import load_spec
from ablab.spec import Spec, SpecError, parse_shape, parse_spec
from ablab.version import __version__

# name -> module holding it; imported on first attribute access so `import ablab` stays torch-free
_LAZY = {
    "summary": "ablab.sizeup",
    "Summary": "ablab.sizeup",
    "TrainConfig": "ablab.train.config",
    "fit": "ablab.api",
    "run_study": "ablab.api",
    "load_study": "ablab.api",
    "StudyResult": "ablab.api",
    "predict": "ablab.api",
    "evaluate": "ablab.api",
    "EvalResult": "ablab.api",
    "RunResult": "ablab.train.trainer",
    "Dataset": "ablab.data.dataset",
}

if TYPE_CHECKING:
    from ablab.api import EvalResult, StudyResult, evaluate, fit, load_study, predict, run_study
    from ablab.data.dataset import Dataset
    from ablab.sizeup import Summary, summary
    from ablab.train.config import TrainConfig
    from ablab.train.trainer import RunResult


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'ablab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = ["Dataset", "EvalResult", "RunResult", "Spec", "SpecError", "StudyResult", "Summary", "TrainConfig",
           "UserError", "__version__", "evaluate", "fit", "load_spec", "load_study", "parse_shape", "parse_spec",
           "predict", "run_study", "summary"]
