"""Normalization layers: batch norm (statistics over the batch, per channel), layer norm (per sample,
over all its axes) and group norm (per sample, over each group of channels and the spatial axes).

All three compute ``y = gamma * (x - mu) / sqrt(var + eps) + beta`` with the biased variance; they
differ in which values share ``mu`` and ``var`` (Ioffe & Szegedy 2015; Ba, Kiros & Hinton 2016,
"Layer Normalization"; Wu & He 2018, "Group Normalization", eq. 1-3).

FLOPs with the ``norm`` convention: batch norm at inference folds into ``y = a*x + b``, 2 per element.
Layer and group norm compute their statistics at inference too: per element 1 add for the mean,
3 (subtract, square, add) for the variance, 2 (subtract, multiply by 1/std) to normalize and 2 to
scale and shift: 8, or 6 without affine (the per-group square roots are not counted).
"""

from __future__ import annotations

from dataclasses import dataclass

from ablab.layers.base import GLOBAL_FIELD, Layer, ReferenceOp, Resolved, TorchMap, register_layer
from ablab.layers.placed import Conventions, Field, LayerCost, Tensor, fmt_shape, mul, prod
from ablab.layers.values import Pairs, Shape, SpecError, boolean, number, size


def _eps(layer: Layer) -> None:
    object.__setattr__(layer, "eps", number(layer.eps, "eps", 0, low_open=True,  # type: ignore[attr-defined]
                                            what="a positive number"))


@register_layer("bn", "batchnorm2d", "batchnorm1d",
                torch=TorchMap({3: "torch.nn.BatchNorm2d", 2: "torch.nn.BatchNorm1d", 1: "torch.nn.BatchNorm1d"},
                               {"num_features": "in:0", "eps": "eps", "momentum": "momentum", "affine": "affine"},
                               {"track_running_stats": True}),
                reference=ReferenceOp("ablab.reference.batchnorm:forward", "ablab.reference.batchnorm:backward",
                                      {"gamma": "param:weight", "beta": "param:bias",
                                       "running_mean": "buffer:running_mean", "running_var": "buffer:running_var",
                                       "training": "ctx:training", "momentum": "momentum", "eps": "eps"},
                                      {"gamma": "weight", "beta": "bias"}))
@dataclass(frozen=True)
class BatchNorm(Layer):
    """Batch normalization over the channel axis (axis 0 of the sample shape): 1-d or 2-d by input rank."""

    eps: float = 1e-5
    momentum: float = 0.1
    affine: bool = True

    kind = "batchnorm"
    cancels_bias = True
    affine_at_inference = True

    def __post_init__(self) -> None:
        _eps(self)
        object.__setattr__(self, "momentum", number(self.momentum, "momentum", 0, 1, what="a number in [0, 1]"))
        boolean(self.affine, "affine")

    def place(self, shape: Shape, where: str) -> tuple[Shape, Pairs]:
        if len(shape) > 3:
            raise SpecError(f"{where}: batch norm takes 1-d to 3-d inputs, got {fmt_shape(shape)}")
        return shape, ()

    def tensors(self, r: Resolved) -> tuple[Tensor, ...]:
        c = r.in_shape[0]
        gb = (Tensor("weight", (c,), "weight", "ones"), Tensor("bias", (c,), "bias")) if self.affine else ()
        return (*gb, Tensor("running_mean", (c,), "buffer"), Tensor("running_var", (c,), "buffer", "ones"),
                Tensor("num_batches_tracked", (), "int_buffer"))

    def cost(self, r: Resolved, conv: Conventions) -> LayerCost:
        c, outputs = r.in_shape[0], prod(r.out_shape)
        params, bias = (2 * c, c) if self.affine else (0, 0)  # gamma and beta, one per channel
        lines = [f"params = {'2*' + str(c) + ' (gamma, beta)' if self.affine else '0 (affine=false)'} = "
                 f"{params}; buffers = 2*{c} running mean/var + 1 step counter"]
        flops = 2 * outputs if conv.norm else 0
        if conv.norm:
            lines.append(f"FLOPs = 2*{outputs:,} elements = {flops:,}")
        return LayerCost(params=params, bias=bias, buffers=2 * c, int_buffers=1, flops=flops, explain=tuple(lines))


def _stat_flops(outputs: int, affine: bool, conv: Conventions, lines: list[str]) -> int:
    if not conv.norm:
        return 0
    per = 8 if affine else 6
    flops = per * outputs
    lines.append(f"FLOPs = {per}*{outputs:,} elements (mean 1, variance 3, normalize 2"
                 + (", scale and shift 2" if affine else "") + f") = {flops:,}")
    return flops


