"""A pure-NumPy network built from a ``Spec`` — the same layers, names and shapes as
``ablab.models.builder.build(spec)`` — trained with plain SGD through the reference layers' backward.

Parameters and buffers are keyed by the PyTorch ``state_dict`` names (``conv2d_1.weight``,
``batchnorm_1.running_mean``, ...), so ``NumpyModel.from_torch(spec, model)`` copies a PyTorch
model's initial weights by name, and ``compare_with_torch`` trains both side by side on the same
batches to show the loss trajectories agree to rounding (float64).

One training step, as in any framework::

    forward (keep each layer's cache) -> loss -> backward (reverse order) -> p <- p - lr * dL/dp
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ablab.calc.shapes import Resolved, resolve
from ablab.layers import LAYERS, ReferenceOp
from ablab.layers.mapping import source
from ablab.layers.values import Shape, SpecError
from ablab.reference import losses
from ablab.reference.windows import Array
from ablab.spec.stack import Spec

_FILL = {"zeros": np.zeros, "ones": np.ones, "fan_in": np.zeros}


def _op(r: Resolved) -> ReferenceOp:
    op = LAYERS.get(r.layer.kind).reference
    if op is None:
        raise SpecError(f"layer {r.index} ({r.name}): no NumPy reference for kind '{r.layer.kind}'")
    return op


def _function(path: str) -> Any:
    """``"ablab.reference.conv:forward"`` -> the function."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class NumpyModel:
    """The network of ``spec`` in NumPy. ``params`` and ``buffers`` map state-dict names to arrays.

    Each layer runs its kind's reference op (``ReferenceOp`` in the layer registry) on the tensors its
    kind declares (``Layer.tensors``): the model itself knows no kind."""

    def __init__(self, spec: Spec, input_shape: Shape | None = None):
        self.layers: list[Resolved] = resolve(spec, input_shape)
        self.params: dict[str, Array] = {}
        self.buffers: dict[str, Array] = {}
        self.fan_in: dict[str, int] = {}
        self.training = True
        for r in self.layers:
            _op(r)  # every kind must have a reference op
            for t in r.layer.tensors(r):
                if t.role == "int_buffer":
                    continue  # batch norm's step counter: nothing to compute with
                arr = _FILL[t.init](t.shape)
                (self.params if t.is_param else self.buffers)[f"{r.name}.{t.name}"] = arr
                if t.init == "fan_in":
                    self.fan_in[f"{r.name}.{t.name}"] = t.fan_in

    # ------------------------------------------------------------------------------ weights

    def init(self, seed: int = 0) -> NumpyModel:
        """PyTorch's default initialization in distribution: weights and biases of conv and linear
        layers ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5))."""
        rng = np.random.default_rng(seed)
        for name, p in self.params.items():
            if name in self.fan_in:
                bound = 1.0 / math.sqrt(self.fan_in[name])
                p[...] = rng.uniform(-bound, bound, size=p.shape)
        return self

    def load_state(self, state: Mapping[str, Any], where: str = "state") -> NumpyModel:
        """Copy parameters and buffers by name; every name must be present with the right shape."""
        for name, arr in [*self.params.items(), *self.buffers.items()]:
            if name not in state:
                raise SpecError(f"{where}: missing tensor '{name}' (has: {', '.join(sorted(state)) or 'none'})")
            value = np.asarray(state[name], dtype=np.float64)
            if value.shape != arr.shape:
                raise SpecError(f"{where}: '{name}' has shape {value.shape}, expected {arr.shape}")
            arr[...] = value
        return self

    @classmethod
    def from_torch(cls, spec: Spec, model: Any, input_shape: Shape | None = None) -> NumpyModel:
        """A NumPy copy of a PyTorch model built from the same spec (``build(spec)``)."""
        state = {k: v.detach().cpu().double().numpy() for k, v in model.state_dict().items()}
        return cls(spec, input_shape).load_state(state, where="torch model")

    # ---------------------------------------------------------------------- forward/backward

    def forward(self, x: Array, masks: Mapping[str, Array] | None = None,
                rng: np.random.Generator | None = None) -> tuple[Array, list[dict[str, Any]]]:
        """Run every layer; ``masks`` gives dropout keep-masks by layer name (drawn from ``rng`` if
        missing). Returns the output and the per-layer caches for ``backward``."""
        caches: list[dict[str, Any]] = []
        for r in self.layers:
            x, cache = self._forward_one(r, x, masks or {}, rng)
            caches.append(cache)
        return x, caches

    def _forward_one(self, r: Resolved, x: Array, masks: Mapping[str, Array], rng: np.random.Generator | None
                     ) -> tuple[Array, dict[str, Any]]:
        op = _op(r)
        ctx = {"param": lambda n: self.params.get(f"{r.name}.{n}"),
               "buffer": lambda n: self.buffers.get(f"{r.name}.{n}"),
               "ctx": {"training": self.training, "mask": masks.get(r.name), "rng": rng}}
        return _function(op.forward)(x, **{k: source(v, r, ctx) for k, v in op.args.items()})

    def backward(self, dy: Array, caches: list[dict[str, Any]]) -> dict[str, Array]:
        """Backpropagate ``dy = dL/d(output)``; returns ``dL/dp`` for every parameter, by name."""
        grads: dict[str, Array] = {}
        for r, cache in zip(reversed(self.layers), reversed(caches), strict=True):
            op = _op(r)
            g = _function(op.backward)(dy, cache)
            for key, pname in op.grads.items():
                if key in g and f"{r.name}.{pname}" in self.params:
                    grads[f"{r.name}.{pname}"] = g[key]
            dy = g["x"]
        return grads

    def train_step(self, x: Array, target: np.ndarray, lr: float, masks: Mapping[str, Array] | None = None,
                   rng: np.random.Generator | None = None) -> float:
        """One SGD step on softmax cross-entropy; returns the loss before the step."""
        logits, caches = self.forward(x, masks, rng)  # forward
        loss, lcache = losses.softmax_cross_entropy(logits, target)  # loss
        grads = self.backward(losses.softmax_cross_entropy_backward(1.0, lcache)["logits"], caches)  # backward
        for name, g in grads.items():  # step: p <- p - lr * dL/dp
            self.params[name] -= lr * g
        return loss


