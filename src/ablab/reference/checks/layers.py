"""Checks of the layers: linear, conv (im2col and the matrix), pooling, batch norm, dropout,
activations, each parametrised over shapes, kernel, stride, padding, dilation and groups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ablab.reference import activations, batchnorm, conv, dropout, linear, pool
from ablab.reference.checks.base import _check, _fmt_pad, _rng, register
from ablab.reference.gradcheck import CheckResult, scaled_error

# ------------------------------------------------------------------------------------- linear


def _linear(shape: tuple[int, ...], out: int, bias: bool) -> None:
    label = f"x{shape} out={out} bias={bias}".replace(" ", "")

    @register("linear", label)
    def _() -> CheckResult:
        import torch.nn.functional as F

        rng = _rng(label)
        inp = {"x": rng.normal(size=shape), "w": rng.normal(size=(out, shape[-1]))}
        if bias:
            inp["b"] = rng.normal(size=out)
        return _check(label, linear.forward, linear.backward, lambda x, w, b=None: F.linear(x, w, b), inp,
                      list(inp))


_linear((4, 3), 5, True)
_linear((2, 3, 4), 2, False)


# --------------------------------------------------------------------------------------- conv

ConvCfg = tuple[int, int, tuple[int, ...], Any, Any, Any, Any, int]  # C, O, spatial, k, s, pad, d, g
CONV_CASES: list[ConvCfg] = [
    (3, 4, (6, 6), 3, 1, 0, 1, 1),
    (2, 3, (7, 6), 3, 2, 1, 1, 1),
    (4, 6, (7, 8), (3, 2), (2, 1), ((1, 2), (0, 1)), (2, 1), 2),  # asymmetric pairs, dilation, groups
    (4, 4, (5, 5), 3, 1, 1, 1, 4),  # depthwise
    (2, 2, (6, 7), 2, 3, ((0, 1), (1, 0)), 1, 1),  # stride > kernel: some inputs unused
    (2, 3, (9,), 3, 1, 1, 1, 1),
    (4, 4, (10,), 3, 2, ((2, 1),), 2, 2),
    (3, 6, (8,), 1, 1, 0, 1, 3),
]


def _torch_conv(nd: int, stride: Any, padding: Any, dilation: Any, groups: int) -> Callable[..., Any]:
    import torch.nn.functional as F

    pairs = conv.pad_pairs(padding, nd)
    flat = [v for pair in reversed(pairs) for v in pair]  # F.pad wants the last axis first

    def fn(x: Any, w: Any, b: Any = None) -> Any:
        f = F.conv2d if nd == 2 else F.conv1d
        return f(F.pad(x, flat), w, b, stride, 0, dilation, groups)

    return fn


def _conv(cfg: ConvCfg, how: str) -> None:
    c, o, spatial, k, s, p, d, g = cfg
    nd = len(spatial)
    label = f"{how} in={c}x{'x'.join(map(str, spatial))} out={o} k={k} s={s} p={_fmt_pad(p)} d={d} g={g}"
    label = label.replace(" (", "(").replace(", ", ",")

    @register(f"conv{nd}d", label)
    def _() -> CheckResult:
        rng = _rng(label)
        ks = conv.ntuple(k, nd)
        inp = {"x": rng.normal(size=(2, c, *spatial)), "w": rng.normal(size=(o, c // g, *ks)),
               "b": rng.normal(size=o)}
        fwd, bwd = (conv.forward, conv.backward) if how == "im2col" else (conv.matrix_forward,
                                                                          conv.matrix_backward)

        def np_fwd(x: Any, w: Any, b: Any) -> Any:
            return fwd(x, w, b, s, p, d, g)

        return _check(label, np_fwd, bwd, _torch_conv(nd, s, p, d, g), inp, ["x", "w", "b"])


for _cfg in CONV_CASES:
    _conv(_cfg, "im2col")
    _conv(_cfg, "matrix")


@register("conv2d", "A^T g = transposed conv = rot180 conv, k=3 s=2 p=(1,2),(0,1) d=2 g=2")
def _conv_transpose() -> CheckResult:
    """``A^T g`` three ways: the matrix, ``torch.conv_transpose2d``, and the rotated-kernel convolution."""
    import torch
    import torch.nn.functional as F

    rng = _rng("transpose")
    s, p, d, g = (2, 1), ((1, 2), (0, 1)), (2, 1), 2
    x = rng.normal(size=(1, 4, 7, 8))
    w = rng.normal(size=(6, 2, 3, 2))
    a = conv.matrix(w, x.shape[1:], s, p, d, g)
    y, _ = conv.forward(x, w, None, s, p, d, g)
    gy = rng.normal(size=y.shape)
    at_g = (a.T @ gy.ravel()).reshape(x.shape)
    rot = conv.transposed_as_conv(gy, w, x.shape[1:], s, p, d, g)
    # conv_transpose2d on the padded input size, then crop the forward padding
    full = F.conv_transpose2d(torch.tensor(gy), torch.tensor(w), None, s, 0, 0, g, d)
    hp, wp = 7 + 3, 8 + 1
    full = F.pad(full, (0, wp - full.shape[3], 0, hp - full.shape[2]))[:, :, 1:8, 0:8]
    return CheckResult("transpose", scaled_error(at_g, full.numpy()),
                       autograd={"rot180 conv": scaled_error(rot, at_g)})


# --------------------------------------------------------------------------------------- pool

PoolCfg = tuple[str, tuple[int, ...], Any, Any, Any, bool]  # op, spatial, k, s, pad, ceil
POOL_CASES: list[PoolCfg] = [
    ("max", (6, 6), 2, 2, 0, False),
    ("max", (7, 7), 3, 2, 1, False),
    ("max", (6, 7), 3, 2, 1, True),
    ("max", (5, 7), (2, 3), (1, 2), 0, False),
    ("max", (9,), 3, 2, 1, False),
    ("avg", (6, 6), 2, 2, 0, False),
    ("avg", (7, 7), 3, 2, 1, False),
    ("avg", (6, 7), 3, 2, 1, True),
    ("avg", (10,), 4, 3, 2, True),
]


def _pool(cfg: PoolCfg) -> None:
    op, spatial, k, s, p, ceil = cfg
    nd = len(spatial)
    label = f"in=2x{'x'.join(map(str, spatial))} k={k} s={s} p={p} ceil={ceil}".replace(" (", "(").replace(", ", ",")

    @register(f"{op}pool{nd}d", label)
    def _() -> CheckResult:
        import torch.nn.functional as F

        rng = _rng(op + label)
        fwd, bwd = (pool.max_forward, pool.max_backward) if op == "max" else (pool.avg_forward, pool.avg_backward)
        table: dict[tuple[str, int], Any] = {("max", 1): F.max_pool1d, ("max", 2): F.max_pool2d,
                                             ("avg", 1): F.avg_pool1d, ("avg", 2): F.avg_pool2d}
        tf = table[(op, nd)]
        return _check(label, lambda x: fwd(x, k, s, p, ceil), bwd,
                      lambda x: tf(x, k, s, p, ceil_mode=ceil), {"x": rng.normal(size=(2, 2, *spatial))}, ["x"])


for _pcfg in POOL_CASES:
    _pool(_pcfg)


# ---------------------------------------------------------------------------------- batch norm


def _bn(shape: tuple[int, ...], training: bool) -> None:
    label = f"x{shape} {'train' if training else 'eval'}".replace(" (", "(").replace(", ", ",")

    @register("batchnorm", label)
    def _() -> CheckResult:
        import torch.nn.functional as F

        rng = _rng(label)
        c = shape[1]
        inp = {"x": rng.normal(1.0, 2.0, size=shape), "gamma": rng.normal(size=c), "beta": rng.normal(size=c),
               "rm": rng.normal(size=c), "rv": rng.uniform(0.5, 2.0, size=c)}

        def np_fwd(x: Any, gamma: Any, beta: Any, rm: Any, rv: Any) -> Any:
            return batchnorm.forward(x, gamma, beta, rm, rv, training=training, momentum=0.1, eps=1e-5)

        def t_fwd(x: Any, gamma: Any, beta: Any, rm: Any, rv: Any) -> Any:
            return F.batch_norm(x, rm.clone(), rv.clone(), gamma, beta, training, 0.1, 1e-5)

        return _check(label, np_fwd, batchnorm.backward, t_fwd, inp, ["x", "gamma", "beta"])


_bn((4, 3, 3, 2), True)
_bn((5, 4), True)
_bn((3, 2, 4), True)
_bn((4, 3, 3, 2), False)


@register("batchnorm", "running stats, 3 steps, momentum=0.3")
def _bn_running() -> CheckResult:
    """Running mean and variance after three training steps, against ``nn.BatchNorm2d``'s buffers."""
    import torch

    rng = _rng("running")
    bn_t = torch.nn.BatchNorm2d(3, momentum=0.3).double()
    rm, rv = np.zeros(3), np.ones(3)
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    with torch.no_grad():
        bn_t.weight.copy_(torch.tensor(gamma))
        bn_t.bias.copy_(torch.tensor(beta))
    err_y = 0.0
    for _ in range(3):
        x = rng.normal(2.0, 3.0, size=(4, 3, 2, 2))
        y, _c = batchnorm.forward(x, gamma, beta, rm, rv, training=True, momentum=0.3)
        err_y = max(err_y, scaled_error(y, bn_t(torch.tensor(x)).detach().numpy()))
    assert bn_t.running_mean is not None and bn_t.running_var is not None
    return CheckResult("running", err_y, autograd={"running_mean": scaled_error(rm, bn_t.running_mean.numpy()),
                                                   "running_var": scaled_error(rv, bn_t.running_var.numpy())})


