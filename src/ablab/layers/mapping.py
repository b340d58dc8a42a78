"""Reading a kind's mappings: the constructor arguments of its torch module, the keyword arguments of
its NumPy reference op, and the way back from a torch module to a layer. Pure Python: the torch
classes are named by strings, and only a caller that already has torch resolves them."""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Mapping
from typing import Any

from ablab.layers.base import LAYERS, Layer, LayerKind, Resolved, TorchMap
from ablab.layers.internal import PAD_MODULES, Pad
from ablab.layers.values import SpecError


def source(src: Any, r: Resolved, ctx: Mapping[str, Any] | None = None) -> Any:
    """The value a mapping names (see ``TorchMap`` and ``ReferenceOp``) for the placed layer ``r``."""
    if not isinstance(src, str):
        return src  # a constant
    if src == "in":
        return tuple(r.in_shape)
    if src.startswith("in:"):
        return r.in_shape[int(src[3:])]
    if src == "pad":
        return tuple(a for a, _ in r.padding) if symmetric(r) else (0,) * len(r.padding)
    if src == "pads":
        return r.padding
    if src == "flat_pad":  # F.pad order is last axis first: (left, right, top, bottom)
        return tuple(x for pair in reversed(r.padding) for x in pair)
    if ":" in src:
        where, name = src.split(":", 1)
        if ctx is None or where not in ctx:
            raise SpecError(f"{r.name}: the mapping source '{src}' needs a context")
        return ctx[where](name) if callable(ctx[where]) else ctx[where].get(name)
    return getattr(r.layer, src)


def symmetric(r: Resolved) -> bool:
    return all(a == b for a, b in r.padding)


def torch_modules(r: Resolved) -> list[tuple[str, dict[str, Any]]]:
    """``[(class path, kwargs)]`` building ``r`` in torch: an explicit pad first when its padding is
    asymmetric and the kind names one, then the layer's module."""
    entry = LAYERS.get(r.layer.kind)
    if entry.torch is None:
        raise SpecError(f"layer {r.index} ({r.name}): no PyTorch module for kind '{r.layer.kind}'")
    rank = len(r.in_shape)
    out = []
    if r.padding and not symmetric(r):
        pad = entry.torch.pad.get(rank)
        if pad is None:
            raise SpecError(f"layer {r.index} ({r.name}): asymmetric padding has no PyTorch form for this kind")
        out.append((pad.module_for(rank), {k: source(v, r) for k, v in pad.args.items()}))
    out.append((entry.torch.module_for(rank), {k: source(v, r) for k, v in entry.torch.args.items()}))
    return out


@functools.cache  # looked up for every module a summary traces
def torch_class(path: str) -> Any:
    """``"torch.nn.Conv2d"`` -> the class (imports torch: call only where torch is wanted)."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def torch_index() -> dict[str, list[str]]:
    """torch class path -> the kinds that map to it (ownmodel's way back from modules to kinds)."""

    out: dict[str, list[str]] = {}
    for entry in LAYERS.values():
        if entry.torch is not None:
            for path in entry.torch.modules():
                out.setdefault(path, []).append(entry.kind)
    for path in PAD_MODULES:
        out.setdefault(path, ["pad"])
    return out


def _matches(value: Any, want: Any) -> bool:
    if isinstance(value, tuple | list) and not isinstance(want, tuple | list):
        return all(v == want for v in value)
    return bool(value == want)


def _pairs_of(m: Any, n: int) -> tuple[tuple[int, int], ...]:
    """Per-axis (before, after) padding of a conv module, ``padding='same'`` included."""
    rev = getattr(m, "_reversed_padding_repeated_twice", None)
    if isinstance(m.padding, str) and rev is not None:
        # rev is (last_before, last_after, ..., first_before, first_after)
        return tuple((int(rev[2 * i]), int(rev[2 * i + 1])) for i in reversed(range(n)))
    pad = m.padding if isinstance(m.padding, tuple | list) else (m.padding,) * n
    return tuple((int(p), int(p)) for p in pad)


def layer_from_module(m: Any) -> Layer | None:
    """The spec layer computing what the torch module ``m`` computes, or ``None`` when no kind does.

    Reads every kind's ``TorchMap`` backwards: the module's class must be the mapped one (or a
    subclass), its ``requires`` attributes must hold, and each field is read from the attribute of its
    constructor argument."""

    classes = type(m).__mro__
    for entry in LAYERS.values():
        tmap = entry.torch
        if tmap is None or not entry.grammar or not any(_is(p, classes) for p in tmap.modules()):
            continue
        if any(not _matches(getattr(m, k, None), v) for k, v in tmap.requires.items()):
            return None
        try:
            return _build(entry, tmap, m)
        except (SpecError, TypeError, ValueError):
            return None
    if any(_is(p, classes) for p in PAD_MODULES) and getattr(m, "value", 0) == 0:
        flat = tuple(m.padding)  # last axis first: (left, right[, top, bottom])
        return Pad(pairs=tuple((flat[2 * i], flat[2 * i + 1]) for i in reversed(range(len(flat) // 2))))
    return None


def _is(path: str, classes: tuple[type, ...]) -> bool:
    try:
        cls = torch_class(path)
    except (ImportError, AttributeError):
        return False
    return cls in classes


def _build(entry: LayerKind, tmap: TorchMap, m: Any) -> Layer:
    fields = {f.name for f in dataclasses.fields(entry.cls)}
    kw: dict[str, Any] = {}
    for arg, src in tmap.args.items():
        if src == "pad" and "padding" in fields:
            conv = hasattr(m, "_reversed_padding_repeated_twice")
            kw["padding"] = _pairs_of(m, len(m.kernel_size)) if conv else m.padding
        elif isinstance(src, str) and src in fields:
            value = getattr(m, arg)
            if src == "bias" and not isinstance(value, bool):
                value = value is not None  # a module stores its bias tensor (or None)
            kw[src] = tuple(value) if isinstance(value, list) else value
    return entry.cls(**kw)
