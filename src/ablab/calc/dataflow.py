"""The receptive field of every traced operator's output, along the real data flow (the operators and
their producers come from :mod:`ablab.calc.trace`): windows of convolutions and pooling compose by
Araujo et al. 2019, eq. 1-2; element-wise operators take the union of their inputs' windows; operators
that mix every position (flatten + linear, global pooling, layer norm) see the whole input (``GLOBAL``);
anything else has no field (``None``: blank in the table). Pure Python.
"""

from __future__ import annotations

from typing import Any

from ablab.calc.costs import prod
from ablab.calc.receptive import Field

GLOBAL = "global"  # receptive field of an output that sees the whole input (after flatten / linear)
CONSTANT = "constant"  # an output that does not depend on the input values (a dropout mask, a zero state)
MADE = ("new_empty", "new_zeros", "new_ones", "new_full", "zeros_like", "ones_like", "empty_like", "full_like",
        "zeros", "ones", "full", "empty", "empty_strided", "randn", "rand")


def propagate_fields(tr: Any) -> None:
    """The receptive field of every op's output along the real data flow (Araujo et al. 2019, eq. 1-2)."""
    n = len(tr.input_node_shape) - 1
    start = Field((1,) * n, (1,) * n, (0,) * n) if n >= 1 else GLOBAL

    def of(i: int) -> Any:
        return start if i == -1 else tr.ops[i].rf

    for op in tr.ops:
        fields = [of(i) for i in op.ins]
        f0 = fields[0] if fields else None
        c = op.cost.category
        if op.name in MADE or (fields and all(f is CONSTANT for f in fields)):
            op.rf = CONSTANT  # made from a shape, or computed from such tensors only (a dropout mask)
        elif op.name in ("convolution", "_convolution") and isinstance(f0, Field) and not (op.args[6] if len(
                op.args) > 6 else False):
            w = _weight_shape(op)
            op.rf = _window(f0, w, op.args[3], op.args[4], op.args[5])
        elif op.cost.category == "pool" and isinstance(f0, Field):
            k = op.args[1]
            stride = op.args[2] if len(op.args) > 2 and op.args[2] else k
            pad = op.args[3] if len(op.args) > 3 else 0
            dil = op.args[4] if len(op.args) > 4 and "max" in op.name else 1
            op.rf = _window(f0, k, stride, pad, dil)
        elif op.name == "constant_pad_nd" and isinstance(f0, Field):
            flat = list(op.args[1])  # last axis first: (left, right, top, bottom)
            before = [flat[2 * i] for i in range(len(flat) // 2)][::-1][-len(f0.start):]
            op.rf = Field(f0.size, f0.stride, tuple(s - p * j for s, p, j in
                                                       zip(f0.start, before, f0.stride, strict=True)))
        elif op.name in ("native_layer_norm", "native_group_norm"):  # statistics mix every position
            op.rf = GLOBAL if f0 is not None else None
        elif c in ("elementwise", "norm", "dropout"):
            op.rf = _union(fields)
        elif c == "move" and op.name in ("view", "_unsafe_view", "reshape", "flatten", "clone", "contiguous",
                                         "alias", "_reshape_alias", "expand", "unsqueeze", "squeeze"):
            same = op.in_shapes and len(op.out_shape) >= 2 and op.out_shape[-n:] == op.in_shapes[0][-n:]
            op.rf = f0 if same or op.out_shape == op.in_shapes[0] else (GLOBAL if f0 is not None else None)
        elif (c in ("weighted", "reduce") and all(f is GLOBAL for f in fields)) or (
                c == "weighted" and op.cost.kind == "linear" and len(op.in_shapes[0]) == 1 and f0 is not None):
            op.rf = GLOBAL
        elif c == "reduce" and isinstance(f0, Field) and len(op.out_shape) == len(op.in_shapes[0]) and all(
                o and i % o == 0 for i, o in zip(op.in_shapes[0][1:], op.out_shape[1:], strict=True)):
            k = [i // o for i, o in zip(op.in_shapes[0][1:], op.out_shape[1:], strict=True)]
            op.rf = _window(f0, k, k, 0, 1)  # adaptive pooling with equal windows (keepdim mean): a pool
        elif c == "reduce" and f0 is not None and (len(op.out_shape) <= 1 or prod(op.out_shape[1:]) == 1):
            op.rf = GLOBAL  # global pooling: every output sees the whole input
        elif c == "move" and op.name == "cat" and len({repr(f) for f in fields}) == 1:
            op.rf = f0
        else:
            op.rf = None


def _weight_shape(op: Any) -> tuple[int, ...]:
    return tuple(op.shapes[1]) if len(op.shapes) > 1 and op.shapes[1] is not None else ()


def _window(f: Field, k: Any, stride: Any, pad: Any, dil: Any) -> Field | None:
    n = len(f.size)

    def per_axis(v: Any) -> tuple[int, ...]:
        # the last n axes: a 1-d pool runs as a 2-d one over an inserted axis of size 1 (kernel [1, k])
        v = list(v) if isinstance(v, list | tuple) else [v]
        return tuple(v[-n:]) if len(v) >= n else tuple(v[:1] * n)

    if isinstance(k, tuple) and len(k) > n:  # a conv weight shape (C_out, C_in/g, *kernel)
        k = k[2:]
    ks, ss, ps, ds = per_axis(k), per_axis(stride), per_axis(pad), per_axis(dil)
    eff = tuple(d * (kk - 1) + 1 for kk, d in zip(ks, ds, strict=True))
    size = tuple(r + (e - 1) * j for r, e, j in zip(f.size, eff, f.stride, strict=True))
    return Field(size, tuple(j * s for j, s in zip(f.stride, ss, strict=True)),
                 tuple(s0 - p * j for s0, p, j in zip(f.start, ps, f.stride, strict=True)))


def _union(fields: list[Any]) -> Any:
    """The field of an element-wise combination (a residual add): the union of its inputs' windows."""
    fields = [f for f in fields if f is not CONSTANT] or [CONSTANT]  # a mask scales values, not windows
    if fields == [CONSTANT]:
        return CONSTANT
    real = [f for f in fields if f is not None]
    if not real or len(real) != len(fields):
        return None
    if any(f is GLOBAL for f in real):
        return GLOBAL if all(f is GLOBAL for f in real) else None
    if len({f.stride for f in real}) != 1:
        return None
    lo = tuple(min(f.start[i] for f in real) for i in range(len(real[0].start)))
    hi = tuple(max(f.start[i] + f.size[i] for f in real) for i in range(len(real[0].start)))
    return Field(tuple(h - lo_ for h, lo_ in zip(hi, lo, strict=True)), real[0].stride, lo)
