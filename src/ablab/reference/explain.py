"""Worked examples with every intermediate value, as plain text or as Markdown with LaTeX a student can
paste into a report. Each ``explain_*`` function computes with the NumPy reference code, checks the
result against PyTorch autograd (float64) on the spot, and returns an ``Explanation``: the numbers
(``values``), the checks, and a document that renders to either format.

* ``bn_forward`` / ``bn_backward`` — Ioffe & Szegedy (2015), Algorithm 1 and section 3;
* ``conv_matrix`` — convolution as ``y = A x``; backward ``A^T g`` = transposed convolution
  (Dumoulin & Visin 2016, section 4);
* ``graph`` — backprop through a small scalar network (``reference.autodiff``);
* ``collapse`` — stacked linear layers without nonlinearity are one affine map;
* ``activation`` — derivative identities of the activations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ablab.errors import UserError
from ablab.reference import batchnorm, conv
from ablab.reference._util import Array
from ablab.reference.gradcheck import scaled_error

TOL = 1e-10  # scaled error allowed against torch autograd (float64)


class ExplainError(UserError, ValueError):
    """Bad input to a worked example; the message names the flag or key and what was expected."""


# ---------------------------------------------------------------------------------------- document


@dataclass
class Explanation:
    """A worked example: blocks that render to text or Markdown, the numbers, and the checks."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    checks: list[tuple[str, float, float]] = field(default_factory=list)  # (what, error, tolerance)
    digits: int = 6

    @property
    def ok(self) -> bool:
        return all(err <= tol for _, err, tol in self.checks)

    # builders ------------------------------------------------------------------------------
    def heading(self, text: str) -> None:
        self.blocks.append(("heading", text))

    def para(self, text: str, latex: str | None = None) -> None:
        self.blocks.append(("para", (text, latex if latex is not None else text)))

    def eq(self, plain: str, latex: str) -> None:
        self.blocks.append(("eq", (plain, latex)))

    def mat(self, name: str, latex_name: str, value: Any) -> None:
        """A scalar, vector or matrix of numbers (or of strings, e.g. symbolic weights)."""
        self.blocks.append(("mat", (name, latex_name, value)))

    def check(self, what: str, err: float, tol: float = TOL) -> None:
        self.checks.append((what, err, tol))
        self.blocks.append(("check", (what, err, tol)))

    # rendering -----------------------------------------------------------------------------
    def num(self, v: Any) -> str:
        if isinstance(v, str):
            return v
        v = float(v)
        if v == 0:
            return "0"
        return f"{v:.{self.digits}g}"

    def render(self, fmt: str = "text") -> str:
        if fmt not in ("text", "markdown"):
            raise ExplainError(f"--format: expected 'text' or 'markdown', got {fmt!r}")
        return self._text() if fmt == "text" else self._markdown()

    def _cells(self, value: Any) -> list[list[str]]:
        a = np.asarray(value, dtype=object)
        if a.ndim == 0:
            return [[self.num(a.item())]]
        if a.ndim == 1:
            return [[self.num(v) for v in a]]
        return [[self.num(v) for v in row] for row in a.reshape(a.shape[0], -1)]

    def _text(self) -> str:
        out = [self.title, "=" * len(self.title), ""]
        for i, (kind, body) in enumerate(self.blocks):
            if kind == "heading":
                out += [body, "-" * len(body)]
            elif kind == "para":  # consecutive paragraphs stay together, like a derivation
                nxt = self.blocks[i + 1][0] if i + 1 < len(self.blocks) else ""
                out += [body[0]] + ([""] if nxt != "para" else [])
            elif kind == "eq":
                out += ["    " + body[0], ""]
            elif kind == "mat":
                name, _, value = body
                cells = self._cells(value)
                if np.asarray(value, dtype=object).ndim <= 1:
                    inner = ", ".join(cells[0])
                    out += [f"{name} = {inner if len(cells[0]) == 1 and np.ndim(value) == 0 else '[' + inner + ']'}",
                            ""]
                else:
                    width = max(len(c) for row in cells for c in row)
                    out.append(f"{name} =")
                    out += ["  [ " + "  ".join(c.rjust(width) for c in row) + " ]" for row in cells]
                    out.append("")
            elif kind == "check":
                what, err, tol = body
                mark = "ok" if err <= tol else "FAILED"
                out += [f"check: {what}: max error {err:.1e} (tolerance {tol:.0e}) {mark}", ""]
        return "\n".join(out).rstrip() + "\n"

    def _markdown(self) -> str:
        out = [f"### {self.title}", ""]
        for kind, body in self.blocks:
            if kind == "heading":
                out += [f"**{body}**", ""]
            elif kind == "para":
                out += [body[1], ""]
            elif kind == "eq":
                out += ["$$", body[1], "$$", ""]
            elif kind == "mat":
                _, lname, value = body
                cells = [[_tex_cell(c) for c in row] for row in self._cells(value)]
                nd = np.asarray(value, dtype=object).ndim
                if nd == 0:
                    out += [f"${lname} = {cells[0][0]}$", ""]
                else:
                    rows = cells if nd == 2 else cells  # a vector prints as one row
                    inner = r" \\ ".join(" & ".join(row) for row in rows)
                    out += ["$$", f"{lname} = \\begin{{bmatrix}} {inner} \\end{{bmatrix}}", "$$", ""]
            elif kind == "check":
                what, err, tol = body
                mark = "✅" if err <= tol else "❌"
                out += [f"- {mark} {what}: max error {err:.1e} (tolerance {tol:.0e})", ""]
        return "\n".join(out).rstrip() + "\n"


