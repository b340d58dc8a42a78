"""Max and average pooling, 1-d and 2-d: ``maxpool(k, stride, padding, ceil_mode=)``; the stride
defaults to the kernel, padding is symmetric and at most half the kernel, as in PyTorch. Average
pooling counts padded zeros in the average (``count_include_pad=True``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ablab.layers.base import Layer, ReferenceOp, Resolved, TorchMap, register_layer
from ablab.layers.conv import window_lint
from ablab.layers.placed import Conventions, Field, LayerCost, fmt_shape, pool_out, prod, window_recurrence
from ablab.layers.values import Padding, Pairs, Shape, SpecError, boolean, fmt, ntuple, padding


@dataclass(frozen=True)
class PoolNd(Layer):
    """Shared grammar and rules of the four pooling kinds (``ndim`` axes, ``op`` max or avg)."""

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...] = ()  # default: the kernel size, as in PyTorch
    padding: Padding = ()
    ceil_mode: bool = False

    ndim: ClassVar[int] = 2
    op: ClassVar[str] = "max"
    positional = ("kernel_size", "stride", "padding")
    keywords = {"k": "kernel_size", "kernel": "kernel_size", "s": "stride", "pad": "padding", "p": "padding",
                "ceil": "ceil_mode"}

    def __post_init__(self) -> None:
        n = self.ndim
        set_ = object.__setattr__
        set_(self, "kernel_size", ntuple(self.kernel_size, n, "kernel_size", 1))
        set_(self, "stride", ntuple(self.kernel_size if self.stride == () else self.stride, n, "stride", 1))
        pad = padding(0 if self.padding == () else self.padding, n)
        if pad == "same":
            raise SpecError("padding: pooling takes an integer or a tuple (or 'valid'), not 'same'")
        if pad == "valid":
            pad = tuple((0, 0) for _ in range(n))
        assert not isinstance(pad, str)
        if any(a != b for a, b in pad):
            raise SpecError(f"padding: pooling padding must be symmetric, got {fmt(pad)}")
        for (a, _), k in zip(pad, self.kernel_size, strict=True):
            if a > k // 2:
                raise SpecError(f"padding: pooling padding must be at most half the kernel ({k}), got {a}")
        set_(self, "padding", pad)
        boolean(self.ceil_mode, "ceil_mode")

    def place(self, shape: Shape, where: str) -> tuple[Shape, Pairs]:
        n = self.ndim
        if len(shape) != n + 1:
            raise SpecError(f"{where}: expects a {n + 1}-d input, got {fmt_shape(shape)}")
        pads: Pairs = self.padding  # type: ignore[assignment]  # normalized to pairs in __post_init__
        sizes = tuple(pool_out(s, k, st, p[0], self.ceil_mode) for s, k, st, p in
                      zip(shape[1:], self.kernel_size, self.stride, pads, strict=True))
        if any(x < 1 for x in sizes):
            raise SpecError(f"{where}: the pooling window {fmt_shape(self.kernel_size)} is larger than its "
                            f"input {fmt_shape(shape)}: the output size would be 0")
        return (shape[0], *sizes), pads

    def shape_lines(self, r: Resolved) -> list[str]:
        axes = ("H", "W") if self.ndim == 2 else ("L",)
        rnd = "ceil" if self.ceil_mode else "floor"
        return [f"{ax}: {rnd}(({n} + 2*{a} - {k}) / {s}) + 1 = {o}" for ax, n, o, k, s, (a, _) in
                zip(axes, r.in_shape[1:], r.out_shape[1:], self.kernel_size, self.stride, r.padding, strict=True)]

    def cost(self, r: Resolved, conv: Conventions) -> LayerCost:
        window, outputs = prod(self.kernel_size), prod(r.out_shape)
        if not conv.pooling:
            return LayerCost(explain=("no parameters, no MACs; FLOPs not counted (pooling convention off)",))
        per = window - 1 if self.op == "max" else window
        what = f"{window}-1 comparisons" if self.op == "max" else f"{window}-1 adds + 1 divide"
        flops = outputs * per
        return LayerCost(flops=flops, explain=(f"FLOPs = {outputs:,} outputs * ({what}) = {flops:,}",))

    def field(self, fld: Field, r: Resolved) -> tuple[Field | None, str]:
        return window_recurrence(fld, self.kernel_size, (1,) * self.ndim, self.stride, r.padding)

    def lint(self, r: Resolved) -> list[tuple[str, str]]:
        return window_lint(r, self.kernel_size, (1,) * self.ndim, self.stride)


_ARGS = {"kernel_size": "kernel_size", "stride": "stride", "padding": "pad", "ceil_mode": "ceil_mode"}
_MAX_REF = ReferenceOp("ablab.reference.pool:max_forward", "ablab.reference.pool:max_backward",
                       {"kernel": "kernel_size", "stride": "stride", "padding": "pad", "ceil_mode": "ceil_mode"})
_AVG_REF = ReferenceOp("ablab.reference.pool:avg_forward", "ablab.reference.pool:avg_backward", _MAX_REF.args)
_MAX_REQ = {"dilation": 1}  # torch.nn.MaxPool*d with dilation has no spec form
_AVG_REQ = {"count_include_pad": True, "divisor_override": None}


@register_layer("maxpool", torch=TorchMap("torch.nn.MaxPool2d", _ARGS, _MAX_REQ), reference=_MAX_REF)
@dataclass(frozen=True)
class MaxPool2d(PoolNd):
    """2-d max pooling (stride defaults to the kernel size)."""

    kind = "maxpool2d"


@register_layer("avgpool", torch=TorchMap("torch.nn.AvgPool2d", _ARGS, _AVG_REQ), reference=_AVG_REF)
@dataclass(frozen=True)
class AvgPool2d(PoolNd):
    """2-d average pooling; padded zeros count in the average (PyTorch's count_include_pad=True)."""

    kind = "avgpool2d"
    op = "avg"
    affine_at_inference = True


@register_layer(torch=TorchMap("torch.nn.MaxPool1d", _ARGS, _MAX_REQ), reference=_MAX_REF)
@dataclass(frozen=True)
class MaxPool1d(PoolNd):
    """1-d max pooling (stride defaults to the kernel size)."""

    kind = "maxpool1d"
    ndim = 1


@register_layer(torch=TorchMap("torch.nn.AvgPool1d", _ARGS, _AVG_REQ), reference=_AVG_REF)
@dataclass(frozen=True)
class AvgPool1d(PoolNd):
    """1-d average pooling; padded zeros count in the average."""

    kind = "avgpool1d"
    ndim = 1
    op = "avg"
    affine_at_inference = True
