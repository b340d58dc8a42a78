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
Each kind's step is its ``Layer.field`` (``ablab.layers``).
"""

from __future__ import annotations

from ablab.layers.base import Resolved
from ablab.layers.placed import Field

__all__ = ["Field", "receptive_fields"]


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
        if field is None:
            out.append((None, why))
            continue
        field, text = r.layer.field(field, r)
        if field is None:
            why = text
        out.append((field, text))
    return out
