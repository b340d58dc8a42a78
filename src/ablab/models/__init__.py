"""Models: the preset registry, the spec -> ``torch.nn.Module`` builder, and model references
(``file.py:Name`` / ``package.module:Name``, see :mod:`ablab.models.resolve`).

Importing ``ablab.models`` does not import torch; the builder loads on first use."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ablab.models.presets import list_presets
from ablab.models.source import load_spec
from ablab.spec import Spec

if TYPE_CHECKING:
    from torch import nn

    from ablab.models.builder import build, count_params, output_shapes
    from ablab.spec import Shape, Spec

_LAZY = {"build": "builder", "count_params": "builder", "output_shapes": "builder"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"ablab.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'ablab.models' has no attribute '{name}'")


def create_model(model: str | Spec, input_shape: Shape | None = None) -> nn.Sequential:
    """A model from a preset name (``lenet5``, ``mlp:1000,10``), spec string/file, or a ``Spec``."""
    from ablab.models.builder import build

    spec = model if isinstance(model, Spec) else load_spec(model, input_shape)
    return build(spec, input_shape)


list_models = list_presets

__all__ = ["build", "count_params", "create_model", "list_models", "output_shapes"]