# ------------------------------------------------------------------------- comparison with torch


@dataclass
class Trajectory:
    """Both models' losses per step and the largest parameter/buffer difference after the last step."""

    torch_losses: list[float] = field(default_factory=list)
    numpy_losses: list[float] = field(default_factory=list)
    max_param_diff: float = 0.0
    max_buffer_diff: float = 0.0

    @property
    def max_loss_diff(self) -> float:
        return max((abs(a - b) for a, b in zip(self.torch_losses, self.numpy_losses, strict=True)), default=0.0)


def compare_with_torch(spec: Spec, input_shape: Shape | None = None, steps: int = 5, batch: int = 8,
                       lr: float = 0.1, seed: int = 0) -> Trajectory:
    """Train ``build(spec)`` (float64, ``torch.optim.SGD``) and its NumPy copy on the same random
    batches and labels for ``steps`` steps. Dropout masks are the ones PyTorch draws, replayed in NumPy.
    """
    import torch
    import torch.nn.functional as F

    from ablab.models.builder import build

    layers = resolve(spec, input_shape)
    out = layers[-1].out_shape
    if len(out) != 1:
        raise SpecError(f"compare: the last layer ({layers[-1].name}) must output class scores (K,), got {out}")
    shape = layers[0].in_shape
    torch.manual_seed(seed)
    model = build(spec, input_shape).double().train()
    npm = NumpyModel.from_torch(spec, model, input_shape)
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    masks: dict[str, Array] = {}
    saved: dict[str, torch.Tensor] = {}

    def pre(name: str) -> Any:
        def hook(mod: Any, inp: Any) -> None:
            saved[name] = torch.get_rng_state()  # the state dropout will draw its mask from
        return hook

    def post(name: str) -> Any:
        def hook(mod: Any, inp: Any, output: Any) -> None:
            after = torch.get_rng_state()
            torch.set_rng_state(saved[name])  # redraw the same mask on ones to read it off
            masks[name] = (F.dropout(torch.ones_like(inp[0]), mod.p, True) != 0).double().numpy()
            torch.set_rng_state(after)
        return hook

    for name, mod in model.named_children():
        if isinstance(mod, torch.nn.Dropout):
            mod.register_forward_pre_hook(pre(name))
            mod.register_forward_hook(post(name))

    rng = np.random.default_rng(seed)
    traj = Trajectory()
    for _ in range(steps):
        x = rng.normal(size=(batch, *shape))
        t = rng.integers(0, out[0], size=batch)
        opt.zero_grad()  # torch: zero_grad -> forward -> loss -> backward -> step
        loss = F.cross_entropy(model(torch.tensor(x)), torch.tensor(t))
        loss.backward()
        opt.step()
        traj.torch_losses.append(loss.item())
        traj.numpy_losses.append(npm.train_step(x, t, lr, masks))  # numpy, same batch and masks
    state = model.state_dict()
    traj.max_param_diff = max((float(np.abs(v - state[k].numpy()).max()) for k, v in npm.params.items()),
                              default=0.0)
    traj.max_buffer_diff = max((float(np.abs(v - state[k].numpy()).max()) for k, v in npm.buffers.items()),
                               default=0.0)
    return traj