# ------------------------------------------------------------------------------------- dropout


@register("dropout", "p=0.3, PyTorch's own mask")
def _dropout() -> CheckResult:
    """Replay the mask PyTorch drew (seeded), then compare output and gradient."""
    import torch
    import torch.nn.functional as F

    p = 0.3
    x = _rng("dropout").uniform(0.5, 2.0, size=(4, 6))  # nonzero, so the mask is visible in the output

    def t_fwd(x: Any) -> Any:
        torch.manual_seed(7)
        return F.dropout(x, p, training=True)

    mask = (t_fwd(torch.tensor(x)).numpy() != 0).astype(np.float64)
    return _check("dropout", lambda x: dropout.forward(x, p, mask=mask), dropout.backward, t_fwd, {"x": x}, ["x"])


# --------------------------------------------------------------------------------- activations


def _act(name: str, shape: tuple[int, ...], **kw: Any) -> None:
    label = f"x{shape}{''.join(f' {k}={v}' for k, v in kw.items())}".replace(" (", "(").replace(", ", ",")

    @register(name, label)
    def _() -> CheckResult:
        import torch
        import torch.nn.functional as F

        tf: dict[str, Callable[..., Any]] = {
            "relu": lambda x: F.relu(x), "leaky_relu": lambda x: F.leaky_relu(x, kw["negative_slope"]),
            "sigmoid": lambda x: torch.sigmoid(x), "tanh": lambda x: torch.tanh(x), "gelu": lambda x: F.gelu(x),
            "softmax": lambda x: torch.softmax(x, dim=1)}
        fwd, bwd = activations.ACTIVATIONS[name]
        x = _rng(name + label).normal(0.0, 2.0, size=shape)
        return _check(label, lambda x: fwd(x, **kw), bwd, tf[name], {"x": x}, ["x"])


for _name in ("relu", "sigmoid", "tanh", "gelu"):
    _act(_name, (3, 5))
_act("leaky_relu", (3, 5), negative_slope=0.2)
_act("softmax", (4, 5))
_act("softmax", (2, 3, 4))
