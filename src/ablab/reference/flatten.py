"""Flatten every axis but the batch axis: ``(N, C, H, W) -> (N, C*H*W)``; the backward pass reshapes
the gradient back."""

from __future__ import annotations

from typing import Any

from ablab.reference.windows import Array


def forward(x: Array) -> tuple[Array, dict[str, Any]]:
    return x.reshape(x.shape[0], -1), {"shape": x.shape}  # (N, C*H*W)


def backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    return {"x": dy.reshape(cache["shape"])}
