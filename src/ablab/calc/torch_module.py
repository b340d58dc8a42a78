"""Size up a user's own ``torch.nn.Module``: trace one forward pass with hooks, then reuse the calculus.

Every leaf module that runs is recorded with its real input and output shapes. Modules ablab knows
(Conv1d/2d, Linear, Max/AvgPool1d/2d, BatchNorm1d/2d, Dropout, Flatten, ReLU, LeakyReLU, Tanh, Sigmoid,
GELU, Softmax, zero padding) are mapped to the spec's layers, so their MACs, FLOPs and receptive field
come from the very formulas used for specs; their shape rule is checked against the real output.
Other leaf modules keep their real parameter count but are charged no MACs (a note says so).

What hooks cannot see: work done by functional calls in ``forward`` (``torch.flatten``, ``F.relu``,
residual ``x + y``, attention matmuls). When a module's input is not the previous module's output, the
summary says so and does not claim a receptive field. Torch is imported here only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ablab.calc.costs import Conventions, LayerCost, layer_cost
from ablab.calc.result import Summary, assemble
from ablab.calc.shapes import Resolved, fmt_shape, resolve
from ablab.errors import UserError
from ablab.layers import Layer, Opaque, Pad, Shape, SpecError, layer_from_module
from ablab.specs.stack import Spec


def to_layer(m: nn.Module) -> Layer:
    """The spec layer computing what ``m`` computes (read from the layer registry), or ``Opaque``."""
    return layer_from_module(m) or Opaque(cls=type(m).__name__)


def summarize_module(model: nn.Module, input_shape: Shape, *, batch: int = 1, dtype: str = "float32",
                     optimizer: str = "sgd", conventions: Conventions | None = None) -> Summary:
    """Run ``model`` once on zeros of shape (1, *input_shape) and size up every leaf module it calls."""
    conventions = conventions or Conventions()
    names = {id(m): n for n, m in model.named_modules()}
    calls: list[tuple[nn.Module, Shape, Shape]] = []
    skipped: list[str] = []

    def hook(m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        x = next((a for a in args if isinstance(a, torch.Tensor)), None)
        if x is None or not isinstance(out, torch.Tensor):
            skipped.append(names.get(id(m), type(m).__name__))
            return
        calls.append((m, tuple(x.shape[1:]), tuple(out.shape[1:])))

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(hook) for m in leaves]
    first = next(iter(model.parameters()), None)
    x = torch.zeros(1, *input_shape, dtype=first.dtype if first is not None and first.is_floating_point()
                    else torch.float32, device=first.device if first is not None else "cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    except Exception as e:  # the user's model does not accept this input: say which shape
        raise UserError(f"the model does not run on an input of shape 1x{fmt_shape(input_shape)} "
                        f"({type(e).__name__}: {e})") from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not calls:
        raise UserError("the model ran but called no leaf module ablab can see (is all the work functional?)")

    resolved: list[Resolved] = []
    costs: list[LayerCost] = []
    trainable: list[int] = []
    describe: list[str] = []
    notes: list[str] = []
    seen: dict[str, int] = {}
    chain = True
    for i, (m, in_shape, out_shape) in enumerate(calls, start=1):
        name = names.get(id(m), type(m).__name__) or type(m).__name__
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}({seen[name]})"  # the same module called again (shared weights)
        layer = to_layer(m)
        pads: tuple[tuple[int, int], ...] = ()
        if isinstance(layer, Pad):
            pads = layer.pairs
        elif not isinstance(layer, Opaque):
            try:
                r0 = resolve(Spec(input_shape=in_shape, layers=(layer,)))[0]
                pads = r0.padding
                if r0.out_shape != out_shape:
                    notes.append(f"{name}: ablab's shape rule gives {fmt_shape(r0.out_shape)} but the module "
                                 f"returned {fmt_shape(out_shape)}; its costs are not formula-checked")
                    layer = Opaque(cls=type(m).__name__)
            except SpecError:
                layer = Opaque(cls=type(m).__name__)
        if i > 1 and calls[i - 2][2] != in_shape:
            chain = False
        r = Resolved(index=i, name=name, layer=layer, in_shape=in_shape, out_shape=out_shape, padding=pads)
        c = layer_cost(r, conventions)
        own = list(m.parameters(recurse=False))
        real = sum(p.numel() for p in own)
        bufs = list(m.buffers(recurse=False))
        float_bufs = sum(b.numel() for b in bufs if b.is_floating_point())
        int_bufs = sum(b.numel() for b in bufs if not b.is_floating_point())
        if isinstance(layer, Opaque):
            c = LayerCost(params=real, explain=(f"{fmt_shape(in_shape)} -> {fmt_shape(out_shape)}",
                                                f"{type(m).__name__}: {real:,} parameters counted; no formula, "
                                                "MACs and FLOPs not counted"))
            if real or type(m).__name__ not in ("Identity",):
                notes.append(f"{name} ({type(m).__name__}): no formula; its MACs/FLOPs are not counted")
        elif c.params != real:
            notes.append(f"{name}: formula gives {c.params:,} parameters, the module holds {real:,}; using {real:,}")
        c = LayerCost(params=real, bias=c.bias, buffers=float_bufs, int_buffers=int_bufs, macs=c.macs,
                      flops=c.flops, explain=c.explain)
        resolved.append(r)
        costs.append(c)
        trainable.append(sum(p.numel() for p in own if p.requires_grad))
        describe.append(layer.to_string())
    params = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in params.values())
    total_trainable = sum(p.numel() for p in params.values() if p.requires_grad)
    if total != sum(c.params for c in costs):
        notes.append(f"the model holds {total:,} parameters; the rows sum to {sum(c.params for c in costs):,} "
                     "(shared weights count once in the total; parameters of non-leaf modules have no row)")
    if not chain:
        notes.append("the modules do not form a chain (functional ops or branches in forward): work outside "
                     "modules is not counted and no receptive field is given")
    if skipped:
        notes.append(f"not a single tensor in/out, skipped: {', '.join(sorted(set(skipped)))}")
    return assemble(type(model).__name__, "module", resolved, costs, trainable, batch=batch, dtype=dtype,
                    optimizer=optimizer, conventions=conventions, describe=describe,
                    total_params=(total, total_trainable), notes=tuple(notes), receptive=chain)
