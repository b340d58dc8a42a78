"""Memory of a layer stack: activations, inference peak and training footprint, in exact bytes.

What is counted (and what is not) — this is the model a student can redo by hand:

* **activation bytes** of a layer: its output tensor, ``batch * prod(output_shape) * dtype bytes``.
* **parameter bytes**: every parameter in the dtype, plus buffers (batch norm's running mean and
  variance in the dtype, its ``num_batches_tracked`` counter as one int64 = 8 bytes).
* **inference peak**: the largest pair of adjacent tensors (a layer's input and its output, both alive
  while it runs; out-of-place layers) + parameter bytes. Earlier tensors are assumed freed.
* **training memory for a batch of N**: the activations kept for backward — the input and every layer's
  output, each once, at batch N — + parameter bytes + gradients (one per trainable parameter) +
  optimizer state (SGD: none; SGD with momentum: 1 buffer per trainable parameter; Adam: 2, the first
  and second moments), all in the dtype.

Not counted: the framework and CUDA context, allocator rounding and fragmentation, temporary
workspaces (im2col, cuDNN), the transient gradient of the activations during backward, and the
savings of in-place operations or activation checkpointing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ablab.layers.values import SpecError

DTYPE_BYTES: dict[str, int] = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}
OPTIMIZER_STATES: dict[str, int] = {"sgd": 0, "momentum": 1, "adam": 2}  # state tensors per parameter
INT64_BYTES = 8


def dtype_bytes(dtype: str) -> int:
    try:
        return DTYPE_BYTES[dtype.lower()]
    except KeyError:
        raise SpecError(f"dtype: expected one of {', '.join(DTYPE_BYTES)}, got {dtype!r}") from None


def optimizer_states(optimizer: str) -> int:
    try:
        return OPTIMIZER_STATES[optimizer.lower()]
    except KeyError:
        raise SpecError(f"optimizer: expected one of {', '.join(OPTIMIZER_STATES)}, got {optimizer!r}") from None


@dataclass(frozen=True)
class Memory:
    """The memory totals, in bytes, for one batch and dtype."""

    input_bytes: int  # the network input
    activation_bytes: int  # every layer's output, summed
    param_bytes: int  # parameters + buffers
    grad_bytes: int  # one gradient per trainable parameter
    optimizer_bytes: int  # optimizer state
    inference_peak_bytes: int  # largest adjacent input+output pair + param_bytes
    peak_layer: str  # the layer whose input+output pair is the largest
    training_bytes: int  # input + activations + params + grads + optimizer state

    @property
    def saved_bytes(self) -> int:
        """Activations kept for backward: the input and every layer output."""
        return self.input_bytes + self.activation_bytes


def memory(
    input_elems: int,
    layers: list[tuple[str, int, int]],
    params: int,
    trainable: int,
    buffers: int,
    int_buffers: int,
    batch: int,
    dtype: str,
    optimizer: str,
) -> Memory:
    """``layers``: (name, input elements, output elements) per layer, per sample."""
    b = dtype_bytes(dtype)
    states = optimizer_states(optimizer)
    param_bytes = (params + buffers) * b + int_buffers * INT64_BYTES
    peak, peak_layer = 0, ""
    for name, n_in, n_out in layers:
        pair = (n_in + n_out) * batch * b
        if pair > peak:
            peak, peak_layer = pair, name
    input_bytes = input_elems * batch * b
    activation_bytes = sum(n_out for _, _, n_out in layers) * batch * b
    grad_bytes = trainable * b
    optimizer_bytes = states * trainable * b
    return Memory(
        input_bytes=input_bytes,
        activation_bytes=activation_bytes,
        param_bytes=param_bytes,
        grad_bytes=grad_bytes,
        optimizer_bytes=optimizer_bytes,
        inference_peak_bytes=peak + param_bytes,
        peak_layer=peak_layer,
        training_bytes=input_bytes + activation_bytes + param_bytes + grad_bytes + optimizer_bytes,
    )


def human_bytes(n: int) -> str:
    """1,234,567 -> '1.18 MiB' (binary units)."""
    x = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if x < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{x:.2f} {unit}"
        x /= 1024
    return f"{n} B"


def decimal_mb(n: int) -> str:
    """1,234,567 -> '1.23 MB' (decimal: 1 MB = 1,000,000 B, the unit textbook questions use)."""
    return f"{n / 1e6:.2f} MB" if n >= 10_000 else f"{n / 1e6:.4f} MB"


def both_units(n: int) -> str:
    """'1.18 MiB = 1.23 MB': binary beside decimal, since questions mix the two."""
    return f"{human_bytes(n)} = {decimal_mb(n)}"
