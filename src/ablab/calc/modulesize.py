"""From a traced training step (:mod:`ablab.calc.trace`) to the rows of a summary: one row per leaf-module
call or functional operator, with shapes, parameters (each counted once), MACs/FLOPs under the
conventions, the bytes backward keeps, the receptive field along the real data flow, a data-flow lint,
the operators without a cost formula (named), and the training FLOPs of a step.

``ablab.sizeup.summarize_module`` assembles these parts into the same :class:`Summary` a spec gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ablab.calc.costs import Conventions, LayerCost, layer_cost, prod
from ablab.calc.dataflow import CONSTANT, GLOBAL, propagate_fields
from ablab.calc.inputs import check_params, data_dependence, make_inputs, readings, sequence_first, trace_first
from ablab.calc.lint import Finding, lint
from ablab.calc.ops import qualified
from ablab.calc.receptive import Field
from ablab.calc.rows import OpLayer, Row, pads, saved_of, table_rows
from ablab.calc.shapes import Resolved, fmt_shape
from ablab.calc.trace import B, ForwardError, trace_module
from ablab.errors import UserError
from ablab.layers import WEIGHTED, kinds_where

# operator rows that are affine maps of their inputs (the layer kinds' own flags come from the registry)
AFFINE_OPS = ("view", "mean", "sum", "add", "sub", "cat", "identity", "permute", "transpose", "reshape", "expand",
              "unsqueeze", "squeeze", "clone", "contiguous", "slice", "select", "stack", "_to_copy")


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
    inputs: Any = None  # batch -> (args, kwargs): the inputs as read, for measure=True
    batch_dim: int = 0


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
    # how the input was read, unless it is the plain case (one per-sample shape, batch axis 0)
    plain = reading.generated and reading.batch is None and batch_dim == 0
    notes = [] if plain else [reading.describe + (" (sequence first: the model has no batch_first)"
                                                 if auto and batch_dim else "")]
    findings_extra = data_dependence(model, tr, reading, conventions, batch_dim, count_mode)
    trt = tr
    if training and not one:
        n = reading.batch or B
        args, kw = make_inputs(reading, n)
        try:
            trt = trace_module(model, args, kw, conventions, batch=n, batch_dim=batch_dim, mode=train_mode)
        except ForwardError as e:
            raise UserError(f"the model raised in {train_mode} mode (the training step's trace): {e}",
                            key="model") from e
    propagate_fields(tr)
    rows = table_rows(tr, model)
    if not rows:
        n = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
        raise UserError(f"nothing to size up: forward ran no operator on the input (it returned it unchanged, or a "
                        f"parameter alone); the model has {n:,} parameters", key="model")
    extra = (0, 0, 0, 0)
    if trt is not tr:  # what backward keeps, per row, from the training-mode step (matched by row name)
        kept = {r.name: saved_of(r) for r in table_rows(trt, model)}
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
    spec_costs: dict[tuple, Any] = {}  # the spec formula of equal layers on equal shapes, computed once
    texts: dict[int, str] = {}
    unknown: dict[str, list[str]] = {}
    for i, row in enumerate(rows, start=1):
        macs = sum(op.cost.macs for op in row.ops) // tr.batch
        flops = sum(op.cost.flops for op in row.ops) // tr.batch
        r = Resolved(index=i, name=row.name, layer=row.layer, in_shape=row.in_shape, out_shape=row.out_shape,
                     padding=pads(row))
        explain = _explain(r, row, macs, flops, conventions, tr.batch, spec_costs)
        costs.append(LayerCost(params=row.params, bias=row.bias, buffers=row.buffers, int_buffers=row.int_buffers,
                               macs=macs, flops=flops, explain=tuple(explain)))
        resolved.append(r)
        trainable.append(row.trainable)
        if id(row.layer) not in texts:  # equal layers share one Layer object (see rows.table_rows)
            texts[id(row.layer)] = row.layer.to_string()
        describe.append(texts[id(row.layer)])
        f = row.rf
        fields.append((f if isinstance(f, Field) else None,
                       "receptive field: the whole input" if f is GLOBAL else
                       "receptive field: along the data flow" if isinstance(f, Field) else
                       "receptive field: not defined here (an operator without a window rule on the path)"))
        known.append(f is not None and f is not CONSTANT)
        saved.append(row.saved_override if row.saved_override is not None else saved_of(row))
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
                       header, extra, tuple(r.torchinfo for r in rows),
                       lambda n: make_inputs(reading, n), batch_dim)


def _explain(r: Resolved, row: Row, macs: int, flops: int, conv: Conventions, batch: int,
             cache: dict[tuple, Any]) -> list[str]:
    """The spec's worked formula when the row is a spec layer and it agrees with the operators; the
    operators' own costs otherwise."""
    if not isinstance(row.layer, OpLayer):
        try:
            key = (id(row.layer), r.in_shape, r.out_shape, r.padding)
            if key not in cache:
                cache[key] = layer_cost(r, conv)
            c = cache[key]
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
