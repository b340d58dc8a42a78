"""Worked example: batch norm backward in training mode (Ioffe & Szegedy 2015, section 3)."""

from __future__ import annotations

import numpy as np

from ablab.reference import batchnorm
from ablab.reference.explain.bn_forward import BN_BETA, BN_DY, BN_GAMMA, BN_X, bn_inputs, eps_note
from ablab.reference.explain.document import ExplainError, Explanation
from ablab.reference.gradcheck import scaled_error
from ablab.reference.windows import Array


def bn_backward(x: Array | None = None, gamma: Array | None = None, beta: Array | None = None,
                dy: Array | None = None, eps: float = 1e-5, digits: int = 6) -> Explanation:
    """Batch norm backward (training): each of dgamma, dbeta, dx_hat, dvar, dmu, dx, checked against
    torch autograd on the same computation written step by step (``retain_grad`` on each stage)."""
    import torch

    x = np.array(BN_X) if x is None else x
    d = x.shape[1] if x.ndim == 2 else 0
    gamma = (np.array(BN_GAMMA) if d == 3 else np.ones(d)) if gamma is None else gamma
    beta = (np.array(BN_BETA) if d == 3 else np.zeros(d)) if beta is None else beta
    bn_inputs(x, gamma, beta, eps)
    n = x.shape[0]
    if dy is None:
        dy = np.array(BN_DY) if x.shape == (4, 3) else np.random.default_rng(0).normal(size=x.shape).round(2)
    if dy.shape != x.shape:
        raise ExplainError(f"dy: expected the shape of x {x.shape}, got {dy.shape}")
    _, c = batchnorm.forward(x, gamma, beta, training=True, eps=eps)
    s = batchnorm.backward_steps(dy, c)
    mu, var, x_hat = c["mu"], c["var"], c["x_hat"]

    # the oracle: the same forward in torch, every stage kept for its gradient
    xt = torch.tensor(x, requires_grad=True)
    gt, bt = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    mu_t = xt.mean(0)
    mu_t.retain_grad()
    var_t = ((xt - mu_t) ** 2).mean(0)
    var_t.retain_grad()
    xh_t = (xt - mu_t) / torch.sqrt(var_t + eps)
    xh_t.retain_grad()
    (((gt * xh_t + bt) * torch.tensor(dy)).sum()).backward()
    ref = {"dgamma": gt.grad, "dbeta": bt.grad, "dx_hat": xh_t.grad, "dvar": var_t.grad, "dmu": mu_t.grad,
           "dx": xt.grad}

    e = Explanation(f"Batch norm, backward (training): N={n}, D={x.shape[1]}, eps={eps:g}", digits=digits)
    if (note := eps_note(x, eps)) is not None:
        e.para(note)
    e.para("Ioffe & Szegedy (2015), section 3: the chain rule through x_hat, var and mu. dy = dL/dy is given; "
           "sums run over the batch i = 1..N, per feature.")
    e.mat("x", "x", x)
    e.mat("gamma", r"\gamma", gamma)
    e.mat("dy", r"\frac{\partial L}{\partial y}", dy)
    e.heading("Forward values used")
    e.mat("mu", r"\mu", mu)
    e.mat("var", r"\sigma^2", var)
    e.mat("x_hat", r"\hat{x}", x_hat)
    steps: list[tuple[str, str, str, str]] = [
        ("dbeta", "dbeta_j = sum_i dy_ij",
         r"\frac{\partial L}{\partial \beta_j} = \sum_i \frac{\partial L}{\partial y_{ij}}",
         r"\frac{\partial L}{\partial \beta}"),
        ("dgamma", "dgamma_j = sum_i dy_ij * x_hat_ij",
         r"\frac{\partial L}{\partial \gamma_j} = \sum_i \frac{\partial L}{\partial y_{ij}} \hat{x}_{ij}",
         r"\frac{\partial L}{\partial \gamma}"),
        ("dx_hat", "dx_hat_ij = dy_ij * gamma_j",
         r"\frac{\partial L}{\partial \hat{x}_{ij}} = \frac{\partial L}{\partial y_{ij}} \gamma_j",
         r"\frac{\partial L}{\partial \hat{x}}"),
        ("dvar", "dvar_j = sum_i dx_hat_ij * (x_ij - mu_j) * (-1/2) * (var_j + eps)^(-3/2)",
         r"\frac{\partial L}{\partial \sigma^2_j} = \sum_i \frac{\partial L}{\partial \hat{x}_{ij}} (x_{ij} - \mu_j)"
         r" \cdot \left(-\tfrac{1}{2}\right) (\sigma^2_j + \epsilon)^{-3/2}",
         r"\frac{\partial L}{\partial \sigma^2}"),
        ("dmu", "dmu_j = sum_i dx_hat_ij * (-1 / sqrt(var_j + eps)) + dvar_j * (1/N) sum_i -2 (x_ij - mu_j)",
         r"\frac{\partial L}{\partial \mu_j} = \sum_i \frac{\partial L}{\partial \hat{x}_{ij}} "
         r"\frac{-1}{\sqrt{\sigma^2_j + \epsilon}} + \frac{\partial L}{\partial \sigma^2_j} "
         r"\frac{1}{N} \sum_i -2(x_{ij} - \mu_j)",
         r"\frac{\partial L}{\partial \mu}"),
        ("dx", "dx_ij = dx_hat_ij / sqrt(var_j + eps) + dvar_j * 2 (x_ij - mu_j) / N + dmu_j / N",
         r"\frac{\partial L}{\partial x_{ij}} = \frac{\partial L}{\partial \hat{x}_{ij}} "
         r"\frac{1}{\sqrt{\sigma^2_j + \epsilon}} + \frac{\partial L}{\partial \sigma^2_j} \frac{2(x_{ij} - \mu_j)}{N}"
         r" + \frac{\partial L}{\partial \mu_j} \frac{1}{N}",
         r"\frac{\partial L}{\partial x}"),
    ]
    for key, plain, latex, lname in steps:
        e.heading(key)
        e.eq(plain, latex)
        if key == "dvar":
            e.para("Note the power -3/2: d/dvar of (var + eps)^(-1/2) is -1/2 (var + eps)^(-3/2).")
        if key == "dmu":
            e.para("The second term is zero, since sum_i (x_ij - mu_j) = 0.",
                   r"The second term is zero, since $\sum_i (x_{ij} - \mu_j) = 0$.")
        e.mat(key, lname, s[key])
        e.check(f"{key} against torch autograd", scaled_error(s[key], ref[key].numpy()))  # type: ignore[union-attr]
    compact = (gamma / (n * np.sqrt(var + eps))) * (n * dy - dy.sum(0) - x_hat * (dy * x_hat).sum(0))
    e.heading("Compact form")
    e.eq("dx = gamma / (N sqrt(var + eps)) * (N dy - sum_i dy_i - x_hat * sum_i dy_i x_hat_i)",
         r"\frac{\partial L}{\partial x} = \frac{\gamma}{N\sqrt{\sigma^2 + \epsilon}}\left(N\,dy - \sum_i dy_i"
         r" - \hat{x} \odot \sum_i dy_i \hat{x}_i\right)")
    e.check("compact dx equals the step-by-step dx", scaled_error(compact, s["dx"]))
    e.values = dict(s)
    return e
