"""Batch normalization over the channel axis (axis 1), training and evaluation, as ``nn.BatchNorm{1,2}d``.

Training (Ioffe & Szegedy 2015, "Batch Normalization", Algorithm 1), statistics over the ``m`` values
of each channel (batch and spatial axes)::

    mu     = (1/m) sum_i x_i
    var    = (1/m) sum_i (x_i - mu)^2                  (biased: the one used to normalize)
    x_hat  = (x - mu) / sqrt(var + eps)
    y      = gamma * x_hat + beta

and the running statistics move by ``momentum`` (PyTorch's convention; the running variance uses
the unbiased ``var * m / (m - 1)``)::

    running_mean <- (1 - momentum) * running_mean + momentum * mu
    running_var  <- (1 - momentum) * running_var  + momentum * var * m / (m - 1)

Evaluation uses the running statistics in place of ``mu`` and ``var``.

Backward in training (Ioffe & Szegedy 2015, section 3, the chain rule through ``mu`` and ``var``),
with ``g = dL/dy``::

    dgamma = sum_i g_i * x_hat_i                       dbeta = sum_i g_i
    dx_hat = g * gamma
    dvar   = sum_i dx_hat_i * (x_i - mu) * (-1/2) * (var + eps)^(-3/2)
    dmu    = sum_i dx_hat_i * (-1 / sqrt(var + eps)) + dvar * (1/m) sum_i -2 (x_i - mu)
    dx     = dx_hat / sqrt(var + eps) + dvar * 2 (x - mu) / m + dmu / m

(the ``dmu`` term through ``dvar`` vanishes since ``sum_i (x_i - mu) = 0``; it is kept as the paper
writes it). In evaluation the statistics are constants: ``dx = g * gamma / sqrt(running_var + eps)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ablab.reference.windows import Array


def _axes(x: Array) -> tuple[int, ...]:
    if x.ndim < 2:
        raise ValueError(f"batch norm: expected x (N, C, ...), got {x.shape}")
    return (0, *range(2, x.ndim))


def _bc(v: Array, x: Array) -> Array:
    """A per-channel vector shaped to broadcast against ``x``: ``(1, C, 1, ...)``."""
    return v.reshape(1, -1, *([1] * (x.ndim - 2)))


def forward(x: Array, gamma: Array | None, beta: Array | None, running_mean: Array | None = None,
            running_var: Array | None = None, *, training: bool = True, momentum: float = 0.1,
            eps: float = 1e-5) -> tuple[Array, dict[str, Any]]:
    """Normalize ``x (N, C, ...)``. In training, ``running_mean`` and ``running_var`` (if given) are
    updated in place, as PyTorch updates its buffers. ``gamma``/``beta`` ``None``: 1 and 0 (affine=false)."""
    axes = _axes(x)
    gamma = np.ones(x.shape[1]) if gamma is None else gamma
    beta = np.zeros(x.shape[1]) if beta is None else beta
    if training:
        m = x.size // x.shape[1]
        mu = x.mean(axis=axes)
        var = ((x - _bc(mu, x)) ** 2).mean(axis=axes)
        if running_mean is not None and running_var is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mu
            running_var *= 1 - momentum
            running_var += momentum * var * m / max(m - 1, 1)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch norm: evaluation needs running_mean and running_var")
        mu, var = running_mean.copy(), running_var.copy()
    x_hat = (x - _bc(mu, x)) / np.sqrt(_bc(var, x) + eps)
    y = _bc(gamma, x) * x_hat + _bc(beta, x)
    cache = {"x": x, "mu": mu, "var": var, "x_hat": x_hat, "gamma": gamma, "eps": eps, "training": training}
    return y, cache


def backward_steps(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    """Every intermediate of the training backward pass: ``dgamma, dbeta, dx_hat, dvar, dmu, dx``."""
    x, mu, var, x_hat, gamma, eps = (cache[k] for k in ("x", "mu", "var", "x_hat", "gamma", "eps"))
    axes = _axes(x)
    m = x.size // x.shape[1]
    xc = x - _bc(mu, x)  # x - mu
    inv_std = 1.0 / np.sqrt(var + eps)
    dgamma = (dy * x_hat).sum(axis=axes)
    dbeta = dy.sum(axis=axes)
    dx_hat = dy * _bc(gamma, x)
    dvar = (dx_hat * xc).sum(axis=axes) * -0.5 * (var + eps) ** -1.5
    dmu = (dx_hat * -_bc(inv_std, x)).sum(axis=axes) + dvar * (-2.0 * xc).sum(axis=axes) / m
    dx = dx_hat * _bc(inv_std, x) + _bc(dvar, x) * 2.0 * xc / m + _bc(dmu, x) / m
    return {"dgamma": dgamma, "dbeta": dbeta, "dx_hat": dx_hat, "dvar": dvar, "dmu": dmu, "dx": dx}


def backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    """Gradients ``{"x", "gamma", "beta"}``, for training or evaluation mode as the forward ran."""
    if cache["training"]:
        s = backward_steps(dy, cache)
        return {"x": s["dx"], "gamma": s["dgamma"], "beta": s["dbeta"]}
    x, axes = cache["x"], _axes(cache["x"])
    inv_std = 1.0 / np.sqrt(cache["var"] + cache["eps"])
    return {"x": dy * _bc(cache["gamma"] * inv_std, x), "gamma": (dy * cache["x_hat"]).sum(axis=axes),
            "beta": dy.sum(axis=axes)}
