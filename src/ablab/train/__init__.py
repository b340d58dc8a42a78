"""Training: ``fit(config) -> RunResult``, checkpoints, regularization variants, optimizers, schedules.

    from ablab.train import TrainConfig, apply_variants, fit
    result = fit(apply_variants(TrainConfig(model="lenet5", epochs=12), ["bn"]), out_dir="runs/bn")
    result.final["test_acc"]

Modules: ``config`` (TrainConfig), ``variants`` (named config transforms, spec transforms),
``optim`` (optimizers, schedules), ``trainer`` (fit, evaluate, set_threads), ``checkpoint``
(safetensors + JSON save/load/evaluate). Importing ``ablab.train`` or ``ablab.train.config`` does not
import torch; the names below that need it load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ablab.train.config import ConfigError, TrainConfig

if TYPE_CHECKING:
    from ablab.train.checkpoint import CheckpointError, save_checkpoint
    from ablab.train.optim import lr_at, make_optimizer
    from ablab.train.reload import evaluate_checkpoint, load_checkpoint
    from ablab.train.trainer import RunResult, evaluate, fit, set_threads
    from ablab.train.variants import apply_variants, get_variant, list_variants, model_spec, register_variant

_LAZY = {
    "fit": "trainer", "RunResult": "trainer", "evaluate": "runtime", "set_threads": "runtime",
    "load_checkpoint": "reload", "evaluate_checkpoint": "reload", "save_checkpoint": "checkpoint",
    "CheckpointError": "checkpoint",
    "apply_variants": "variants", "list_variants": "variants", "register_variant": "variants",
    "get_variant": "variants", "model_spec": "variants",
    "lr_at": "optim", "make_optimizer": "optim",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"ablab.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'ablab.train' has no attribute '{name}'")


__all__ = ["CheckpointError", "ConfigError", "RunResult", "TrainConfig", "apply_variants", "evaluate",
           "evaluate_checkpoint", "fit", "get_variant", "list_variants", "load_checkpoint", "lr_at",
           "make_optimizer", "model_spec", "register_variant", "save_checkpoint", "set_threads"]
