"""Max and average pooling, 1-d and 2-d, with stride, symmetric padding and ``ceil_mode`` as in PyTorch.

Output size per axis (Dumoulin & Visin 2016, relationship 15 with dilation 1; with ``ceil_mode`` the
division rounds up, and a last window that would start in the right padding is dropped)::

    out = floor_or_ceil((in + 2*pad - k) / stride) + 1

Max pooling (CS231n notes, "Pooling layer"): ``y = max over the window``; the backward pass routes
``g`` to the arg-max of each window (the first one on ties, as PyTorch does), zero elsewhere.

Average pooling with ``count_include_pad=True`` (PyTorch's default): ``y = sum over the window / D``
where ``D`` counts the window's taps inside the padded input (padding zeros count; taps that a
``ceil_mode`` window hangs past the right padding do not). The backward pass spreads ``g / D``
evenly over the window.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ablab.reference.windows import Array, add_windows, ntuple, windows


def _setup(x: Array, kernel: Any, stride: Any, padding: Any, ceil_mode: bool
           ) -> tuple[Array, tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int],
                      tuple[int, int]]:
    """The input as 4-d, and kernel, stride, padding, output size and right overhang as 2-d tuples."""
    nd = x.ndim - 2
    if nd not in (1, 2):
        raise ValueError(f"pool: expected x (N,C,L) or (N,C,H,W), got {x.shape}")
    k = ntuple(kernel, nd)
    s = ntuple(stride if stride not in (None, ()) else k, nd)
    p = ntuple(padding, nd)
    x4 = x[:, :, None, :] if nd == 1 else x  # (N, C, H, W); a 1-d input gets a unit height
    if nd == 1:
        k, s, p = (1, *k), (1, *s), (0, *p)
    outs, extra = [], []
    for size, kk, ss, pp in zip(x4.shape[2:], k, s, p, strict=True):
        num = size + 2 * pp - kk
        o = (-(-num // ss) if ceil_mode else num // ss) + 1
        if ceil_mode and (o - 1) * ss >= size + pp:  # PyTorch: the last window must start inside
            o -= 1
        if o < 1:
            raise ValueError(f"pool: window {kk} larger than the padded input {size + 2 * pp}")
        outs.append(o)
        extra.append(max((o - 1) * ss + kk - (size + 2 * pp), 0))  # ceil_mode overhang on the right
    return x4, (k[0], k[1]), (s[0], s[1]), (p[0], p[1]), (outs[0], outs[1]), (extra[0], extra[1])


def _pad(x4: Array, p: tuple[int, int], extra: tuple[int, int], value: float) -> Array:
    return np.pad(x4, ((0, 0), (0, 0), (p[0], p[0] + extra[0]), (p[1], p[1] + extra[1])),
                  constant_values=value)


def max_forward(x: Array, kernel: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False
                ) -> tuple[Array, dict[str, Any]]:
    """Max pooling; padding is -inf so it never wins."""
    x4, k, s, p, out, extra = _setup(x, kernel, stride, padding, ceil_mode)
    xp = _pad(x4, p, extra, -np.inf)
    win = windows(xp, k, s, (1, 1), out)  # (N, C, KH, KW, OH, OW)
    n, c = x4.shape[:2]
    flat = win.reshape(n, c, k[0] * k[1], *out)  # (N, C, KH*KW, OH, OW)
    arg = flat.argmax(axis=2)  # first maximum, as PyTorch
    y = np.take_along_axis(flat, arg[:, :, None], axis=2)[:, :, 0]  # (N, C, OH, OW)
    cache = {"x_shape": x.shape, "xp_shape": xp.shape, "arg": arg, "k": k, "s": s, "p": p}
    return (y if x.ndim == 4 else y[:, :, 0, :]), cache


def max_backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    """``{"x": dx}``: each window's gradient goes to its arg-max."""
    k, s, arg = cache["k"], cache["s"], cache["arg"]
    dy4 = dy[:, :, None, :] if dy.ndim == 3 else dy  # (N, C, OH, OW)
    n, c, oh, ow = dy4.shape
    dflat = np.zeros((n, c, k[0] * k[1], oh, ow))
    np.put_along_axis(dflat, arg[:, :, None], dy4[:, :, None], axis=2)
    dxp = np.zeros(cache["xp_shape"])
    add_windows(dxp, dflat.reshape(n, c, k[0], k[1], oh, ow), s, (1, 1))
    return {"x": _crop(dxp, cache)}


