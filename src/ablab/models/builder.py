"""One spec, one PyTorch model: ``build(spec)`` returns an ``nn.Sequential`` whose module names are the
layer names of the size-up table (``conv2d_1``, ``linear_3``, ...), so a checkpoint's tensor names, the
summary and the model all agree. TF-SAME padding becomes an explicit zero pad (``pad_1``) when it is
asymmetric, so the model computes exactly what TensorFlow computes. Which module computes a kind, and
from which of its fields, is that kind's ``TorchMap`` in the layer registry (``ablab.layers``)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ablab.calc.shapes import Resolved, resolve
from ablab.layers import Shape, torch_modules
from ablab.layers.mapping import torch_class
from ablab.spec.stack import Spec


def _module(r: Resolved) -> tuple[nn.Module | None, nn.Module]:
    """The (optional explicit pad, layer) modules for one resolved layer, as its kind's ``TorchMap`` says."""
    mods = [torch_class(path)(**kwargs) for path, kwargs in torch_modules(r)]
    return (mods[0] if len(mods) == 2 else None), mods[-1]


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


def output_shapes(model: nn.Module, input_shape: Shape) -> dict[str, Shape]:
    """Run a zero batch of one through ``model`` and record each named module's output shape."""
    shapes: dict[str, Shape] = {}
    x = torch.zeros(1, *input_shape)
    model.eval()
    with torch.no_grad():
        for name, mod in model.named_children():
            x = mod(x)
            shapes[name] = tuple(x.shape[1:])
    return shapes
