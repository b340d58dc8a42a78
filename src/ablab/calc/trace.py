"""Size up a user's own ``torch.nn.Module`` at the operator level: trace one training step.

One forward (train mode, a batch of 2) and one ``loss.backward()`` run under a ``TorchDispatchMode``
(the machinery of torch's ``FlopCounterMode``), while global module hooks keep the stack of modules
that are running. Every aten operator is recorded with its real shapes and attributed to the innermost
module that ran it — functional calls (``F.relu``, ``x.view``, ``torch.flatten``, ``x + y``) to their
caller's module. A leaf module's call becomes one row; each data operator in a non-leaf ``forward``
becomes its own row, named ``module (kind)``.

Along the real data flow (which operator produced which input) the tracer derives the receptive field
(blank where it is not defined), the collapse lint (a nonlinearity anywhere between two weighted layers
prevents it), and what backward keeps: ``saved_tensors_hooks`` see every tensor autograd saves, each
storage counted once, parameters excluded. Parameters count once however often they are used (tied
weights, a module called twice). Costs come from :mod:`ablab.calc.ops` under the summary's conventions;
an operator it has no formula for is named, never counted as zero in silence. The model's parameters,
buffers, gradients, training mode and the RNG are restored afterwards.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ablab.calc.costs import Conventions, prod
from ablab.calc.ops import CONV, DROPOUT, ELEMENTWISE, IGNORED, MATMUL, MOVE, NORM, POOL, REDUCE, OpCost, op_cost
from ablab.calc.receptive import Field
from ablab.errors import UserError

B = 2  # traced batch: batch norm needs more than one sample per channel in training mode
GLOBAL = "global"  # receptive field of an output that sees the whole input (after flatten / linear)
SKIP_MODULES = (nn.Identity,)


@dataclass
class Op:
    """One recorded operator call (whole traced batch)."""

    index: int
    name: str  # aten overload packet, e.g. "convolution"
    call: int  # the module call it ran in (index into Trace.calls)
    ins: list[int]  # producing op index of each data input (-1: the model input)
    in_shapes: list[tuple[int, ...]]  # shapes of the data inputs
    out_shape: tuple[int, ...]
    cost: OpCost
    params: set[int] = field(default_factory=set)  # ids of the parameters/buffers it consumed
    rf: Any = None  # receptive field of the output: Field | GLOBAL | None (not defined)
    # what backward keeps, charged to the op that saved it: float elements per sample / fixed, and the
    # bytes of other tensors (max-pool indices, dropout masks) per sample / fixed
    saved: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    args: tuple = ()  # the non-tensor arguments (tensors replaced by None)
    shapes: list[Any] = field(default_factory=list)  # full shape of each tensor argument (None: not a tensor)


@dataclass
class Call:
    module: nn.Module
    path: str  # "" for the root
    leaf: bool
    in_node: int | None = None  # producer of its first tensor argument
    in_shape: tuple[int, ...] | None = None
    out_shape: tuple[int, ...] | None = None


@dataclass
class Trace:
    ops: list[Op]
    calls: list[Call]
    backward: list[tuple[str, OpCost]]  # operators of the loss and backward, in order
    loss: list[tuple[str, OpCost]]
    weight_only: list[str]  # compute operators that saw only parameters (not counted per sample)
    input_node_shape: tuple[int, ...]
    input_saved: bool


class _Recorder(TorchDispatchMode):
    def __init__(self, tracer: _Tracer) -> None:
        super().__init__()
        self.t = tracer

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = func._overloadpacket.__name__
        if name in IGNORED or func is torch.ops.prim.device.default:
            return func(*args, **kwargs)

        known = name in CONV or name in MATMUL or name in POOL or name in REDUCE or name in NORM \
            or name in ELEMENTWISE or name in DROPOUT or name in MOVE
        if not known:  # as FlopCounterMode does: an operator with a decomposition is traced through it
            with self:
                r = func.decompose(*args, **kwargs)
            if r is not NotImplemented:
                return r
        out = func(*args, **kwargs)
        self.t.record(name, args, kwargs, out)
        return out


class _Tracer:
    def __init__(self, model: nn.Module, conventions: Conventions) -> None:
        self.model = model
        self.conv = conventions
        self.names = {id(m): n for n, m in model.named_modules()}
        self.origin: dict[int, frozenset[int]] = {}  # tensor id -> the parameters it derives from only
        for p in [*model.parameters(), *model.buffers()]:
            self.origin[id(p)] = frozenset({id(p)})
        self.param_storage = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.node: dict[int, int] = {}  # tensor id -> producing op (-1: the input)
        self.keep: list[Any] = []  # tensors kept alive so their ids stay theirs
        self.ops: list[Op] = []
        self.calls: list[Call] = [Call(model, "", False)]
        self.stack: list[int] = [0]
        self.phase = "forward"
        self.backward: list[tuple[str, OpCost]] = []
        self.loss: list[tuple[str, OpCost]] = []
        self.weight_only: list[str] = []
        self.seen_storage: set[int] = set()
        self.input_storage = -1
        self.input_saved = False

    # --- module stack
    def pre(self, m: nn.Module, args: Any) -> None:
        if self.phase != "forward":
            return
        leaf = next(m.children(), None) is None
        call = Call(m, self.names.get(id(m), type(m).__name__), leaf)
        x = next((a for a in tree_flatten(args)[0] if isinstance(a, torch.Tensor)), None)
        if x is not None:
            call.in_node = self.node.get(id(x))
            call.in_shape = _per_sample(x.shape)
        self.calls.append(call)
        self.stack.append(len(self.calls) - 1)

    def post(self, m: nn.Module, args: Any, out: Any) -> None:
        if self.phase != "forward" or len(self.stack) <= 1:
            return
        call = self.calls[self.stack.pop()]
        y = next((a for a in tree_flatten(out)[0] if isinstance(a, torch.Tensor)), None)
        if y is not None:
            call.out_shape = _per_sample(y.shape)

    # --- operators
    def record(self, name: str, args: tuple, kwargs: dict, out: Any) -> None:
        flat = tree_flatten((args, kwargs))[0]
        tensors = [a for a in flat if isinstance(a, torch.Tensor)]
        outs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
        if self.phase != "forward":
            ins = [tuple(a.shape) if isinstance(a, torch.Tensor) else None for a in args]
            cost = op_cost(name, ins, tuple(outs[0].shape) if outs else (), self.conv, args=args)
            (self.loss if self.phase == "loss" else self.backward).append((name, cost))
            return
        data = [t for t in tensors if id(t) in self.node]
        params: set[int] = set()
        for t in tensors:
            params |= self.origin.get(id(t), frozenset())
        if not data:  # weight preparation (weight.t(), a tied transpose) or constants: no row
            if outs:
                for o in outs:
                    self.origin[id(o)] = frozenset(params)
                    self.keep.append(o)

            if name not in MOVE and any(isinstance(p, nn.Parameter) for p in tensors):
                self.weight_only.append(name)
            return
        ins = [tuple(a.shape) if isinstance(a, torch.Tensor) else None for a in args]
        weight_like = len(tensors) > 1 and id(tensors[-1]) in self.origin and id(tensors[-1]) not in self.node
        cost = op_cost(name, ins, tuple(outs[0].shape) if outs else (), self.conv, args=args, weight_like=weight_like)
        op = Op(len(self.ops), name, self.stack[-1], [self.node[id(t)] for t in data],
                [_per_sample(t.shape) for t in data], _per_sample(outs[0].shape) if outs else (), cost, params,
                args=tuple(a if not isinstance(a, torch.Tensor) else None for a in args), shapes=ins)
        self.ops.append(op)
        if outs:
            self.node[id(outs[0])] = op.index  # the data output; indices, saved means etc. are not data
            self.keep.append(outs[0])
            for o in outs[1:]:
                self.origin.setdefault(id(o), frozenset())
                self.keep.append(o)

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        """A tensor autograd keeps for backward: charge its storage, once, to the op that saved it."""
        if self.phase != "forward" or not self.ops:
            return t
        with contextlib.suppress(Exception):
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
            if ptr in self.param_storage or ptr in self.seen_storage:
                return t
            self.seen_storage.add(ptr)
            src = self.node.get(id(t))
            if ptr == self.input_storage or src == -1:
                self.input_saved = True
                return t
            # charged to the op whose output it is (an input saved before the op ran belongs to its
            # producer); intermediates that are nobody's output (indices, statistics) to the op saving them
            target = self.ops[src] if src is not None else self.ops[-1]
            nbytes = storage.nbytes()
            per_sample = t.dim() > 0 and t.shape[0] == B
            amount = nbytes // max(t.element_size(), 1) if t.is_floating_point() else nbytes
            slot = (0 if per_sample else 1) + (0 if t.is_floating_point() else 2)
            target.saved[slot] += amount // B if per_sample else amount
        return t


def _per_sample(shape: Any) -> tuple[int, ...]:
    s = tuple(int(n) for n in shape)
    return s[1:] if s and s[0] == B else s


@contextlib.contextmanager
def _restored(model: nn.Module) -> Any:
    """Leave the model as it was: buffers (batch-norm statistics), gradients, training mode, RNG."""
    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    grads = {id(p): p.grad for p in model.parameters()}
    was_training = model.training
    with torch.random.fork_rng(devices=[]):
        try:
            for p in model.parameters():
                p.grad = None
            yield
        finally:
            with torch.no_grad():
                for k, v in model.named_buffers():
                    if k in buffers:
                        v.copy_(buffers[k])
            for p in model.parameters():
                p.grad = grads.get(id(p))
            model.train(was_training)


def trace_module(model: nn.Module, input_shape: tuple[int, ...], conventions: Conventions) -> Trace:
    """Run one training step of ``model`` on zeros of shape (2, *input_shape) and record every operator."""
    t = _Tracer(model, conventions)
    first = next(iter(model.parameters()), None)
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    device = first.device if first is not None else "cpu"
    x = torch.zeros(B, *input_shape, dtype=dtype, device=device)
    t.node[id(x)] = -1
    t.input_storage = x.untyped_storage().data_ptr()
    hooks = [register_module_forward_pre_hook(t.pre), register_module_forward_hook(t.post)]
    try:
        with _restored(model):
            model.train()
            with torch.autograd.graph.saved_tensors_hooks(t.pack, lambda v: v), _Recorder(t):
                try:
                    out = model(x)
                except Exception as e:  # the user's model does not accept this input: say which shape
                    raise UserError(f"the model does not run on an input of shape "
                                    f"{'x'.join(map(str, input_shape))} ({type(e).__name__}: {e})") from None
                y = next((o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)), None)
                if y is None:
                    raise UserError(f"the model returned {type(out).__name__}, not a tensor")
                if y.requires_grad:
                    t.phase = "loss"
                    if y.dim() == 2 and y.is_floating_point():
                        loss = torch.nn.functional.cross_entropy(y, torch.zeros(B, dtype=torch.long, device=device))
                    else:
                        loss = y.float().square().mean()
                    t.phase = "backward"
                    loss.backward()
    finally:
        for h in hooks:
            h.remove()
    return Trace(t.ops, t.calls, t.backward, t.loss, t.weight_only, tuple(input_shape), t.input_saved)


# --------------------------------------------------------------------------------------- data flow


def propagate_fields(tr: Trace) -> None:
    """The receptive field of every op's output along the real data flow (Araujo et al. 2019, eq. 1-2)."""
    n = len(tr.input_node_shape) - 1
    start = Field((1,) * n, (1,) * n, (0,) * n) if n >= 1 else GLOBAL

    def of(i: int) -> Any:
        return start if i == -1 else tr.ops[i].rf

    for op in tr.ops:
        fields = [of(i) for i in op.ins]
        f0 = fields[0] if fields else None
        c = op.cost.category
        if op.name in ("convolution", "_convolution") and isinstance(f0, Field) and not (op.args[6] if len(
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


def _weight_shape(op: Op) -> tuple[int, ...]:
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
