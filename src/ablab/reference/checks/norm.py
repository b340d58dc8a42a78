"""Checks of layer norm, group norm and adaptive average pooling against torch autograd (float64) and
finite differences: affine and not, 1-d to 3-d samples, groups of one channel up to all channels,
adaptive windows that divide the input and windows that differ in size (and overlap)."""

from __future__ import annotations

from typing import Any

from ablab.reference import norm, pool
from ablab.reference.checks.base import _check, _rng, register
from ablab.reference.gradcheck import CheckResult


def _layer_norm(shape: tuple[int, ...], affine: bool) -> None:
    label = f"x{shape} affine={affine}".replace(" (", "(").replace(", ", ",")

    @register("layernorm", label)
    def _() -> CheckResult:
        import torch.nn.functional as F

        rng = _rng("ln" + label)
        inp: dict[str, Any] = {"x": rng.normal(1.0, 2.0, size=shape)}
        if affine:
            inp.update(gamma=rng.normal(size=shape[1:]), beta=rng.normal(size=shape[1:]))

        def t_fwd(x: Any, gamma: Any = None, beta: Any = None) -> Any:
            return F.layer_norm(x, shape[1:], gamma, beta, 1e-5)

        return _check(label, lambda **kw: norm.layer_forward(**kw, eps=1e-5), norm.layer_backward, t_fwd, inp,
                      list(inp))


_layer_norm((3, 5), True)
_layer_norm((2, 3, 4), True)
_layer_norm((2, 2, 3, 3), True)
_layer_norm((2, 2, 3, 3), False)


def _group_norm(shape: tuple[int, ...], groups: int, affine: bool) -> None:
    label = f"x{shape} groups={groups} affine={affine}".replace(" (", "(").replace(", ", ",")

    @register("groupnorm", label)
    def _() -> CheckResult:
        import torch.nn.functional as F

        rng = _rng("gn" + label)
        c = shape[1]
        inp: dict[str, Any] = {"x": rng.normal(-1.0, 3.0, size=shape)}
        if affine:
            inp.update(gamma=rng.normal(size=c), beta=rng.normal(size=c))

        def t_fwd(x: Any, gamma: Any = None, beta: Any = None) -> Any:
            return F.group_norm(x, groups, gamma, beta, 1e-5)

        return _check(label, lambda **kw: norm.group_forward(groups=groups, **kw, eps=1e-5), norm.group_backward,
                      t_fwd, inp, list(inp))


_group_norm((2, 6, 3, 3), 2, True)
_group_norm((2, 6, 3, 3), 6, True)  # one channel per group: instance norm
_group_norm((3, 4, 5), 1, True)  # one group: layer norm with per-channel affine
_group_norm((4, 6), 3, False)


def _adaptive(spatial: tuple[int, int], out: Any) -> None:
    label = f"in=2x{spatial[0]}x{spatial[1]} out={out}".replace(" (", "(").replace(", ", ",")

    @register("adaptiveavgpool2d", label)
    def _() -> CheckResult:
        import torch.nn.functional as F

        x = _rng("aap" + label).normal(size=(2, 3, *spatial))
        return _check(label, lambda x: pool.adaptive_avg_forward(x, out), pool.adaptive_avg_backward,
                      lambda x: F.adaptive_avg_pool2d(x, out), {"x": x}, ["x"])


_adaptive((6, 6), 2)  # windows of 3: ordinary average pooling
_adaptive((7, 5), (3, 2))  # unequal, overlapping windows
_adaptive((5, 5), 1)  # global average pooling
_adaptive((3, 4), (5, 6))  # more outputs than inputs: windows repeat