def _tex_cell(c: str) -> str:
    """``w[0,1,2]`` -> ``w_{0,1,2}``; numbers in scientific notation -> ``\\times 10^{}``."""
    if "[" in c and c.endswith("]"):
        base, idx = c[:-1].split("[", 1)
        return f"{base}_{{{idx}}}"
    if "e" in c and c.replace("e", "").replace("-", "").replace("+", "").replace(".", "").isdigit():
        mant, exp = c.split("e")
        return f"{mant} \\times 10^{{{int(exp)}}}"
    return c


def _tex_vec(name: str) -> str:
    return {"mu": r"\mu", "var": r"\sigma^2", "gamma": r"\gamma", "beta": r"\beta"}.get(name, name)


# ------------------------------------------------------------------------------------- input parsing


def parse_matrix(text: str, flag: str) -> Array:
    """``"1,2;3,4"`` -> 2x2 (rows by ``;``, values by ``,`` or spaces); errors name the flag."""
    rows = [r for r in text.strip().split(";") if r.strip()]
    if not rows:
        raise ExplainError(f"{flag}: expected numbers like '1,2;3,4' (rows separated by ';'), got {text!r}")
    out = []
    for i, r in enumerate(rows, start=1):
        try:
            out.append([float(v) for v in r.replace(",", " ").split()])
        except ValueError:
            raise ExplainError(f"{flag}: row {i} ({r.strip()!r}) is not a list of numbers") from None
        if len(out[-1]) != len(out[0]):
            raise ExplainError(f"{flag}: row {i} has {len(out[-1])} values, row 1 has {len(out[0])}")
    a = np.array(out)
    if not np.all(np.isfinite(a)):
        raise ExplainError(f"{flag}: values must be finite")
    return a


def parse_vector(text: str, flag: str) -> Array:
    a = parse_matrix(text, flag)
    if a.shape[0] != 1:
        raise ExplainError(f"{flag}: expected one row of numbers like '1,0.5,2', got {a.shape[0]} rows")
    return a[0]


