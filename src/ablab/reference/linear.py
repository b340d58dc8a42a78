"""Fully connected layer: ``y = x W^T + b`` on the last axis, with ``W (out, in)`` as in PyTorch.

Backward (CS231n notes, "Backpropagation, intuitions"; Goodfellow et al. 2016, section 6.5)::

    dL/dx = g W          dL/dW = g^T x          dL/db = sum over rows of g

where ``g = dL/dy`` and leading axes of ``x`` are flattened into rows for ``dW`` and ``db``.
"""

from __future__ import annotations

from typing import Any

from ablab.reference.windows import Array


def forward(x: Array, w: Array, b: Array | None = None) -> tuple[Array, dict[str, Any]]:
    """``y = x W^T + b``; ``x (..., in)``, ``w (out, in)``, ``b (out,)``."""
    y = x @ w.T
    if b is not None:
        y = y + b
    return y, {"x": x, "w": w, "has_b": b is not None}


def backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    """Gradients ``{"x", "w", "b"}`` (``"b"`` only if the forward had a bias)."""
    x, w = cache["x"], cache["w"]
    x2 = x.reshape(-1, x.shape[-1])  # (rows, in)
    g2 = dy.reshape(-1, dy.shape[-1])  # (rows, out)
    grads = {"x": dy @ w, "w": g2.T @ x2}
    if cache["has_b"]:
        grads["b"] = g2.sum(axis=0)
    return grads
