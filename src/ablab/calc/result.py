"""The size-up result: one ``LayerSummary`` row per layer, ``Totals``, and the ``Summary`` that holds
them (its ``to_dict()`` is the JSON of ``ablab summary --json``, see ``ablab.sizeup``);
``assemble`` builds it from resolved layers and their costs, for specs and for user modules alike.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ablab.calc.lint import Finding, lint
from ablab.calc.measure import Measured, measured_lines
from ablab.calc.memory import Memory, both_units, dtype_bytes, kept_for_backward, memory, optimizer_states
from ablab.calc.receptive import receptive_fields
from ablab.display import SummaryDisplay
from ablab.layers.base import Resolved
from ablab.layers.placed import Conventions, Field, LayerCost, fmt_shape, prod
from ablab.layers.values import Shape, SpecError


@dataclass(frozen=True)
class LayerSummary:
    """One row of the table. MACs, FLOPs and activation bytes are for the whole batch."""

    index: int
    name: str
    kind: str
    layer: str  # the layer in spec syntax (or the module's class for user modules)
    input_shape: Shape
    output_shape: Shape
    params: int
    trainable_params: int
    buffers: int
    macs: int
    flops: int
    activation_bytes: int  # the output tensor, batch * prod(output_shape) * dtype bytes
    receptive_field: Field | None
    explain: tuple[str, ...] = ()
    bias: int = 0  # of the params, how many are bias (per output channel / feature)
    field_known: bool = True  # False: no receptive field is defined here (blank, not "all")
    # a traced module call: its parameters named weight/bias and its other *weight*/*bias* ones (an RNN's
    # weight_ih_l0), counted again at every call; (0, 0) for an operator row; None for a spec layer
    call_params: tuple[int, int] | None = None
    kept_bytes: int = 0  # what autograd keeps for backward, charged to this row (see ablab.calc.memory)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index, "name": self.name, "kind": self.kind, "layer": self.layer,
            "input_shape": list(self.input_shape), "output_shape": list(self.output_shape),
            "params": self.params, "trainable_params": self.trainable_params, "buffers": self.buffers,
            "macs": self.macs, "flops": self.flops, "activation_bytes": self.activation_bytes,
            "kept_bytes": self.kept_bytes,
            "receptive_field": self.receptive_field.to_dict() if self.receptive_field else None,
        }


@dataclass(frozen=True)
class Totals:
    params: int
    trainable_params: int
    buffers: int  # floating-point buffer elements (batch norm running mean/var), in the dtype
    int_buffers: int  # int64 buffer elements (batch norm step counters), 8 B each
    macs: int
    flops: int
    memory: Memory

    def to_dict(self) -> dict[str, Any]:
        m = self.memory
        return {
            "params": self.params, "trainable_params": self.trainable_params,
            "buffers": self.buffers + self.int_buffers,
            "macs": self.macs, "flops": self.flops, "activation_bytes": m.activation_bytes,
            "kept_bytes": m.kept_bytes, "input_bytes": m.input_bytes, "param_bytes": m.param_bytes,
            "inference_peak_bytes": m.inference_peak_bytes, "training_bytes": m.training_bytes,
            "training": {"activations": m.saved_bytes, "params": m.param_bytes, "gradients": m.grad_bytes,
                         "optimizer_state": m.optimizer_bytes},
        }


@dataclass(frozen=True)
class Summary(SummaryDisplay):  # SummaryDisplay: _repr_html_ and to_pandas() for notebooks
    """The size-up of one network for one input shape, batch, dtype and optimizer."""

    model: str
    source: str  # "spec" or "module"
    input_shape: Shape
    batch: int
    dtype: str
    optimizer: str
    conventions: Conventions
    layers: tuple[LayerSummary, ...]
    totals: Totals
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    training_flops: dict[str, Any] | None = None  # forward / loss / backward / step FLOPs of one training step
    mode: str = ""  # a traced module: the mode the counts (and training numbers) were traced in
    measured: Measured | None = None  # measure=True: one training step under the allocator

    def __getitem__(self, name: str) -> LayerSummary:
        for row in self.layers:
            if row.name == name:
                return row
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "source": self.source, "input_shape": list(self.input_shape),
            "batch": self.batch, "dtype": self.dtype, "optimizer": self.optimizer,
            "conventions": self.conventions.to_dict(),
            "layers": [row.to_dict() for row in self.layers],
            "totals": self.totals.to_dict(),
            "warnings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
            **({"mode": self.mode} if self.mode else {}),
            **({"training_flops": self.training_flops} if self.training_flops else {}),
            **({"measured": self.measured.to_dict()} if self.measured else {}),
        }

    def to_json(self, indent: int | None = 2) -> str:
        text = json.dumps(self.to_dict(), indent=indent)
        # shapes and fields on one line: [6, 28, 28] rather than one number per line
        return re.sub(r"\[[\s\d,\-]*\]", lambda m: re.sub(r"\s+", "", m.group()).replace(",", ", "), text)

    def conventions_lines(self) -> list[str]:
        """What the numbers mean; printed under every table."""
        b = dtype_bytes(self.dtype)
        k = optimizer_states(self.optimizer)
        return [
            f"Conventions: {self.conventions.describe()}.",
            f"Batch {self.batch}: MACs, FLOPs and bytes are for the whole batch; {self.dtype} = {b} B/element.",
            "Inference peak = largest adjacent pair (a layer's input + output) + parameters and buffers.",
            "Kept for backward = the tensors autograd saves for backward, each storage once, charged to the layer "
            "that made them" + (" (traced)" if self.source == "module" else " (per layer kind: docs/summary.md)") + ".",
            f"Training = input + kept for backward + parameters + gradients + {self.optimizer} state ({k}x trainable "
            "parameters); no framework overhead or workspaces.",
        ] + (["Module rows: one per leaf-module call or functional operator (traced); parameters count once "
              "however often used."] if self.source == "module" else []) + ([
            "Training FLOPs: forward + loss (cross-entropy) + backward (the gradient of every input and weight "
            "under the same conventions); the optimizer update is not counted."] if self.training_flops else [])

    def totals_lines(self) -> list[str]:
        t, m = self.totals, self.totals.memory
        n_buf = t.buffers + t.int_buffers
        n_in, n_out = prod(self.input_shape), prod(self.layers[-1].output_shape)
        lines = [
            f"Parameters: {t.params:,} ({t.trainable_params:,} trainable"
            + (f", {n_buf:,} buffer elements" if n_buf else "") + f") = {both_units(m.param_bytes)}",
            f"MACs: {t.macs:,}   FLOPs: {t.flops:,}",
            f"Activations: layer outputs {m.activation_bytes:,} B ({both_units(m.activation_bytes)}); kept for "
            f"backward {m.kept_bytes:,} B ({both_units(m.kept_bytes)}); input {m.input_bytes:,} B",
            f"Inference peak: {m.inference_peak_bytes:,} B ({both_units(m.inference_peak_bytes)}), at "
            f"{m.peak_layer}",
            f"Training (batch {self.batch}, {self.optimizer}): {m.training_bytes:,} B "
            f"({both_units(m.training_bytes)}) = input + kept {m.saved_bytes:,} + params {m.param_bytes:,} + "
            f"grads {m.grad_bytes:,} + optimizer {m.optimizer_bytes:,}",
            f"Output/input size: {fmt_shape(self.layers[-1].output_shape)} / {fmt_shape(self.input_shape)} = "
            f"{n_out:,} / {n_in:,} elements = {n_out / n_in:.4g}",
        ]
        tf = self.training_flops
        if tf:
            lines.append(f"Training FLOPs per step (batch {self.batch}): forward {tf['forward']:,} + loss "
                         f"{tf['loss']:,} + backward {tf['backward']:,} = {tf['step']:,}")
        if self.measured:
            lines += measured_lines(self.measured, m.training_bytes)
        return lines

    def explain(self) -> str:
        """Every layer's formulas with the numbers substituted, then the totals: a worked solution."""
        b = dtype_bytes(self.dtype)
        out = [f"{self.model}: input {fmt_shape(self.input_shape)}, batch {self.batch}, {self.dtype} ({b} B)", ""]
        for row in self.layers:
            out.append(f"[{row.index}] {row.name}: {row.layer}")
            out += [f"    {line}" for line in row.explain]
            out.append("")
        t, m = self.totals, self.totals.memory
        params = " + ".join(f"{row.params:,}" for row in self.layers if row.params)
        macs = " + ".join(f"{row.macs:,}" for row in self.layers if row.macs)
        out += [
            "Totals",
            f"    params = {params or '0'} = {t.params:,}",
            f"    MACs = {macs or '0'} = {t.macs:,}",
            f"    parameter bytes = ({t.params:,} params + {t.buffers:,} buffers) * {b} B"
            + (f" + {t.int_buffers} int64 counters * 8 B" if t.int_buffers else "") + f" = {m.param_bytes:,} B"
            f" ({both_units(m.param_bytes)})",
            f"    inference peak = largest input+output pair (at {m.peak_layer}) + parameter bytes = "
            f"{m.inference_peak_bytes - m.param_bytes:,} + {m.param_bytes:,} = {m.inference_peak_bytes:,} B "
            f"({both_units(m.inference_peak_bytes)})",
            f"    training = (input {m.input_bytes:,} + kept for backward {m.kept_bytes:,}) + params "
            f"{m.param_bytes:,} + grads {t.trainable_params:,}*{b} + {self.optimizer} "
            f"{optimizer_states(self.optimizer)}*{t.trainable_params:,}*{b} = {m.training_bytes:,} B "
            f"({both_units(m.training_bytes)})",
        ]
        return "\n".join(out)

    def render(self, width: int = 120, explain: bool = False) -> str:
        """The table as plain text (see ``ablab.calc.render``)."""
        from ablab.calc.render import render_text

        return render_text(self, width=width, explain=explain)

    def __str__(self) -> str:
        return self.render()


