"""Kinds the module summary meets in a user's ``torch.nn.Module`` but a spec never writes: an explicit
zero pad and an opaque module (one ablab has no formula for). Registered with ``grammar=False``."""

from __future__ import annotations

from dataclasses import dataclass

from ablab.layers.base import Layer, Resolved, TorchMap, register_layer
from ablab.layers.placed import Field, fmt_shape
from ablab.layers.values import Pairs, Shape, SpecError


@register_layer(grammar=False, torch=TorchMap(
    {3: "torch.nn.ZeroPad2d", 2: "torch.nn.ConstantPad1d"}, {"padding": "flat_pad"}, {"value": 0.0}))
@dataclass(frozen=True)
class Pad(Layer):
    """An explicit zero pad (``nn.ZeroPad2d``, ``nn.ConstantPad1d/2d``): moves data, shifts the field."""

    pairs: tuple[tuple[int, int], ...] = ()

    kind = "pad"
    affine_at_inference = True

    def to_string(self) -> str:
        return "pad(" + ",".join(f"({a},{b})" for a, b in self.pairs) + ")"

    def place(self, shape: Shape, where: str) -> tuple[Shape, Pairs]:
        n = len(self.pairs)
        if len(shape) < n + 1:
            raise SpecError(f"{where}: padding {n} axes needs a {n + 1}-d input, got {fmt_shape(shape)}")
        head, tail = shape[:-n], shape[-n:]
        return (*head, *(s + a + b for s, (a, b) in zip(tail, self.pairs, strict=True))), self.pairs

    def field(self, fld: Field, r: Resolved) -> tuple[Field | None, str]:
        start = tuple(s0 - p[0] * j for s0, p, j in zip(fld.start, r.padding, fld.stride, strict=True))
        return Field(fld.size, fld.stride, start), "receptive field unchanged (the padding shifts its start)"


# the torch classes that also map to Pad (ownmodel reads TorchMap.modules(); the summary matches these too)
PAD_MODULES = ("torch.nn.ZeroPad2d", "torch.nn.ConstantPad2d", "torch.nn.ConstantPad1d", "torch.nn.ZeroPad1d")


@register_layer(grammar=False)
@dataclass(frozen=True)
class Opaque(Layer):
    """A module ablab has no formula for: real parameters, no MACs."""

    cls: str = ""

    kind = "module"

    def to_string(self) -> str:
        return self.cls

    def field(self, fld: Field, r: Resolved) -> tuple[Field | None, str]:
        return None, "receptive field: unknown (past a module ablab cannot see into)"
