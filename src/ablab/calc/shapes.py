"""Shape inference: every layer's input and output shape, with padding resolved (TF-SAME included).

Pure Python on exact integers; each kind's rule is its ``Layer.place`` (``ablab.layers``). The
PyTorch builder and the size-up calculus both start here.
"""

from __future__ import annotations

from ablab.layers.base import Resolved
from ablab.layers.placed import conv_out, fmt_shape, pool_out, same_padding
from ablab.layers.values import Shape, SpecError
from ablab.spec.stack import Spec

Pairs = tuple[tuple[int, int], ...]


def resolve(spec: Spec, input_shape: Shape | None = None) -> list[Resolved]:
    """Place every layer: check it can work on its input, compute its output shape."""
    shape = tuple(input_shape or spec.input_shape or ())
    if not shape:
        raise SpecError("no input shape: give input_shape (e.g. 1x28x28) or start the spec with input(...)")
    counters: dict[str, int] = {}
    out: list[Resolved] = []
    for i, layer in enumerate(spec.layers, start=1):
        counters[layer.kind] = counters.get(layer.kind, 0) + 1
        name = f"{layer.kind}_{counters[layer.kind]}"
        new_shape, pads = layer.place(shape, f"layer {i} ({name})")
        out.append(Resolved(i, name, layer, shape, new_shape, pads))
        shape = new_shape
    return out


__all__ = ["Pairs", "Resolved", "conv_out", "fmt_shape", "pool_out", "resolve", "same_padding"]