@register_layer("ln",
                torch=TorchMap("torch.nn.LayerNorm", {"normalized_shape": "in", "eps": "eps",
                                                      "elementwise_affine": "affine"}),
                reference=ReferenceOp("ablab.reference.norm:layer_forward", "ablab.reference.norm:layer_backward",
                                      {"gamma": "param:weight", "beta": "param:bias", "eps": "eps"},
                                      {"gamma": "weight", "beta": "bias"}))
@dataclass(frozen=True)
class LayerNorm(Layer):
    """Layer normalization: each sample normalized over all its axes, then scaled and shifted per element
    (``torch.nn.LayerNorm(input_shape)``)."""

    eps: float = 1e-5
    affine: bool = True

    kind = "layernorm"

    def __post_init__(self) -> None:
        _eps(self)
        boolean(self.affine, "affine")

    def tensors(self, r: Resolved) -> tuple[Tensor, ...]:
        if not self.affine:
            return ()
        return Tensor("weight", r.in_shape, "weight", "ones"), Tensor("bias", r.in_shape, "bias")

    def cost(self, r: Resolved, conv: Conventions) -> LayerCost:
        n, outputs = prod(r.in_shape), prod(r.out_shape)
        params = 2 * n if self.affine else 0
        lines = [f"params = 2*{mul(r.in_shape)} (gamma, beta per element) = {params:,}" if self.affine
                 else "params = 0 (affine=false)"]
        flops = _stat_flops(outputs, self.affine, conv, lines)
        return LayerCost(params=params, bias=params // 2, flops=flops, explain=tuple(lines))

    def field(self, fld: Field, r: Resolved) -> tuple[Field | None, str]:
        return None, GLOBAL_FIELD + "; the mean and variance mix every position"


@register_layer("gn",
                torch=TorchMap("torch.nn.GroupNorm", {"num_groups": "groups", "num_channels": "in:0", "eps": "eps",
                                                      "affine": "affine"}),
                reference=ReferenceOp("ablab.reference.norm:group_forward", "ablab.reference.norm:group_backward",
                                      {"groups": "groups", "gamma": "param:weight", "beta": "param:bias",
                                       "eps": "eps"}, {"gamma": "weight", "beta": "bias"}))
@dataclass(frozen=True)
class GroupNorm(Layer):
    """Group normalization: the channels split into ``groups``; each sample normalized over each group's
    channels and positions, then scaled and shifted per channel (``torch.nn.GroupNorm``)."""

    groups: int
    eps: float = 1e-5
    affine: bool = True

    kind = "groupnorm"
    positional = ("groups",)
    keywords = {"g": "groups", "num_groups": "groups"}

    def __post_init__(self) -> None:
        size(self.groups, "groups")
        _eps(self)
        boolean(self.affine, "affine")

    def place(self, shape: Shape, where: str) -> tuple[Shape, Pairs]:
        if shape[0] % self.groups:
            raise SpecError(f"{where}: input channels {shape[0]} are not divisible by groups={self.groups}")
        if shape[0] // self.groups * prod(shape[1:]) == 1:  # x - mean(x) = 0 always; torch refuses it
            raise SpecError(f"{where}: each of the {self.groups} groups holds a single value on a "
                            f"{fmt_shape(shape)} input, so normalizing gives 0; use fewer groups or a larger input")
        return shape, ()

    def tensors(self, r: Resolved) -> tuple[Tensor, ...]:
        c = r.in_shape[0]
        return (Tensor("weight", (c,), "weight", "ones"), Tensor("bias", (c,), "bias")) if self.affine else ()

    def cost(self, r: Resolved, conv: Conventions) -> LayerCost:
        c, outputs = r.in_shape[0], prod(r.out_shape)
        params = 2 * c if self.affine else 0
        lines = [f"params = 2*{c} (gamma, beta per channel) = {params}; statistics over {self.groups} group(s) "
                 f"of {c // self.groups} channel(s) x {prod(r.in_shape[1:]):,} position(s)" if self.affine
                 else "params = 0 (affine=false)"]
        flops = _stat_flops(outputs, self.affine, conv, lines)
        return LayerCost(params=params, bias=params // 2, flops=flops, explain=tuple(lines))

    def field(self, fld: Field, r: Resolved) -> tuple[Field | None, str]:
        return None, GLOBAL_FIELD + "; the group statistics mix every position"