def as_array(value: Any, key: str, ndim: int) -> Array:
    """A JSON value (nested lists) or flag string as a float array of the given rank."""
    if isinstance(value, str):
        a = parse_matrix(value, key) if ndim == 2 else parse_vector(value, key)
    else:
        try:
            a = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ExplainError(f"{key}: expected {'a matrix (list of rows)' if ndim == 2 else 'a list'} "
                               f"of numbers, got {value!r}") from None
    if a.ndim != ndim:
        raise ExplainError(f"{key}: expected a {'matrix' if ndim == 2 else 'vector'}, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ExplainError(f"{key}: values must be finite")
    return a


# --------------------------------------------------------------------------------------- batch norm

BN_X = [[1.0, 2.0, -1.0], [3.0, 0.0, 0.5], [2.0, 4.0, 1.5], [6.0, 2.0, -1.0]]
BN_GAMMA = [1.0, 0.5, 2.0]
BN_BETA = [0.0, 1.0, -1.0]
BN_DY = [[0.1, -0.2, 0.3], [0.4, 0.1, -0.5], [-0.3, 0.2, 0.1], [0.2, -0.1, 0.2]]


def _bn_inputs(x: Array, gamma: Array, beta: Array, eps: float) -> None:
    if x.ndim != 2 or x.shape[0] < 2:
        raise ExplainError(f"x: expected a batch matrix N x D with N >= 2 rows, got shape {x.shape}")
    d = x.shape[1]
    for name, v in (("gamma", gamma), ("beta", beta)):
        if v.shape != (d,):
            raise ExplainError(f"{name}: expected {d} values (one per column of x), got {v.size}")
    if not eps > 0:
        raise ExplainError(f"eps: expected a positive number, got {eps}")


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
    _bn_inputs(x, gamma, beta, eps)
    if not 0 <= momentum <= 1:
        raise ExplainError(f"momentum: expected a number in [0, 1], got {momentum}")
    n, d = x.shape
    rm, rv = np.zeros(d), np.ones(d)
    y, c = batchnorm.forward(x, gamma, beta, rm, rv, training=True, momentum=momentum, eps=eps)
    e = Explanation(f"Batch norm, forward (training): N={n} samples, D={d} features, eps={eps:g}", digits=digits)
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
    yt = F.batch_norm(torch.tensor(x), trm, trv, torch.tensor(gamma), torch.tensor(beta), True, momentum, eps)
    e.check("y against torch.nn.functional.batch_norm", scaled_error(y, yt.numpy()))
    e.check("running_mean, running_var against PyTorch's buffers",
            max(scaled_error(rm, trm.numpy()), scaled_error(rv, trv.numpy())))
    e.values = {"mu": c["mu"], "var": c["var"], "x_hat": c["x_hat"], "y": y, "running_mean": rm,
                "running_var": rv}
    return e


def bn_backward(x: Array | None = None, gamma: Array | None = None, beta: Array | None = None,
                dy: Array | None = None, eps: float = 1e-5, digits: int = 6) -> Explanation:
    """Batch norm backward (training): each of dgamma, dbeta, dx_hat, dvar, dmu, dx, checked against
    torch autograd on the same computation written step by step (``retain_grad`` on each stage)."""
    import torch

    x = np.array(BN_X) if x is None else x
    d = x.shape[1] if x.ndim == 2 else 0
    gamma = (np.array(BN_GAMMA) if d == 3 else np.ones(d)) if gamma is None else gamma
    beta = (np.array(BN_BETA) if d == 3 else np.zeros(d)) if beta is None else beta
    _bn_inputs(x, gamma, beta, eps)
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


# ------------------------------------------------------------------------------------ conv as matrix

MAX_PRINT = 40  # the symbolic matrix A is printed only up to this many rows and columns


@dataclass
class ConvConfig:
    """One convolution layer on one input sample, as the spec grammar writes it."""

    layer: str  # e.g. "conv(1,2)" or "conv1d(2,3,s=2,p=(1,0))"
    input_shape: tuple[int, ...]  # (C, H, W) or (C, L)


def _resolve_conv(cfg: ConvConfig) -> Any:
    from ablab.calc.shapes import resolve
    from ablab.spec import Spec, SpecError, _ConvBase, parse_spec

    try:
        spec = parse_spec(cfg.layer, source="layer")
    except SpecError as err:
        raise ExplainError(f"--layer: {err}") from None
    if len(spec.layers) != 1 or not isinstance(spec.layers[0], _ConvBase):
        raise ExplainError(f"--layer: expected one conv or conv1d layer like 'conv(2,3,s=2)', got {cfg.layer!r}")
    layer = spec.layers[0]
    if len(cfg.input_shape) != layer.ndim + 1:
        raise ExplainError(f"--input: {layer.kind} takes a {'CxHxW' if layer.ndim == 2 else 'CxL'} input, "
                           f"got {'x'.join(map(str, cfg.input_shape))}")
    try:
        (r,) = resolve(Spec(cfg.input_shape, (layer,)))
    except SpecError as err:
        raise ExplainError(f"--layer/--input: {err}") from None
    return r


def _index_names(shape: tuple[int, ...], base: str) -> list[str]:
    return [f"{base}[{','.join(map(str, ix))}]" for ix in np.ndindex(*shape)]


def conv_matrix(cfg: ConvConfig | None = None, w: Array | None = None, x: Array | None = None,
                g: Array | None = None, seed: int = 0, digits: int = 6) -> Explanation:
    """The unrolled matrix of a convolution with symbolic weights, and the numeric proof that the
    backward pass is ``A^T`` and that ``A^T g`` is a transposed convolution with rotated kernels."""
    import torch
    import torch.nn.functional as F

    cfg = cfg or ConvConfig("conv(1,2)", (1, 3, 3))
    r = _resolve_conv(cfg)
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
    else:
        e.para(f"A is {a.shape[0]} x {a.shape[1]}: too large to print (limit {MAX_PRINT}); "
               f"{int((idx >= 0).sum())} of its {idx.size} entries are weights, the rest are zeros.")
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


# ---------------------------------------------------------------------------------- scalar graph


def graph(source: Any = None, weight: str | None = None, lr: float | None = None, digits: int = 6) -> Explanation:
    """Backprop through a scalar graph, shown along every chain from ``weight`` to the loss."""
    import torch

    from ablab.reference import autodiff

    gr = source if isinstance(source, autodiff.Graph) else autodiff.parse_graph_text(autodiff.MAZUR_EXAMPLE,
                                                                                     "Mazur example")
    ev = autodiff.evaluate(gr)
    weight = weight or next(iter(gr.weights))
    if weight not in gr.weights:
        raise ExplainError(f"--weight: '{weight}' is not a weight of the graph (weights: {', '.join(gr.weights)})")
    e = Explanation(f"Backpropagation through a scalar graph: dL/d{weight}, L = {gr.loss}", digits=digits)
    e.para("Chain rule (Rumelhart, Hinton & Williams 1986): dL/dw is the sum over every path from w to L of the "
           "product of the local derivatives along it.")
    e.eq("dL/dw = sum over paths w -> n_1 -> ... -> L of  dL/dn_k * ... * dn_2/dn_1 * dn_1/dw",
         r"\frac{\partial L}{\partial w} = \sum_{w \to n_1 \to \cdots \to n_k \to L} "
         r"\frac{\partial L}{\partial n_k} \cdots \frac{\partial n_2}{\partial n_1} \frac{\partial n_1}{\partial w}")
    e.heading("Forward pass")
    for name, v in gr.leaves.items():
        e.para(f"{name} = {e.num(v)}   ({gr.kind_of(name)})", f"${name} = {e.num(v)}$ ({gr.kind_of(name)})")
    for n in gr.nodes:
        e.para(f"{n.name} = {n.formula} = {e.num(ev.values[n.name])}",
               f"${n.name} = \\texttt{{{n.formula.replace('_', chr(92) + '_')}}} = {e.num(ev.values[n.name])}$")
    e.heading(f"Backward pass for {weight}")
    paths = ev.paths(weight)
    total = 0.0
    for k, path in enumerate(paths, start=1):
        factors = [(path[i + 1], path[i], ev.local[path[i + 1]][path[i]]) for i in range(len(path) - 1)][::-1]
        e.para(f"path {k}: " + " -> ".join(path))
        for top, bottom, val in factors:
            e.para(f"  d{top}/d{bottom} = {e.num(val)}",
                   f"$\\frac{{\\partial {top}}}{{\\partial {bottom}}} = {e.num(val)}$")
        prod = math.prod(v for _, _, v in factors)
        total += prod
        e.para("  product: " + " * ".join(e.num(v) for _, _, v in factors) + f" = {e.num(prod)}",
               "product: $" + r" \times ".join(e.num(v) for _, _, v in factors) + f" = {e.num(prod)}$")
    e.para(f"dL/d{weight} = sum over {len(paths)} path(s) = {e.num(total)}",
           f"$\\frac{{\\partial {gr.loss}}}{{\\partial {weight}}} = {e.num(total)}$ (sum over {len(paths)} path(s))")
    e.check(f"path sum equals backprop's d{gr.loss}/d{weight}", abs(total - ev.grads[weight]) / max(1, abs(total)))
    # the oracle: the same formulas evaluated with torch tensors
    env: dict[str, Any] = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in gr.leaves.items()}
    leaves = dict(env)
    tf = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "exp": torch.exp, "log": torch.log}
    for n in gr.nodes:
        env[n.name] = autodiff.evaluate_formula(n.tree, env, tf)  # type: ignore[arg-type]
    env[gr.loss].backward()
    e.heading("All weight gradients")
    errs = []
    for name in gr.weights:
        gt = leaves[name].grad
        tval = 0.0 if gt is None else float(gt)
        errs.append(abs(tval - ev.grads[name]) / max(1.0, abs(tval)))
        e.para(f"dL/d{name} = {e.num(ev.grads[name])}",
               f"$\\frac{{\\partial {gr.loss}}}{{\\partial {name}}} = {e.num(ev.grads[name])}$")
    e.check("forward loss against torch", abs(env[gr.loss].item() - ev.values[gr.loss]))
    e.check("every weight gradient against torch autograd", max(errs))
    if lr is not None:
        new = gr.weights[weight] - lr * ev.grads[weight]
        e.heading("Gradient descent step")
        e.para(f"{weight} <- {weight} - lr * dL/d{weight} = {e.num(gr.weights[weight])} - {lr:g} * "
               f"{e.num(ev.grads[weight])} = {e.num(new)}")
        e.values["updated"] = new
    e.values.update({"values": ev.values, "grads": ev.grads, "paths": paths, "total": total})
    return e


# --------------------------------------------------------------------------------------- collapse


def collapse(layers: Sequence[tuple[Array, Array]] | None = None, sizes: Sequence[int] = (3, 4, 2),
             seed: int = 0, digits: int = 6) -> Explanation:
    """Linear layers with identity activations compose to one affine map ``W x + b``."""
    import torch

    if layers is None:
        if len(sizes) < 3 or any(s < 1 for s in sizes):
            raise ExplainError(f"--sizes: expected at least 3 positive widths (input, hidden..., output), got "
                               f"{','.join(map(str, sizes))}")
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


# ------------------------------------------------------------------------------------ activations

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
        raise ExplainError(f"--x: expected a list of numbers, got shape {x.shape}")
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
