"""Small shared pieces of the reference layers: array type, argument normalization, sliding windows."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
Pairs = tuple[tuple[int, int], ...]


def ntuple(value: int | tuple[int, ...] | list[int], n: int) -> tuple[int, ...]:
    """``3 -> (3, 3)``; a sequence of length ``n`` passes through."""
    if isinstance(value, int):
        return (value,) * n
    t = tuple(int(v) for v in value)
    if len(t) != n:
        raise ValueError(f"expected {n} values, got {t}")
    return t


def pad_pairs(padding: Any, n: int) -> Pairs:
    """Padding as one ``(before, after)`` pair per spatial axis, from an int, ``n`` ints or ``n`` pairs."""
    if isinstance(padding, int):
        return ((padding, padding),) * n
    items = list(padding)
    if len(items) != n:
        raise ValueError(f"expected padding for {n} axes, got {padding}")
    return tuple((int(p), int(p)) if isinstance(p, int) else (int(p[0]), int(p[1])) for p in items)


def windows(xp: Array, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
            out: tuple[int, int]) -> Array:
    """Every receptive field of a padded ``(N, C, Hp, Wp)`` array: ``(N, C, KH, KW, OH, OW)``.

    Window ``(oh, ow)`` reads rows ``oh*sh + kh*dh`` and columns ``ow*sw + kw*dw`` (Dumoulin & Visin
    2016, "A guide to convolution arithmetic", relationship 15 with dilation).
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out
    rows = (np.arange(kh) * dh)[:, None, None, None] + (np.arange(oh) * sh)[None, None, :, None]  # (KH,1,OH,1)
    cols = (np.arange(kw) * dw)[None, :, None, None] + (np.arange(ow) * sw)[None, None, None, :]  # (1,KW,1,OW)
    return xp[:, :, rows, cols]  # (N, C, KH, KW, OH, OW)


def add_windows(dxp: Array, dwin: Array, stride: tuple[int, int], dilation: tuple[int, int]) -> None:
    """The adjoint of ``windows``: add each window's gradient back where it was read (col2im), in place."""
    _, _, kh, kw, oh, ow = dwin.shape
    (sh, sw), (dh, dw) = stride, dilation
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dh, j * dw
            dxp[:, :, r0:r0 + sh * (oh - 1) + 1:sh, c0:c0 + sw * (ow - 1) + 1:sw] += dwin[:, :, i, j]
