"""``summary()``: size up a network — shapes, parameters, MACs/FLOPs, memory, receptive field, lint.

One entry point for a spec (a ``Spec``, a preset name, a spec string or file: pure Python, torch is
never imported) and for a user's own ``torch.nn.Module`` (traced with forward hooks, see
``ablab.calc.trace``). Both end in the same :class:`Summary`, whose ``to_dict()`` is the JSON
schema of ``ablab summary --json``::

    {"model", "source", "input_shape", "batch", "dtype", "optimizer", "conventions": {...},
     "layers": [{"index", "name", "kind", "layer", "input_shape", "output_shape", "params",
                 "trainable_params", "buffers", "macs", "flops", "activation_bytes",
                 "receptive_field": {"size", "stride", "start"} | null}],
     "totals": {"params", "trainable_params", "buffers", "macs", "flops", "activation_bytes",
                "input_bytes", "param_bytes", "inference_peak_bytes", "training_bytes",
                "training": {"activations", "params", "gradients", "optimizer_state"}},
     "warnings": [{"severity", "layer", "code", "message"}], "notes": [...]}

MACs, FLOPs and bytes are for the whole batch (``batch`` samples); parameters do not depend on it.
"""


from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from ablab.calc.costs import Conventions, layer_cost
from ablab.calc.memory import dtype_bytes, optimizer_states
from ablab.calc.result import LayerSummary, Summary, Totals, assemble
from ablab.calc.shapes import resolve
from ablab.errors import UserError
from ablab.layers.values import MAX_SIZE, Shape, show
from ablab.models.source import load_spec
from ablab.spec.stack import Spec, parse_shape

__all__ = ["LayerSummary", "Summary", "Totals", "assemble", "summarize_module", "summarize_spec", "summary"]

def summary(
    model: Any,
    input_shape: Shape | str | None = None,
    batch: int = 1,
    dtype: str = "float32",
    optimizer: str = "sgd",
    conventions: Conventions | None = None,
    training: bool = False,
) -> Summary:
    """Size up ``model``: a ``Spec``, a preset name / spec string / spec file, or a ``torch.nn.Module``
    (traced at the operator level, see ``ablab.calc.trace``). ``training``: add the FLOPs of a training
    step (forward, loss, backward; a module's measured by tracing a real ``loss.backward()``).

    ``input_shape`` excludes the batch axis, e.g. ``(1, 28, 28)`` or ``"1x28x28"``; a spec or preset
    may carry its own. For a module it is required (modules do not know their input)."""
    shape = parse_shape(input_shape) if isinstance(input_shape, str) else (
        tuple(input_shape) if input_shape is not None else None)
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= MAX_SIZE:
        raise UserError(f"batch: expected a positive integer (at most {MAX_SIZE:,}), got {show(batch)}")
    dtype_bytes(dtype)
    optimizer_states(optimizer)
    conventions = conventions or Conventions()
    if isinstance(model, str | Path):
        model = load_spec(str(model))
    if isinstance(model, Spec):
        s = summarize_spec(model, shape, batch=batch, dtype=dtype, optimizer=optimizer, conventions=conventions)
        if training:  # measured, not modelled: the spec's torch model traced through a real backward
            s = dataclasses.replace(s, training_flops=spec_training_flops(model, s.input_shape, batch, conventions))
        return s
    torch = sys.modules.get("torch")  # a module can only exist if torch was imported
    if torch is not None and isinstance(model, torch.nn.Module):
        if shape is None:
            raise UserError("input_shape: a torch module needs an input shape without the batch axis, "
                            "e.g. (1, 28, 28)")
        return summarize_module(model, shape, batch=batch, dtype=dtype, optimizer=optimizer,
                                conventions=conventions, training=training)
    raise UserError(f"model: expected a Spec, a preset name, a spec string/file or a torch.nn.Module, "
                    f"got {type(model).__name__}")


def summarize_module(model: Any, input_shape: Shape, *, batch: int = 1, dtype: str = "float32",
                     optimizer: str = "sgd", conventions: Conventions | None = None,
                     training: bool = False) -> Summary:
    """A user's ``nn.Module``, traced at the operator level (``ablab.calc.modulesize``)."""
    from ablab.calc.modulesize import per_batch_saved, size_module

    conventions = conventions or Conventions()
    parts = size_module(model, input_shape, conventions)
    b = dtype_bytes(dtype)
    s = assemble(type(model).__name__, "module", parts.resolved, parts.costs, parts.trainable, batch=batch,
                 dtype=dtype, optimizer=optimizer, conventions=conventions, describe=parts.describe,
                 total_params=parts.total_params, findings=parts.findings, notes=tuple(parts.notes),
                 fields=parts.fields, field_known=parts.field_known,
                 activation_bytes=[per_batch_saved(x, batch, b) for x in parts.saved])
    if training:
        t = {k: v * batch for k, v in parts.training.items()}
        t["step"] = t["forward"] + t["loss"] + t["backward"]
        s = dataclasses.replace(s, training_flops=t)
    return s


def spec_training_flops(spec: Spec, shape: Shape, batch: int, conventions: Conventions) -> dict[str, int]:
    """The training-step FLOPs of a spec, from its PyTorch model traced like a module (loads torch)."""
    from ablab.calc.modulesize import size_module
    from ablab.models.builder import build

    parts = size_module(build(spec, shape), shape, conventions)
    t = {k: v * batch for k, v in parts.training.items()}
    t["step"] = t["forward"] + t["loss"] + t["backward"]
    return t


def summarize_spec(spec: Spec, input_shape: Shape | None = None, *, batch: int = 1, dtype: str = "float32",
                   optimizer: str = "sgd", conventions: Conventions | None = None) -> Summary:
    conventions = conventions or Conventions()
    layers = resolve(spec, input_shape)
    costs = [layer_cost(r, conventions) for r in layers]
    return assemble(spec.name or "spec", "spec", layers, costs, [c.params for c in costs],
                    batch=batch, dtype=dtype, optimizer=optimizer, conventions=conventions)


