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

from ablab.calc.costs import Conventions
from ablab.calc.dataflow import GLOBAL, propagate_fields  # noqa: F401 - re-exported
from ablab.calc.ops import (
    CONV,
    DROPOUT,
    ELEMENTWISE,
    FACTORY,
    FUSED,
    IGNORED,
    MATMUL,
    MOVE,
    NORM,
    POOL,
    QUANTIZED,
    REDUCE,
    OpCost,
    op_cost,
)
from ablab.errors import UserError

B = 2  # traced batch of generated inputs: batch norm needs more than one sample per channel in training mode
DATA_READS = frozenset({"_local_scalar_dense", "is_nonzero", "nonzero", "equal", "masked_select", "unique"})
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
    batch: int = B  # the traced batch: every count is divided by it for per-sample numbers
    mode: str = "train"
    data_reads: int = 0  # Python read values computed from the input (``if x.sum() > 0``): data-dependent
    output_shape: tuple[int, ...] = ()  # the first output tensor's full shape (batch axis included)


KNOWN = CONV | MATMUL | POOL | REDUCE | NORM | ELEMENTWISE | DROPOUT | MOVE | FUSED | QUANTIZED
_NAMES: dict[Any, str] = {}  # operator overload -> its name in the cost table


class _Recorder(TorchDispatchMode):
    def __init__(self, tracer: _Tracer) -> None:
        super().__init__()
        self.t = tracer

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = _NAMES.get(func)
        if name is None:
            name = func._overloadpacket.__name__
            if func.namespace != "aten":  # quantized::conv2d is not aten::conv2d
                name = f"{func.namespace}.{name}"
            _NAMES[func] = name
        if name in DATA_READS and self.t.phase == "forward" and any(
                isinstance(a, torch.Tensor) and id(a) in self.t.node for a in args):
            self.t.data_reads += 1
        if name in FACTORY:  # e.g. an RNN's zero initial hidden state: data when it has the batch axis
            out = func(*args, **kwargs)
            self.t.created(name, out)
            return out
        if name in IGNORED or func is torch.ops.prim.device.default:
            return func(*args, **kwargs)

        if name not in KNOWN:  # as FlopCounterMode does: an operator with a decomposition is traced through it
            with self:
                r = func.decompose(*args, **kwargs)
            if r is not NotImplemented:
                return r
        out = func(*args, **kwargs)
        self.t.record(name, args, kwargs, out)
        return out


