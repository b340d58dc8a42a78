"""Convolution, 1-d and 2-d: ``conv(out, k, stride, padding, dilation=, groups=, bias=)``.

Output size per axis (Dumoulin & Visin 2016, relationship 15 with dilation)::

    out = floor((in + p_before + p_after - d*(k-1) - 1) / s) + 1

``padding=same`` is TensorFlow SAME (``out = ceil(in / s)``; the odd pixel of padding goes after),
which the builder realizes with an explicit zero pad when it is asymmetric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ablab.layers.base import Layer, ReferenceOp, Resolved, TorchMap, register_layer
from ablab.layers.placed import (
    Conventions,
    Field,
    LayerCost,
    Tensor,
    conv_out,
    fmt_shape,
    mul,
    prod,
    same_padding,
    window_recurrence,
)
from ablab.layers.values import Padding, Pairs, Shape, SpecError, boolean, ntuple, padding, size


@dataclass(frozen=True)
class ConvNd(Layer):
    """Shared grammar and rules of ``conv1d`` and ``conv2d`` (``ndim`` spatial axes)."""

    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...] = ()
    padding: Padding = ()
    dilation: tuple[int, ...] = ()
    groups: int = 1
    bias: bool = True

    ndim: ClassVar[int] = 2
    positional = ("out_channels", "kernel_size", "stride", "padding")
    keywords = {"out": "out_channels", "channels": "out_channels", "k": "kernel_size", "kernel": "kernel_size",
                "s": "stride", "pad": "padding", "p": "padding", "d": "dilation", "g": "groups"}
    weighted = True

    def __post_init__(self) -> None:
        n = self.ndim
        set_ = object.__setattr__
        size(self.out_channels, "out_channels")
        set_(self, "kernel_size", ntuple(self.kernel_size, n, "kernel_size", 1))
        set_(self, "stride", ntuple(1 if self.stride == () else self.stride, n, "stride", 1))
        set_(self, "padding", padding(0 if self.padding == () else self.padding, n))
        set_(self, "dilation", ntuple(1 if self.dilation == () else self.dilation, n, "dilation", 1))
        size(self.groups, "groups")
        if self.out_channels % self.groups:
            raise SpecError(f"groups: out_channels={self.out_channels} is not divisible by groups={self.groups}")
        boolean(self.bias, "bias")

    def place(self, shape: Shape, where: str) -> tuple[Shape, Pairs]:
        n = self.ndim
        if len(shape) != n + 1:
            raise SpecError(f"{where}: expects a {n + 1}-d input (C,{'H,W' if n == 2 else 'L'}), "
                            f"got {fmt_shape(shape)}" + ("; add flatten before linear layers, not before conv"
                                                         if len(shape) == 1 else ""))
        c, spatial = shape[0], shape[1:]
        if c % self.groups:
            raise SpecError(f"{where}: input channels {c} are not divisible by groups={self.groups}")
        if self.padding == "same":
            pads = tuple(same_padding(s, k, st, d) for s, k, st, d in
                         zip(spatial, self.kernel_size, self.stride, self.dilation, strict=True))
        elif self.padding == "valid":
            pads = tuple((0, 0) for _ in spatial)
        else:
            pads = tuple(self.padding)  # type: ignore[arg-type]
        sizes = tuple(conv_out(s, k, st, p, d) for s, k, st, p, d in
                      zip(spatial, self.kernel_size, self.stride, pads, self.dilation, strict=True))
        if any(x < 1 for x in sizes):
            eff = tuple((k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation, strict=True))
            padded = tuple(s + a + b for s, (a, b) in zip(spatial, pads, strict=True))
            raise SpecError(f"{where}: the (dilated) kernel {fmt_shape(eff)} is larger than its padded input "
                            f"{fmt_shape(padded)} (input {fmt_shape(shape)}): no output is left "
                            f"(size {fmt_shape(tuple(max(x, 0) for x in sizes))})")
        return (self.out_channels, *sizes), pads

    def shape_lines(self, r: Resolved) -> list[str]:
        axes = ("H", "W") if self.ndim == 2 else ("L",)
        lines = []
        for ax, n, o, k, s, d, (a, b) in zip(axes, r.in_shape[1:], r.out_shape[1:], self.kernel_size, self.stride,
                                              self.dilation, r.padding, strict=True):
            if self.padding == "same":
                eff = (k - 1) * d + 1
                lines.append(f"{ax}: SAME: out = ceil({n}/{s}) = {o}; padding = max(({o}-1)*{s} + {eff} - {n}, 0)"
                             f" = {a + b} -> ({a} before, {b} after)")
            else:
                lines.append(f"{ax}: floor(({n} + {a} + {b} - {d}*({k}-1) - 1) / {s}) + 1 = {o}")
        return lines

    def tensors(self, r: Resolved) -> tuple[Tensor, ...]:
        fan_in = (r.in_shape[0] // self.groups) * prod(self.kernel_size)
        w = Tensor("weight", (self.out_channels, r.in_shape[0] // self.groups, *self.kernel_size), "weight",
                   "fan_in", fan_in)
        return (w, Tensor("bias", (self.out_channels,), "bias", "fan_in", fan_in)) if self.bias else (w,)

    def cost(self, r: Resolved, conv: Conventions) -> LayerCost:
        c_in, g, k = r.in_shape[0], self.groups, self.kernel_size
        per_out = (c_in // g) * prod(k)  # one output element sees C_in/groups channels x the kernel
        weights = self.out_channels * per_out
        bias = self.out_channels if self.bias else 0
        outputs = prod(r.out_shape)
        lines = [f"params = {self.out_channels}*({c_in}/{g})*{mul(k)} weights" + (f" + {bias} bias" if bias else "")
                 + f" = {weights + bias:,}",
                 f"MACs = {mul(r.out_shape)} outputs * ({c_in}/{g})*{mul(k)} per output = "
                 f"{outputs:,} * {per_out:,} = {outputs * per_out:,}"]
        return dot_cost(weights, bias, outputs, per_out, conv, lines)

    def field(self, fld: Field, r: Resolved) -> tuple[Field | None, str]:
        return window_recurrence(fld, self.kernel_size, self.dilation, self.stride, r.padding)

    def lint(self, r: Resolved) -> list[tuple[str, str]]:
        return window_lint(r, self.kernel_size, self.dilation, self.stride)


def dot_cost(weights: int, bias: int, outputs: int, per_out: int, conv: Conventions, lines: list[str]) -> LayerCost:
    """Cost of a layer whose every output is a dot product of length ``per_out`` (conv, linear)."""
    macs = outputs * per_out
    terms, text = [], []
    if conv.dot == "2n":
        terms.append(2 * macs)
        text.append(f"2*{macs:,}")
    else:
        terms.append(2 * macs - outputs)
        text.append(f"(2*{per_out}-1)*{outputs:,}")
    if conv.bias and bias:
        terms.append(outputs)
        text.append(f"{outputs:,} bias adds")
    flops = sum(terms)
    lines.append(f"FLOPs = {' + '.join(text)} = {flops:,}")
    return LayerCost(params=weights + bias, bias=bias, macs=macs, flops=flops, explain=tuple(lines))


def window_lint(r: Resolved, kernel: tuple[int, ...], dilation: tuple[int, ...],
                stride: tuple[int, ...]) -> list[tuple[str, str]]:
    """A sliding window (conv, pooling) larger than its input, or a stride that leaves input unseen."""
    out = []
    spatial = r.in_shape[1:]
    eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    if any(e > n for e, n in zip(eff, spatial, strict=True)):
        out.append(("kernel-too-large", f"the kernel {fmt_shape(eff)} is larger than its input {fmt_shape(spatial)}: "
                                        f"part of every window only ever sees padding"))
    axes = ("rows", "columns") if len(spatial) == 2 else ("positions",)
    for ax, n, e, s, (a, _), o in zip(axes, spatial, eff, stride, r.padding, r.out_shape[1:], strict=True):
        # the last window ends at padded index (o-1)*s + e - 1; the real input ends at a + n - 1
        dropped = (a + n - 1) - ((o - 1) * s + e - 1)
        if dropped > 0:
            out.append(("dropped-pixels", f"stride {s} over {n} {ax} (kernel {e}, padding {a}) leaves the last "
                                          f"{dropped} input {ax} unseen; pad the input or use padding=same"))
    return out


_CONV_ARGS = {"in_channels": "in:0", "out_channels": "out_channels", "kernel_size": "kernel_size",
              "stride": "stride", "padding": "pad", "dilation": "dilation", "groups": "groups", "bias": "bias"}
_CONV_REF = ReferenceOp("ablab.reference.conv:forward", "ablab.reference.conv:backward",
                        {"w": "param:weight", "b": "param:bias", "stride": "stride", "padding": "pads",
                         "dilation": "dilation", "groups": "groups"}, {"w": "weight", "b": "bias"})


@register_layer("conv", torch=TorchMap("torch.nn.Conv2d", _CONV_ARGS, pad={
    3: TorchMap("torch.nn.ZeroPad2d", {"padding": "flat_pad"})}), reference=_CONV_REF)
@dataclass(frozen=True)
class Conv2d(ConvNd):
    """2-d convolution over (C, H, W). ``padding='same'`` is TensorFlow SAME (asymmetric when needed)."""

    kind = "conv2d"
    ndim = 2


@register_layer(torch=TorchMap("torch.nn.Conv1d", _CONV_ARGS, pad={
    2: TorchMap("torch.nn.ConstantPad1d", {"padding": "flat_pad", "value": 0.0})}), reference=_CONV_REF)
@dataclass(frozen=True)
class Conv1d(ConvNd):
    """1-d convolution over (C, L)."""

    kind = "conv1d"
    ndim = 1
