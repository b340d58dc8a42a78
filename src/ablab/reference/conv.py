"""Convolution (1-d and 2-d) two ways: im2col, and the explicit unrolled matrix ``y = A x``.

Both support stride, padding (including asymmetric ``(before, after)`` pairs, as TensorFlow SAME
needs), dilation and groups, and compute what ``torch.nn.functional.conv{1,2}d`` computes (a
cross-correlation). Shapes follow PyTorch: ``x (N, C, H, W)``, ``w (O, C/groups, KH, KW)``, ``b (O,)``;
1-d inputs ``(N, C, L)`` with ``w (O, C/groups, K)`` run as 2-d with a height of one.

Output size per axis (Dumoulin & Visin 2016, "A guide to convolution arithmetic", relationship 15)::

    out = floor((in + pad_before + pad_after - dilation*(k - 1) - 1) / stride) + 1

Forward (CS231n notes, "Convolutional Networks"; im2col as in Chellapilla et al. 2006)::

    y[n, o, i, j] = b[o] + sum_{c in group(o), u, v} w[o, c, u, v] * xp[n, c, i*sh + u*dh, j*sw + v*dw]

Backward, with ``g = dL/dy``::

    dL/dw[o, c, u, v] = sum_{n, i, j} g[n, o, i, j] * xp[n, c, i*sh + u*dh, j*sw + v*dw]
    dL/db[o]          = sum_{n, i, j} g[n, o, i, j]
    dL/dx             = the same windows read in reverse (col2im), then the padding cropped.

As a matrix on one flattened sample, ``y = A x + b`` with ``A`` of shape ``(O*OH*OW, C*H*W)`` whose
entries are weights or zeros; then ``dL/dx = A^T g``, which is a transposed convolution: a
convolution of the stride-dilated, padded ``g`` with every kernel rotated by 180 degrees and the
in/out channels swapped (``transposed_as_conv``; Dumoulin & Visin 2016, section 4).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ablab.reference.windows import Array, Pairs, add_windows, ntuple, pad_pairs, windows


def _geometry(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Any, padding: Any,
              dilation: Any) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int],
                                      tuple[tuple[int, int], tuple[int, int]]]:
    """Stride, dilation, kernel and padding as 2-d tuples (a 1-d conv gets a unit height axis)."""
    nd = len(x_shape) - 2
    if nd not in (1, 2) or len(w_shape) != nd + 2:
        raise ValueError(f"conv: expected x (N,C,L) or (N,C,H,W) and a matching w, got {x_shape}, {w_shape}")
    st, dl, pd = ntuple(stride, nd), ntuple(dilation, nd), pad_pairs(padding, nd)
    k = tuple(w_shape[2:])
    if nd == 1:
        return (1, st[0]), (1, dl[0]), (1, k[0]), ((0, 0), pd[0])
    return (st[0], st[1]), (dl[0], dl[1]), (k[0], k[1]), (pd[0], pd[1])


def _to4(a: Array) -> Array:
    return a[:, :, None, :] if a.ndim == 3 else a  # (N, C, L) -> (N, C, 1, L)


def out_size(size: int, k: int, stride: int, pad: tuple[int, int], dilation: int) -> int:
    """Dumoulin & Visin (2016) relationship 15, with (before, after) padding."""
    return (size + pad[0] + pad[1] - dilation * (k - 1) - 1) // stride + 1


def forward(x: Array, w: Array, b: Array | None = None, stride: Any = 1, padding: Any = 0,
            dilation: Any = 1, groups: int = 1) -> tuple[Array, dict[str, Any]]:
    """Convolution by im2col: gather every receptive field, then one matrix product per group."""
    st, dl, (kh, kw), (pt, pl) = _geometry(x.shape, w.shape, stride, padding, dilation)
    x4, w4 = _to4(x), _to4(w)
    n, c, h, wd = x4.shape
    o, cg = w4.shape[:2]
    if c != cg * groups or o % groups:
        raise ValueError(f"conv: {c} input channels, weight {w.shape} and groups={groups} do not fit")
    xp = np.pad(x4, ((0, 0), (0, 0), pt, pl))  # (N, C, H+pt0+pt1, W+pl0+pl1)
    oh, ow = out_size(h, kh, st[0], pt, dl[0]), out_size(wd, kw, st[1], pl, dl[1])
    if oh < 1 or ow < 1:
        raise ValueError(f"conv: kernel larger than the padded input ({x.shape}, {w.shape})")
    cols = windows(xp, (kh, kw), st, dl, (oh, ow))  # (N, C, KH, KW, OH, OW)
    cols = cols.reshape(n, groups, cg * kh * kw, oh * ow)  # (N, G, Cg*KH*KW, OH*OW)
    wm = w4.reshape(groups, o // groups, cg * kh * kw)  # (G, O/G, Cg*KH*KW)
    y = np.einsum("gok,ngkp->ngop", wm, cols).reshape(n, o, oh, ow)  # (N, O, OH, OW)
    if b is not None:
        y = y + b[None, :, None, None]
    cache = {"x_shape": x.shape, "w": w, "cols": cols, "xp_shape": xp.shape, "stride": st, "dilation": dl,
             "pad": (pt, pl), "groups": groups, "has_b": b is not None}
    return (y if x.ndim == 4 else y[:, :, 0, :]), cache


def backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    """Gradients ``{"x", "w", "b"}`` (``"b"`` only if the forward had a bias)."""
    w, cols, groups = cache["w"], cache["cols"], cache["groups"]
    w4, dy4 = _to4(w), _to4(dy)
    n, o, oh, ow = dy4.shape
    cg, kh, kw = w4.shape[1:]
    dym = dy4.reshape(n, groups, o // groups, oh * ow)  # (N, G, O/G, OH*OW)
    wm = w4.reshape(groups, o // groups, cg * kh * kw)  # (G, O/G, Cg*KH*KW)
    dw = np.einsum("ngop,ngkp->gok", dym, cols).reshape(w.shape)
    dcols = np.einsum("gok,ngop->ngkp", wm, dym)  # (N, G, Cg*KH*KW, OH*OW)
    dcols = dcols.reshape(n, groups * cg, kh, kw, oh, ow)  # (N, C, KH, KW, OH, OW)
    dxp = np.zeros(cache["xp_shape"])
    add_windows(dxp, dcols, cache["stride"], cache["dilation"])
    (t, _), (left, _) = cache["pad"]
    h, wd = _to4(np.empty(cache["x_shape"])).shape[2:]
    dx = dxp[:, :, t:t + h, left:left + wd]  # crop the padding: (N, C, H, W)
    grads = {"x": dx.reshape(cache["x_shape"]), "w": dw}
    if cache["has_b"]:
        grads["b"] = dy4.sum(axis=(0, 2, 3))
    return grads


# ------------------------------------------------------------------------------------ the matrix A


def matrix_index(in_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1) -> tuple[np.ndarray, tuple[int, ...]]:
    """Which weight sits where in ``A``: an int array ``(O*prod(out), C*prod(in))`` holding the flat
    index into ``w`` (C order) or -1 for a structural zero, and the output sample shape ``(O, *out)``.

    Row ``(o, i, j)`` and column ``(c, ih, iw)`` meet weight ``w[o, c - g*Cg, u, v]`` exactly when
    ``ih = i*sh + u*dh - pad_top`` and ``iw = j*sw + v*dw - pad_left`` for some kernel tap ``(u, v)``,
    with ``c`` in the group of ``o``. At most one tap fits, so each entry is one weight or zero.
    """
    st, dl, (kh, kw), (pt, pl) = _geometry((1, *in_shape), w_shape, stride, padding, dilation)
    c = in_shape[0]
    h, wd = (1, in_shape[1]) if len(in_shape) == 2 else (in_shape[1], in_shape[2])
    o, cg = w_shape[:2]
    og = o // groups
    oh, ow = out_size(h, kh, st[0], pt, dl[0]), out_size(wd, kw, st[1], pl, dl[1])
    idx = -np.ones((o * oh * ow, c * h * wd), dtype=np.int64)
    i, j = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")  # (OH, OW) each
    for oc in range(o):
        g = oc // og
        for ci in range(cg):
            ch = g * cg + ci
            for u in range(kh):
                for v in range(kw):
                    ih, iw = i * st[0] + u * dl[0] - pt[0], j * st[1] + v * dl[1] - pl[0]
                    ok = (ih >= 0) & (ih < h) & (iw >= 0) & (iw < wd)
                    rows = oc * oh * ow + i * ow + j
                    cols = ch * h * wd + ih * wd + iw
                    idx[rows[ok], cols[ok]] = ((oc * cg + ci) * kh + u) * kw + v
    out_shape = (o, ow) if len(in_shape) == 2 else (o, oh, ow)
    return idx, out_shape


def matrix(w: Array, in_shape: tuple[int, ...], stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> Array:
    """The unrolled matrix ``A`` with ``y.ravel() = A @ x.ravel() (+ bias)`` for one sample."""
    idx, _ = matrix_index(in_shape, w.shape, stride, padding, dilation, groups)
    return np.where(idx >= 0, w.ravel()[np.maximum(idx, 0)], 0.0)


def matrix_forward(x: Array, w: Array, b: Array | None = None, stride: Any = 1, padding: Any = 0,
                   dilation: Any = 1, groups: int = 1) -> tuple[Array, dict[str, Any]]:
    """Convolution as ``y = A x + b`` per sample, with ``A`` built explicitly (small inputs only)."""
    idx, out_shape = matrix_index(x.shape[1:], w.shape, stride, padding, dilation, groups)
    a = np.where(idx >= 0, w.ravel()[np.maximum(idx, 0)], 0.0)  # (O*OH*OW, C*H*W)
    xf = x.reshape(x.shape[0], -1)  # (N, C*H*W)
    y = xf @ a.T  # (N, O*OH*OW)
    if b is not None:
        y = y + np.repeat(b, y.shape[1] // b.size)[None, :]
    cache = {"x": x, "w_shape": w.shape, "a": a, "idx": idx, "has_b": b is not None}
    return y.reshape(x.shape[0], *out_shape), cache


def matrix_backward(dy: Array, cache: dict[str, Any]) -> dict[str, Array]:
    """``dx = A^T g``; ``dw[k]`` sums ``g[row] * x[col]`` over every entry of ``A`` that holds weight k."""
    x, a, idx = cache["x"], cache["a"], cache["idx"]
    g = dy.reshape(dy.shape[0], -1)  # (N, O*OH*OW)
    dx = (g @ a).reshape(x.shape)  # each row: A^T g_n
    outer = g.T @ x.reshape(x.shape[0], -1)  # (O*OH*OW, C*H*W): sum_n g[n,row] x[n,col]
    used = idx >= 0
    dw = np.bincount(idx[used], weights=outer[used], minlength=int(np.prod(cache["w_shape"])))
    grads = {"x": dx, "w": dw.reshape(cache["w_shape"])}
    if cache["has_b"]:
        grads["b"] = dy.sum(axis=(0, *range(2, dy.ndim)))
    return grads


def transposed_as_conv(g: Array, w: Array, in_shape: tuple[int, ...], stride: Any = 1, padding: Any = 0,
                       dilation: Any = 1, groups: int = 1) -> Array:
    """``A^T g`` computed as an ordinary convolution, the way it is taught:

    1. spread ``g`` out by the stride (``stride - 1`` zeros between neighbours);
    2. pad it by ``dilation*(k - 1)`` before and enough after to cover the padded input;
    3. convolve with every kernel rotated by 180 degrees and in/out channels swapped
       (``w (O, C/G, KH, KW) -> (C, O/G, KH, KW)``), same dilation, stride 1;
    4. crop the forward padding away.

    ``in_shape`` is one input sample's shape ``(C, *spatial)``; returns ``(N, *in_shape)``.
    """
    st, dl, (kh, kw), (pt, pl) = _geometry((1, *in_shape), w.shape, stride, padding, dilation)
    g4, w4 = _to4(g), _to4(w)
    n, o, oh, ow = g4.shape
    c = in_shape[0]
    h, wd = (1, in_shape[1]) if len(in_shape) == 2 else (in_shape[1], in_shape[2])
    hp, wp = h + sum(pt), wd + sum(pl)
    up = np.zeros((n, o, (oh - 1) * st[0] + 1, (ow - 1) * st[1] + 1))
    up[:, :, ::st[0], ::st[1]] = g4  # step 1
    pads: Pairs = ((dl[0] * (kh - 1), hp - up.shape[2]), (dl[1] * (kw - 1), wp - up.shape[3]))
    cg, og = c // groups, o // groups
    w_rot = w4.reshape(groups, og, cg, kh, kw).transpose(0, 2, 1, 3, 4)  # (G, Cg, O/G, KH, KW)
    w_rot = w_rot.reshape(c, og, kh, kw)[:, :, ::-1, ::-1]  # step 3: swap channels, rotate 180 degrees
    full, _ = forward(up, np.ascontiguousarray(w_rot), None, 1, pads, dl, groups)  # (N, C, Hp, Wp)
    out = full[:, :, pt[0]:pt[0] + h, pl[0]:pl[0] + wd]  # step 4
    return out if len(in_shape) == 3 else out[:, :, 0, :]
