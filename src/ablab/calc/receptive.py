"""Cumulative receptive field and effective stride, per spatial axis, through a stack of layers.

With ``r`` the receptive field (input pixels one output element sees), ``j`` the effective stride
("jump": input pixels between neighbouring outputs) and ``start`` the input coordinate of the first
pixel the first output sees, a layer with kernel ``k``, dilation ``d``, stride ``s`` and padding
``p_before`` maps (Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural Networks",
Distill 2019, eq. 1-2):

    k_eff = d*(k-1) + 1
    r_out = r_in + (k_eff - 1) * j_in
    j_out = j_in * s
    start_out = start_in - p_before * j_in

The padding is the resolved one (TF-SAME included), so ``start`` may be negative: the field then
hangs over the padded border. After ``flatten`` or ``linear`` every output sees the whole input: the
field is ``None`` ("global"). Layers that act per element (activations, batch norm, dropout) keep it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ablab.calc.shapes import Resolved
from ablab.spec import _ConvBase, _PoolBase


@dataclass(frozen=True)
class Field:
    """Receptive field of one layer's output, per spatial axis (H, W or L), in input pixels."""

    size: tuple[int, ...]  # input pixels one output element sees
    stride: tuple[int, ...]  # input pixels between neighbouring output elements
    start: tuple[int, ...]  # input coordinate of the first pixel output[0] sees (negative: padding)

    def to_dict(self) -> dict[str, list[int]]:
        return {"size": list(self.size), "stride": list(self.stride), "start": list(self.start)}

    def short(self) -> str:
        return f"{'x'.join(map(str, self.size))} /{'x'.join(map(str, self.stride))}"


GLOBAL_KINDS = ("flatten", "linear")


def receptive_fields(layers: list[Resolved]) -> list[tuple[Field | None, str]]:
    """The field after each layer, with the recurrence written out for ``--explain``.

    ``None`` means global (every input pixel) or unknown (a module ablab cannot see into)."""
    out: list[tuple[Field | None, str]] = []
    field: Field | None = None
    why = "receptive field: the input has no spatial axes"
    if layers and len(layers[0].in_shape) >= 2:
        n = len(layers[0].in_shape) - 1
        field = Field((1,) * n, (1,) * n, (0,) * n)
    for r in layers:
        layer = r.layer
        if field is None:
            out.append((None, why))
            continue
        if isinstance(layer, _ConvBase | _PoolBase):
            dil = layer.dilation if isinstance(layer, _ConvBase) else (1,) * len(layer.kernel_size)
            eff = tuple(d * (k - 1) + 1 for k, d in zip(layer.kernel_size, dil, strict=True))
            size = tuple(r0 + (e - 1) * j for r0, e, j in zip(field.size, eff, field.stride, strict=True))
            stride = tuple(j * s for j, s in zip(field.stride, layer.stride, strict=True))
            start = tuple(s0 - p[0] * j for s0, p, j in zip(field.start, r.padding, field.stride, strict=True))
            text = "receptive field: " + ", ".join(
                f"{r0} + ({e}-1)*{j} = {r1}" for r0, e, j, r1 in zip(field.size, eff, field.stride, size,
                                                                      strict=True)
            ) + "; effective stride: " + ", ".join(
                f"{j}*{s} = {j1}" for j, s, j1 in zip(field.stride, layer.stride, stride, strict=True))
            field = Field(size, stride, start)
            out.append((field, text))
        elif layer.kind == "pad":  # an explicit zero pad (seen in user modules): shifts the start only
            start = tuple(s0 - p[0] * j for s0, p, j in zip(field.start, r.padding, field.stride, strict=True))
            field = Field(field.size, field.stride, start)
            out.append((field, "receptive field unchanged (the padding shifts its start)"))
        elif layer.kind == "module":
            field, why = None, "receptive field: unknown (past a module ablab cannot see into)"
            out.append((None, why))
        elif layer.kind in GLOBAL_KINDS or len(r.out_shape) != len(r.in_shape):
            field, why = None, "receptive field: the whole input (every output sees every input pixel)"
            out.append((None, why))
        else:
            out.append((field, "receptive field unchanged (element-wise)"))
    return out
