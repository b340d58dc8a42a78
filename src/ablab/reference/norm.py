"""Layer normalization and group normalization: per-sample statistics, as ``nn.LayerNorm(sample
shape)`` and ``nn.GroupNorm``.

Both normalize rows of ``m`` values: layer norm one row per sample (all its axes; Ba, Kiros & Hinton
2016, eq. 4), group norm one row per sample and group of ``C/G`` channels with their positions (Wu &
He 2018, eq. 1-3)::

    mu = (1/m) sum_k x_k        var = (1/m) sum_k (x_k - mu)^2        x_hat = (x - mu) / sqrt(var + eps)
    y  = gamma * x_hat + beta   (layer norm: gamma, beta per element of the sample; group norm: per channel)

Backward within a row (the batch-norm derivation of Ioffe & Szegedy 2015, section 3, over the row
instead of the batch), with ``h = dL/dx_hat = g * gamma``::

    dx = (h - mean(h) - x_hat * mean(h * x_hat)) / sqrt(var + eps)
    dgamma = sum over the batch (and, for group norm, positions) of g * x_hat      dbeta = same of g
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ablab.reference.windows import Array


def _rows_forward(x2: Array, eps: float) -> tuple[Array, Array]:
    """``x2 (R, m)`` normalized per row: ``(x_hat, inv_std (R, 1))``."""
    mu = x2.mean(axis=1, keepdims=True)
    var = ((x2 - mu) ** 2).mean(axis=1, keepdims=True)  # biased, as the forward normalizes
    inv_std = 1.0 / np.sqrt(var + eps)
    return (x2 - mu) * inv_std, inv_std


def _rows_backward(h2: Array, x_hat2: Array, inv_std: Array) -> Array:
    """dL/dx of the row normalization from ``h2 = dL/dx_hat`` (both ``(R, m)``)."""
    return (h2 - h2.mean(axis=1, keepdims=True) - x_hat2 * (h2 * x_hat2).mean(axis=1, keepdims=True)) * inv_std


def layer_forward(x: Array, gamma: Array | None = None, beta: Array | None = None,
                  eps: float = 1e-5) -> tuple[Array, dict[str, Any]]:
    """``x (N, *S)`` normalized per sample over all of ``S``; ``gamma``, ``beta`` of shape ``S``."""
    x_hat2, inv_std = _rows_forward(x.reshape(x.shape[0], -1), eps)  # (N, prod(S))
    x_hat = x_hat2.reshape(x.shape)
    y = x_hat * (1.0 if gamma is None else gamma) + (0.0 if beta is None else beta)
    return y, {"x_hat": x_hat, "inv_std": inv_std, "gamma": gamma}


def layer_backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    """Gradients ``{"x", "gamma", "beta"}`` (the last two only with affine parameters)."""
    x_hat, gamma = cache["x_hat"], cache["gamma"]
    n = dy.shape[0]
    h = dy if gamma is None else dy * gamma
    dx = _rows_backward(h.reshape(n, -1), x_hat.reshape(n, -1), cache["inv_std"]).reshape(dy.shape)
    grads = {"x": dx}
    if gamma is not None:
        grads["gamma"] = (dy * x_hat).sum(axis=0)
        grads["beta"] = dy.sum(axis=0)
    return grads


def _per_channel(v: Array, x: Array) -> Array:
    return v.reshape(1, -1, *([1] * (x.ndim - 2)))  # (1, C, 1, ...)


def group_forward(x: Array, groups: int, gamma: Array | None = None, beta: Array | None = None,
                  eps: float = 1e-5) -> tuple[Array, dict[str, Any]]:
    """``x (N, C, ...)`` normalized per sample over each of ``groups`` groups of ``C/groups`` channels
    and their positions; ``gamma``, ``beta`` per channel ``(C,)``."""
    n, c = x.shape[:2]
    if c % groups:
        raise ValueError(f"group norm: {c} channels are not divisible by {groups} groups")
    x_hat2, inv_std = _rows_forward(x.reshape(n * groups, -1), eps)  # (N*G, C/G * positions)
    x_hat = x_hat2.reshape(x.shape)
    y = x_hat if gamma is None else x_hat * _per_channel(gamma, x)
    y = y if beta is None else y + _per_channel(beta, x)
    return y, {"x_hat": x_hat, "inv_std": inv_std, "gamma": gamma, "groups": groups}


def group_backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    """Gradients ``{"x", "gamma", "beta"}`` (the last two only with affine parameters)."""
    x_hat, gamma, groups = cache["x_hat"], cache["gamma"], cache["groups"]
    n = dy.shape[0]
    h = dy if gamma is None else dy * _per_channel(gamma, dy)
    dx = _rows_backward(h.reshape(n * groups, -1), x_hat.reshape(n * groups, -1), cache["inv_std"])
    grads = {"x": dx.reshape(dy.shape)}
    if gamma is not None:
        axes = (0, *range(2, dy.ndim))
        grads["gamma"] = (dy * x_hat).sum(axis=axes)
        grads["beta"] = dy.sum(axis=axes)
    return grads
