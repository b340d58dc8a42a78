"""Models: the preset registry and the spec -> ``torch.nn.Module`` builder."""

from __future__ import annotations

from torch import nn

from ablab.models.builder import build, count_params, output_shapes
from ablab.presets import list_presets
from ablab.spec import Shape, Spec, load_spec


def create_model(model: str | Spec, input_shape: Shape | None = None) -> nn.Sequential:
    """A model from a preset name (``lenet5``, ``mlp:1000,10``), spec string/file, or a ``Spec``."""
    spec = model if isinstance(model, Spec) else load_spec(model, input_shape)
    return build(spec, input_shape)


list_models = list_presets

__all__ = ["build", "count_params", "create_model", "list_models", "output_shapes"]
