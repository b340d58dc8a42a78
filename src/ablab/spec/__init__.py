"""The layer-stack spec: parse, validate, serialize. Pure Python, no torch.

A spec is an input shape plus an ordered tuple of layers. It is written three ways:

* a string, layers separated by whitespace, ``>`` or ``->``::

      input(1,28,28) conv(6,5,pad=2) tanh avgpool(2) conv(16,5) tanh avgpool(2)
      flatten linear(120) tanh linear(84) tanh linear(10)

* a file holding that string (``#`` starts a comment), or a JSON file
  ``{"input": [1, 28, 28], "layers": [{"kind": "conv2d", "out_channels": 6, ...}]}``;
* Python: ``Spec(input_shape=(1, 28, 28), layers=(Conv2d(out_channels=6, kernel_size=(5, 5)), ...))``.

The input shape excludes the batch dimension: ``(C, H, W)`` for 2-d layers, ``(C, L)`` for 1-d,
``(F,)`` for a vector. Every layer kind is registered in ``ablab.layers``; ``list_layers()`` names them.

This package is the public import path: ``stack`` holds the ``Spec`` value and building layers from
arguments, ``grammar`` the text form; the kinds live in ``ablab.layers``. Resolving MODEL (a preset, a file
or a string) is a model-building step and lives in ``ablab.models.source`` (``load_spec``).
"""

from __future__ import annotations

from ablab.layers import (
    ACTIVATIONS,
    GELU,
    LAYERS,
    WEIGHTED,
    Activation,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    BatchNorm,
    Conv1d,
    Conv2d,
    ConvNd,
    Dropout,
    Flatten,
    GroupNorm,
    Layer,
    LayerNorm,
    LeakyReLU,
    Linear,
    MaxPool1d,
    MaxPool2d,
    PoolNd,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    list_layers,
    register_layer,
)
from ablab.layers.values import Padding, Shape, SpecError
from ablab.spec.grammar import parse_spec
from ablab.spec.stack import Spec, make_layer, parse_shape

_ConvBase = ConvNd  # the names the variants module still imports
_PoolBase = PoolNd

__all__ = [
    "ACTIVATIONS", "GELU", "LAYERS", "WEIGHTED", "Activation", "AdaptiveAvgPool2d", "AvgPool1d", "AvgPool2d",
    "BatchNorm", "Conv1d", "Conv2d", "ConvNd", "Dropout", "Flatten", "GroupNorm", "Layer", "LayerNorm",
    "LeakyReLU", "Linear", "MaxPool1d", "MaxPool2d", "Padding", "PoolNd", "ReLU", "Shape", "Sigmoid", "Softmax",
    "Spec", "SpecError", "Tanh", "list_layers", "make_layer", "parse_shape", "parse_spec",
    "register_layer",
]
