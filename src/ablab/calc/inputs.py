"""The example inputs a module is traced on — as users give them.

* ``input_size``: one shape or a list of shapes (one per positional input), each without the batch axis
  (ablab's convention, ``(1, 28, 28)``) or with it (torchinfo's, ``(64, 1, 28, 28)``). ablab tries its
  own reading first; when the model does not run on it, the first size of each shape is read as the
  batch. Which reading was taken is said in the summary's notes.
* ``dtypes``: the element type of each input (``torch.long`` or ``"long"`` for token ids).
* ``input_data``: real example inputs — a tensor, a tuple/list (positional inputs) or a dict (keyword
  inputs), as torchinfo takes them; the batch is theirs, and data-dependent paths are the real ones.
* ``batch_dim``: the axis of the batch (1 for sequence-first layouts such as ``nn.LSTM`` and
  ``nn.Transformer*`` without ``batch_first``).
* ``kwargs``: further keyword arguments of ``forward`` (tensors among them are inputs too).

Generated inputs: floating point from a seeded standard normal draw (seed 0); the second draw of the
data-dependence check is that draw times -0.5, so a branch on a sign or a loop on a magnitude goes the
other way. Integers and booleans are zeros (a valid token id for any vocabulary).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ablab.calc.costs import Conventions, prod
from ablab.calc.lint import Finding
from ablab.calc.trace import B, ForwardError, Trace, tensors_in, trace_module
from ablab.errors import UserError
from ablab.layers.values import MAX_SIZE, show
from ablab.spec.stack import parse_shape

MAX_ELEMENTS = 2**30  # generated input elements traced at once (4 GiB of float32)
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float": torch.float32, "float64": torch.float64, "double": torch.float64,
    "float16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16, "long": torch.long,
    "int64": torch.long, "int": torch.int32, "int32": torch.int32, "int16": torch.int16, "int8": torch.int8,
    "uint8": torch.uint8, "bool": torch.bool,
}


@dataclass
class Reading:
    """One way of reading what the user gave: how to build the inputs for a traced batch."""

    describe: str  # for the notes: "1x28x28 (one sample; a batch axis added)"
    shapes: list[tuple[int, ...]]  # per-sample shape of each positional input
    batch: int | None  # the batch the user's input carries (torchinfo's reading, real data), else None
    make: Callable[[int, int], tuple[tuple, dict]]  # (traced batch, seed) -> (args, kwargs)
    generated: bool  # the values are a random draw (not the user's)


def parse_input(text: str) -> tuple[tuple[int, ...], str | None]:
    """``1x28x28`` -> ((1, 28, 28), None); ``long:16`` -> ((16,), "long")."""
    dtype = None
    if ":" in text:
        dtype, text = (p.strip() for p in text.split(":", 1))
        if dtype.lower() not in DTYPES:
            raise UserError(f"input {show(dtype + ':' + text)}: unknown element type {show(dtype)}; "
                            f"expected one of {', '.join(DTYPES)}", key="input_shape")
        dtype = dtype.lower()
    return parse_shape(text), dtype


def to_dtype(d: Any, where: str) -> torch.dtype:
    if isinstance(d, torch.dtype):
        return d
    if isinstance(d, str) and d.lower().removeprefix("torch.") in DTYPES:
        return DTYPES[d.lower().removeprefix("torch.")]
    raise UserError(f"{where}: expected a torch dtype or one of {', '.join(DTYPES)}, got {show(d)}", key="dtypes")


def readings(input_size: Any, input_data: Any, dtypes: Any, batch_dim: int, kwargs: dict | None,
             default_dtype: torch.dtype, device: Any) -> list[Reading]:
    """The readings to try, in order (ablab's convention first)."""
    if kwargs is not None and not isinstance(kwargs, dict):
        raise UserError(f"kwargs: expected a dict of keyword arguments of forward, got {type(kwargs).__name__}",
                        key="kwargs")
    if not isinstance(batch_dim, int) or isinstance(batch_dim, bool) or batch_dim < 0:
        raise UserError(f"batch_dim: expected an axis (0, 1, ...), got {show(batch_dim)}", key="batch_dim")
    extra = dict(kwargs or {})
    if input_data is not None:
        return [_data_reading(input_data, batch_dim, extra)]
    if input_size is None:
        raise UserError("input_size: a torch module needs an input shape without the batch axis, e.g. (1, 28, 28), "
                        "or input_data= with a real example batch", key="input_shape")
    shapes, named = _shapes(input_size)
    types = _dtypes(dtypes, named, len(shapes), default_dtype)
    if not 0 <= batch_dim <= min(len(s) for s in shapes):
        raise UserError(f"batch_dim: {batch_dim} is not an axis of an input of {len(shapes[0])} axes plus the batch",
                        key="batch_dim")

    def maker(per_sample: list[tuple[int, ...]]) -> Callable[[int, int], tuple[tuple, dict]]:
        def make(batch: int, seed: int) -> tuple[tuple, dict]:
            g = torch.Generator().manual_seed(0)
            args = []
            for s, dt in zip(per_sample, types, strict=True):
                full = (*s[:batch_dim], batch, *s[batch_dim:])
                x = torch.randn(full, generator=g) * (1.0 if seed == 0 else -0.5)  # draw 2: other sign and size
                x = x.to(dt) if dt.is_floating_point else torch.zeros(full, dtype=dt)
                args.append(x.to(device))
            return tuple(args), extra
        return make

    text = ", ".join("x".join(map(str, s)) for s in shapes)
    out = [Reading(f"input {text}: per sample (ablab's convention; the batch axis is added at axis {batch_dim})",
                   shapes, None, maker(shapes), True)]
    if all(len(s) > batch_dim for s in shapes) and len({s[batch_dim] for s in shapes}) == 1:
        n = shapes[0][batch_dim]
        rest = [(*s[:batch_dim], *s[batch_dim + 1:]) for s in shapes]
        if all(rest):
            out.append(Reading(f"input {text}: axis {batch_dim} read as the batch ({n}), as torchinfo does",
                               rest, n, maker(rest), True))
    return out


def _shapes(input_size: Any) -> tuple[list[tuple[int, ...]], list[str | None]]:
    items = input_size if isinstance(input_size, list) or (
        isinstance(input_size, tuple) and input_size and not isinstance(input_size[0], int)) else [input_size]
    shapes, named = [], []
    if not items:
        raise UserError("input_size: no shape given (an empty list)", key="input_shape")
    for item in items:
        if isinstance(item, str):
            s, d = parse_input(item)
        elif isinstance(item, tuple | list | torch.Size) and item and all(
                isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_SIZE for v in item):
            s, d = tuple(int(v) for v in item), None
        else:
            raise UserError(f"input_size: expected a shape like (1, 28, 28) or '1x28x28' (a list of them for several "
                            f"inputs), got {show(item)}", key="input_shape")
        shapes.append(s)
        named.append(d)
    return shapes, named


def _dtypes(dtypes: Any, named: list[str | None], n: int, default: torch.dtype) -> list[torch.dtype]:
    if dtypes is None:
        given: list[Any] = [None] * n
    else:
        given = list(dtypes) if isinstance(dtypes, list | tuple) else [dtypes]
        if len(given) == 1 and n > 1:
            given = given * n
        if len(given) != n:
            raise UserError(f"dtypes: {len(given)} given for {n} inputs", key="dtypes")
    out = []
    for i, (g, d) in enumerate(zip(given, named, strict=True)):
        out.append(to_dtype(g, f"dtypes[{i}]") if g is not None else DTYPES[d] if d else default)
    return out


def _data_reading(data: Any, batch_dim: int, extra: dict) -> Reading:
    if isinstance(data, torch.Tensor):
        args, kw = (data,), {}
    elif isinstance(data, list | tuple):
        args, kw = tuple(data), {}
    elif isinstance(data, dict):
        args, kw = (), dict(data)
    else:
        raise UserError(f"expected a tensor, a tuple/list or a dict of inputs, got {type(data).__name__}",
                        key="input_data")
    kw = {**kw, **extra}
    tensors = tensors_in((args, kw))  # nested ones too: a dict or list inside a positional input
    if not tensors:
        raise UserError("no tensor among the inputs", key="input_data")
    first = tensors[0]
    if first.dim() <= batch_dim:
        raise UserError(f"input_data: a tensor of shape {tuple(first.shape)} has no batch axis {batch_dim}",
                        key="batch_dim")
    n = int(first.shape[batch_dim])
    shapes = [tuple(int(v) for v in (*t.shape[:batch_dim], *t.shape[batch_dim + 1:])) for t in tensors]
    text = ", ".join("x".join(map(str, s)) or "scalar" for s in shapes)
    return Reading(f"input_data: batch {n} of {text} (the batch on axis {batch_dim})", shapes, n,
                   lambda batch, seed: (args, kw), False)


# ------------------------------------------------------------------------------------- tracing them


def sequence_first(model: nn.Module) -> int:
    """The default batch axis: 1 for torch's sequence-first modules used as the model itself (``nn.LSTM``,
    ``nn.GRU``, ``nn.RNN``, ``nn.Transformer*``, ``nn.MultiheadAttention`` without ``batch_first``), else 0."""
    kinds = (nn.RNNBase, nn.Transformer, nn.TransformerEncoder, nn.TransformerDecoder, nn.TransformerEncoderLayer,
             nn.TransformerDecoderLayer, nn.MultiheadAttention)
    if not isinstance(model, kinds):
        return 0
    flag = next((m.batch_first for m in model.modules() if isinstance(getattr(m, "batch_first", None), bool)), True)
    return 0 if flag else 1


def check_params(model: nn.Module) -> None:
    for name, p in model.named_parameters():
        if nn.parameter.is_lazy(p):
            raise UserError(f"parameter {name} is not initialised yet (a lazy module): run the model once on an "
                            f"example input, then size it up", key="model")
        if p.layout != torch.strided:
            raise UserError(f"parameter {name} is stored {str(p.layout).removeprefix('torch.')} (a sparse tensor): "
                            f"ablab sizes up dense parameters only; convert it with .to_dense() to size the model up")


def trace_first(model: nn.Module, options: list[Reading], conventions: Conventions, batch_dim: int, mode: str,
                 backward: bool) -> tuple[Trace, Reading]:
    """Trace the first reading of the inputs the model runs on; one error naming every reading if none."""
    failures = []
    for reading in options:
        # generated inputs: a batch of 2 where batch norm computes batch statistics (train mode), else 1
        n = reading.batch or (B if mode == "train" else 1)
        try:
            tr = trace_module(model, *make_inputs(reading, n), conventions, batch=n, batch_dim=batch_dim, mode=mode,
                              backward=backward)
            out = tr.output_shape
            if reading.batch is None and n == 1 and not (len(out) > batch_dim and out[batch_dim] == 1):
                # no batch axis of 1 in the output: torch may have read the batch of 1 as something else (a
                # convolution takes C x H x W unbatched): trace a batch of 2, which cannot be mistaken
                tr = trace_module(model, *make_inputs(reading, B), conventions, batch=B, batch_dim=batch_dim, mode=mode,
                                  backward=backward)
            return tr, reading
        except ForwardError as e:
            why = str(e)
            if reading.batch is None:  # ablab's traced batch must not leak into the message: say it for a batch of 1
                why = _error_at_batch_1(model, reading, batch_dim) or (
                    f"{why.split(':')[0]} on a batch; it runs on one sample only because torch then reads the "
                    f"shape as unbatched (a convolution takes its first axis as the channels)")
            failures.append(f"{reading.describe}: {why}")
    hint = _channels_hint(model, options[0].shapes[0]) if options and options[0].shapes else ""
    shapes = ", ".join("x".join(map(str, s)) for s in options[0].shapes)
    raise UserError(f"the model does not run on an input of shape {shapes}, read "
                    + ("either way" if len(failures) > 1 else "as given") + ": " + " | ".join(failures) + hint,
                    key="input_shape")


def make_inputs(reading: Reading, batch: int) -> tuple[tuple, dict]:
    """The inputs at ``batch``; an input too large to allocate is one error, not torch's allocator message."""
    total = sum(prod(s) for s in reading.shapes) * batch
    if reading.generated and total > MAX_ELEMENTS:
        raise UserError(f"input_size: {total:,} elements to trace; at most {MAX_ELEMENTS:,} (a smaller input gives "
                        "the same counts per sample for most networks)", key="input_shape")
    return reading.make(batch, 0)


def _error_at_batch_1(model: nn.Module, reading: Reading, batch_dim: int) -> str:
    """Torch's message for the same input at batch 1 (the user's numbers only), in eval mode, untraced."""
    args, kw = reading.make(1, 0)
    was = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*args, **kw)
    except Exception as e:  # noqa: BLE001 - the user's model may raise anything; we report it
        return f"{type(e).__name__}: {e} (at a batch of 1)"
    finally:
        model.train(was)
    return ""


