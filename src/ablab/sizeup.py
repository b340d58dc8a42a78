"""``summary()``: size up a network — shapes, parameters, MACs/FLOPs, memory, receptive field, lint.

One entry point for a spec (a ``Spec``, a preset name, a spec string or file: pure Python, torch is
never imported) and for a user's own ``torch.nn.Module`` (traced with forward hooks, see
``ablab.calc.trace``). Both end in the same :class:`Summary`, whose ``to_dict()`` is the JSON
schema of ``ablab summary --json``::

    {"model", "source", "input_shape", "batch", "dtype", "optimizer", "conventions": {...},
     "layers": [{"index", "name", "kind", "layer", "input_shape", "output_shape", "params",
                 "trainable_params", "buffers", "macs", "flops", "activation_bytes",
                 "kept_bytes", "receptive_field": {"size", "stride", "start"} | null}],
     "totals": {"params", "trainable_params", "buffers", "macs", "flops", "activation_bytes", "kept_bytes",
                "input_bytes", "param_bytes", "inference_peak_bytes", "training_bytes",
                "training": {"activations", "params", "gradients", "optimizer_state"}},
     "warnings": [{"severity", "layer", "code", "message"}], "notes": [...], "mode" (traced modules only)}

MACs, FLOPs and bytes are for the whole batch (``batch`` samples); parameters do not depend on it.
"""


from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from ablab.calc.costs import Conventions, layer_cost
from ablab.calc.measure import measure_step
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
    input_shape: Any = None,
    batch: int | None = None,
    dtype: str = "float32",
    optimizer: str = "sgd",
    conventions: Conventions | None = None,
    training: bool = False,
    *,
    input_size: Any = None,
    input_data: Any = None,
    dtypes: Any = None,
    batch_dim: int | None = None,
    mode: str | None = None,
    kwargs: dict | None = None,
    measure: bool = False,
) -> Summary:
    """Size up ``model``: a ``Spec``, a preset name / spec string / spec file, or a ``torch.nn.Module``
    (traced at the operator level, see ``ablab.calc.trace``). ``training``: add the FLOPs of a training
    step (forward, loss, backward; a module's measured by tracing a real ``loss.backward()``).

    ``input_shape`` (or ``input_size``) excludes the batch axis, e.g. ``(1, 28, 28)`` or ``"1x28x28"``; a
    spec or preset may carry its own. For a module, see ``ablab.calc.inputs``: a list of shapes for several
    inputs, ``"long:16"`` for token ids, torchinfo's shapes with the batch axis, ``input_data=`` (a tensor,
    tuple, list or dict of real inputs), ``dtypes=``, ``batch_dim=`` (1: sequence first; by default 1 for
    torch's sequence-first modules used as the model, else 0), ``kwargs=`` (more
    keyword arguments of ``forward``). ``mode``: "eval" or "train"; by default the counts are traced in
    eval mode and, with ``training``, the training FLOPs and memory in train mode. ``measure``: also run one
    training step under the allocator (``ablab.calc.measure``; loads torch) and report its peak beside the
    estimated training memory."""
    if input_shape is not None and input_size is not None:
        raise UserError("give input_shape or input_size, not both (they are the same argument)", key="input_shape")
    input_shape = input_size if input_shape is None else input_shape
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= MAX_SIZE):
        raise UserError(f"batch: expected a positive integer (at most {MAX_SIZE:,}), got {show(batch)}")
    dtype_bytes(dtype)
    optimizer_states(optimizer)
    conventions = conventions or Conventions()
    if isinstance(model, str | Path):
        model = load_spec(str(model))
    torch = sys.modules.get("torch")  # a module can only exist if torch was imported
    if isinstance(model, Spec):
        if input_data is not None or dtypes is not None or kwargs or batch_dim is not None or mode:
            raise UserError("input_data, dtypes, kwargs, batch_dim and mode apply to torch modules; a spec takes "
                            "input_shape only")
        shape = parse_shape(input_shape) if isinstance(input_shape, str) else (
            tuple(input_shape) if input_shape is not None else None)
        s = summarize_spec(model, shape, batch=batch or 1, dtype=dtype, optimizer=optimizer, conventions=conventions)
        if training:  # measured, not modelled: the spec's torch model traced through a real backward
            s = dataclasses.replace(s, training_flops=spec_training_flops(model, s.input_shape, batch or 1,
                                                                          conventions))
        if measure:
            s = dataclasses.replace(s, measured=spec_measured(model, s.input_shape, s.batch, optimizer))
        return s
    if torch is not None and isinstance(model, type) and issubclass(model, torch.nn.Module):
        raise UserError(f"got the class {model.__name__}, not a module; create one first, e.g. "
                        f"summary({model.__name__}(), ...)", key="model")
    if torch is not None and isinstance(model, torch.nn.Module):
        return summarize_module(model, input_shape, batch=batch, dtype=dtype, optimizer=optimizer,
                                conventions=conventions, training=training, input_data=input_data, dtypes=dtypes,
                                batch_dim=batch_dim, mode=mode, kwargs=kwargs, measure=measure)
    raise UserError(f"model: expected a Spec, a preset name, a spec string/file or a torch.nn.Module, "
                    f"got {type(model).__name__}")


