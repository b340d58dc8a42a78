"""Worked example: an activation's values, derivative and identities, checked against autograd."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ablab.reference.explain.document import ExplainError, Explanation
from ablab.reference.gradcheck import scaled_error
from ablab.reference.windows import Array

ACTIVATION_NAMES = ("sigmoid", "tanh", "relu", "leaky_relu", "gelu", "softplus", "softmax")


def activation(name: str, x: Array | None = None, slope: float = 0.01, digits: int = 6) -> Explanation:
    """Values and derivatives of one activation at the points ``x``, with its identities checked."""
    import torch
    import torch.nn.functional as F

    from ablab.reference import activations as act

    name = name.lower().replace("-", "_")
    if name not in ACTIVATION_NAMES:
        raise ExplainError(f"activation: unknown name {name!r}; choose one of {', '.join(ACTIVATION_NAMES)}")
    x = np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0]) if x is None else np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ExplainError(f"x: expected a list of numbers, got shape {x.shape}")
    e = Explanation(f"Activation: {name}", digits=digits)
    if name == "softmax":
        return _softmax(e, x)
    torch_f: dict[str, Callable[[Any], Any]] = {
        "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
        "leaky_relu": lambda t: F.leaky_relu(t, slope), "gelu": F.gelu, "softplus": F.softplus}
    xt = torch.tensor(x, requires_grad=True)
    yt = torch_f[name](xt)
    yt.sum().backward()
    assert xt.grad is not None
    f_t, df_t = yt.detach().numpy(), xt.grad.numpy()
    sig = act.sigmoid
    # (plain formula of f, latex, f(x), plain f', latex f', f'(x) by the formula)
    defs: dict[str, tuple[str, str, Any, str, str, Any]] = {
        "sigmoid": ("sigma(x) = 1 / (1 + exp(-x))", r"\sigma(x) = \frac{1}{1 + e^{-x}}", sig(x),
                    "sigma'(x) = sigma(x) (1 - sigma(x))", r"\sigma'(x) = \sigma(x)\,(1 - \sigma(x))",
                    sig(x) * (1 - sig(x))),
        "tanh": ("tanh(x) = (e^x - e^-x) / (e^x + e^-x)", r"\tanh x = \frac{e^x - e^{-x}}{e^x + e^{-x}}", np.tanh(x),
                 "tanh'(x) = 1 - tanh(x)^2", r"\tanh'(x) = 1 - \tanh^2 x", 1 - np.tanh(x) ** 2),
        "relu": ("relu(x) = max(0, x)", r"\mathrm{relu}(x) = \max(0, x)", np.maximum(x, 0),
                 "relu'(x) = 1 if x > 0 else 0", r"\mathrm{relu}'(x) = \mathbb{1}[x > 0]", (x > 0) * 1.0),
        "leaky_relu": (f"f(x) = x if x > 0 else {slope:g} x", rf"f(x) = \max(x, {slope:g}\,x)",
                       np.where(x > 0, x, slope * x), f"f'(x) = 1 if x > 0 else {slope:g}",
                       rf"f'(x) = 1 \text{{ if }} x > 0 \text{{ else }} {slope:g}", np.where(x > 0, 1.0, slope)),
        "gelu": ("gelu(x) = x Phi(x), Phi = normal CDF", r"\mathrm{gelu}(x) = x\,\Phi(x)",
                 act.gelu_forward(x)[0], "gelu'(x) = Phi(x) + x phi(x)", r"\mathrm{gelu}'(x) = \Phi(x) + x\,\varphi(x)",
                 act.gelu_backward(np.ones_like(x), act.gelu_forward(x)[1])["x"]),
        "softplus": ("softplus(x) = log(1 + exp(x))", r"\mathrm{softplus}(x) = \log(1 + e^x)",
                     np.logaddexp(0, x), "softplus'(x) = sigma(x)", r"\mathrm{softplus}'(x) = \sigma(x)", sig(x)),
    }
    f_plain, f_tex, f_val, d_plain, d_tex, d_val = defs[name]
    e.eq(f_plain, f_tex)
    e.eq(d_plain, d_tex)
    e.mat("x", "x", x)
    e.mat("f(x)", "f(x)", f_val)
    e.mat("f'(x) by the formula", r"f'(x)", d_val)
    e.mat("f'(x) by torch autograd", r"f'(x)_{\text{autograd}}", df_t)
    e.check("f(x) against torch", scaled_error(f_val, f_t))
    e.check("f'(x) formula against torch autograd", scaled_error(d_val, df_t))
    identities: dict[str, list[tuple[str, str, Array, Array]]] = {
        "sigmoid": [("sigma(-x) = 1 - sigma(x)", r"\sigma(-x) = 1 - \sigma(x)", sig(-x), 1 - sig(x)),
                    ("sigma'(0) = 1/4 is the largest slope", r"\sigma'(0) = \tfrac14", sig(np.zeros(1)) *
                     (1 - sig(np.zeros(1))), np.array([0.25]))],
        "tanh": [("tanh(x) = 2 sigma(2x) - 1", r"\tanh x = 2\sigma(2x) - 1", np.tanh(x), 2 * sig(2 * x) - 1),
                 ("tanh'(x) = 4 sigma'(2x)", r"\tanh'(x) = 4\,\sigma'(2x)", 1 - np.tanh(x) ** 2,
                  4 * sig(2 * x) * (1 - sig(2 * x)))],
        "relu": [("relu(x) = (x + |x|) / 2", r"\mathrm{relu}(x) = \tfrac{x + |x|}{2}", np.maximum(x, 0),
                  (x + np.abs(x)) / 2), ("relu(x) = x relu'(x)", r"\mathrm{relu}(x) = x\,\mathrm{relu}'(x)",
                                         np.maximum(x, 0), x * (x > 0))],
        "leaky_relu": [("f(x) = x f'(x)", r"f(x) = x\,f'(x)", np.where(x > 0, x, slope * x),
                        x * np.where(x > 0, 1.0, slope))],
        "gelu": [("gelu(x) - gelu(-x) = x", r"\mathrm{gelu}(x) - \mathrm{gelu}(-x) = x",
                  act.gelu_forward(x)[0] - act.gelu_forward(-x)[0], x)],
        "softplus": [("softplus(x) - softplus(-x) = x", r"\mathrm{softplus}(x) - \mathrm{softplus}(-x) = x",
                      np.logaddexp(0, x) - np.logaddexp(0, -x), x),
                     ("softplus'(x) = sigma(x) = torch autograd", r"\mathrm{softplus}'(x) = \sigma(x)", sig(x), df_t)],
    }
    e.heading("Identities")
    for k, (plain, tex, lhs, rhs) in enumerate(identities[name], start=1):
        e.eq(plain, tex)
        e.mat(f"lhs {k}", r"\text{lhs}", lhs)
        e.mat(f"rhs {k}", r"\text{rhs}", rhs)
        e.check(plain, scaled_error(lhs, rhs))
    e.values = {"x": x, "f": f_val, "df": d_val, "df_autograd": df_t}
    return e


def _softmax(e: Explanation, z: Array) -> Explanation:
    import torch

    from ablab.reference.activations import softmax

    s = softmax(z[None], axis=1)[0]
    jac = np.diag(s) - np.outer(s, s)
    jt = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, 0), torch.tensor(z)).numpy()
    e.eq("s_i = exp(z_i) / sum_j exp(z_j)", r"s_i = \frac{e^{z_i}}{\sum_j e^{z_j}}")
    e.eq("ds_i/dz_j = s_i (delta_ij - s_j),  i.e.  J = diag(s) - s s^T",
         r"\frac{\partial s_i}{\partial z_j} = s_i(\delta_{ij} - s_j), \quad J = \mathrm{diag}(s) - s s^\top")
    e.mat("z", "z", z)
    e.mat("s", "s", s)
    e.mat("J", "J", jac)
    e.check("J against torch.autograd.functional.jacobian", scaled_error(jac, jt))
    e.heading("Identities")
    e.eq("sum_i s_i = 1, so every column of J sums to 0", r"\sum_i s_i = 1 \Rightarrow \sum_i J_{ij} = 0")
    e.check("sum of s is 1 and column sums of J are 0", max(abs(s.sum() - 1), float(np.abs(jac.sum(0)).max())))
    e.eq("softmax(z + c) = softmax(z)  (c = 10)", r"\mathrm{softmax}(z + c) = \mathrm{softmax}(z)")
    e.check("shift invariance", scaled_error(softmax(z[None] + 10.0, axis=1)[0], s))
    e.values = {"z": z, "s": s, "J": jac}
    return e
