"""The layer contract and its registry: one ``LayerKind`` entry per kind.

A kind is a frozen dataclass subclassing ``Layer``. The class holds

* its **grammar**: ``kind`` (the name in specs), its fields, ``positional`` (fields that may be given
  without a keyword, in order) and ``keywords`` (short aliases, ``k`` -> ``kernel_size``);
* its **rules**, pure Python on exact integers: ``place`` (output shape and resolved padding),
  ``cost`` (parameters, MACs, FLOPs with the worked formula), ``field`` (receptive field),
  ``tensors`` (parameters and buffers by state-dict name), ``lint`` (warnings of its own), and the
  flags ``weighted`` / ``affine_at_inference`` / ``cancels_bias`` the stack-level lint reads.

``register_layer`` adds the class with, as data, its ``TorchMap`` (which ``torch.nn`` module computes
it and from which fields) and its ``ReferenceOp`` (which NumPy forward/backward in ``ablab.reference``
computes it). The PyTorch builder, the NumPy reference model and the calculus only read these.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from ablab.jsonable import jsonable
from ablab.layers.placed import Conventions, Field, LayerCost, Tensor, fmt_shape
from ablab.layers.values import Pairs, Shape, SpecError, fmt
from ablab.registry import Registry


@dataclass(frozen=True)
class TorchMap:
    """How a kind maps to a ``torch.nn`` module, as data (no torch import at registration).

    ``module``: the class path, or one per input rank (``{3: "torch.nn.BatchNorm2d", 2: ..., 1: ...}``).
    ``args``: constructor argument -> source, where a string source is a field name, ``"in:0"`` /
    ``"in:-1"`` (an input axis), ``"in"`` (the whole input shape), ``"pad"`` (the symmetric padding per
    axis), ``"flat_pad"`` (resolved pairs in ``F.pad`` order); any other value is a constant.
    ``requires``: module attributes that must have these values for a module to map back to the kind.
    ``pad``: per input rank, the explicit pad module put in front when the resolved padding is asymmetric.
    """

    module: str | Mapping[int, str]
    args: Mapping[str, Any] = field(default_factory=dict)
    requires: Mapping[str, Any] = field(default_factory=dict)
    pad: Mapping[int, TorchMap] = field(default_factory=dict)

    def module_for(self, rank: int) -> str:
        return self.module if isinstance(self.module, str) else self.module[rank]

    def modules(self) -> tuple[str, ...]:
        return (self.module,) if isinstance(self.module, str) else tuple(dict.fromkeys(self.module.values()))


@dataclass(frozen=True)
class ReferenceOp:
    """How a kind maps to a NumPy reference op: ``"module:function"`` for forward and backward.

    ``forward(x, **kwargs) -> (y, cache)``, ``backward(dy, cache) -> {"x": dx, key: grad, ...}``.
    ``args``: keyword -> source, as in ``TorchMap`` plus ``"pads"`` (resolved pairs), ``"param:NAME"`` /
    ``"buffer:NAME"`` (the layer's tensor, ``None`` if it has none) and ``"ctx:training"`` /
    ``"ctx:mask"`` / ``"ctx:rng"`` (the model's mode, the layer's dropout mask, the generator).
    ``grads``: backward's key -> parameter name (``{"w": "weight", "b": "bias"}``)."""

    forward: str
    backward: str
    args: Mapping[str, Any] = field(default_factory=dict)
    grads: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerKind:
    """One registry entry: the class (grammar + rules) and its mappings to torch and NumPy."""

    kind: str
    cls: type[Layer]
    aliases: tuple[str, ...] = ()
    torch: TorchMap | None = None
    reference: ReferenceOp | None = None
    grammar: bool = True  # written in specs (False: internal kinds of the module summary)

    @property
    def doc(self) -> str:
        return (self.cls.__doc__ or "").strip().split("\n")[0]


LAYERS: Registry[LayerKind] = Registry("layer", SpecError, cutoff=0.5, normalize=str.lower)

L = TypeVar("L", bound="type[Layer]")


def register_layer(*aliases: str, torch: TorchMap | None = None, reference: ReferenceOp | None = None,
                   grammar: bool = True) -> Callable[[L], L]:
    """Class decorator: register a ``Layer`` subclass under its ``kind`` and ``aliases``."""

    def deco(cls: L) -> L:
        LAYERS.register(cls.kind, LayerKind(cls.kind, cls, tuple(aliases), torch, reference, grammar),
                        aliases=aliases)
        return cls

    return deco


@dataclass(frozen=True)
class Layer:
    """Base of all layers. Subclasses set ``kind``, ``positional`` and ``keywords`` and override the
    rules that differ from the defaults here (an element-wise layer with no parameters)."""

    kind: ClassVar[str] = ""
    positional: ClassVar[tuple[str, ...]] = ()
    keywords: ClassVar[dict[str, str]] = {}
    weighted: ClassVar[bool] = False  # holds a weight matrix (conv, linear): for the collapse lint
    affine_at_inference: ClassVar[bool] = False  # lint: two weighted layers with only these between collapse
    cancels_bias: ClassVar[bool] = False  # subtracts a per-channel mean (a bias before it is redundant)

    # ---------------------------------------------------------------------------------- grammar
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            d[f.name] = jsonable(getattr(self, f.name))
        return d

    def to_string(self) -> str:
        fields = dataclasses.fields(self)
        required = {f.name for f in fields if field_default(f) is dataclasses.MISSING}
        ref = type(self)(**{n: getattr(self, n) for n in required})  # the defaults, normalized alike
        args: list[str] = []
        for f in fields:
            v = getattr(self, f.name)
            if f.name in required and self.positional.index(f.name) == len(args):
                args.append(fmt(v))
            elif f.name in required or v != getattr(ref, f.name):
                args.append(f"{f.name}={fmt(v)}")
        return self.kind + (f"({','.join(args)})" if args else "")

    def replace(self, **changes: Any) -> Layer:
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------------------------ rules
    def place(self, shape: Shape, where: str) -> tuple[Shape, Pairs]:
        """Output shape for ``shape`` (and the resolved padding pairs); ``SpecError`` if it cannot work."""
        return shape, ()

    def shape_lines(self, r: Resolved) -> list[str]:
        """How the output shape follows from the input, axis by axis (for ``--explain``)."""
        return []

    def tensors(self, r: Resolved) -> tuple[Tensor, ...]:
        """Parameters and buffers, by ``state_dict`` name, in PyTorch's order."""
        return ()

    def cost(self, r: Resolved, conv: Conventions) -> LayerCost:
        """Parameters, MACs and FLOPs per sample, with the worked lines (after the shape lines)."""
        return LayerCost(explain=("no parameters, no MACs, no FLOPs (data movement)",))

    def field(self, fld: Field, r: Resolved) -> tuple[Field | None, str]:
        """The receptive field after this layer from the one before (``None``: global or unknown)."""
        if len(r.out_shape) != len(r.in_shape):
            return None, GLOBAL_FIELD
        return fld, "receptive field unchanged (element-wise)"

    def lint(self, r: Resolved) -> list[tuple[str, str]]:
        """Warnings about this layer alone, as (code, message)."""
        return []



@dataclass(frozen=True)
class Resolved:
    """One layer placed in its stack: its name, input/output shapes, and padding as explicit pairs."""

    index: int  # 1-based position in the stack
    name: str  # e.g. conv2d_1 (kind and per-kind counter)
    layer: Layer
    in_shape: Shape
    out_shape: Shape
    padding: Pairs = ()  # (before, after) per spatial axis, for conv and pooling layers


GLOBAL_FIELD = "receptive field: the whole input (every output sees every input pixel)"


def field_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def need_rank(shape: Shape, ranks: tuple[int, ...], where: str, what: str) -> None:
    """``SpecError`` unless ``len(shape)`` is one of ``ranks``."""
    if len(shape) not in ranks:
        raise SpecError(f"{where}: {what}, got {fmt_shape(shape)}")