class _Tracer:
    def __init__(self, model: nn.Module, conventions: Conventions, batch: int = B, batch_dim: int = 0) -> None:
        self.model = model
        self.batch, self.batch_dim = batch, batch_dim
        self.data_reads = 0
        self.inplace = ""  # why PyTorch's own backward would fail (an in-place change of a saved tensor)
        self.conv = conventions
        self.names = {id(m): n for n, m in model.named_modules()}
        self.origin: dict[int, frozenset[int]] = {}  # tensor id -> the parameters it derives from only
        plist = list(model.parameters())
        for p in [*plist, *model.buffers()]:
            self.origin[id(p)] = frozenset({id(p)})
        self.param_storage = {p.untyped_storage().data_ptr() for p in plist}
        self.node: dict[int, int] = {}  # tensor id -> producing op (-1: the input)
        self.made: dict[int, int] = {}  # storage of a tensor created in forward -> its op
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
        x = next((a for a in tensors_in(args) if isinstance(a, torch.Tensor)), None)
        if x is not None:
            call.in_node = self.node.get(id(x))
            call.in_shape = self.per_sample(x.shape)
        self.calls.append(call)
        self.stack.append(len(self.calls) - 1)

    def post(self, m: nn.Module, args: Any, out: Any) -> None:
        if self.phase != "forward" or len(self.stack) <= 1:
            return
        call = self.calls[self.stack.pop()]
        y = next((a for a in tensors_in(out) if isinstance(a, torch.Tensor)), None)
        if y is not None:
            call.out_shape = self.per_sample(y.shape)

    def per_sample(self, shape: Any) -> tuple[int, ...]:
        """The shape without its batch axis (at ``batch_dim``, or in front for batch-first outputs)."""
        s, d = tuple(int(n) for n in shape), self.batch_dim
        if len(s) > d and s[d] == self.batch:
            return s[:d] + s[d + 1:]
        return s[1:] if s and s[0] == self.batch else s

    # --- operators
    def created(self, name: str, out: Any) -> None:
        """A tensor made in forward from nothing: a row of its own (no cost) when it carries the batch axis
        (an initial hidden state ``torch.zeros(layers, batch, hidden)``), so what consumes it is counted
        per sample; otherwise a constant."""
        if self.phase != "forward" or not isinstance(out, torch.Tensor) or self.batch not in tuple(out.shape):
            return
        op = Op(len(self.ops), name, self.stack[-1], [], [], self.per_sample(out.shape), OpCost(name, "move"))
        self.ops.append(op)
        self.node[id(out)] = op.index
        self.keep.append(out)
        # a C++ composite (lstm_cell, lstm) may hand the tensor or a view of it back under another Python object
        self.made[out.untyped_storage().data_ptr()] = op.index

    def record(self, name: str, args: tuple, kwargs: dict, out: Any) -> None:
        tensors = tensors_in((args, kwargs) if kwargs else args)
        if self.made:
            for t in tensors:
                if id(t) not in self.node and t.untyped_storage().data_ptr() in self.made:
                    self.node[id(t)] = self.made[t.untyped_storage().data_ptr()]
                    self.keep.append(t)
        outs = tensors_in(out)
        if self.phase != "forward":
            ins = [tuple(a.shape) if isinstance(a, torch.Tensor) else None for a in args]
            cost = op_cost(name, ins, tuple(outs[0].shape) if outs else (), self.conv, args=args)
            (self.loss if self.phase == "loss" else self.backward).append((name, cost))
            return
        data = [t for t in tensors if id(t) in self.node]
        params: set[int] = set()
        for t in tensors:
            o = self.origin.get(id(t))
            if o:
                params |= o
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
                [self.per_sample(t.shape) for t in data], self.per_sample(outs[0].shape) if outs else (), cost, params,
                args=tuple(a if not isinstance(a, torch.Tensor) else None for a in args), shapes=ins)
        self.ops.append(op)
        if outs:
            self.node[id(outs[0])] = op.index  # the data output; indices, saved means etc. are not data
            self.keep.append(outs[0])
            for o in outs[1:]:
                self.origin.setdefault(id(o), frozenset())
                self.keep.append(o)

    def keep_saved(self, t: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Pack hook: count the tensor (``pack``) and remember its version, as autograd itself does: a
        pass-through hook would skip autograd's check that nothing saved was modified in place."""
        return self.pack(t), t._version

    def unpack(self, packed: tuple[torch.Tensor, int]) -> torch.Tensor:
        t, version = packed
        if t._version != version and not self.inplace:
            self.inplace = (f"a tensor of shape {'x'.join(map(str, t.shape)) or 'scalar'} saved for backward was "
                            f"modified in place (version {version} -> {t._version})")
        return t

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
            per_sample = self.batch in tuple(t.shape)[:self.batch_dim + 1]
            amount = nbytes // max(t.element_size(), 1) if t.is_floating_point() else nbytes
            slot = (0 if per_sample else 1) + (0 if t.is_floating_point() else 2)
            target.saved[slot] += amount // self.batch if per_sample else amount
        return t




@contextlib.contextmanager
def _restored(model: nn.Module) -> Any:
    """Leave the model as it was: buffers (batch-norm statistics), gradients, training mode, RNG."""
    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    plist = list(model.parameters())
    grads = {id(p): p.grad for p in plist}
    modes = [(m, m.training) for m in model.modules()]  # each module's own flag, restored as it was
    with torch.random.fork_rng(devices=[]):
        try:
            for p in plist:
                p.grad = None
            yield
        finally:
            with torch.no_grad():
                for k, v in model.named_buffers():
                    if k in buffers:
                        v.copy_(buffers[k])
            for p in plist:
                p.grad = grads.get(id(p))
            for m, flag in modes:
                if m.training != flag:
                    m.training = flag


def tensors_in(x: Any, out: list | None = None) -> list:
    """The tensors inside nested tuples, lists and dicts (namedtuples and ModelOutput dicts included), in
    order — what pytree's flatten gives for these, without its cost on every operator."""
    out = [] if out is None else out
    if isinstance(x, torch.Tensor):
        out.append(x)
    elif isinstance(x, tuple | list):
        for a in x:
            if isinstance(a, torch.Tensor):
                out.append(a)
            elif isinstance(a, tuple | list | dict):
                tensors_in(a, out)
    elif isinstance(x, dict):
        for a in x.values():
            tensors_in(a, out)
    return out


class ForwardError(Exception):
    """The model raised on the example input (the caller says which input, in the user's terms)."""


def trace_module(model: nn.Module, args: tuple, kwargs: dict, conventions: Conventions, *, batch: int = B,
                 batch_dim: int = 0, mode: str = "train", backward: bool = True) -> Trace:
    """Run ``model(*args, **kwargs)`` (a batch of ``batch`` on axis ``batch_dim``) in ``mode`` ("train" or
    "eval"), and, when ``backward``, one ``loss.backward()``; record every operator."""
    t = _Tracer(model, conventions, batch, batch_dim)
    inputs = tensors_in((args, kwargs))
    for x in inputs:
        t.node[id(x)] = -1
    t.input_storage = inputs[0].untyped_storage().data_ptr() if inputs else -1
    hooks = [register_module_forward_pre_hook(t.pre), register_module_forward_hook(t.post)]
    try:
        with _restored(model):
            want = mode == "train"
            if any(m.training != want for m in model.modules()):
                model.train(want)
            with torch.autograd.graph.saved_tensors_hooks(t.keep_saved, t.unpack), _Recorder(t):
                try:
                    out = model(*args, **kwargs)
                except Exception as e:
                    raise ForwardError(f"{type(e).__name__}: {e}") from e
                y = next((o for o in tensors_in(out) if isinstance(o, torch.Tensor)), None)
                if y is None:
                    raise UserError(f"the model returned {type(out).__name__}, not a tensor")
                if backward and not y.requires_grad:
                    raise UserError(f"the model cannot train: its output ({str(y.dtype).removeprefix('torch.')}) does "
                                    "not depend on any trainable parameter, so a training step has no gradient "
                                    "(integer outputs such as argmax, detached outputs and parameter-free models "
                                    "have none)")
                if backward:
                    t.phase = "loss"
                    if y.dim() == 2 and y.is_floating_point() and batch_dim == 0:
                        target = torch.zeros(y.shape[0], dtype=torch.long, device=y.device)
                        loss = torch.nn.functional.cross_entropy(y, target)
                    else:
                        loss = y.float().square().mean()
                    t.phase = "backward"
                    loss.backward()
                    if t.inplace:
                        raise UserError(f"the model cannot train: {t.inplace}; PyTorch's backward raises "
                                        "\"one of the variables needed for gradient computation has been modified by "
                                        "an inplace operation\", so a training step has no FLOPs (use an "
                                        "out-of-place operation, e.g. y = y + 1 for y.add_(1))")
    finally:
        for h in hooks:
            h.remove()
    first = inputs[0].shape if inputs else ()
    return Trace(t.ops, t.calls, t.backward, t.loss, t.weight_only, t.per_sample(first), t.input_saved,
                 batch, mode, t.data_reads, tuple(y.shape))