def assemble(model: str, source: str, layers: list[Resolved], costs: list[LayerCost], trainable: list[int], *,
             batch: int, dtype: str, optimizer: str, conventions: Conventions,
             describe: list[str] | None = None, total_params: tuple[int, int] | None = None,
             findings: list[Finding] | None = None, notes: tuple[str, ...] = (),
             receptive: bool = True, fields: list[tuple[Field | None, str]] | None = None,
             field_known: list[bool] | None = None, kept_bytes: list[int] | None = None,
             call_params: tuple[tuple[int, int], ...] | None = None) -> Summary:
    """Per-layer rows, totals, memory and lint from resolved layers and their per-sample costs.

    ``total_params`` (params, trainable) overrides the per-layer sums, for modules that share weights;
    ``receptive=False`` skips the receptive field (layers that do not form a chain); a traced module
    passes its own ``fields`` (along the data flow, ``field_known`` False where none is defined) and
    ``kept_bytes`` (per row, what autograd kept in the trace; a spec's follow from ``KEEPS``)."""
    if not layers:
        raise SpecError("the network has no layers")
    b = dtype_bytes(dtype)
    if fields is None:
        fields = receptive_fields(layers) if receptive else [(None, "receptive field: not computed")] * len(layers)
    kept = kept_for_backward(layers, batch, dtype) if kept_bytes is None else kept_bytes
    rows = []
    for i, (r, c, tr, (fld, fld_text)) in enumerate(zip(layers, costs, trainable, fields, strict=True)):
        elems = prod(r.out_shape)
        lines = list(c.explain) + tensor_lines(r)
        if batch > 1 and c.macs:
            lines.append(f"for the batch: MACs = {batch}*{c.macs:,} = {batch * c.macs:,}; "
                         f"FLOPs = {batch}*{c.flops:,} = {batch * c.flops:,}")
        act = batch * elems * b
        lines.append(f"output = {batch}*{fmt_shape(r.out_shape)} elements * {b} B = {act:,} B; kept for backward: "
                     f"{kept[i]:,} B" + (" (traced)" if kept_bytes is not None else ""))
        lines.append(fld_text)
        rows.append(LayerSummary(
            index=r.index, name=r.name, kind=r.layer.kind,
            layer=describe[i] if describe else r.layer.to_string(),
            input_shape=r.in_shape, output_shape=r.out_shape, params=c.params, trainable_params=tr,
            buffers=c.buffers + c.int_buffers, macs=batch * c.macs, flops=batch * c.flops,
            activation_bytes=act, receptive_field=fld, explain=tuple(lines), bias=c.bias,
            field_known=True if field_known is None else field_known[i],
            call_params=call_params[i] if call_params else None, kept_bytes=kept[i],
        ))
    params, train = total_params or (sum(c.params for c in costs), sum(trainable))
    buffers, int_buffers = sum(c.buffers for c in costs), sum(c.int_buffers for c in costs)
    mem = memory(prod(layers[0].in_shape), [(r.name, prod(r.in_shape), prod(r.out_shape)) for r in layers],
                 params, train, buffers, int_buffers, batch, dtype, optimizer, kept_bytes=sum(kept))
    totals = Totals(params=params, trainable_params=train, buffers=buffers, int_buffers=int_buffers,
                    macs=sum(row.macs for row in rows), flops=sum(row.flops for row in rows), memory=mem)
    return Summary(model=model, source=source, input_shape=layers[0].in_shape, batch=batch, dtype=dtype,
                   optimizer=optimizer.lower(), conventions=conventions, layers=tuple(rows), totals=totals,
                   findings=tuple(lint(layers) if findings is None else findings), notes=notes)


def tensor_lines(r: Resolved) -> list[str]:
    """Each parameter's shape in both conventions: PyTorch stores a weight as (out, in[, k...]); the X·W
    textbook (and Keras/TensorFlow) as (in, out) — for convolutions (k..., in, out). Biases are (out,)."""
    try:
        tensors = r.layer.tensors(r)
    except Exception:  # noqa: BLE001 - a user module's layer without a registry entry: nothing to add
        return []
    out = []
    for t in tensors:
        if t.role == "weight" and len(t.shape) >= 2:
            o, i, *k = t.shape
            names = ("out", "in", *(("k",) if len(k) == 1 else ("kH", "kW")[:len(k)]))
            torch_names = ", ".join(names)
            tb_names = ", ".join((*names[2:], "in", "out"))
            out.append(f"{t.name} shape: PyTorch ({torch_names}) = {tuple(t.shape)}; X·W textbook "
                       f"({tb_names}) = {(*k, i, o)}")
        elif t.role in ("weight", "bias"):
            out.append(f"{t.name} shape: {tuple(t.shape)} in both conventions")
    return out
