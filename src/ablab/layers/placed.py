"""What a layer's rules give: its cost
(``LayerCost``, under the FLOP ``Conventions``), its receptive ``Field`` and its ``Tensor`` list, plus
the integer arithmetic of output sizes. Pure Python; the calculus in ``ablab.calc`` builds on these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ablab.layers.values import Pairs, Shape, SpecError

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
    """Count normalization: batch norm at inference 2 FLOPs per element (y = a*x + b once the statistics
    are folded); layer and group norm 8 per element (6 without affine), see ``ablab.layers.norm``."""

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
            "batch norm " + ("counted (2/element; layer/group norm 8, 6 without affine)" if self.norm
                             else "not counted"),
        ]
        return "; ".join(parts)

    def to_dict(self) -> dict[str, object]:
        return {"dot": self.dot, "bias": self.bias, "pooling": self.pooling,
                "activation": self.activation, "norm": self.norm}


@dataclass(frozen=True)
class LayerCost:
    """Per-sample cost of one layer (the summary multiplies MACs/FLOPs by the batch)."""

    params: int = 0  # weights + bias (+ norm layers' gamma, beta)
    bias: int = 0  # of which bias (and beta)
    buffers: int = 0  # floating-point buffers: batch norm running mean and variance
    int_buffers: int = 0  # int64 buffers: batch norm's num_batches_tracked counter
    macs: int = 0
    flops: int = 0
    explain: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Field:
    """Receptive field of one layer's output, per spatial axis (H, W or L), in input pixels."""

    size: tuple[int, ...]  # input pixels one output element sees
    stride: tuple[int, ...]  # input pixels between neighbouring output elements
    start: tuple[int, ...]  # input coordinate of the first pixel output[0] sees (negative: padding)

    def to_dict(self) -> dict[str, list[int]]:
        return {"size": list(self.size), "stride": list(self.stride), "start": list(self.start)}

    def short(self) -> str:
        return f"{'x'.join(map(str, self.size))} /{'x'.join(map(str, self.stride))}"


@dataclass(frozen=True)
class Tensor:
    """One parameter or buffer a layer holds, named as in PyTorch's ``state_dict``.

    ``role``: "weight" or "bias" (trainable parameters), "buffer" (float) or "int_buffer" (int64);
    ``init``: "fan_in" (U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's conv/linear default), "zeros", "ones"."""

    name: str
    shape: Shape
    role: str
    init: str = "zeros"
    fan_in: int = 1

    @property
    def size(self) -> int:
        return prod(self.shape)

    @property
    def is_param(self) -> bool:
        return self.role in ("weight", "bias")


# ------------------------------------------------------------------------------------ arithmetic


def prod(xs: tuple[int, ...] | list[int]) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


def mul(xs: tuple[int, ...] | list[int]) -> str:
    """``(5, 5)`` -> ``"5*5"``, for worked formulas."""
    return "*".join(str(x) for x in xs)


def fmt_shape(shape: Shape) -> str:
    return "x".join(map(str, shape))


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow SAME: output = ceil(size / stride); the extra pixel, if any, goes after (bottom/right)."""
    eff = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def conv_out(size: int, kernel: int, stride: int, pad: tuple[int, int], dilation: int = 1) -> int:
    """floor((size + before + after - dilation*(kernel-1) - 1) / stride) + 1 (may be <= 0: caller checks)."""
    return (size + pad[0] + pad[1] - dilation * (kernel - 1) - 1) // stride + 1


def pool_out(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool) -> int:
    """PyTorch's pooling size; with ceil_mode the last window must start inside the (left-padded) input."""
    num = size + 2 * pad - kernel
    if num < 0:
        return 0
    out = (-(-num // stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def window_recurrence(fld: Field, kernel: tuple[int, ...], dilation: tuple[int, ...], stride: tuple[int, ...],
                      pads: Pairs) -> tuple[Field, str]:
    """The receptive-field recurrence of a sliding window (conv, pooling), with its worked text:
    ``r_out = r_in + (k_eff - 1) * j_in``, ``j_out = j_in * s``, ``start_out = start_in - p_before * j_in``."""
    eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    size = tuple(r0 + (e - 1) * j for r0, e, j in zip(fld.size, eff, fld.stride, strict=True))
    new_stride = tuple(j * s for j, s in zip(fld.stride, stride, strict=True))
    start = tuple(s0 - p[0] * j for s0, p, j in zip(fld.start, pads, fld.stride, strict=True))
    text = "receptive field: " + ", ".join(
        f"{r0} + ({e}-1)*{j} = {r1}" for r0, e, j, r1 in zip(fld.size, eff, fld.stride, size, strict=True)
    ) + "; effective stride: " + ", ".join(
        f"{j}*{s} = {j1}" for j, s, j1 in zip(fld.stride, stride, new_stride, strict=True))
    return Field(size, new_stride, start), text
