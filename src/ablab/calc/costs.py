"""Parameters, MACs and FLOPs of one placed layer — exact integers, each with its worked formula.

A MAC is one multiply plus one add (a "multiply-accumulate"). MACs are convention-free: a convolution
output element costs ``(C_in / groups) * prod(kernel)`` MACs, a linear output element ``in_features``
MACs, everything else none. FLOPs are not convention-free — every tool picks its own — so the choices
are explicit in :class:`Conventions` and printed under every table.

Every number is computed next to the text that explains it (``LayerCost.explain``), so ``ablab summary
--explain`` can never disagree with the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ablab.calc.shapes import Resolved, fmt_shape
from ablab.spec import (
    ACTIVATIONS,
    BatchNorm,
    Linear,
    SpecError,
    _ConvBase,
    _PoolBase,
)

DOT_CONVENTIONS = ("2n", "2n-1")


@dataclass(frozen=True)
class Conventions:
    """How FLOPs are counted. The default (FLOPs = 2 * MACs, nothing else) matches torch's
    ``FlopCounterMode`` and the usual "1 MAC = 2 FLOPs" of papers."""

    dot: str = "2n"
    """FLOPs of a dot product of length n: "2n" (n multiplies + n adds, the accumulator starts at 0) or
    "2n-1" (n multiplies + n-1 adds, the first product starts the sum)."""
    bias: bool = False
    """Count the bias add: one FLOP per output element of a conv/linear layer with bias."""
    pooling: bool = False
    """Count pooling: max pooling k-1 comparisons per output element, average pooling k-1 adds + 1
    divide = k per output element (k = kernel elements)."""
    activation: int = 0
    """FLOPs charged per element by every activation (relu, leaky_relu, tanh, sigmoid, gelu, softmax)."""
    norm: bool = False
    """Count batch norm at inference as 2 FLOPs per element (y = a*x + b once the statistics are folded)."""

    def __post_init__(self) -> None:
        if self.dot not in DOT_CONVENTIONS:
            raise SpecError(f"conventions: dot must be one of {', '.join(DOT_CONVENTIONS)}, got {self.dot!r}")
        if not isinstance(self.activation, int) or isinstance(self.activation, bool) or self.activation < 0:
            raise SpecError(f"conventions: activation must be a non-negative integer, got {self.activation!r}")

    def describe(self) -> str:
        """One line for under the table: what a FLOP is here."""
        dot = "FLOPs = 2*MACs (dot of length n = 2n)" if self.dot == "2n" else \
            "FLOPs = 2*MACs - outputs (dot of length n = 2n-1)"
        parts = [
            "MAC = 1 multiply + 1 add",
            dot,
            "bias adds " + ("counted (1/output)" if self.bias else "not counted"),
            "pooling " + ("counted (max k-1, avg k per output)" if self.pooling else "not counted"),
            f"activations {self.activation} FLOP/element" if self.activation else "activations not counted",
            "batch norm " + ("counted (2/element)" if self.norm else "not counted"),
        ]
        return "; ".join(parts)

    def to_dict(self) -> dict[str, object]:
        return {"dot": self.dot, "bias": self.bias, "pooling": self.pooling,
                "activation": self.activation, "norm": self.norm}


@dataclass(frozen=True)
class LayerCost:
    """Per-sample cost of one layer (the summary multiplies MACs/FLOPs by the batch)."""

    params: int = 0  # weights + bias (+ batch norm's gamma, beta)
    bias: int = 0  # of which bias (and beta)
    buffers: int = 0  # floating-point buffers: batch norm running mean and variance
    int_buffers: int = 0  # int64 buffers: batch norm's num_batches_tracked counter
    macs: int = 0
    flops: int = 0
    explain: tuple[str, ...] = field(default_factory=tuple)


def prod(xs: tuple[int, ...] | list[int]) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


def _mul(xs: tuple[int, ...] | list[int]) -> str:
    return "*".join(str(x) for x in xs)


def shape_lines(r: Resolved) -> list[str]:
    """How the output shape follows from the input shape, axis by axis."""
    layer, spatial_in, spatial_out = r.layer, r.in_shape[1:], r.out_shape[1:]
    axes = ("H", "W") if len(spatial_in) == 2 else ("L",)
    lines = []
    if isinstance(layer, _ConvBase):
        for ax, n, o, k, s, d, (a, b) in zip(axes, spatial_in, spatial_out, layer.kernel_size, layer.stride,
                                              layer.dilation, r.padding, strict=True):
            if layer.padding == "same":
                eff = (k - 1) * d + 1
                lines.append(f"{ax}: SAME: out = ceil({n}/{s}) = {o}; padding = max(({o}-1)*{s} + {eff} - {n}, 0)"
                             f" = {a + b} -> ({a} before, {b} after)")
            else:
                lines.append(f"{ax}: floor(({n} + {a} + {b} - {d}*({k}-1) - 1) / {s}) + 1 = {o}")
    elif isinstance(layer, _PoolBase):
        for ax, n, o, k, s, (a, _) in zip(axes, spatial_in, spatial_out, layer.kernel_size, layer.stride,
                                          r.padding, strict=True):
            rnd = "ceil" if layer.ceil_mode else "floor"
            lines.append(f"{ax}: {rnd}(({n} + 2*{a} - {k}) / {s}) + 1 = {o}")
    return lines


def layer_cost(r: Resolved, conv: Conventions | None = None) -> LayerCost:
    """Parameters, buffers, MACs and FLOPs of one resolved layer, per sample, with the worked formula."""
    conv = conv or Conventions()
    layer = r.layer
    outputs = prod(r.out_shape)
    lines = [f"{fmt_shape(r.in_shape)} -> {fmt_shape(r.out_shape)}", *shape_lines(r)]
    params = bias = buffers = int_buffers = macs = flops = 0

    if isinstance(layer, _ConvBase | Linear):
        if isinstance(layer, _ConvBase):
            c_in, g, k = r.in_shape[0], layer.groups, layer.kernel_size
            per_out = (c_in // g) * prod(k)  # one output element sees C_in/groups channels x the kernel
            weights = layer.out_channels * per_out
            bias = layer.out_channels if layer.bias else 0
            lines.append(f"params = {layer.out_channels}*({c_in}/{g})*{_mul(k)} weights"
                         + (f" + {bias} bias" if bias else "") + f" = {weights + bias:,}")
            lines.append(f"MACs = {_mul(r.out_shape)} outputs * ({c_in}/{g})*{_mul(k)} per output = "
                         f"{outputs:,} * {per_out:,} = {outputs * per_out:,}")
        else:
            per_out = r.in_shape[-1]
            weights = per_out * layer.out_features
            bias = layer.out_features if layer.bias else 0
            lines.append(f"params = {per_out}*{layer.out_features} weights" + (f" + {bias} bias" if bias else "")
                         + f" = {weights + bias:,}")
            lines.append(f"MACs = {_mul(r.out_shape)} outputs * {per_out} inputs each = {outputs * per_out:,}")
        params = weights + bias
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
    elif isinstance(layer, _PoolBase):
        window = prod(layer.kernel_size)
        if conv.pooling:
            per = window - 1 if layer.op == "max" else window
            flops = outputs * per
            what = f"{window}-1 comparisons" if layer.op == "max" else f"{window}-1 adds + 1 divide"
            lines.append(f"FLOPs = {outputs:,} outputs * ({what}) = {flops:,}")
        else:
            lines.append("no parameters, no MACs; FLOPs not counted (pooling convention off)")
    elif isinstance(layer, BatchNorm):
        c = r.in_shape[0]
        if layer.affine:
            params, bias = 2 * c, c  # gamma and beta, one per channel
        buffers, int_buffers = 2 * c, 1
        lines.append(f"params = {'2*' + str(c) + ' (gamma, beta)' if layer.affine else '0 (affine=false)'} = "
                     f"{params}; buffers = 2*{c} running mean/var + 1 step counter")
        if conv.norm:
            flops = 2 * outputs
            lines.append(f"FLOPs = 2*{outputs:,} elements = {flops:,}")
    elif layer.kind in ACTIVATIONS:
        if conv.activation:
            flops = conv.activation * outputs
            lines.append(f"FLOPs = {conv.activation}*{outputs:,} elements = {flops:,}")
        else:
            lines.append("no parameters, no MACs; FLOPs not counted (activation convention 0)")
    else:  # flatten, dropout, explicit padding: data movement only
        lines.append("no parameters, no MACs, no FLOPs (data movement)")
    return LayerCost(params=params, bias=bias, buffers=buffers, int_buffers=int_buffers, macs=macs,
                     flops=flops, explain=tuple(lines))
