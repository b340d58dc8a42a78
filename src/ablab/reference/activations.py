"""Element-wise activations and softmax, each ``name_forward(x) -> (y, cache)`` and
``name_backward(dy, cache) -> {"x": dx}``; ``ACTIVATIONS`` maps spec kinds to the pairs.

Derivatives (Goodfellow et al. 2016, section 6.3; Hendrycks & Gimpel 2016 for GELU)::

    relu(x)       = max(0, x)                    relu'       = 1[x > 0]
    leaky_relu(x) = x if x > 0 else a x          leaky_relu' = 1 if x > 0 else a
    sigmoid(x)    = 1 / (1 + exp(-x))            sigmoid'    = sigmoid (1 - sigmoid)
    tanh(x)       = 2 sigmoid(2x) - 1            tanh'       = 1 - tanh^2
    gelu(x)       = x Phi(x)                     gelu'       = Phi(x) + x phi(x)
    softmax(z)_i  = exp(z_i) / sum_j exp(z_j)    ds_i/dz_j   = s_i (delta_ij - s_j),
                                                 so dz = s * (g - sum_j g_j s_j)

Softmax runs along axis 1 (the channel axis, as ``nn.Softmax(dim=1)`` in the builder).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ablab.reference.windows import Array

Forward = Callable[..., tuple[Array, dict[str, Any]]]
Backward = Callable[[Array, dict[str, Any]], dict[str, Array]]


def relu_forward(x: Array) -> tuple[Array, dict[str, Any]]:
    return np.maximum(x, 0.0), {"x": x}


def relu_backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    return {"x": dy * (cache["x"] > 0)}


def leaky_relu_forward(x: Array, negative_slope: float = 0.01) -> tuple[Array, dict[str, Any]]:
    return np.where(x > 0, x, negative_slope * x), {"x": x, "a": negative_slope}


def leaky_relu_backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    return {"x": dy * np.where(cache["x"] > 0, 1.0, cache["a"])}


def sigmoid(x: Array) -> Array:
    """Numerically stable logistic function (no overflow of ``exp(-x)`` for large negative x)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_forward(x: Array) -> tuple[Array, dict[str, Any]]:
    y = sigmoid(x)
    return y, {"y": y}


def sigmoid_backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    y = cache["y"]
    return {"x": dy * y * (1.0 - y)}


def tanh_forward(x: Array) -> tuple[Array, dict[str, Any]]:
    y = np.tanh(x)
    return y, {"y": y}


def tanh_backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    return {"x": dy * (1.0 - cache["y"] ** 2)}


_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu_forward(x: Array) -> tuple[Array, dict[str, Any]]:
    """Exact GELU ``x * Phi(x)`` with the normal CDF ``Phi(x) = (1 + erf(x / sqrt 2)) / 2``."""
    cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))
    return x * cdf, {"x": x, "cdf": cdf}


def gelu_backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    x = cache["x"]
    pdf = np.exp(-0.5 * x**2) / math.sqrt(2.0 * math.pi)
    return {"x": dy * (cache["cdf"] + x * pdf)}


def softmax(z: Array, axis: int = 1) -> Array:
    """Softmax with the maximum subtracted first (softmax(z + c) = softmax(z))."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_forward(x: Array, axis: int = 1) -> tuple[Array, dict[str, Any]]:
    s = softmax(x, axis)
    return s, {"s": s, "axis": axis}


def softmax_backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    """The Jacobian-vector product ``s * (g - <g, s>)`` without forming the Jacobian."""
    s, axis = cache["s"], cache["axis"]
    return {"x": s * (dy - (dy * s).sum(axis=axis, keepdims=True))}


ACTIVATIONS: dict[str, tuple[Forward, Backward]] = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
    "gelu": (gelu_forward, gelu_backward),
    "softmax": (softmax_forward, softmax_backward),
}
