"""The layer-stack spec: parse, validate, serialize. Pure Python, no torch.

A spec is an input shape plus an ordered tuple of layers. It is written three ways:

* a string, layers separated by whitespace, ``>`` or ``->``::

      input(1,28,28) conv(6,5,pad=2) tanh avgpool(2) conv(16,5) tanh avgpool(2)
      flatten linear(120) tanh linear(84) tanh linear(10)

* a file holding that string (``#`` starts a comment), or a JSON file
  ``{"input": [1, 28, 28], "layers": [{"kind": "conv2d", "out_channels": 6, ...}]}``;
* Python: ``Spec(input_shape=(1, 28, 28), layers=(Conv(out_channels=6, kernel_size=(5, 5)), ...))``.

The input shape excludes the batch dimension: ``(C, H, W)`` for 2-d layers, ``(C, L)`` for 1-d,
``(F,)`` for a vector. Every layer is a frozen dataclass registered under its kind name in
``LAYERS``; ``list_layers()`` names them all.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ablab.errors import UserError

Shape = tuple[int, ...]
# Explicit padding: one (before, after) pair per spatial axis; or "same" (TensorFlow SAME) / "valid".
Padding = tuple[tuple[int, int], ...] | str


class SpecError(UserError, ValueError):
    """A spec that cannot be parsed or cannot work; the message names the place and what was expected."""


# --------------------------------------------------------------------------------------------- layers

LAYERS: dict[str, type[Layer]] = {}
ALIASES: dict[str, str] = {}


def register(*names: str) -> Callable[[type[Layer]], type[Layer]]:
    """Register a layer class under its ``kind`` and any aliases."""

    def deco(cls: type[Layer]) -> type[Layer]:
        LAYERS[cls.kind] = cls
        for n in names:
            ALIASES[n] = cls.kind
        return cls

    return deco


def list_layers() -> list[str]:
    """Every layer kind and alias the spec grammar accepts."""
    return sorted([*LAYERS, *ALIASES])


@dataclass(frozen=True)
class Layer:
    """Base of all layers. ``kind`` names the layer in specs; ``positional`` lists the fields that may
    be given without a keyword, in order; ``KEYWORDS`` maps short keyword aliases to field names."""

    kind: ClassVar[str] = ""
    positional: ClassVar[tuple[str, ...]] = ()
    keywords: ClassVar[dict[str, str]] = {}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            d[f.name] = _jsonable(getattr(self, f.name))
        return d

    def to_string(self) -> str:
        fields = dataclasses.fields(self)
        required = {f.name for f in fields if _field_default(f) is dataclasses.MISSING}
        ref = type(self)(**{n: getattr(self, n) for n in required})  # the defaults, normalized alike
        args: list[str] = []
        for f in fields:
            v = getattr(self, f.name)
            if f.name in required and self.positional.index(f.name) == len(args):
                args.append(_fmt(v))
            elif f.name in required or v != getattr(ref, f.name):
                args.append(f"{f.name}={_fmt(v)}")
        return self.kind + (f"({','.join(args)})" if args else "")

    def replace(self, **changes: Any) -> Layer:
        return dataclasses.replace(self, **changes)


def _field_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    return v


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        if len(v) > 0 and all(x == v[0] for x in v) and not isinstance(v[0], tuple):
            return _fmt(v[0])
        return "(" + ",".join(_fmt(x) for x in v) + ")"
    return str(v)


def _ntuple(value: Any, n: int, name: str, minimum: int) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise SpecError(f"{name}: expected an integer, got {value!r}")
    if isinstance(value, int):
        value = (value,) * n
    if not (isinstance(value, tuple | list) and len(value) == n and all(
        isinstance(x, int) and not isinstance(x, bool) for x in value
    )):
        got = _fmt(value) if isinstance(value, tuple) else repr(value)
        raise SpecError(f"{name}: expected an integer or {n} integers, got {got}")
    if any(x < minimum for x in value):
        raise SpecError(f"{name}: every value must be >= {minimum}, got {_fmt(tuple(value))}")
    return tuple(value)


def _padding(value: Any, n: int, name: str = "padding") -> Padding:
    """Normalize int / per-axis tuple / per-axis (before, after) pairs / flat 2n tuple / same / valid."""
    if isinstance(value, str):
        v = value.lower()
        if v not in ("same", "valid"):
            raise SpecError(f"{name}: expected an integer, a tuple, 'same' or 'valid', got {value!r}")
        return v
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * n
    if isinstance(value, tuple | list):
        value = tuple(value)
        if len(value) == n and all(isinstance(x, int) for x in value):
            pairs = tuple((int(x), int(x)) for x in value)
        elif len(value) == n and all(isinstance(x, tuple | list) and len(x) == 2 for x in value):
            pairs = tuple((int(a), int(b)) for a, b in value)
        elif len(value) == 2 * n and all(isinstance(x, int) for x in value):
            pairs = tuple((value[2 * i], value[2 * i + 1]) for i in range(n))
        else:
            raise SpecError(
                f"{name}: expected an integer, {n} integers, {n} (before,after) pairs or "
                f"{2 * n} integers, got {_fmt(value)}"
            )
        if any(x < 0 for p in pairs for x in p):
            raise SpecError(f"{name}: padding must be >= 0, got {_fmt(value)}")
        return pairs
    raise SpecError(f"{name}: expected an integer, a tuple, 'same' or 'valid', got {value!r}")


@dataclass(frozen=True)
class _ConvBase(Layer):
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...] = ()
    padding: Padding = ()
    dilation: tuple[int, ...] = ()
    groups: int = 1
    bias: bool = True

    ndim: ClassVar[int] = 2
    positional = ("out_channels", "kernel_size", "stride", "padding")
    keywords = {"out": "out_channels", "channels": "out_channels", "k": "kernel_size", "kernel": "kernel_size",
                "s": "stride", "pad": "padding", "p": "padding", "d": "dilation", "g": "groups"}

    def __post_init__(self) -> None:
        n = self.ndim
        if not isinstance(self.out_channels, int) or isinstance(self.out_channels, bool) or self.out_channels < 1:
            raise SpecError(f"out_channels: expected a positive integer, got {self.out_channels!r}")
        set_ = object.__setattr__
        set_(self, "kernel_size", _ntuple(self.kernel_size, n, "kernel_size", 1))
        set_(self, "stride", _ntuple(1 if self.stride == () else self.stride, n, "stride", 1))
        set_(self, "padding", _padding(0 if self.padding == () else self.padding, n))
        set_(self, "dilation", _ntuple(1 if self.dilation == () else self.dilation, n, "dilation", 1))
        if not isinstance(self.groups, int) or self.groups < 1:
            raise SpecError(f"groups: expected a positive integer, got {self.groups!r}")
        if self.out_channels % self.groups:
            raise SpecError(f"groups: out_channels={self.out_channels} is not divisible by groups={self.groups}")
        if not isinstance(self.bias, bool):
            raise SpecError(f"bias: expected true or false, got {self.bias!r}")


@register("conv")
@dataclass(frozen=True)
class Conv2d(_ConvBase):
    """2-d convolution over (C, H, W). ``padding='same'`` is TensorFlow SAME (asymmetric when needed)."""

    kind = "conv2d"
    ndim = 2


@register()
@dataclass(frozen=True)
class Conv1d(_ConvBase):
    """1-d convolution over (C, L)."""

    kind = "conv1d"
    ndim = 1


@register("fc", "dense")
@dataclass(frozen=True)
class Linear(Layer):
    """Fully connected layer on the last axis."""

    out_features: int
    bias: bool = True

    kind = "linear"
    positional = ("out_features",)
    keywords = {"out": "out_features", "units": "out_features"}

    def __post_init__(self) -> None:
        if not isinstance(self.out_features, int) or isinstance(self.out_features, bool) or self.out_features < 1:
            raise SpecError(f"out_features: expected a positive integer, got {self.out_features!r}")
        if not isinstance(self.bias, bool):
            raise SpecError(f"bias: expected true or false, got {self.bias!r}")


@dataclass(frozen=True)
class _PoolBase(Layer):
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...] = ()  # default: the kernel size, as in PyTorch
    padding: Padding = ()
    ceil_mode: bool = False

    ndim: ClassVar[int] = 2
    op: ClassVar[str] = "max"
    positional = ("kernel_size", "stride", "padding")
    keywords = {"k": "kernel_size", "kernel": "kernel_size", "s": "stride", "pad": "padding", "p": "padding",
                "ceil": "ceil_mode"}

    def __post_init__(self) -> None:
        n = self.ndim
        set_ = object.__setattr__
        set_(self, "kernel_size", _ntuple(self.kernel_size, n, "kernel_size", 1))
        set_(self, "stride", _ntuple(self.kernel_size if self.stride == () else self.stride, n, "stride", 1))
        pad = _padding(0 if self.padding == () else self.padding, n)
        if pad == "same":
            raise SpecError("padding: pooling takes an integer or a tuple (or 'valid'), not 'same'")
        if pad == "valid":
            pad = tuple((0, 0) for _ in range(n))
        assert not isinstance(pad, str)
        if any(a != b for a, b in pad):
            raise SpecError(f"padding: pooling padding must be symmetric, got {_fmt(pad)}")
        for (a, _), k in zip(pad, self.kernel_size, strict=True):
            if a > k // 2:
                raise SpecError(f"padding: pooling padding must be at most half the kernel ({k}), got {a}")
        set_(self, "padding", pad)
        if not isinstance(self.ceil_mode, bool):
            raise SpecError(f"ceil_mode: expected true or false, got {self.ceil_mode!r}")


@register("maxpool")
@dataclass(frozen=True)
class MaxPool2d(_PoolBase):
    """2-d max pooling (stride defaults to the kernel size)."""

    kind = "maxpool2d"


@register("avgpool")
@dataclass(frozen=True)
class AvgPool2d(_PoolBase):
    """2-d average pooling; padded zeros count in the average (PyTorch's count_include_pad=True)."""

    kind = "avgpool2d"
    op = "avg"


@register()
@dataclass(frozen=True)
class MaxPool1d(_PoolBase):
    kind = "maxpool1d"
    ndim = 1


@register()
@dataclass(frozen=True)
class AvgPool1d(_PoolBase):
    kind = "avgpool1d"
    ndim = 1
    op = "avg"


@register("bn", "batchnorm2d", "batchnorm1d")
@dataclass(frozen=True)
class BatchNorm(Layer):
    """Batch normalization over the channel axis (axis 0 of the sample shape): 1-d or 2-d by input rank."""

    eps: float = 1e-5
    momentum: float = 0.1
    affine: bool = True

    kind = "batchnorm"

    def __post_init__(self) -> None:
        if not isinstance(self.eps, int | float) or self.eps <= 0:
            raise SpecError(f"eps: expected a positive number, got {self.eps!r}")
        if not isinstance(self.momentum, int | float) or not 0 <= self.momentum <= 1:
            raise SpecError(f"momentum: expected a number in [0, 1], got {self.momentum!r}")
        object.__setattr__(self, "eps", float(self.eps))
        object.__setattr__(self, "momentum", float(self.momentum))


@register()
@dataclass(frozen=True)
class Dropout(Layer):
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p)."""

    p: float = 0.5

    kind = "dropout"
    positional = ("p",)
    keywords = {"rate": "p"}

    def __post_init__(self) -> None:
        if not isinstance(self.p, int | float) or isinstance(self.p, bool) or not 0 <= self.p < 1:
            raise SpecError(f"p: expected a probability in [0, 1), got {self.p!r}")
        object.__setattr__(self, "p", float(self.p))


@register()
@dataclass(frozen=True)
class Flatten(Layer):
    """Flatten every axis but the batch axis."""

    kind = "flatten"


@dataclass(frozen=True)
class Activation(Layer):
    """Element-wise activation (softmax: along the channel axis)."""


@register()
@dataclass(frozen=True)
class ReLU(Activation):
    kind = "relu"


@register("leakyrelu", "lrelu")
@dataclass(frozen=True)
class LeakyReLU(Activation):
    negative_slope: float = 0.01

    kind = "leaky_relu"
    positional = ("negative_slope",)
    keywords = {"slope": "negative_slope", "alpha": "negative_slope"}

    def __post_init__(self) -> None:
        if not isinstance(self.negative_slope, int | float) or isinstance(self.negative_slope, bool):
            raise SpecError(f"negative_slope: expected a number, got {self.negative_slope!r}")
        object.__setattr__(self, "negative_slope", float(self.negative_slope))


@register()
@dataclass(frozen=True)
class Tanh(Activation):
    kind = "tanh"


@register()
@dataclass(frozen=True)
class Sigmoid(Activation):
    kind = "sigmoid"


@register()
@dataclass(frozen=True)
class GELU(Activation):
    kind = "gelu"


@register()
@dataclass(frozen=True)
class Softmax(Activation):
    kind = "softmax"


ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu", "softmax")
WEIGHTED = ("conv1d", "conv2d", "linear")


# ----------------------------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class Spec:
    """An input shape (without the batch axis) and a stack of layers."""

    input_shape: Shape | None
    layers: tuple[Layer, ...] = field(default_factory=tuple)
    name: str = ""

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def with_input(self, shape: Shape) -> Spec:
        return dataclasses.replace(self, input_shape=tuple(shape))

    def replace_layers(self, layers: list[Layer] | tuple[Layer, ...]) -> Spec:
        return dataclasses.replace(self, layers=tuple(layers))

    def to_string(self) -> str:
        parts = []
        if self.input_shape is not None:
            parts.append("input(" + ",".join(map(str, self.input_shape)) + ")")
        parts += [layer.to_string() for layer in self.layers]
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input": list(self.input_shape) if self.input_shape is not None else None,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "spec") -> Spec:
        if not isinstance(d, dict) or "layers" not in d:
            raise SpecError(f"{where}: expected an object with 'layers' (and 'input'), got {type(d).__name__}")
        unknown = set(d) - {"name", "input", "layers"}
        if unknown:
            raise SpecError(f"{where}: unknown key(s) {sorted(unknown)}; expected 'name', 'input', 'layers'")
        shape = d.get("input")
        layers = []
        for i, ld in enumerate(d["layers"]):
            if not isinstance(ld, dict) or "kind" not in ld:
                raise SpecError(f"{where}: layers[{i}]: expected an object with 'kind'")
            args = {k: _tuplify(v) for k, v in ld.items() if k != "kind"}
            layers.append(make_layer(str(ld["kind"]), [], args, where=f"{where}: layers[{i}]"))
        return cls(input_shape=_check_shape(shape, where) if shape is not None else None,
                   layers=tuple(layers), name=str(d.get("name", "")))


def _tuplify(v: Any) -> Any:
    return tuple(_tuplify(x) for x in v) if isinstance(v, list) else v


def _check_shape(shape: Any, where: str) -> Shape:
    shape = _tuplify(shape)
    if not (isinstance(shape, tuple) and 1 <= len(shape) <= 3 and all(
        isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in shape
    )):
        raise SpecError(f"{where}: input shape must be 1 to 3 positive integers (C,H,W / C,L / F), got {shape!r}")
    return shape


def parse_shape(text: str) -> Shape:
    """Parse ``1x28x28``, ``3,32,32`` or ``(3, 32, 32)`` into a tuple of ints."""
    t = text.strip().strip("()[]")
    parts = [p for p in re.split(r"[x×,\s]+", t) if p]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise SpecError(f"input shape {text!r}: expected positive integers like 1x28x28 or 3,32,32") from None
    return _check_shape(shape, f"input shape {text!r}")


def make_layer(name: str, positional: list[Any], keywords: dict[str, Any], where: str = "") -> Layer:
    """Build a layer from its name, positional and keyword arguments, with errors that name the layer."""
    kind = ALIASES.get(name.lower(), name.lower())
    prefix = f"{where}: " if where else ""
    if kind not in LAYERS:
        close = difflib.get_close_matches(name.lower(), list_layers(), n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known layers: {', '.join(sorted(LAYERS))}"
        raise SpecError(f"{prefix}unknown layer '{name}'{hint}")
    cls = LAYERS[kind]
    label = f"{prefix}{kind}"
    if len(positional) > len(cls.positional):
        raise SpecError(f"{label}: takes at most {len(cls.positional)} positional argument(s) "
                        f"({', '.join(cls.positional) or 'none'}), got {len(positional)}")
    args = dict(zip(cls.positional, positional, strict=False))
    names = {f.name for f in dataclasses.fields(cls)}
    for k, v in keywords.items():
        key = cls.keywords.get(k, k)
        if key not in names:
            opts = sorted(names | set(cls.keywords))
            close = difflib.get_close_matches(k, opts, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise SpecError(f"{label}: unknown argument '{k}'{hint} (accepted: {', '.join(sorted(names))})")
        if key in args:
            raise SpecError(f"{label}: argument '{key}' given twice")
        args[key] = v
    required = [f.name for f in dataclasses.fields(cls) if _field_default(f) is dataclasses.MISSING]
    missing = [r for r in required if r not in args]
    if missing:
        raise SpecError(f"{label}: missing required argument(s) {', '.join(missing)}")
    try:
        return cls(**args)
    except SpecError as e:
        raise SpecError(f"{label}: {e}") from None
    except TypeError as e:  # wrong value types the field checks did not catch
        raise SpecError(f"{label}: {e}") from None


# --------------------------------------------------------------------------------------------- parser

_TOKEN = re.compile(
    r"\s*(?:(?P<arrow>->|>|\|)|(?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_\-]*)|(?P<punct>[(),=\[\]]))"
)


class _Parser:
    """Recursive-descent parser over the spec grammar; errors give the column and a caret."""

    def __init__(self, text: str, source: str = "spec"):
        self.text, self.source = text, source
        self.toks: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos].isspace():
                pos += 1
                continue
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                self.fail(pos, f"unexpected character {text[pos]!r}")
            assert m is not None
            kind = m.lastgroup or ""
            self.toks.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0

    def fail(self, pos: int, msg: str) -> None:
        line_start = self.text.rfind("\n", 0, pos) + 1
        line_end = self.text.find("\n", pos)
        line_end = len(self.text) if line_end < 0 else line_end
        line_no = self.text.count("\n", 0, pos) + 1
        col = pos - line_start + 1
        snippet = self.text[line_start:line_end]
        raise SpecError(f"{self.source}:{line_no}:{col}: {msg}\n  {snippet}\n  {' ' * (col - 1)}^")

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def pos(self) -> int:
        t = self.peek()
        return t[2] if t else len(self.text)

    def take(self, value: str | None = None, kind: str | None = None, expected: str = "") -> tuple[str, str, int]:
        t = self.peek()
        if t is None or (value is not None and t[1] != value) or (kind is not None and t[0] != kind):
            got = f"'{t[1]}'" if t else "end of spec"
            self.fail(self.pos(), f"expected {expected or value or kind}, got {got}")
        assert t is not None
        self.i += 1
        return t

    def parse(self) -> Spec:
        shape: Shape | None = None
        layers: list[Layer] = []
        while self.peek() is not None:
            t = self.peek()
            assert t is not None
            if t[0] == "arrow":
                self.i += 1
                continue
            start = t[2]
            name = self.take(kind="name", expected="a layer name")[1]
            pos_args: list[Any] = []
            kw_args: dict[str, Any] = {}
            nt = self.peek()
            if nt is not None and nt[1] == "(":
                self.i += 1
                pos_args, kw_args = self.arglist(name)
            if name.lower() == "input":
                if layers or shape is not None:
                    self.fail(start, "input(...) must come first, once")
                if kw_args:
                    self.fail(start, "input takes only integers, e.g. input(1,28,28)")
                try:
                    shape = _check_shape(tuple(pos_args), "input")
                except SpecError as e:
                    self.fail(start, str(e))
                continue
            try:
                layers.append(make_layer(name, pos_args, kw_args))
            except SpecError as e:
                self.fail(start, f"layer {len(layers) + 1}: {e}")
        if not layers:
            self.fail(0, "expected at least one layer")
        return Spec(input_shape=shape, layers=tuple(layers))

    def arglist(self, layer: str) -> tuple[list[Any], dict[str, Any]]:
        pos_args: list[Any] = []
        kw: dict[str, Any] = {}
        if self.peek() is not None and self.peek()[1] == ")":  # type: ignore[index]
            self.i += 1
            return pos_args, kw
        while True:
            t = self.peek()
            nt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
            if t is not None and t[0] == "name" and nt is not None and nt[1] == "=":
                self.i += 2
                kw[t[1]] = self.value()
            else:
                if kw:
                    self.fail(self.pos(), f"{layer}: positional argument after keyword argument")
                pos_args.append(self.value())
            t = self.take(expected="',' or ')'")
            if t[1] == ")":
                return pos_args, kw
            if t[1] != ",":
                self.fail(t[2], f"expected ',' or ')', got '{t[1]}'")

    def value(self) -> Any:
        t = self.take(expected="a value (number, true/false, same/valid or a tuple)")
        kind, text, pos = t
        if kind == "num":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "name":
            low = text.lower()
            if low in ("true", "yes", "on"):
                return True
            if low in ("false", "no", "off", "none"):
                return False
            return text
        if text in ("(", "["):
            close = ")" if text == "(" else "]"
            items = []
            while True:
                items.append(self.value())
                t2 = self.take(expected=f"',' or '{close}'")
                if t2[1] == close:
                    return tuple(items)
                if t2[1] != ",":
                    self.fail(t2[2], f"expected ',' or '{close}', got '{t2[1]}'")
        self.fail(pos, f"expected a value, got '{text}'")


def parse_spec(text: str, source: str = "spec") -> Spec:
    """Parse the spec grammar (see module docstring). Comments start with ``#``."""
    clean = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    return _Parser(clean, source).parse()


def load_spec(source: str | Path, input_shape: Shape | None = None) -> Spec:
    """Resolve MODEL the way the CLI does: a preset name (``lenet5``, ``mlp:1000,10``), a spec file
    (``.json`` or spec text), or a spec string. ``input_shape`` overrides the spec's own."""
    from ablab.presets import get_preset, is_preset

    text = str(source)
    if is_preset(text):
        spec = get_preset(text)
    else:
        path = Path(text)
        if _looks_like_path(text) and path.is_file():
            content = path.read_text()
            if path.suffix == ".json":
                try:
                    data = json.loads(content)
                except json.JSONDecodeError as e:
                    raise SpecError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
                spec = Spec.from_dict(data, where=str(path))
            else:
                spec = parse_spec(content, source=str(path))
            if not spec.name:
                spec = dataclasses.replace(spec, name=path.stem)
        elif _looks_like_path(text) and ("/" in text or text.endswith((".json", ".txt", ".spec"))):
            raise SpecError(f"{text}: no such spec file")
        else:
            spec = parse_spec(text)
    if input_shape is not None:
        spec = spec.with_input(input_shape)
    return spec


def _looks_like_path(text: str) -> bool:
    return "(" not in text and " " not in text.strip()
