"""Adaptive average pooling to a fixed output size: ``adaptiveavgpool2d(S)`` or ``(Sh, Sw)``.

Output ``i`` of an axis with ``n`` inputs and ``S`` outputs averages inputs ``start .. end-1`` with
``start = floor(i*n/S)`` and ``end = ceil((i+1)*n/S)`` (PyTorch's ``AdaptiveAvgPool2d``); when ``S``
divides ``n`` this is ordinary average pooling with kernel = stride = ``n/S``. ``S = 1`` is global
average pooling.
"""

from __future__ import annotations

from dataclasses import dataclass

from ablab.layers.base import Layer, ReferenceOp, Resolved, TorchMap, register_layer
from ablab.layers.placed import Conventions, Field, LayerCost, fmt_shape, prod, window_recurrence
from ablab.layers.values import Pairs, Shape, SpecError, ntuple


def windows(n: int, s: int) -> list[tuple[int, int]]:
    """(start, end) of each of the ``s`` windows over ``n`` inputs."""
    return [((i * n) // s, -(-((i + 1) * n) // s)) for i in range(s)]


@register_layer("adaptiveavgpool", "adaptive_avgpool2d",
                torch=TorchMap("torch.nn.AdaptiveAvgPool2d", {"output_size": "output_size"}),
                reference=ReferenceOp("ablab.reference.pool:adaptive_avg_forward",
                                      "ablab.reference.pool:adaptive_avg_backward", {"output_size": "output_size"}))
@dataclass(frozen=True)
class AdaptiveAvgPool2d(Layer):
    """2-d average pooling to a fixed output size (S or (Sh, Sw)), whatever the input size."""

    output_size: tuple[int, ...]

    kind = "adaptiveavgpool2d"
    positional = ("output_size",)
    keywords = {"size": "output_size", "s": "output_size", "out": "output_size"}
    affine_at_inference = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_size", ntuple(self.output_size, 2, "output_size", 1))

    def place(self, shape: Shape, where: str) -> tuple[Shape, Pairs]:
        if len(shape) != 3:
            raise SpecError(f"{where}: expects a 3-d input (C,H,W), got {fmt_shape(shape)}")
        return (shape[0], *self.output_size), ((0, 0), (0, 0))

    def _uniform(self, r: Resolved) -> bool:
        return all(n % s == 0 for n, s in zip(r.in_shape[1:], self.output_size, strict=True))

    def shape_lines(self, r: Resolved) -> list[str]:
        lines = []
        for ax, n, s in zip(("H", "W"), r.in_shape[1:], self.output_size, strict=True):
            how = f" (kernel = stride = {n}/{s} = {n // s})" if n % s == 0 else \
                f"; window sizes {sorted({e - b for b, e in windows(n, s)})}"
            lines.append(f"{ax}: {s} windows over {n}: window i spans floor(i*{n}/{s}) .. ceil((i+1)*{n}/{s})-1{how}")
        return lines

    def cost(self, r: Resolved, conv: Conventions) -> LayerCost:
        if not conv.pooling:
            return LayerCost(explain=("no parameters, no MACs; FLOPs not counted (pooling convention off)",))
        per_channel = prod([sum(e - b for b, e in windows(n, s))
                            for n, s in zip(r.in_shape[1:], self.output_size, strict=True)])
        flops = r.in_shape[0] * per_channel  # each output: window-1 adds + 1 divide = window size
        return LayerCost(flops=flops, explain=(f"FLOPs = {r.in_shape[0]} channels * {per_channel:,} window taps "
                                               f"(window-1 adds + 1 divide per output) = {flops:,}",))

    def field(self, fld: Field, r: Resolved) -> tuple[Field | None, str]:
        if not self._uniform(r):
            return None, "receptive field: not one size (the adaptive windows differ in size)"
        k = tuple(n // s for n, s in zip(r.in_shape[1:], self.output_size, strict=True))
        return window_recurrence(fld, k, (1, 1), k, r.padding)
