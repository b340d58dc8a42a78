"""Shape inference: every layer's input and output shape, with padding resolved (TF-SAME included).

Pure Python on exact integers; the PyTorch builder and the size-up calculus both start here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ablab.spec import (
    BatchNorm,
    Dropout,
    Flatten,
    Layer,
    Linear,
    Shape,
    Spec,
    SpecError,
    _ConvBase,
    _PoolBase,
)

Pairs = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Resolved:
    """One layer placed in its stack: its name, input/output shapes, and padding as explicit pairs."""

    index: int  # 1-based position in the stack
    name: str  # e.g. conv2d_1 (kind and per-kind counter)
    layer: Layer
    in_shape: Shape
    out_shape: Shape
    padding: Pairs = ()  # (before, after) per spatial axis, for conv and pooling layers


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


def resolve(spec: Spec, input_shape: Shape | None = None) -> list[Resolved]:
    """Place every layer: check it can work on its input, compute its output shape."""
    shape = tuple(input_shape or spec.input_shape or ())
    if not shape:
        raise SpecError("no input shape: give --input CxHxW (e.g. 1x28x28) or start the spec with input(...)")
    counters: dict[str, int] = {}
    out: list[Resolved] = []
    for i, layer in enumerate(spec.layers, start=1):
        counters[layer.kind] = counters.get(layer.kind, 0) + 1
        name = f"{layer.kind}_{counters[layer.kind]}"
        where = f"layer {i} ({name})"
        new_shape, pads = _layer_out(layer, shape, where)
        out.append(Resolved(i, name, layer, shape, new_shape, pads))
        shape = new_shape
    return out


def _layer_out(layer: Layer, shape: Shape, where: str) -> tuple[Shape, Pairs]:
    if isinstance(layer, _ConvBase):
        n = layer.ndim
        if len(shape) != n + 1:
            raise SpecError(f"{where}: expects a {n + 1}-d input (C,{'H,W' if n == 2 else 'L'}), "
                            f"got {fmt_shape(shape)}" + ("; add flatten before linear layers, not before conv"
                                                         if len(shape) == 1 else ""))
        c, spatial = shape[0], shape[1:]
        if c % layer.groups:
            raise SpecError(f"{where}: input channels {c} are not divisible by groups={layer.groups}")
        if layer.padding == "same":
            pads = tuple(same_padding(s, k, st, d) for s, k, st, d in
                         zip(spatial, layer.kernel_size, layer.stride, layer.dilation, strict=True))
        elif layer.padding == "valid":
            pads = tuple((0, 0) for _ in spatial)
        else:
            pads = tuple(layer.padding)  # type: ignore[arg-type]
        sizes = tuple(conv_out(s, k, st, p, d) for s, k, st, p, d in
                      zip(spatial, layer.kernel_size, layer.stride, pads, layer.dilation, strict=True))
        if any(x < 1 for x in sizes):
            eff = tuple((k - 1) * d + 1 for k, d in zip(layer.kernel_size, layer.dilation, strict=True))
            padded = tuple(s + a + b for s, (a, b) in zip(spatial, pads, strict=True))
            raise SpecError(f"{where}: the (dilated) kernel {fmt_shape(eff)} is larger than its padded input "
                            f"{fmt_shape(padded)} (input {fmt_shape(shape)}): no output is left "
                            f"(size {fmt_shape(tuple(max(x, 0) for x in sizes))})")
        return (layer.out_channels, *sizes), pads
    if isinstance(layer, _PoolBase):
        n = layer.ndim
        if len(shape) != n + 1:
            raise SpecError(f"{where}: expects a {n + 1}-d input, got {fmt_shape(shape)}")
        pads = tuple(layer.padding)  # type: ignore[arg-type]
        sizes = tuple(pool_out(s, k, st, p[0], layer.ceil_mode) for s, k, st, p in
                      zip(shape[1:], layer.kernel_size, layer.stride, pads, strict=True))
        if any(x < 1 for x in sizes):
            raise SpecError(f"{where}: the pooling window {fmt_shape(layer.kernel_size)} is larger than its "
                            f"input {fmt_shape(shape)}: the output size would be 0")
        return (shape[0], *sizes), pads
    if isinstance(layer, Linear):
        return (*shape[:-1], layer.out_features), ()
    if isinstance(layer, Flatten):
        total = 1
        for s in shape:
            total *= s
        return (total,), ()
    if isinstance(layer, BatchNorm) and len(shape) > 3:
        raise SpecError(f"{where}: batch norm takes 1-d to 3-d inputs, got {fmt_shape(shape)}")
    if isinstance(layer, Dropout | BatchNorm) or layer.kind in (
        "relu", "leaky_relu", "tanh", "sigmoid", "gelu", "softmax"
    ):
        return shape, ()
    raise SpecError(f"{where}: no shape rule for layer kind '{layer.kind}'")
