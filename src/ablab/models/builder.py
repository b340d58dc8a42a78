"""One spec, one PyTorch model: ``build(spec)`` returns an ``nn.Sequential`` whose module names are the
layer names of the size-up table (``conv2d_1``, ``linear_3``, ...), so a checkpoint's tensor names, the
summary and the model all agree. TF-SAME padding becomes an explicit zero pad (``pad_1``) when it is
asymmetric, so the model computes exactly what TensorFlow computes."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ablab.calc.shapes import Resolved, resolve
from ablab.spec import (
    GELU,
    AvgPool1d,
    AvgPool2d,
    BatchNorm,
    Conv1d,
    Conv2d,
    Dropout,
    Flatten,
    LeakyReLU,
    Linear,
    MaxPool1d,
    MaxPool2d,
    ReLU,
    Shape,
    Sigmoid,
    Softmax,
    Spec,
    SpecError,
    Tanh,
)

# argument-free element-wise layers and their modules (calc.torch_module reads it backwards)
ELEMENTWISE: dict[type, type[nn.Module]] = {ReLU: nn.ReLU, Tanh: nn.Tanh, Sigmoid: nn.Sigmoid, GELU: nn.GELU}


def _module(r: Resolved) -> tuple[nn.Module | None, nn.Module]:
    """The (optional explicit pad, layer) modules for one resolved layer."""
    layer, in_shape = r.layer, r.in_shape
    if isinstance(layer, Conv1d | Conv2d):
        pads = r.padding
        symmetric = all(a == b for a, b in pads)
        pad_mod: nn.Module | None = None
        if symmetric:
            padding = tuple(a for a, _ in pads)
        else:
            # F.pad order is last axis first: (left, right, top, bottom)
            flat = tuple(x for pair in reversed(pads) for x in pair)
            pad_mod = nn.ZeroPad2d(flat) if isinstance(layer, Conv2d) else nn.ConstantPad1d(flat, 0.0)  # type: ignore[arg-type]
            padding = (0,) * len(pads)
        cls = nn.Conv2d if isinstance(layer, Conv2d) else nn.Conv1d
        conv = cls(in_shape[0], layer.out_channels, layer.kernel_size, stride=layer.stride,  # type: ignore[arg-type]
                   padding=padding, dilation=layer.dilation, groups=layer.groups, bias=layer.bias)  # type: ignore[arg-type]
        return pad_mod, conv
    if isinstance(layer, Linear):
        return None, nn.Linear(in_shape[-1], layer.out_features, bias=layer.bias)
    if isinstance(layer, MaxPool2d | MaxPool1d | AvgPool2d | AvgPool1d):
        pad = tuple(a for a, _ in r.padding)
        cls_map: dict[type, type[nn.Module]] = {MaxPool2d: nn.MaxPool2d, MaxPool1d: nn.MaxPool1d,
                                                AvgPool2d: nn.AvgPool2d, AvgPool1d: nn.AvgPool1d}
        return None, cls_map[type(layer)](layer.kernel_size, stride=layer.stride, padding=pad,
                                          ceil_mode=layer.ceil_mode)
    if isinstance(layer, BatchNorm):
        cls2 = nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d
        return None, cls2(in_shape[0], eps=layer.eps, momentum=layer.momentum, affine=layer.affine)
    if isinstance(layer, Dropout):
        return None, nn.Dropout(layer.p)
    if isinstance(layer, Flatten):
        return None, nn.Flatten()
    if isinstance(layer, LeakyReLU):
        return None, nn.LeakyReLU(layer.negative_slope)
    if type(layer) in ELEMENTWISE:
        return None, ELEMENTWISE[type(layer)]()
    if isinstance(layer, Softmax):
        return None, nn.Softmax(dim=1)
    raise SpecError(f"layer {r.index} ({r.name}): no PyTorch builder for kind '{layer.kind}'")


def build(spec: Spec, input_shape: Shape | None = None) -> nn.Sequential:
    """Build the ``nn.Sequential`` for ``spec`` (PyTorch default initialization, seeded by the caller)."""
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    n_pad = 0
    for r in resolve(spec, input_shape):
        pad, mod = _module(r)
        if pad is not None:
            n_pad += 1
            mods[f"pad_{n_pad}"] = pad
        mods[r.name] = mod
    return nn.Sequential(mods)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def output_shapes(model: nn.Sequential, input_shape: Shape) -> dict[str, Shape]:
    """Run a zero batch of one through ``model`` and record each named module's output shape."""
    shapes: dict[str, Shape] = {}
    x = torch.zeros(1, *input_shape)
    model.eval()
    with torch.no_grad():
        for name, mod in model.named_children():
            x = mod(x)
            shapes[name] = tuple(x.shape[1:])
    return shapes
