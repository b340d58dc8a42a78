"""Worked example: convolution as a matrix ``y = A x``; backward ``A^T g`` is a transposed convolution
(Dumoulin & Visin 2016, sections 2 and 4)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ablab.calc.shapes import resolve
from ablab.reference import conv
from ablab.reference.explain.document import ExplainError, Explanation
from ablab.reference.gradcheck import scaled_error
from ablab.reference.windows import Array
from ablab.spec import Spec, SpecError, parse_spec

MAX_PRINT = 40  # the symbolic matrix A is printed only up to this many rows and columns
MAX_ENTRIES = 1_000_000  # A is built in full (float64 + an int index): 16 MB at this limit


@dataclass
class ConvConfig:
    """One convolution layer on one input sample, as the spec grammar writes it."""

    layer: str  # e.g. "conv(1,2)" or "conv1d(2,3,s=2,p=(1,0))"
    input_shape: tuple[int, ...]  # (C, H, W) or (C, L)


def _resolve_conv(cfg: ConvConfig) -> Any:
    try:
        spec = parse_spec(cfg.layer, source="layer")
    except SpecError as err:
        raise ExplainError(f"layer: {err}") from None
    if len(spec.layers) != 1 or spec.layers[0].kind not in ("conv1d", "conv2d"):
        raise ExplainError(f"layer: expected one conv or conv1d layer like 'conv(2,3,s=2)', got {cfg.layer!r}")
    layer: Any = spec.layers[0]  # a conv1d or conv2d (ConvNd)
    if len(cfg.input_shape) != layer.ndim + 1:
        raise ExplainError(f"input: {layer.kind} takes a {'CxHxW' if layer.ndim == 2 else 'CxL'} input, "
                           f"got {'x'.join(map(str, cfg.input_shape))}")
    try:
        (r,) = resolve(Spec(cfg.input_shape, (layer,)))
    except SpecError as err:
        raise ExplainError(f"layer, input: {err}") from None
    return r


def _index_names(shape: tuple[int, ...], base: str) -> list[str]:
    return [f"{base}[{','.join(map(str, ix))}]" for ix in np.ndindex(*shape)]


def _index_formulas_1d(e: Explanation, s: int, d: int, p: int, k: int, n_in: int, n_out: int, groups: int) -> None:
    """The 1-D convolution written with explicit indices (stride s, dilation d, left padding p)."""
    c = "c in the group of o" if groups > 1 else "c"
    e.heading("1-D index formulas")
    e.eq(f"y[o, i] = sum_{c} sum_(k=0..{k - 1}) w[o, c, k] * x[c, {s}*i + {d}*k - {p}],   i = 0..{n_out - 1}",
         rf"y_{{o,i}} = \sum_{{c}} \sum_{{k=0}}^{{{k - 1}}} w_{{o,c,k}}\, x_{{c,\,{s}i + {d}k - {p}}}")
    e.para(f"Terms whose index {s}*i + {d}*k - {p} falls outside 0..{n_in - 1} read the zero padding. So row (o, i) "
           f"of A holds w[o, c, k] in column (c, j) with j = {s}*i + {d}*k - {p}, and zeros elsewhere.")
    e.eq(f"dL/dx[c, j] = sum_o sum_i g[o, i] * w[o, c, k]  over the (i, k) with {s}*i + {d}*k - {p} = j",
         rf"\frac{{\partial L}}{{\partial x_{{c,j}}}} = \sum_o \sum_{{(i,k):\,{s}i + {d}k - {p} = j}} "
         rf"g_{{o,i}}\, w_{{o,c,k}}")
    e.para("That sum is column (c, j) of A, i.e. row (c, j) of A^T, applied to g.")


def conv_matrix(cfg: ConvConfig | None = None, w: Array | None = None, x: Array | None = None,
                g: Array | None = None, seed: int = 0, digits: int = 6,
                max_entries: int = MAX_ENTRIES) -> Explanation:
    """The unrolled matrix of a convolution with symbolic weights, and the numeric proof that the
    backward pass is ``A^T`` and that ``A^T g`` is a transposed convolution with rotated kernels.
    ``A`` has one row per output element and one column per input element; above ``max_entries``
    entries the example is refused before anything is built."""

    cfg = cfg or ConvConfig("conv(1,2)", (1, 3, 3))
    r = _resolve_conv(cfg)
    rows, cols = math.prod(r.out_shape), math.prod(r.in_shape)
    if rows * cols > max_entries:
        raise ExplainError(f"layer, input: the matrix A would be {rows:,} x {cols:,} = {rows * cols:,} entries, "
                           f"more than the limit of {max_entries:,}; use a smaller layer or input, or raise the "
                           f"limit with max_entries")
    import torch
    import torch.nn.functional as F

    layer, pads = r.layer, r.padding
    nd = layer.ndim
    c_in, o = cfg.input_shape[0], layer.out_channels
    w_shape = (o, c_in // layer.groups, *layer.kernel_size)
    rng = np.random.default_rng(seed)
    # small integers, so a student can redo every product by hand
    w = rng.integers(-2, 3, size=w_shape).astype(np.float64) if w is None else w
    x = rng.integers(-3, 4, size=cfg.input_shape).astype(np.float64) if x is None else x
    for name, arr, shape in (("w", w, w_shape), ("x", x, cfg.input_shape)):
        if arr.shape != shape:
            raise ExplainError(f"{name}: expected shape {shape}, got {arr.shape}")
    args = (layer.stride, pads, layer.dilation, layer.groups)
    idx, out_shape = conv.matrix_index(cfg.input_shape, w_shape, *args)
    if g is None:
        g = rng.integers(-2, 3, size=out_shape).astype(np.float64)
    if g.shape != out_shape:
        raise ExplainError(f"g: expected the output shape {out_shape}, got {g.shape}")
    a = conv.matrix(w, cfg.input_shape, *args)
    y = (a @ x.ravel()).reshape(out_shape)
    at_g = (a.T @ g.ravel()).reshape(x.shape)

    e = Explanation(f"Convolution as a matrix: {layer.to_string()} on input {'x'.join(map(str, cfg.input_shape))}",
                    digits=digits)
    e.para("Dumoulin & Visin (2016), 'A guide to convolution arithmetic', sections 2 and 4. "
           "PyTorch's convolution is a cross-correlation; bias omitted (it adds b[o] to every row of channel o).")
    axes = ("L",) if nd == 1 else ("H", "W")
    for ax, size, k, s, p, dl, osz in zip(axes, cfg.input_shape[1:], layer.kernel_size, layer.stride, pads,
                                          layer.dilation, out_shape[1:], strict=True):
        e.para(f"out_{ax} = floor(({size} + {p[0]} + {p[1]} - {dl}*({k} - 1) - 1) / {s}) + 1 = {osz}",
               f"$\\text{{out}}_{ax} = \\left\\lfloor \\frac{{{size} + {p[0]} + {p[1]} - {dl}({k} - 1) - 1}}{{{s}}}"
               f"\\right\\rfloor + 1 = {osz}$")
    e.eq(f"y = A x,   A has {a.shape[0]} rows (y = {o}x{'x'.join(map(str, out_shape[1:]))} flattened) and "
         f"{a.shape[1]} columns (x flattened)",
         rf"\mathrm{{vec}}(y) = A\,\mathrm{{vec}}(x), \quad A \in \mathbb{{R}}^{{{a.shape[0]} \times {a.shape[1]}}}")
    wnames = np.array(_index_names(w_shape, "w"), dtype=object)
    if a.shape[0] <= MAX_PRINT and a.shape[1] <= MAX_PRINT:
        sym = np.where(idx >= 0, wnames[np.maximum(idx, 0)], "0")
        e.para("Rows: " + " ".join(_index_names(out_shape, "y")) + ".  Columns: "
               + " ".join(_index_names(cfg.input_shape, "x")) + ".")
        e.mat("A", "A", sym)
        e.para("A^T: one row per input element (x order), one column per output element (y order); the "
               "backward pass multiplies g by it.")
        e.mat("A^T", r"A^\top", sym.T)
    else:
        e.para(f"A is {a.shape[0]} x {a.shape[1]}: too large to print (limit {MAX_PRINT}); "
               f"{int((idx >= 0).sum())} of its {idx.size} entries are weights, the rest are zeros.")
    if nd == 1:
        _index_formulas_1d(e, layer.stride[0], layer.dilation[0], pads[0][0], layer.kernel_size[0],
                           cfg.input_shape[1], out_shape[1], layer.groups)
    e.heading("Numbers")
    e.para(f"w: one row per output channel o, its C/groups x {' x '.join(map(str, layer.kernel_size))} "
           "weights in the order of the symbolic names")
    e.mat("w", "w", w.reshape(w.shape[0], -1))
    e.mat("x", "x", x.reshape(-1))
    e.mat("y = A x", "y = A x", y.reshape(-1))
    tx = torch.tensor(x[None], requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    flat = [v for pair in reversed(pads) for v in pair]
    yt = (F.conv2d if nd == 2 else F.conv1d)(F.pad(tx, flat), tw, None, layer.stride, 0, layer.dilation,
                                             layer.groups)
    e.check("A x against torch convolution", scaled_error(y, yt.detach().numpy()[0]))
    e.heading("Backward: dL/dx = A^T g")
    e.para("With g = dL/dy, the chain rule on y = A x gives dL/dx = A^T g: the backward pass of a "
           "convolution is multiplication by the transposed matrix.")
    e.mat("g", "g", g.reshape(-1))
    if a.shape[0] <= MAX_PRINT and a.shape[1] <= MAX_PRINT:
        e.mat("A^T (numbers)", r"A^\top", a.T)
    e.mat("A^T g", r"A^\top g", at_g.reshape(-1))
    (yt * torch.tensor(g[None])).sum().backward()
    assert tx.grad is not None and tw.grad is not None
    e.check("A^T g against torch autograd dL/dx", scaled_error(at_g, tx.grad.numpy()[0]))
    e.heading("A^T g is a transposed convolution")
    e.para("Spread g by the stride (stride-1 zeros between entries), pad by dilation*(k-1), and convolve with "
           "each kernel rotated by 180 degrees and input/output channels swapped: "
           "w'[c, o', u, v] = w[o, c', K-1-u, L-1-v] (per group). Crop the forward padding.",
           r"Spread $g$ by the stride, pad by $d(k-1)$, convolve with every kernel rotated by 180° and "
           r"input/output channels swapped, $w'_{c,o',u,v} = w_{o,c',K-1-u,L-1-v}$ (per group), crop the padding.")
    rot = conv.transposed_as_conv(g[None], w, cfg.input_shape, *args)[0]
    e.mat("rot180 conv of g", r"\mathrm{conv}(g, \mathrm{rot}_{180}(w)^\top)", rot.reshape(-1))
    tfn = F.conv_transpose2d if nd == 2 else F.conv_transpose1d
    full = tfn(torch.tensor(g[None]), torch.tensor(w), None, layer.stride, 0, 0, layer.groups, layer.dilation)
    padded = [sz + p0 + p1 for sz, (p0, p1) in zip(cfg.input_shape[1:], pads, strict=True)]
    grow = [v for sz, full_sz in reversed(list(zip(padded, full.shape[2:], strict=True))) for v in (0, sz - full_sz)]
    full = F.pad(full, grow)[0]  # rows no window reached get zero
    crop = tuple(slice(p0, p0 + sz) for (p0, _), sz in zip(pads, cfg.input_shape[1:], strict=True))
    tconv = full[(slice(None), *crop)].numpy()
    e.check("rotated-kernel convolution equals A^T g", scaled_error(rot, at_g))
    e.check("torch conv_transpose equals A^T g", scaled_error(tconv, at_g))
    e.heading("Weight gradient")
    e.para("dL/dw[k] = sum of g[row] * x[col] over the entries of A that hold weight k.")
    outer = np.outer(g.ravel(), x.ravel())
    dw = np.bincount(idx[idx >= 0], weights=outer[idx >= 0], minlength=w.size).reshape(w.shape)
    e.mat("dL/dw", r"\frac{\partial L}{\partial w}", dw.reshape(w.shape[0], -1))
    e.check("dL/dw against torch autograd", scaled_error(dw, tw.grad.numpy()))
    e.values = {"A": a, "w": w, "x": x, "y": y, "g": g, "At_g": at_g, "rot": rot, "dw": dw, "index": idx}
    return e
