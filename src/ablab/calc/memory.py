"""Memory of a layer stack: activations, inference peak and training footprint, in exact bytes.

What is counted (and what is not) — this is the model a student can redo by hand:

* **output bytes** of a layer: its output tensor, ``batch * prod(output_shape) * dtype bytes``; their sum is
  the "layer outputs" total (every activation the forward makes).
* **kept for backward**: the tensors autograd saves for the backward pass, each storage once, charged to the
  layer that made the tensor. Per layer kind (``KEEPS``, the same for a spec and a traced module, checked
  against the trace for every kind): conv, linear, pooling, GELU, leaky ReLU and the norms save their
  input; ReLU, tanh, sigmoid and softmax their output; flatten is a view and saves nothing. Made for
  backward besides: max pooling's int64 indices (8 B per output element), dropout's mask (one element per
  input element), batch norm's batch mean and inverse std and running statistics (4 per channel, not per
  sample), layer and group norm's mean and inverse std (2 per sample and group). A traced module reports
  what autograd really saved.
* **parameter bytes**: every parameter in the dtype, plus buffers (batch norm's running mean and
  variance in the dtype, its ``num_batches_tracked`` counter as one int64 = 8 bytes).
* **inference peak**: the largest pair of adjacent tensors (a layer's input and its output, both alive
  while it runs; out-of-place layers) + parameter bytes. Earlier tensors are assumed freed.
* **training memory for a batch of N**: the input + the tensors kept for backward + parameter bytes +
  gradients (one per trainable parameter) + optimizer state (SGD: none; SGD with momentum: 1 buffer per
  trainable parameter; Adam: 2, the first and second moments), all in the dtype.

Not counted: the framework and CUDA context, allocator rounding and fragmentation, temporary
workspaces (im2col, cuDNN, oneDNN's padded copies), the transient gradients of the activations during
backward, the loss, and the savings of activation checkpointing. ``measure=True`` (``--measure``) runs one
step under the allocator and prints the measured peak beside this estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

from ablab.layers.placed import prod
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
    activation_bytes: int  # every layer's output, summed (the "output bytes" column)
    kept_bytes: int  # the tensors autograd keeps for backward, each storage once
    param_bytes: int  # parameters + buffers
    grad_bytes: int  # one gradient per trainable parameter
    optimizer_bytes: int  # optimizer state
    inference_peak_bytes: int  # largest adjacent input+output pair + param_bytes
    peak_layer: str  # the layer whose input+output pair is the largest
    training_bytes: int  # input + kept for backward + params + grads + optimizer state

    @property
    def saved_bytes(self) -> int:
        """The activations of a training step: the input and the tensors kept for backward."""
        return self.input_bytes + self.kept_bytes


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
    kept_bytes: int,
) -> Memory:
    """``layers``: (name, input elements, output elements) per layer, per sample; ``kept_bytes``: for the
    batch (``kept_for_backward`` for a spec, the trace for a module)."""
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
        kept_bytes=kept_bytes,
        param_bytes=param_bytes,
        grad_bytes=grad_bytes,
        optimizer_bytes=optimizer_bytes,
        inference_peak_bytes=peak + param_bytes,
        peak_layer=peak_layer,
        training_bytes=input_bytes + kept_bytes + param_bytes + grad_bytes + optimizer_bytes,
    )


# what autograd saves for backward, per layer kind, in train mode: "input", "output" or "" (a view, or nothing).
# A kind registered elsewhere (ablab.layers.register_layer) says it with a ``keeps`` class attribute, else it is
# charged its input, what most operators save.
KEEPS: dict[str, str] = {
    "conv1d": "input", "conv2d": "input", "linear": "input", "avgpool1d": "input", "avgpool2d": "input",
    "adaptiveavgpool2d": "input", "maxpool1d": "input", "maxpool2d": "input", "gelu": "input", "leaky_relu": "input",
    "batchnorm": "input", "layernorm": "input", "groupnorm": "input",
    "relu": "output", "tanh": "output", "sigmoid": "output", "softmax": "output",
    "flatten": "", "dropout": "",
}
VIEWS = frozenset({"flatten"})  # the output shares its input's storage
# 1-d pooling runs the 2-d kernel on an unsqueezed view of its input: the saved tensor is that view, made by
# the pooling layer itself, so the input's storage is charged to the pooling layer
OWN_VIEW_OF_INPUT = frozenset({"avgpool1d", "maxpool1d"})


def _made_for_backward(kind: str, layer: object, in_shape: tuple[int, ...], out_shape: tuple[int, ...], batch: int,
                       b: int) -> int:
    """Bytes a layer makes only for backward, for the batch."""
    if kind in ("maxpool1d", "maxpool2d"):
        return batch * prod(out_shape) * INT64_BYTES  # argmax indices
    if kind == "dropout":
        return batch * prod(in_shape) * b  # the scaled keep-mask
    if kind == "batchnorm":
        return 4 * in_shape[0] * b  # batch mean, inverse std and the two running statistics, per channel
    if kind == "layernorm":
        return 2 * batch * b  # mean and inverse std per sample
    if kind == "groupnorm":
        return 2 * int(getattr(layer, "groups", 1)) * batch * b  # per sample and group
    return 0


def kept_for_backward(layers: list, batch: int, dtype: str) -> list[int]:
    """Per layer (``Resolved`` rows of a chain), the bytes autograd keeps for backward in train mode: the
    tensors of ``KEEPS``, each storage once, charged to the layer that made the tensor saved (a view's
    saved storage to the view), plus what the layer makes for backward. The network input is not charged
    (training memory counts it as the input)."""
    b = dtype_bytes(dtype)
    kept = [0] * len(layers)
    seen: set[int] = set()
    size = [batch * prod(r.out_shape) * b for r in layers]
    obj, storage = -1, -1  # the row that made the current tensor, and the row whose storage it lives in

    def keep(row: int, store: int) -> None:
        if row >= 0 and store >= 0 and store not in seen:  # -1: the network input (counted as the input)
            seen.add(store)
            kept[row] += size[store]

    for i, r in enumerate(layers):
        kind = r.layer.kind
        rule = KEEPS.get(kind, getattr(r.layer, "keeps", "input"))
        if rule == "input":
            keep(i if kind in OWN_VIEW_OF_INPUT else obj, storage)
        kept[i] += _made_for_backward(kind, r.layer, r.in_shape, r.out_shape, batch, b)
        if kind not in VIEWS:
            obj, storage = i, i
        elif len(r.in_shape) > 1:  # a new view of the same storage (flattening a flat input returns the input)
            obj = i
        if rule == "output":
            keep(i, storage)
    return kept


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
