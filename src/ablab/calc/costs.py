"""Parameters, MACs and FLOPs of one placed layer — exact integers, each with its worked formula.

A MAC is one multiply plus one add (a "multiply-accumulate"). MACs are convention-free: a convolution
output element costs ``(C_in / groups) * prod(kernel)`` MACs, a linear output element ``in_features``
MACs, everything else none. FLOPs are not convention-free — every tool picks its own — so the choices
are explicit in :class:`Conventions` and printed under every table.

Every number is computed next to the text that explains it (each kind's ``Layer.cost`` in
``ablab.layers``), so ``ablab summary --explain`` can never disagree with the table.
"""

from __future__ import annotations

import dataclasses

from ablab.layers.base import Resolved
from ablab.layers.placed import DOT_CONVENTIONS, Conventions, LayerCost, fmt_shape, prod


def shape_lines(r: Resolved) -> list[str]:
    """How the output shape follows from the input shape, axis by axis."""
    return r.layer.shape_lines(r)


def layer_cost(r: Resolved, conv: Conventions | None = None) -> LayerCost:
    """Parameters, buffers, MACs and FLOPs of one resolved layer, per sample, with the worked formula."""
    c = r.layer.cost(r, conv or Conventions())
    lines = (f"{fmt_shape(r.in_shape)} -> {fmt_shape(r.out_shape)}", *shape_lines(r), *c.explain)
    return dataclasses.replace(c, explain=lines)


__all__ = ["DOT_CONVENTIONS", "Conventions", "LayerCost", "layer_cost", "prod", "shape_lines"]
