"""The one helper that checks a reference layer: forward and every gradient against PyTorch autograd in
float64, and every gradient against central finite differences as a second, framework-free oracle.

The upstream gradient ``g`` is random (seeded), so the check covers the whole Jacobian-vector product
``J^T g`` rather than one row of it. The finite-difference oracle differentiates the scalar
``f(inputs) = sum(forward(inputs) * g)``::

    df/dx_k ~ (f(x + eps e_k) - f(x - eps e_k)) / (2 eps)      (error O(eps^2) + rounding / eps)

at up to ``fd_points`` randomly chosen coordinates per input (all of them for small inputs).

Errors are *scaled*: ``max|a - b| / max(1, max|b|)``, an absolute error for values of order one and a
relative one for large values; one number per comparison, so a table can rank them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ablab.reference.windows import Array

NpForward = Callable[..., tuple[Any, dict[str, Any]]]
NpBackward = Callable[[Any, dict[str, Any]], dict[str, Array]]

AUTOGRAD_TOL = 1e-10  # scaled error vs torch autograd, float64: only rounding may differ
FD_TOL = 1e-6  # scaled error vs central differences with eps=1e-6: O(eps^2) truncation + rounding/eps


def scaled_error(a: Any, b: Any) -> float:
    """``max|a - b| / max(1, max|b|)``; ``inf`` if the shapes differ."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


@dataclass
class CheckResult:
    """The outcome of one check: the forward error and, per input, the gradient errors."""

    name: str
    forward: float  # scaled error of the output vs torch
    autograd: dict[str, float] = field(default_factory=dict)  # input name -> scaled error vs autograd
    fd: dict[str, float] = field(default_factory=dict)  # input name -> scaled error vs finite differences
    tol: float = AUTOGRAD_TOL
    fd_tol: float = FD_TOL

    @property
    def worst_autograd(self) -> float:
        return max([self.forward, *self.autograd.values()])

    @property
    def worst_fd(self) -> float:
        return max(self.fd.values(), default=0.0)

    @property
    def ok(self) -> bool:
        return self.worst_autograd <= self.tol and self.worst_fd <= self.fd_tol

    def describe(self) -> str:
        parts = [f"forward {self.forward:.1e}"]
        parts += [f"d{k} autograd {v:.1e}" for k, v in self.autograd.items()]
        parts += [f"d{k} fd {v:.1e}" for k, v in self.fd.items()]
        return f"{self.name}: " + ", ".join(parts)


def _copy(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Fresh copies, so layers that update buffers in place (batch norm) see the same inputs each call."""
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in inputs.items()}


def finite_difference(f: Callable[[dict[str, Any]], float], inputs: Mapping[str, Any], name: str,
                      points: np.ndarray, eps: float = 1e-6) -> Array:
    """Central differences of the scalar ``f`` w.r.t. ``inputs[name]`` at the given flat indices."""
    out = np.empty(len(points))
    for i, k in enumerate(points):
        plus, minus = _copy(inputs), _copy(inputs)
        plus[name].flat[k] += eps
        minus[name].flat[k] -= eps
        out[i] = (f(plus) - f(minus)) / (2 * eps)
    return out


def check(name: str, np_forward: NpForward, np_backward: NpBackward, torch_fn: Callable[..., Any],
          inputs: Mapping[str, Any], wrt: Sequence[str], *, seed: int = 0, fd: bool = True,
          fd_points: int = 48, eps: float = 1e-6, tol: float = AUTOGRAD_TOL, fd_tol: float = FD_TOL
          ) -> CheckResult:
    """Check ``np_forward``/``np_backward`` against ``torch_fn`` on ``inputs``.

    ``np_forward(**inputs) -> (y, cache)``; ``np_backward(g, cache) -> {name: grad}`` for every name in
    ``wrt``; ``torch_fn(**tensors) -> tensor`` computes the same ``y``. Float arrays become float64
    tensors (requiring grad when in ``wrt``), integer arrays become int64 tensors, anything else is
    passed through unchanged.
    """
    import torch

    rng = np.random.default_rng(seed)
    y, cache = np_forward(**_copy(inputs))
    y_arr = np.asarray(y, dtype=np.float64)
    g = rng.normal(size=y_arr.shape)
    grads = np_backward(g if y_arr.ndim else float(g), cache)

    tensors: dict[str, Any] = {}
    for k, v in inputs.items():
        if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating):
            tensors[k] = torch.tensor(v, dtype=torch.float64, requires_grad=k in wrt)
        elif isinstance(v, np.ndarray):
            tensors[k] = torch.tensor(v, dtype=torch.int64)
        else:
            tensors[k] = v
    yt = torch_fn(**tensors)
    (yt * torch.tensor(g, dtype=torch.float64)).sum().backward()

    result = CheckResult(name, scaled_error(y_arr, yt.detach().numpy()), tol=tol, fd_tol=fd_tol)
    for k in wrt:
        grad_t = tensors[k].grad
        ref = np.zeros(inputs[k].shape) if grad_t is None else grad_t.numpy()
        result.autograd[k] = scaled_error(grads[k], ref)

    if fd:
        def f(inp: dict[str, Any]) -> float:
            return float(np.sum(np.asarray(np_forward(**inp)[0]) * g))

        for k in wrt:
            size = inputs[k].size
            points = np.arange(size) if size <= fd_points else rng.choice(size, fd_points, replace=False)
            numeric = finite_difference(f, inputs, k, points, eps)
            result.fd[k] = scaled_error(np.asarray(grads[k]).ravel()[points], numeric)
    return result
