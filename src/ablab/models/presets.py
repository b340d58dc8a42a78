"""Named model presets. Presets are data: a spec string and the input it was designed for."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from ablab.layers.values import MAX_SIZE, Shape, SpecError, show
from ablab.registry import Registry
from ablab.spec.grammar import parse_spec
from ablab.spec.stack import Spec


@dataclass(frozen=True)
class Preset:
    spec: str  # the layer stack, in the spec grammar
    input: Shape  # the input it was designed for (C, H, W)
    doc: str


PRESETS: Registry[Preset] = Registry("preset", SpecError, normalize=str.lower)
PRESETS.register("lenet5", Preset(
    "conv(6,5,pad=2) tanh avgpool(2) conv(16,5) tanh avgpool(2) flatten linear(120) tanh linear(84) tanh linear(10)",
    (1, 28, 28),
    "LeNet-5, classic (LeCun et al. 1998 layout on 28x28: tanh, average pooling; 61,706 parameters)",
))
PRESETS.register("lenet5-modern", Preset(
    "conv(6,5,pad=2) relu maxpool(2) conv(16,5) relu maxpool(2) flatten linear(120) relu linear(84) relu linear(10)",
    (1, 28, 28),
    "LeNet-5 with ReLU and max pooling (the usual course version)",
))
PRESETS.register("cifar-lenet", Preset(
    "conv(6,5) relu maxpool(2) conv(16,5) relu maxpool(2) flatten linear(120) relu linear(84) relu linear(10)",
    (3, 32, 32),
    "LeNet for CIFAR-10 (the PyTorch tutorial network, 62,006 parameters)",
))
PRESETS.register("mlp", Preset(
    "flatten linear(100) relu linear(10)",
    (1, 28, 28),
    "MLP; give sizes as mlp:H1,H2,...,OUT (e.g. mlp:1000,10 is 784-1000-10 on 1x28x28)",
))


def list_presets(pattern: str = "*") -> list[str]:
    """Model preset names matching the glob ``pattern``."""
    return PRESETS.list(pattern)


def is_preset(name: str) -> bool:
    return name.split(":", 1)[0] in PRESETS


def mlp_spec(sizes: list[int], activation: str = "relu") -> str:
    """``flatten linear(h1) act ... linear(out)`` for sizes [h1, ..., out]."""
    parts = ["flatten"]
    for i, n in enumerate(sizes):
        parts.append(f"linear({n})")
        if i < len(sizes) - 1:
            parts.append(activation)
    return " ".join(parts)


_SIZES = re.compile(r"\d+(?:[,-]\d+)*", re.ASCII)


def mlp_sizes(arg: str) -> list[int]:
    """``"1000,500,10"`` (or ``1000-500-10``) -> [1000, 500, 10]; every size in 1..MAX_SIZE."""
    if not _SIZES.fullmatch(arg):
        raise SpecError(f"preset 'mlp:{show(arg)[1:-1]}': expected positive sizes like mlp:1000,10")
    parts = re.split("[,-]", arg)
    if any(len(p.lstrip("0")) > len(str(MAX_SIZE)) or not 1 <= int(p) <= MAX_SIZE for p in parts):
        raise SpecError(f"preset 'mlp:{show(arg)[1:-1]}': every size must be between 1 and {MAX_SIZE:,}")
    return [int(p) for p in parts]


def get_preset(name: str) -> Spec:
    """The spec of a preset; ``mlp:1000,500,10`` builds an MLP with those layer sizes."""
    base, sep, arg = name.partition(":")
    preset = PRESETS.get(base)
    base = base.lower()
    text = preset.spec
    if sep:
        if base != "mlp":
            raise SpecError(f"preset '{base}' takes no arguments (got ':{arg}')")
        text = mlp_spec(mlp_sizes(arg))
    spec = parse_spec(text, source=f"preset {base}")
    return dataclasses.replace(spec, input_shape=preset.input, name=name)
