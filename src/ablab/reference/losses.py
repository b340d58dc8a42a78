"""Losses, mean-reduced as PyTorch's defaults: ``loss(pred, target) -> (L, cache)`` and
``backward(dL, cache) -> {"pred-name": grad}`` with ``dL`` the upstream scalar (1.0 at the top).

Softmax cross-entropy on logits ``z (N, K)`` and integer labels ``t`` (Goodfellow et al. 2016,
section 6.2.2.3; CS231n notes, "Linear classification")::

    L = -(1/N) sum_n log softmax(z_n)[t_n]          dL/dz = (softmax(z) - onehot(t)) / N

Mean squared error on any shape with ``M`` elements::

    L = (1/M) sum (p - y)^2                          dL/dp = 2 (p - y) / M

Binary cross-entropy on probabilities ``p`` in (0, 1) and targets ``y`` in [0, 1]::

    L = -(1/M) sum y log p + (1 - y) log(1 - p)      dL/dp = (p - y) / (p (1 - p)) / M

and on logits (``BCEWithLogitsLoss``), where the sigmoid's derivative cancels the denominator::

    L = (1/M) sum softplus(z) - y z                  dL/dz = (sigmoid(z) - y) / M
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ablab.reference.activations import sigmoid
from ablab.reference.windows import Array


def softmax_cross_entropy(logits: Array, target: np.ndarray) -> tuple[float, dict[str, Any]]:
    """Mean cross-entropy of ``logits (N, K)`` against integer class labels ``target (N,)``."""
    z = logits - logits.max(axis=1, keepdims=True)  # shift for stability
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # log softmax, (N, K)
    n = logits.shape[0]
    t = np.asarray(target, dtype=np.int64)
    loss = -log_p[np.arange(n), t].mean()
    return float(loss), {"p": np.exp(log_p), "t": t}


def softmax_cross_entropy_backward(dl: float | Array, cache: dict[str, Any]) -> dict[str, Array]:
    p, t = cache["p"], cache["t"]
    onehot = np.zeros_like(p)
    onehot[np.arange(p.shape[0]), t] = 1.0
    return {"logits": float(dl) * (p - onehot) / p.shape[0]}


def mse(pred: Array, target: Array) -> tuple[float, dict[str, Any]]:
    diff = pred - target
    return float((diff**2).mean()), {"diff": diff}


def mse_backward(dl: float | Array, cache: dict[str, Any]) -> dict[str, Array]:
    diff = cache["diff"]
    return {"pred": float(dl) * 2.0 * diff / diff.size}


def bce(prob: Array, target: Array) -> tuple[float, dict[str, Any]]:
    """Binary cross-entropy on probabilities (``nn.BCELoss``)."""
    loss = -(target * np.log(prob) + (1.0 - target) * np.log1p(-prob)).mean()
    return float(loss), {"p": prob, "y": target}


def bce_backward(dl: float | Array, cache: dict[str, Any]) -> dict[str, Array]:
    p, y = cache["p"], cache["y"]
    return {"prob": float(dl) * (p - y) / (p * (1.0 - p)) / p.size}


def bce_with_logits(logits: Array, target: Array) -> tuple[float, dict[str, Any]]:
    """Binary cross-entropy on logits (``nn.BCEWithLogitsLoss``), using softplus(z) = log(1 + e^z)."""
    softplus = np.maximum(logits, 0.0) + np.log1p(np.exp(-np.abs(logits)))
    return float((softplus - target * logits).mean()), {"z": logits, "y": target}


def bce_with_logits_backward(dl: float | Array, cache: dict[str, Any]) -> dict[str, Array]:
    z, y = cache["z"], cache["y"]
    return {"logits": float(dl) * (sigmoid(z) - y) / z.size}
