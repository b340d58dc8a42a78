"""Fully connected layer on the last axis: ``linear(out, bias=)``, ``y = x W^T + b``."""

from __future__ import annotations

from dataclasses import dataclass

from ablab.layers.base import GLOBAL_FIELD, Layer, ReferenceOp, Resolved, TorchMap, register_layer
from ablab.layers.conv import dot_cost
from ablab.layers.placed import Conventions, Field, LayerCost, Tensor, fmt_shape, mul, prod
from ablab.layers.values import Pairs, Shape, boolean, size


@register_layer("fc", "dense",
                torch=TorchMap("torch.nn.Linear", {"in_features": "in:-1", "out_features": "out_features",
                                                   "bias": "bias"}),
                reference=ReferenceOp("ablab.reference.linear:forward", "ablab.reference.linear:backward",
                                      {"w": "param:weight", "b": "param:bias"}, {"w": "weight", "b": "bias"}))
@dataclass(frozen=True)
class Linear(Layer):
    """Fully connected layer on the last axis."""

    out_features: int
    bias: bool = True

    kind = "linear"
    positional = ("out_features",)
    keywords = {"out": "out_features", "units": "out_features"}
    weighted = True

    def __post_init__(self) -> None:
        size(self.out_features, "out_features")
        boolean(self.bias, "bias")

    def place(self, shape: Shape, where: str) -> tuple[Shape, Pairs]:
        return (*shape[:-1], self.out_features), ()

    def tensors(self, r: Resolved) -> tuple[Tensor, ...]:
        fan_in = r.in_shape[-1]
        w = Tensor("weight", (self.out_features, fan_in), "weight", "fan_in", fan_in)
        return (w, Tensor("bias", (self.out_features,), "bias", "fan_in", fan_in)) if self.bias else (w,)

    def cost(self, r: Resolved, conv: Conventions) -> LayerCost:
        per_out = r.in_shape[-1]
        weights = per_out * self.out_features
        bias = self.out_features if self.bias else 0
        outputs = prod(r.out_shape)
        lines = [f"params = {per_out}*{self.out_features} weights" + (f" + {bias} bias" if bias else "")
                 + f" = {weights + bias:,}",
                 f"MACs = {mul(r.out_shape)} outputs * {per_out} inputs each = {outputs * per_out:,}"]
        return dot_cost(weights, bias, outputs, per_out, conv, lines)

    def field(self, fld: Field, r: Resolved) -> tuple[Field | None, str]:
        return None, GLOBAL_FIELD

    def lint(self, r: Resolved) -> list[tuple[str, str]]:
        if len(r.in_shape) > 1:
            return [("linear-on-map", f"linear on a {fmt_shape(r.in_shape)} input mixes only the last axis; "
                                      f"add flatten before it to connect every input")]
        return []
