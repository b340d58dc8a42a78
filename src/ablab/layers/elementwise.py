"""Layers without weights that keep the shape (activations, dropout) or only move data (flatten)."""

from __future__ import annotations

from dataclasses import dataclass

from ablab.layers.base import GLOBAL_FIELD, Layer, ReferenceOp, Resolved, TorchMap, register_layer
from ablab.layers.placed import Conventions, Field, LayerCost, prod
from ablab.layers.values import Pairs, Shape, number


@register_layer(torch=TorchMap("torch.nn.Dropout", {"p": "p"}),
                reference=ReferenceOp("ablab.reference.dropout:forward", "ablab.reference.dropout:backward",
                                      {"p": "p", "mask": "ctx:mask", "training": "ctx:training", "rng": "ctx:rng"}))
@dataclass(frozen=True)
class Dropout(Layer):
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p)."""

    p: float = 0.5

    kind = "dropout"
    positional = ("p",)
    keywords = {"rate": "p"}
    affine_at_inference = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "p", number(self.p, "p", 0, 1, high_open=True, what="a probability in [0, 1)"))


@register_layer(torch=TorchMap("torch.nn.Flatten", {}, {"start_dim": 1, "end_dim": -1}),
                reference=ReferenceOp("ablab.reference.flatten:forward", "ablab.reference.flatten:backward"))
@dataclass(frozen=True)
class Flatten(Layer):
    """Flatten every axis but the batch axis."""

    kind = "flatten"
    affine_at_inference = True

    def place(self, shape: Shape, where: str) -> tuple[Shape, Pairs]:
        return (prod(shape),), ()

    def field(self, fld: Field, r: Resolved) -> tuple[Field | None, str]:
        return None, GLOBAL_FIELD


@dataclass(frozen=True)
class Activation(Layer):
    """Element-wise activation (softmax: along the channel axis)."""

    def cost(self, r: Resolved, conv: Conventions) -> LayerCost:
        if not conv.activation:
            return LayerCost(explain=("no parameters, no MACs; FLOPs not counted (activation convention 0)",))
        outputs = prod(r.out_shape)
        flops = conv.activation * outputs
        return LayerCost(flops=flops, explain=(f"FLOPs = {conv.activation}*{outputs:,} elements = {flops:,}",))


def _act(name: str) -> ReferenceOp:
    return ReferenceOp(f"ablab.reference.activations:{name}_forward", f"ablab.reference.activations:{name}_backward")


@register_layer(torch=TorchMap("torch.nn.ReLU"), reference=_act("relu"))
@dataclass(frozen=True)
class ReLU(Activation):
    """max(0, x)."""

    kind = "relu"


@register_layer("leakyrelu", "lrelu", torch=TorchMap("torch.nn.LeakyReLU", {"negative_slope": "negative_slope"}),
                reference=ReferenceOp("ablab.reference.activations:leaky_relu_forward",
                                      "ablab.reference.activations:leaky_relu_backward",
                                      {"negative_slope": "negative_slope"}))
@dataclass(frozen=True)
class LeakyReLU(Activation):
    """x if x > 0 else negative_slope * x."""

    negative_slope: float = 0.01

    kind = "leaky_relu"
    positional = ("negative_slope",)
    keywords = {"slope": "negative_slope", "alpha": "negative_slope"}

    def __post_init__(self) -> None:
        object.__setattr__(self, "negative_slope", number(self.negative_slope, "negative_slope"))


@register_layer(torch=TorchMap("torch.nn.Tanh"), reference=_act("tanh"))
@dataclass(frozen=True)
class Tanh(Activation):
    """Hyperbolic tangent."""

    kind = "tanh"


@register_layer(torch=TorchMap("torch.nn.Sigmoid"), reference=_act("sigmoid"))
@dataclass(frozen=True)
class Sigmoid(Activation):
    """Logistic function 1 / (1 + exp(-x))."""

    kind = "sigmoid"


@register_layer(torch=TorchMap("torch.nn.GELU", {}, {"approximate": "none"}), reference=_act("gelu"))
@dataclass(frozen=True)
class GELU(Activation):
    """Exact GELU, x * Phi(x)."""

    kind = "gelu"


@register_layer(torch=TorchMap("torch.nn.Softmax", {"dim": 1}, {"dim": 1}),
                reference=ReferenceOp("ablab.reference.activations:softmax_forward",
                                      "ablab.reference.activations:softmax_backward", {"axis": 1}))
@dataclass(frozen=True)
class Softmax(Activation):
    """Softmax along the channel axis (axis 1 of the batch)."""

    kind = "softmax"
