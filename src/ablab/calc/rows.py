"""Table rows from a traced forward (:mod:`ablab.calc.trace`): one row per leaf-module call (its operators
together) or per operator a non-leaf ``forward`` runs itself (``F.relu``, ``x + y``, ``x.view``), with
its shapes, the parameters it uses (each counted once over the table), the rows feeding it along the data
flow, and the spec layer it computes where the layer registry has one (so its cost reads as the spec's
worked formula).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ablab.calc.ops import qualified
from ablab.calc.trace import SKIP_MODULES, Op, Trace
from ablab.layers import (
    GELU,
    WEIGHTED,
    AvgPool2d,
    BatchNorm,
    Conv1d,
    Conv2d,
    Layer,
    Linear,
    MaxPool2d,
    Opaque,
    ReLU,
    Sigmoid,
    Softmax,
    SpecError,
    Tanh,
    layer_from_module,
)


@dataclass(frozen=True)
class OpLayer(Layer):
    """A row that is an operator or module with no spec layer: its kind is its name."""

    label: str = ""

    def to_string(self) -> str:
        return self.label


_KINDS: dict[str, type[OpLayer]] = {}


def op_layer(kind: str, label: str) -> OpLayer:
    cls = _KINDS.get(kind)
    if cls is None:
        cls = _KINDS[kind] = type(f"OpLayer_{kind}", (OpLayer,), {"kind": kind})
    return cls(label=label)


@dataclass
class Row:
    name: str
    kind: str
    layer: Layer
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    ops: list[Op]
    params: int = 0
    trainable: int = 0
    bias: int = 0
    buffers: int = 0
    int_buffers: int = 0
    inputs: set[int] = field(default_factory=set)  # rows feeding it (-1: the model input)
    rf: Any = None
    order: float = 0.0
    saved_override: tuple[int, int, int, int] | None = None  # from the training-mode trace
    torchinfo: tuple[int, int] = (0, 0)  # a module call's parameters named weight/bias, and other *weight*/*bias*


def saved_of(row: Row) -> tuple[int, int, int, int]:
    s = [0, 0, 0, 0]
    for op in row.ops:
        s = [a + b for a, b in zip(s, op.saved, strict=True)]
    return s[0], s[1], s[2], s[3]


def table_rows(tr: Trace, model: nn.Module) -> list[Row]:
    known: dict[tuple[type, str], Layer] = {}

    def to_layer(m: nn.Module) -> Layer:  # the layer registry, read backwards
        # torch's own layers show every constructor argument in their repr: equal reprs, equal layers
        key = (type(m), repr(m)) if type(m).__module__.startswith("torch.nn.") else None
        if key is not None and key in known:
            return known[key]
        layer = layer_from_module(m) or Opaque(cls=type(m).__name__)
        if key is not None:
            known[key] = layer
        return layer

    rows: dict[tuple[str, int], Row] = {}
    op_row: dict[int, tuple[str, int]] = {}
    for op in tr.ops:
        call = tr.calls[op.call]
        if call.leaf and not isinstance(call.module, SKIP_MODULES):
            key = ("call", op.call)
            if key not in rows:
                rows[key] = _leaf_row(call, to_layer, Opaque)
                rows[key].order = op.index
        else:
            key = ("op", op.index)
            layer = op_as_layer(op)
            name = f"{call.path} ({op.cost.kind})" if call.path else op.cost.kind
            rows[key] = Row(name, op.cost.kind, layer, op.in_shapes[0] if op.in_shapes else (), op.out_shape, [],
                            order=op.index)
        rows[key].ops.append(op)
        op_row[op.index] = key
    for i, call in enumerate(tr.calls):  # leaf modules that ran no operator (e.g. dropout with p=0)
        if call.leaf and ("call", i) not in rows and not isinstance(call.module, SKIP_MODULES) and call.out_shape:
            row = _leaf_row(call, to_layer, Opaque)
            row.order = (max((o.index for o in tr.ops if o.call < i), default=-1)) + 0.5
            row.rf = tr.ops[call.in_node].rf if call.in_node not in (None, -1) else None
            rows[("call", i)] = row
    ordered = sorted(rows.values(), key=lambda r: r.order)
    index = {id(r): n for n, r in enumerate(ordered)}
    seen: set[int] = set()
    named: dict[str, int] = {}
    plist = list(model.parameters())
    params = {id(p): p for p in [*plist, *model.buffers()]}
    trainable_ids = {id(p) for p in plist if p.requires_grad}
    is_param = {id(p) for p in plist}
    for key, row in sorted(rows.items(), key=lambda kv: kv[1].order):
        if row.ops:
            row.rf = row.ops[-1].rf
            row.out_shape = row.out_shape or row.ops[-1].out_shape
        members = {op.index for op in row.ops}
        for op in row.ops:
            for src in op.ins:
                if src == -1:
                    row.inputs.add(-1)
                elif src not in members:
                    row.inputs.add(index[id(rows[op_row[src]])])
        used: set[int] = set().union(*(op.params for op in row.ops)) if row.ops else set()
        if key[0] == "call":
            m = tr.calls[key[1]].module
            # a leaf module: its own parameter and buffer dicts hold everything it has
            own = [(n, p) for n, p in m._parameters.items() if p is not None]
            row.torchinfo = (sum(p.numel() for n, p in own if n in ("weight", "bias")),
                             sum(p.numel() for n, p in own if n not in ("weight", "bias") and (
                                 "weight" in n or "bias" in n)))
            used |= {id(p) for _, p in own} | {id(b) for b in m._buffers.values() if b is not None}
        fresh = [params[i] for i in used - seen if i in params]
        seen |= used
        row.params = sum(p.numel() for p in fresh if id(p) in is_param)
        row.trainable = sum(p.numel() for p in fresh if id(p) in trainable_ids)
        row.bias = sum(p.numel() for p in fresh if id(p) in is_param and p.dim() == 1 and row.kind in WEIGHTED)
        row.buffers = sum(p.numel() for p in fresh if id(p) not in is_param and p.is_floating_point())
        row.int_buffers = sum(p.numel() for p in fresh if id(p) not in is_param and not p.is_floating_point())
        n = named.get(row.name, 0) + 1
        named[row.name] = n
        if n > 1:
            row.name = f"{row.name} #{n}"  # the same module or operator again (a shared module called twice)
    return ordered


def _leaf_row(call: Any, to_layer: Any, opaque: Any) -> Row:
    layer = to_layer(call.module)
    kind = type(call.module).__name__.lower() if isinstance(layer, opaque) else layer.kind
    if isinstance(layer, opaque):
        layer = op_layer(kind, type(call.module).__name__)
    return Row(f"{call.path} ({kind})", kind, layer, call.in_shape or (), call.out_shape or (), [])


def op_as_layer(op: Op) -> Layer:
    """The spec layer an operator computes when there is one (so its cost has the spec's worked formula)."""

    try:
        if op.cost.kind in ("conv2d", "conv1d") and len(op.shapes) > 1 and op.shapes[1] is not None:
            w = op.shapes[1]
            nd = len(w) - 2
            pad = tuple(int(p) for p in (op.args[4] if len(op.args[4]) == nd else list(op.args[4]) * nd))
            cls = Conv2d if nd == 2 else Conv1d
            return cls(out_channels=w[0], kernel_size=tuple(w[2:]), stride=tuple(op.args[3]) * (
                1 if len(op.args[3]) == nd else nd), padding=tuple((p, p) for p in pad),
                dilation=tuple(op.args[5]) * (1 if len(op.args[5]) == nd else nd), groups=int(op.args[8]),
                bias=len(op.shapes) > 2 and op.shapes[2] is not None)
        if op.cost.kind in ("maxpool2d", "avgpool2d") and len(op.out_shape) == 3 and op.args:
            k = tuple(op.args[1]) * (1 if len(op.args[1]) == 2 else 2)
            s = tuple(op.args[2]) if len(op.args) > 2 and op.args[2] else k
            p = tuple(op.args[3]) if len(op.args) > 3 else (0, 0)
            ceil = bool(op.args[5]) if op.cost.kind == "maxpool2d" and len(op.args) > 5 else \
                bool(op.args[4]) if op.cost.kind == "avgpool2d" and len(op.args) > 4 else False
            pool = MaxPool2d if op.cost.kind == "maxpool2d" else AvgPool2d
            return pool(kernel_size=k, stride=s * (1 if len(s) == 2 else 2), padding=p * (1 if len(p) == 2 else 2),
                       ceil_mode=ceil)
        if op.cost.kind == "linear":
            return Linear(out_features=op.out_shape[-1], bias=op.name == "addmm")
        simple = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "gelu": GELU, "softmax": Softmax,
                  "batchnorm": BatchNorm}
        if op.cost.kind in simple:
            return simple[op.cost.kind]()
    except (SpecError, TypeError, ValueError, IndexError):
        pass
    return op_layer(op.cost.kind, qualified(op.name))


def pads(row: Row) -> tuple[tuple[int, int], ...]:
    layer = row.layer
    pad = getattr(layer, "padding", None)
    if isinstance(pad, tuple) and pad and all(isinstance(p, tuple) for p in pad):
        return pad
    n = len(row.in_shape) - 1
    if isinstance(pad, tuple) and len(pad) == n:
        return tuple((int(p), int(p)) for p in pad)
    return ((0, 0),) * max(n, 0) if hasattr(layer, "kernel_size") else ()


__all__ = ["OpLayer", "Row", "op_as_layer", "op_layer", "pads", "saved_of", "table_rows"]