def _crop(dxp: Array, cache: dict[str, Any]) -> Array:
    shape, p = cache["x_shape"], cache["p"]
    h, w = (1, shape[2]) if len(shape) == 3 else shape[2:]
    return dxp[:, :, p[0]:p[0] + h, p[1]:p[1] + w].reshape(shape)


def avg_forward(x: Array, kernel: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False
                ) -> tuple[Array, dict[str, Any]]:
    """Average pooling, counting padding zeros in the divisor (``count_include_pad=True``)."""
    x4, k, s, p, out, extra = _setup(x, kernel, stride, padding, ceil_mode)
    xp = _pad(x4, p, extra, 0.0)
    win = windows(xp, k, s, (1, 1), out)  # (N, C, KH, KW, OH, OW)
    # divisor: taps inside [0, size + 2*pad) along each axis (the ceil_mode overhang does not count)
    inside = [np.minimum(np.arange(o) * ss + kk, size + 2 * pp) - np.arange(o) * ss
              for o, ss, kk, size, pp in zip(out, s, k, x4.shape[2:], p, strict=True)]
    div = inside[0][:, None] * inside[1][None, :]  # (OH, OW)
    y = win.sum(axis=(2, 3)) / div  # (N, C, OH, OW)
    cache = {"x_shape": x.shape, "xp_shape": xp.shape, "div": div, "k": k, "s": s, "p": p}
    return (y if x.ndim == 4 else y[:, :, 0, :]), cache


def avg_backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    """``{"x": dx}``: ``g / D`` to every tap of the window."""
    k, s = cache["k"], cache["s"]
    dy4 = dy[:, :, None, :] if dy.ndim == 3 else dy  # (N, C, OH, OW)
    n, c, oh, ow = dy4.shape
    per_tap = np.broadcast_to((dy4 / cache["div"])[:, :, None, None], (n, c, k[0], k[1], oh, ow))
    dxp = np.zeros(cache["xp_shape"])
    add_windows(dxp, per_tap, s, (1, 1))
    return {"x": _crop(dxp, cache)}


def _adaptive_windows(n: int, s: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive windows: output i averages inputs floor(i*n/s) .. ceil((i+1)*n/s) - 1."""
    return [((i * n) // s, -(-((i + 1) * n) // s)) for i in range(s)]


def adaptive_avg_forward(x: Array, output_size: Any) -> tuple[Array, dict[str, Any]]:
    """Adaptive average pooling of ``x (N, C, H, W)`` to ``output_size`` (an int or (Sh, Sw)); the
    windows may differ in size (and overlap) when ``S`` does not divide the input."""
    sh, sw = ntuple(output_size, 2)
    rows, cols = _adaptive_windows(x.shape[2], sh), _adaptive_windows(x.shape[3], sw)
    y = np.empty((*x.shape[:2], sh, sw))
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return y, {"shape": x.shape, "rows": rows, "cols": cols}


def adaptive_avg_backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    """``{"x": dx}``: each output's gradient spread evenly over its window (added where windows overlap)."""
    dx = np.zeros(cache["shape"])
    for i, (r0, r1) in enumerate(cache["rows"]):
        for j, (c0, c1) in enumerate(cache["cols"]):
            dx[:, :, r0:r1, c0:c1] += dy[:, :, i, j][:, :, None, None] / ((r1 - r0) * (c1 - c0))
    return {"x": dx}
