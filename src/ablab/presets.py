"""Named model presets. Presets are data: a spec string and the input it was designed for."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ablab.spec import Shape, Spec, SpecError, parse_spec


@dataclass(frozen=True)
class Preset:
    spec: str  # the layer stack, in the spec grammar
    input: Shape  # the input it was designed for (C, H, W)
    doc: str


PRESETS: dict[str, Preset] = {
    "lenet5": Preset(
        "conv(6,5,pad=2) tanh avgpool(2) conv(16,5) tanh avgpool(2) "
        "flatten linear(120) tanh linear(84) tanh linear(10)",
        (1, 28, 28),
        "LeNet-5, classic (LeCun et al. 1998 layout on 28x28: tanh, average pooling; 61,706 parameters)",
    ),
    "lenet5-modern": Preset(
        "conv(6,5,pad=2) relu maxpool(2) conv(16,5) relu maxpool(2) "
        "flatten linear(120) relu linear(84) relu linear(10)",
        (1, 28, 28),
        "LeNet-5 with ReLU and max pooling (the usual course version)",
    ),
    "cifar-lenet": Preset(
        "conv(6,5) relu maxpool(2) conv(16,5) relu maxpool(2) "
        "flatten linear(120) relu linear(84) relu linear(10)",
        (3, 32, 32),
        "LeNet for CIFAR-10 (the PyTorch tutorial network, 62,006 parameters)",
    ),
    "mlp": Preset(
        "flatten linear(100) relu linear(10)",
        (1, 28, 28),
        "MLP; give sizes as mlp:H1,H2,...,OUT (e.g. mlp:1000,10 is 784-1000-10 on 1x28x28)",
    ),
}


def list_presets() -> list[str]:
    return sorted(PRESETS)


def is_preset(name: str) -> bool:
    return name.split(":", 1)[0].lower() in PRESETS


def mlp_spec(sizes: list[int], activation: str = "relu") -> str:
    """``flatten linear(h1) act ... linear(out)`` for sizes [h1, ..., out]."""
    parts = ["flatten"]
    for i, n in enumerate(sizes):
        parts.append(f"linear({n})")
        if i < len(sizes) - 1:
            parts.append(activation)
    return " ".join(parts)


def get_preset(name: str) -> Spec:
    """The spec of a preset; ``mlp:1000,500,10`` builds an MLP with those layer sizes."""
    base, _, arg = name.partition(":")
    base = base.lower()
    preset = PRESETS[base]
    text = preset.spec
    if arg:
        if base != "mlp":
            raise SpecError(f"preset '{base}' takes no arguments (got ':{arg}')")
        try:
            sizes = [int(s) for s in arg.replace("-", ",").split(",") if s]
        except ValueError:
            raise SpecError(f"preset 'mlp:{arg}': expected sizes like mlp:1000,10") from None
        if not sizes or any(s < 1 for s in sizes):
            raise SpecError(f"preset 'mlp:{arg}': expected positive sizes like mlp:1000,10")
        text = mlp_spec(sizes)
    spec = parse_spec(text, source=f"preset {base}")
    return dataclasses.replace(spec, input_shape=preset.input, name=name)
