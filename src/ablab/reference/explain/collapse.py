"""Worked example: stacked linear layers without a nonlinearity collapse to one affine map."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ablab.reference.explain.document import ExplainError, Explanation
from ablab.reference.gradcheck import scaled_error
from ablab.reference.windows import Array

MAX_WEIGHTS = 100_000  # the example prints every matrix: past this it is neither readable nor quick


def collapse(layers: Sequence[tuple[Array, Array]] | None = None, sizes: Sequence[int] = (3, 4, 2),
             seed: int = 0, digits: int = 6, max_weights: int = MAX_WEIGHTS) -> Explanation:
    """Linear layers with identity activations compose to one affine map ``W x + b``."""
    import torch

    if layers is None:
        if len(sizes) < 3 or any(s < 1 for s in sizes):
            raise ExplainError(f"sizes: expected at least 3 positive widths (input, hidden..., output), got "
                               f"{','.join(map(str, sizes))}")
        weights = sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))
        if weights > max_weights:
            raise ExplainError(f"sizes: {','.join(map(str, sizes))} makes {weights:,} weights, more than the limit "
                               f"of {max_weights:,}; use smaller widths, or raise the limit with max_weights")
        rng = np.random.default_rng(seed)
        layers = [(rng.integers(-2, 3, size=(sizes[k + 1], sizes[k])).astype(np.float64),
                   rng.integers(-2, 3, size=sizes[k + 1]).astype(np.float64)) for k in range(len(sizes) - 1)]
    if len(layers) < 2:
        raise ExplainError("layers: expected at least two linear layers to collapse")
    for k, (w, b) in enumerate(layers, start=1):
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise ExplainError(f"layers[{k}]: expected W (out x in) and b (out), got {w.shape} and {b.shape}")
        if k > 1 and w.shape[1] != layers[k - 2][0].shape[0]:
            raise ExplainError(f"layers[{k}]: W takes {w.shape[1]} inputs but layer {k - 1} gives "
                               f"{layers[k - 2][0].shape[0]}")
    e = Explanation(f"Collapse of {len(layers)} linear layers with identity activations", digits=digits)
    e.para("Without a nonlinearity, W_k(... (W_1 x + b_1) ...) + b_k is itself affine: depth adds no "
           "expressive power (Goodfellow et al. 2016, section 6.1).")
    e.eq("W = W_L ... W_2 W_1,   b = W_L(... (W_2 b_1 + b_2) ...) + b_L",
         r"W = W_L \cdots W_2 W_1, \qquad b = W_L(\cdots(W_2 b_1 + b_2)\cdots) + b_L")
    w_eff, b_eff = layers[0]
    for k, (w, b) in enumerate(layers, start=1):
        e.heading(f"Layer {k}")
        e.mat(f"W_{k}", f"W_{k}", w)
        e.mat(f"b_{k}", f"b_{k}", b)
        if k > 1:
            w_eff, b_eff = w @ w_eff, w @ b_eff + b
            e.para(f"after layer {k}: W = W_{k} W, b = W_{k} b + b_{k}")
            e.mat("W", "W", w_eff)
            e.mat("b", "b", b_eff)
    widths = [layers[0][0].shape[1]] + [w.shape[0] for w, _ in layers]
    rank = int(np.linalg.matrix_rank(w_eff))
    e.heading("The single affine map")
    e.mat("W", "W", w_eff)
    e.mat("b", "b", b_eff)
    e.para(f"rank(W) = {rank} <= min width {min(widths)}: a narrow hidden layer caps the rank of the whole map.")
    mods = []
    for w, b in layers:
        lin = torch.nn.Linear(w.shape[1], w.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(w))
            lin.bias.copy_(torch.tensor(b))
        mods.append(lin)
    xs = np.random.default_rng(seed + 1).normal(size=(16, widths[0]))
    with torch.no_grad():
        stack = torch.nn.Sequential(*mods)(torch.tensor(xs)).numpy()
    e.check("W x + b against the stack of torch.nn.Linear layers on 16 random inputs",
            scaled_error(xs @ w_eff.T + b_eff, stack))
    e.values = {"W": w_eff, "b": b_eff, "rank": rank, "layers": layers}
    return e
