"""From a traced training step (:mod:`ablab.calc.trace`) to the rows of a summary: one row per leaf-module
call or functional operator, with shapes, parameters (each counted once), MACs/FLOPs under the
conventions, the bytes backward keeps, the receptive field along the real data flow, a data-flow lint,
the operators without a cost formula (named), and the training FLOPs of a step.

``ablab.sizeup.summarize_module`` assembles these parts into the same :class:`Summary` a spec gets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ablab.calc.costs import Conventions, LayerCost, layer_cost, prod
from ablab.calc.dataflow import CONSTANT, GLOBAL, propagate_fields
from ablab.calc.inputs import check_params, data_dependence, readings, sequence_first, trace_first
from ablab.calc.lint import Finding, lint
from ablab.calc.ops import qualified
from ablab.calc.receptive import Field
from ablab.calc.shapes import Resolved, fmt_shape
from ablab.calc.trace import SKIP_MODULES, B, Op, Trace, trace_module
from ablab.errors import UserError
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
    kinds_where,
    layer_from_module,
)

# operator rows that are affine maps of their inputs (the layer kinds' own flags come from the registry)
AFFINE_OPS = ("view", "mean", "sum", "add", "sub", "cat", "identity", "permute", "transpose", "reshape", "expand",
              "unsqueeze", "squeeze", "clone", "contiguous", "slice", "select", "stack", "_to_copy")


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


@dataclass
class ModuleParts:
    """Everything ``assemble`` needs, per layer row, plus the module-only facts."""

    resolved: list[Resolved]
    costs: list[LayerCost]
    trainable: list[int]
    describe: list[str]
    fields: list[tuple[Field | None, str]]
    field_known: list[bool]
    saved: list[tuple[int, int, int, int]]  # per row: float elems per sample, float elems fixed, bytes ps, fixed
    findings: list[Finding]
    notes: list[str]
    total_params: tuple[int, int]
    training: dict[str, int]  # per sample: forward, loss, backward
    input_saved: bool
    input_shape: tuple[int, ...] = ()  # per sample, of the first input
    batch: int | None = None  # the batch the user's input carries (torchinfo's reading, real data)
    mode: str = "eval"  # the header's line: which mode the counts / training numbers were traced in
    extra_saved: tuple[int, int, int, int] = (0, 0, 0, 0)  # kept by rows that run only in the training trace
    torchinfo: tuple[tuple[int, int], ...] = ()  # per row, see Row.torchinfo


def size_module(model: nn.Module, conventions: Conventions, *, input_size: Any = None, input_data: Any = None,
                dtypes: Any = None, batch_dim: int | None = None, kwargs: dict | None = None, mode: str | None = None,
                training: bool = False) -> ModuleParts:
    """Trace ``model`` on the inputs as the user gave them (``ablab.calc.inputs``). The table's counts come
    from a forward in ``mode`` (default eval); with ``training``, the training FLOPs and what backward keeps
    come from a step in ``mode`` (default train) — one trace when the two modes are the same."""
    if mode not in (None, "eval", "train"):
        raise UserError(f"mode: expected 'eval' or 'train', got {mode!r}", key="mode")
    check_params(model)
    count_mode, train_mode = mode or "eval", mode or "train"
    auto = batch_dim is None
    batch_dim = sequence_first(model) if batch_dim is None else batch_dim
    first = next(iter(model.parameters()), None)
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    device = first.device if first is not None else "cpu"
    options = readings(input_size, input_data, dtypes, batch_dim, kwargs, dtype, device)
    one = training and train_mode == count_mode
    tr, reading = trace_first(model, options, conventions, batch_dim, count_mode, one)
    notes = [reading.describe + (" (sequence first: the model has no batch_first)" if auto and batch_dim else "")]
    findings_extra = data_dependence(model, tr, reading, conventions, batch_dim, count_mode)
    trt = tr
    if training and not one:
        n = reading.batch or B
        args, kw = reading.make(n, 0)
        trt = trace_module(model, args, kw, conventions, batch=n, batch_dim=batch_dim, mode=train_mode)
    propagate_fields(tr)
    rows = _rows(tr, model)
    extra = (0, 0, 0, 0)
    if trt is not tr:  # what backward keeps, per row, from the training-mode step (matched by row name)
        kept = {r.name: _saved(r) for r in _rows(trt, model)}
        names = {r.name for r in rows}
        for r in rows:
            r.saved_override = kept.get(r.name, (0, 0, 0, 0))
        only = [n for n in kept if n not in names and any(kept[n])]
        extra = tuple(sum(kept[n][i] for n in only) for i in range(4))  # type: ignore[assignment]
        if only:
            notes.append(f"kept for backward by rows that run only in {train_mode} mode (in the memory totals, "
                         f"not the table): {', '.join(only[:6])}{' ...' if len(only) > 6 else ''}")
    header = f"{count_mode} mode" + (f" (training FLOPs and memory: {train_mode} mode)" if trt is not tr else
                                     " (counts, memory" + (", training FLOPs)" if training else ")"))
    resolved, costs, trainable, describe, fields, known, saved = [], [], [], [], [], [], []
    unknown: dict[str, list[str]] = {}
    for i, row in enumerate(rows, start=1):
        macs = sum(op.cost.macs for op in row.ops) // tr.batch
        flops = sum(op.cost.flops for op in row.ops) // tr.batch
        r = Resolved(index=i, name=row.name, layer=row.layer, in_shape=row.in_shape, out_shape=row.out_shape,
                     padding=_pads(row))
        explain = _explain(r, row, macs, flops, conventions, tr.batch)
        costs.append(LayerCost(params=row.params, bias=row.bias, buffers=row.buffers, int_buffers=row.int_buffers,
                               macs=macs, flops=flops, explain=tuple(explain)))
        resolved.append(r)
        trainable.append(row.trainable)
        describe.append(row.layer.to_string())
        f = row.rf
        fields.append((f if isinstance(f, Field) else None,
                       "receptive field: the whole input" if f is GLOBAL else
                       "receptive field: along the data flow" if isinstance(f, Field) else
                       "receptive field: not defined here (an operator without a window rule on the path)"))
        known.append(f is not None and f is not CONSTANT)
        saved.append(row.saved_override if row.saved_override is not None else _saved(row))
        for op in row.ops:
            if op.cost.category == "unknown":
                unknown.setdefault(qualified(op.name), []).append(row.name)
    # a linear layer on a sequence of vectors (L x features) is per-token by design, not a forgotten flatten
    in_axes = {r.name: len(r.in_shape) for r in resolved}
    findings = [f for f in lint(resolved) if f.code != "collapse" and not (
        f.code == "linear-on-map" and in_axes.get(f.layer) == 2)] + _collapse(rows) + findings_extra
    for name, where in unknown.items():
        findings.append(Finding("warning", where[0], "uncosted-op",
                                f"{name} has no cost formula in ablab: its MACs/FLOPs are NOT counted in this row "
                                f"or the totals (called in {', '.join(dict.fromkeys(where))})"))
    bwd_unknown = sorted({qualified(n) for n, c in trt.backward + trt.loss if c.category == "unknown"})
    if bwd_unknown:
        notes.append(f"backward operators without a cost formula, not counted in the training FLOPs: "
                     f"{', '.join(bwd_unknown)}")
    if tr.weight_only:
        ops = ", ".join(sorted(set(tr.weight_only)))
        notes.append(f"operators on the weights alone, once per step (not counted): {ops}")
    params = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in params.values())
    total_trainable = sum(p.numel() for p in params.values() if p.requires_grad)
    counted = sum(c.params for c in costs)
    if counted != total:
        notes.append(f"{total - counted:,} parameters are never used in forward; they count in the total only")
    shared = _shared(model)
    if shared:
        notes.append(f"shared weights count once: {shared}")
    training = {"forward": sum(op.cost.flops for op in trt.ops) // trt.batch,
                "loss": sum(c.flops for _, c in trt.loss) // trt.batch,
                "backward": sum(c.flops for _, c in trt.backward) // trt.batch}
    return ModuleParts(resolved, costs, trainable, describe, fields, known, saved, findings, notes,
                       (total, total_trainable), training, trt.input_saved, tr.input_node_shape, reading.batch,
                       header, extra, tuple(r.torchinfo for r in rows))


def _saved(row: Row) -> tuple[int, int, int, int]:
    s = [0, 0, 0, 0]
    for op in row.ops:
        s = [a + b for a, b in zip(s, op.saved, strict=True)]
    return s[0], s[1], s[2], s[3]


def _rows(tr: Trace, model: nn.Module) -> list[Row]:
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
            layer = _op_as_layer(op)
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
            own = [(n.rsplit(".", 1)[-1], p.numel()) for n, p in m.named_parameters()]
            row.torchinfo = (sum(k for n, k in own if n in ("weight", "bias")),
                             sum(k for n, k in own if n not in ("weight", "bias") and ("weight" in n or "bias" in n)))
            used |= {id(p) for p in m.parameters(recurse=False)} | {id(b) for b in m.buffers(recurse=False)}
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


def _op_as_layer(op: Op) -> Layer:
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


def _pads(row: Row) -> tuple[tuple[int, int], ...]:
    layer = row.layer
    pad = getattr(layer, "padding", None)
    if isinstance(pad, tuple) and pad and all(isinstance(p, tuple) for p in pad):
        return pad
    n = len(row.in_shape) - 1
    if isinstance(pad, tuple) and len(pad) == n:
        return tuple((int(p), int(p)) for p in pad)
    return ((0, 0),) * max(n, 0) if hasattr(layer, "kernel_size") else ()


def _explain(r: Resolved, row: Row, macs: int, flops: int, conv: Conventions, batch: int) -> list[str]:
    """The spec's worked formula when the row is a spec layer and it agrees with the operators; the
    operators' own costs otherwise."""
    if not isinstance(row.layer, OpLayer):
        try:
            c = layer_cost(r, conv)
            if c.macs == macs and c.flops == flops:
                return list(c.explain)
        except Exception:  # noqa: BLE001 - a shape the spec formula does not cover: use the operators
            pass
    lines = [f"{fmt_shape(row.in_shape)} -> {fmt_shape(row.out_shape)}"]
    for op in row.ops:
        what = ("no cost formula: NOT counted" if op.cost.category == "unknown" else
                f"{op.cost.macs // batch:,} MACs, {op.cost.flops // batch:,} FLOPs per sample ({op.cost.category})")
        lines.append(f"{qualified(op.name)} {' '.join(fmt_shape(s) for s in op.in_shapes)} -> "
                     f"{fmt_shape(op.out_shape)}: {what}")
    return lines