def summarize_module(model: Any, input_shape: Any = None, *, batch: int | None = None, dtype: str = "float32",
                     optimizer: str = "sgd", conventions: Conventions | None = None, training: bool = False,
                     input_data: Any = None, dtypes: Any = None, batch_dim: int | None = None, mode: str | None = None,
                     kwargs: dict | None = None, measure: bool = False) -> Summary:
    """A user's ``nn.Module``, traced at the operator level (``ablab.calc.modulesize``). ``batch``: the
    batch the numbers are for (default: the batch the input carries, else 1)."""
    from ablab.calc.modulesize import per_batch_saved, size_module

    conventions = conventions or Conventions()
    parts = size_module(model, conventions, input_size=input_shape, input_data=input_data, dtypes=dtypes,
                        batch_dim=batch_dim, kwargs=kwargs, mode=mode,
                        training=training or measure)  # measured against the train-mode estimate
    batch = batch or parts.batch or 1
    b = dtype_bytes(dtype)
    s = assemble(type(model).__name__, "module", parts.resolved, parts.costs, parts.trainable, batch=batch,
                 dtype=dtype, optimizer=optimizer, conventions=conventions, describe=parts.describe,
                 total_params=parts.total_params, findings=parts.findings, notes=tuple(parts.notes),
                 fields=parts.fields, field_known=parts.field_known,
                 kept_bytes=[per_batch_saved(x, batch, b) for x in parts.saved], call_params=parts.torchinfo)
    extra = per_batch_saved(parts.extra_saved, batch, b)
    if extra:  # kept by rows that run only in the training trace (aux heads)
        m = s.totals.memory
        mem = dataclasses.replace(m, kept_bytes=m.kept_bytes + extra, training_bytes=m.training_bytes + extra)
        s = dataclasses.replace(s, totals=dataclasses.replace(s.totals, memory=mem))
    s = dataclasses.replace(s, input_shape=parts.input_shape or s.input_shape, mode=parts.mode)
    if training:
        t = {k: v * batch for k, v in parts.training.items()}
        t["step"] = t["forward"] + t["loss"] + t["backward"]
        s = dataclasses.replace(s, training_flops=t)
    if measure:
        args, kw = parts.inputs(batch)
        s = dataclasses.replace(s, measured=measure_step(model, args, kw, optimizer, parts.batch_dim))
    return s


def spec_measured(spec: Spec, shape: Shape, batch: int, optimizer: str) -> Any:
    """One training step of the spec's PyTorch model at ``batch``, under the allocator (loads torch)."""
    import torch

    from ablab.models.builder import build

    torch.manual_seed(0)
    return measure_step(build(spec, shape), (torch.randn(batch, *shape),), {}, optimizer)


def spec_training_flops(spec: Spec, shape: Shape, batch: int, conventions: Conventions) -> dict[str, int]:
    """The training-step FLOPs of a spec, from its PyTorch model traced like a module (loads torch)."""
    from ablab.calc.modulesize import size_module
    from ablab.models.builder import build

    parts = size_module(build(spec, shape), conventions, input_size=shape, mode="train", training=True)
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


