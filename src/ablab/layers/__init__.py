"""Layer kinds: the one extension point of ablab. One registry entry per kind (``LayerKind``) holds its
grammar, its pure-Python rules and, as data, its torch module and NumPy reference op.

    >>> from ablab.layers import get_layer, list_layers
    >>> get_layer("conv").kind, get_layer("conv").torch.module
    ('conv2d', 'torch.nn.Conv2d')
    >>> list_layers("*pool*")[:3]
    ['adaptive_avgpool2d', 'adaptiveavgpool', 'adaptiveavgpool2d']

Adding a kind: one module here with a ``Layer`` subclass decorated by ``register_layer`` (see
``ablab.layers.base`` and docs/layers.md), imported below.
"""

from __future__ import annotations

from ablab.layers import adaptive, conv, elementwise, internal, linear, norm, pool  # noqa: F401  (registers)
from ablab.layers.adaptive import AdaptiveAvgPool2d
from ablab.layers.base import LAYERS, Layer, LayerKind, ReferenceOp, Resolved, TorchMap, register_layer
from ablab.layers.conv import Conv1d, Conv2d, ConvNd
from ablab.layers.elementwise import GELU, Activation, Dropout, Flatten, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from ablab.layers.internal import Opaque, Pad
from ablab.layers.linear import Linear
from ablab.layers.mapping import layer_from_module, torch_index, torch_modules
from ablab.layers.norm import BatchNorm, GroupNorm, LayerNorm
from ablab.layers.placed import Conventions, Field, LayerCost, Tensor
from ablab.layers.pool import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d, PoolNd
from ablab.layers.values import MAX_SIZE, Shape, SpecError


def get_layer(name: str) -> LayerKind:
    """The registry entry of a kind or alias (``"conv"`` -> conv2d); ``SpecError`` with "did you mean"."""
    return LAYERS.get(name)


def list_layers(pattern: str = "*", aliases: bool = True) -> list[str]:
    """Kinds (and aliases) the spec grammar accepts, matching the glob ``pattern``."""
    names = [n for n in LAYERS.list(pattern, aliases=aliases) if LAYERS.get(n).grammar]
    return sorted(names)


def grammar_kinds() -> list[str]:
    """The canonical kind names a spec may write (no aliases, no internal kinds)."""
    return [e.kind for e in LAYERS.values() if e.grammar]


def kinds_where(flag: str) -> tuple[str, ...]:
    """Kinds whose class sets ``flag`` (``"weighted"``, ``"affine_at_inference"``, ``"cancels_bias"``)."""
    return tuple(e.kind for e in LAYERS.values() if getattr(e.cls, flag, False) is True)


ACTIVATIONS = tuple(e.kind for e in LAYERS.values() if issubclass(e.cls, Activation))
WEIGHTED = kinds_where("weighted")

__all__ = [
    "ACTIVATIONS", "LAYERS", "MAX_SIZE", "WEIGHTED", "Activation", "AdaptiveAvgPool2d", "AvgPool1d", "AvgPool2d",
    "BatchNorm", "Conv1d", "Conv2d", "ConvNd", "Conventions", "Dropout", "Field", "Flatten", "GELU", "GroupNorm",
    "Layer", "LayerCost", "LayerKind", "LayerNorm", "LeakyReLU", "Linear", "MaxPool1d", "MaxPool2d", "Opaque",
    "Pad", "PoolNd", "ReLU", "ReferenceOp", "Resolved", "Shape", "Sigmoid", "Softmax", "SpecError", "Tanh",
    "Tensor", "TorchMap", "get_layer", "grammar_kinds", "kinds_where", "layer_from_module", "list_layers",
    "register_layer", "torch_index", "torch_modules",
]