def _affine(row: Row, affine_kinds: frozenset[str]) -> bool:
    if row.kind in ("mul", "div"):  # scaling by a constant or a weight is affine, by another activation not
        return all(len(op.ins) <= 1 for op in row.ops)
    return row.kind in AFFINE_OPS or row.kind in affine_kinds


def _collapse(rows: list[Row]) -> list[Finding]:
    """Two weighted layers joined only through affine rows (along the data flow) are one affine map."""
    out = []
    weighted = [i for i, r in enumerate(rows) if r.kind in (*WEIGHTED, "matmul") and r.kind != "matmul"]
    is_weighted = set(weighted)
    affine_kinds = frozenset(kinds_where("affine_at_inference"))
    for w in weighted:
        reached: list[int] = []
        between: list[str] = []
        stack, seen = list(rows[w].inputs), set()
        while stack:
            i = stack.pop()
            if i == -1 or i in seen:
                continue
            seen.add(i)
            if i in is_weighted:
                reached.append(i)
            elif _affine(rows[i], affine_kinds):
                between.append(rows[i].name)
                stack.extend(rows[i].inputs)
        for a in sorted(reached):
            via = f" (only {', '.join(sorted(between, key=lambda n: n))} between)" if between else ""
            out.append(Finding("warning", rows[w].name, "collapse",
                               f"no nonlinearity between {rows[a].name} and {rows[w].name}{via}: together they are "
                               "one affine map, so the extra layer adds parameters but no expressive power"))
    return out


def _shared(model: nn.Module) -> str:
    """Names of parameters that appear under more than one name (tied weights, a module reused)."""
    by_id: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        by_id.setdefault(id(p), []).append(name)
    tied = [" = ".join(names) for names in by_id.values() if len(names) > 1]
    return "; ".join(tied[:5]) + (f"; and {len(tied) - 5} more" if len(tied) > 5 else "")


def per_batch_saved(saved: tuple[int, int, int, int], batch: int, dtype_bytes: int) -> int:
    """Bytes backward keeps for a batch: float elements in the summary's dtype, other tensors as traced."""
    return (saved[0] * batch + saved[1]) * dtype_bytes + saved[2] * batch + saved[3]


__all__ = ["ModuleParts", "per_batch_saved", "prod", "size_module"]
