"""Worked example: batch norm forward in training mode (Ioffe & Szegedy 2015, Algorithm 1)."""

from __future__ import annotations

import numpy as np

from ablab.reference import batchnorm
from ablab.reference.explain.document import ExplainError, Explanation
from ablab.reference.gradcheck import scaled_error
from ablab.reference.windows import Array

BN_X = [[1.0, 2.0, -1.0], [3.0, 0.0, 0.5], [2.0, 4.0, 1.5], [6.0, 2.0, -1.0]]
BN_GAMMA = [1.0, 0.5, 2.0]
BN_BETA = [0.0, 1.0, -1.0]
BN_DY = [[0.1, -0.2, 0.3], [0.4, 0.1, -0.5], [-0.3, 0.2, 0.1], [0.2, -0.1, 0.2]]


def bn_inputs(x: Array, gamma: Array, beta: Array, eps: float) -> None:
    if x.ndim != 2 or x.shape[0] < 2:
        raise ExplainError(f"x: expected a batch matrix N x D with N >= 2 rows, got shape {x.shape}")
    d = x.shape[1]
    for name, v in (("gamma", gamma), ("beta", beta)):
        if v.shape != (d,):
            raise ExplainError(f"{name}: expected {d} values (one per column of x), got {v.size}")
    if not eps >= 0:
        raise ExplainError(f"eps: expected a number >= 0, got {eps}")
    if eps == 0:  # textbook exercises use eps = 0: fine unless a feature is constant over the batch
        var = x.var(axis=0)  # biased (1/N), as batch norm uses
        for j in np.flatnonzero(var == 0):
            raise ExplainError(
                f"eps: 0 needs every feature's batch variance to be non-zero, but feature {j + 1} (column {j + 1} "
                f"of x) is {x[0, j]:g} in every row: its variance is 0, so x_hat = (x - mu) / sqrt(var + eps) "
                "would be 0/0. Give eps > 0 (PyTorch's default is 1e-5).")


def eps_note(x: Array, eps: float) -> str | None:
    """Why eps = 0 is allowed here (None for eps > 0)."""
    if eps != 0:
        return None
    return (f"eps = 0, as in the textbook exercise: allowed because every feature's batch variance is non-zero "
            f"(smallest {x.var(axis=0).min():g}), so no division by zero occurs.")


def _sum_text(col: Array, e: Explanation) -> str:
    return " + ".join(e.num(v) if v >= 0 else f"({e.num(v)})" for v in col)


def bn_forward(x: Array | None = None, gamma: Array | None = None, beta: Array | None = None,
               eps: float = 1e-5, momentum: float = 0.1, digits: int = 6) -> Explanation:
    """Batch norm forward in training mode on an N x D batch, every intermediate shown."""
    import torch
    import torch.nn.functional as F

    x = np.array(BN_X) if x is None else x
    gamma = np.array(BN_GAMMA[: x.shape[1]] if gamma is None and x.shape[1] <= 3 else
                     np.ones(x.shape[1]) if gamma is None else gamma)
    beta = np.array(BN_BETA[: x.shape[1]] if beta is None and x.shape[1] <= 3 else
                    np.zeros(x.shape[1]) if beta is None else beta)
    bn_inputs(x, gamma, beta, eps)
    if not 0 <= momentum <= 1:
        raise ExplainError(f"momentum: expected a number in [0, 1], got {momentum}")
    n, d = x.shape
    rm, rv = np.zeros(d), np.ones(d)
    y, c = batchnorm.forward(x, gamma, beta, rm, rv, training=True, momentum=momentum, eps=eps)
    e = Explanation(f"Batch norm, forward (training): N={n} samples, D={d} features, eps={eps:g}", digits=digits)
    if (note := eps_note(x, eps)) is not None:
        e.para(note)
    e.para("Ioffe & Szegedy (2015), Algorithm 1. Statistics per feature j (column), over the batch (rows).")
    e.mat("x", "x", x)
    e.mat("gamma", r"\gamma", gamma)
    e.mat("beta", r"\beta", beta)
    e.heading("1. Mean")
    e.eq("mu_j = (1/N) sum_i x_ij", r"\mu_j = \frac{1}{N}\sum_{i=1}^{N} x_{ij}")
    for j in range(d):
        e.para(f"mu_{j + 1} = ({_sum_text(x[:, j], e)}) / {n} = {e.num(c['mu'][j])}",
               f"$\\mu_{j + 1} = ({_sum_text(x[:, j], e)}) / {n} = {e.num(c['mu'][j])}$")
    e.mat("mu", r"\mu", c["mu"])
    e.heading("2. Variance (biased, 1/N)")
    e.eq("var_j = (1/N) sum_i (x_ij - mu_j)^2", r"\sigma^2_j = \frac{1}{N}\sum_{i=1}^{N} (x_{ij} - \mu_j)^2")
    xc = x - c["mu"]
    e.mat("x - mu", r"x - \mu", xc)
    for j in range(d):
        sq = " + ".join(f"{e.num(v)}^2" if v >= 0 else f"({e.num(v)})^2" for v in xc[:, j])
        e.para(f"var_{j + 1} = ({sq}) / {n} = {e.num(c['var'][j])}",
               f"$\\sigma^2_{j + 1} = ({sq}) / {n} = {e.num(c['var'][j])}$")
    e.mat("var", r"\sigma^2", c["var"])
    e.heading("3. Normalize")
    std = np.sqrt(c["var"] + eps)
    e.eq("x_hat_ij = (x_ij - mu_j) / sqrt(var_j + eps)",
         r"\hat{x}_{ij} = \frac{x_{ij} - \mu_j}{\sqrt{\sigma^2_j + \epsilon}}")
    e.mat("sqrt(var + eps)", r"\sqrt{\sigma^2 + \epsilon}", std)
    e.mat("x_hat", r"\hat{x}", c["x_hat"])
    e.heading("4. Scale and shift")
    e.eq("y_ij = gamma_j * x_hat_ij + beta_j", r"y_{ij} = \gamma_j \hat{x}_{ij} + \beta_j")
    e.mat("y", "y", y)
    e.heading("5. Running statistics (used in evaluation)")
    e.eq(f"running_mean = (1 - m) * 0 + m * mu,  running_var = (1 - m) * 1 + m * var * N/(N-1),  m = {momentum:g}",
         r"\text{running\_mean} = (1-m)\cdot 0 + m\,\mu, \quad \text{running\_var} = (1-m)\cdot 1 + m\,\sigma^2 "
         rf"\tfrac{{N}}{{N-1}}, \quad m = {momentum:g}")
    e.para("PyTorch stores the unbiased variance (N-1 in the denominator) in running_var, but normalizes "
           "with the biased one.")
    e.mat("running_mean", r"\text{running\_mean}", rm)
    e.mat("running_var", r"\text{running\_var}", rv)
    trm, trv = torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)
    # torch refuses eps = 0 in training; 1e-300 is absorbed exactly by any float64 variance above ~1e-284
    yt = F.batch_norm(torch.tensor(x), trm, trv, torch.tensor(gamma), torch.tensor(beta), True, momentum,
                      max(eps, 1e-300))
    e.check("y against torch.nn.functional.batch_norm", scaled_error(y, yt.numpy()))
    e.check("running_mean, running_var against PyTorch's buffers",
            max(scaled_error(rm, trm.numpy()), scaled_error(rv, trv.numpy())))
    e.values = {"mu": c["mu"], "var": c["var"], "x_hat": c["x_hat"], "y": y, "running_mean": rm,
                "running_var": rv}
    return e