def _channels_hint(model: nn.Module, shape: tuple[int, ...]) -> str:
    """'did you mean 1x28x28?' when the first layer is a convolution and the shape has no channel axis."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d)), None)
    if conv is not None and len(shape) == len(conv.kernel_size):
        return f"; did you mean {'x'.join(map(str, (conv.in_channels, *shape)))} (channels first)?"
    return ""


def data_dependence(model: nn.Module, tr: Trace, reading: Reading, conventions: Conventions, batch_dim: int,
                     mode: str) -> list[Finding]:
    """The forward read values computed from a generated input (Python control flow on tensors): trace a
    second random draw and warn when the counts differ."""
    if not tr.data_reads or not reading.generated:
        return []
    args, kw = reading.make(tr.batch, 1)
    other = trace_module(model, args, kw, conventions, batch=tr.batch, batch_dim=batch_dim, mode=mode, backward=False)
    a, b = (sum(op.cost.macs for op in t.ops) // t.batch for t in (tr, other))
    if a == b:
        return []
    return [Finding("warning", "", "data-dependent",
                    f"the counts depend on the input values (the forward branches or loops on them): two random "
                    f"draws give {a:,} and {b:,} MACs per sample; the table shows the first. Pass a real example "
                    f"batch (input_data=) for the real path")]


__all__ = ["DTYPES", "Reading", "check_params", "data_dependence", "make_inputs", "parse_input", "readings",
           "sequence_first", "to_dtype", "trace_first"]
