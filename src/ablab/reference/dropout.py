"""Inverted dropout (Srivastava et al. 2014, JMLR 15; the "inverted" scaling as in CS231n notes,
"Neural Networks Part 2"): in training, keep each element with probability ``1 - p`` and scale the
kept ones by ``1 / (1 - p)`` so that ``E[y] = x``; in evaluation, ``y = x``::

    m ~ Bernoulli(1 - p)          y = x * m / (1 - p)          dL/dx = g * m / (1 - p)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ablab.reference.windows import Array


def make_mask(shape: tuple[int, ...], p: float, rng: np.random.Generator) -> Array:
    """A keep-mask of ones (kept) and zeros (dropped), each kept with probability ``1 - p``."""
    return (rng.random(shape) >= p).astype(np.float64)


def forward(x: Array, p: float, mask: Array | None = None, training: bool = True,
            rng: np.random.Generator | None = None) -> tuple[Array, dict[str, Any]]:
    """``y = x * mask / (1 - p)`` in training (a mask is drawn from ``rng`` unless given); ``y = x`` in
    evaluation. The cache holds the mask, so a test can replay exactly what was dropped."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x.copy(), {"scale": None}
    if mask is None:
        mask = make_mask(x.shape, p, rng or np.random.default_rng())
    scale = mask / (1.0 - p)
    return x * scale, {"scale": scale, "mask": mask}


def backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    """``{"x": dy * mask / (1 - p)}`` (``dy`` itself in evaluation)."""
    scale = cache["scale"]
    return {"x": dy.copy() if scale is None else dy * scale}
