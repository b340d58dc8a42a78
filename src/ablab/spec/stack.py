"""``Spec``: an input shape and an ordered tuple of layers; ``make_layer`` builds one layer from its
name and arguments, the same way for the text grammar, JSON files and Python."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ablab.layers import LAYERS, Layer, grammar_kinds, list_layers
from ablab.layers.base import field_default
from ablab.layers.values import MAX_SIZE, Shape, SpecError, show
from ablab.layers.values import shape as check_shape
from ablab.registry import did_you_mean

MAX_LAYERS = 100_000  # a spec longer than this is refused (pass max_layers to raise the limit)


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
        if not isinstance(d["layers"], list) or not d["layers"]:
            raise SpecError(f"{where}: 'layers' must be a non-empty list of layer objects, got {show(d['layers'])}")
        if len(d["layers"]) > MAX_LAYERS:
            raise SpecError(f"{where}: {len(d['layers']):,} layers is more than the limit of {MAX_LAYERS:,}")
        if not isinstance(d.get("name", ""), str):
            raise SpecError(f"{where}: 'name' must be a string, got {show(d['name'])}")
        shape = d.get("input")
        layers = []
        for i, ld in enumerate(d["layers"]):
            if not isinstance(ld, dict) or not isinstance(ld.get("kind"), str):
                raise SpecError(f"{where}: layers[{i}]: expected an object with a string 'kind'")
            args = {k: _tuplify(v) for k, v in ld.items() if k != "kind"}
            layers.append(make_layer(ld["kind"], [], args, where=f"{where}: layers[{i}]"))
        return cls(input_shape=check_shape(_tuplify(shape), where) if shape is not None else None,
                   layers=tuple(layers), name=str(d.get("name", "")))


def _tuplify(v: Any) -> Any:
    return tuple(_tuplify(x) for x in v) if isinstance(v, list) else v


def parse_shape(text: str, key: str = "input_shape") -> Shape:
    """Parse ``1x28x28``, ``3,32,32`` or ``(3, 32, 32)`` into a tuple of ints (plain digits only)."""
    t = text.strip().strip("()[]")
    parts = [p for p in re.split(r"[x×,\s]+", t) if p]
    if not parts or not all(p.isascii() and p.isdigit() for p in parts):
        raise SpecError(f"{key} {show(text)}: expected positive integers like 1x28x28 or 3,32,32")
    if any(len(p.lstrip("0")) > len(str(MAX_SIZE)) for p in parts):
        raise SpecError(f"{key} {show(text)}: every size must be at most {MAX_SIZE:,}")
    return check_shape(tuple(int(p) for p in parts), f"{key} {show(text)}")


def make_layer(name: str, positional: list[Any], keywords: dict[str, Any], where: str = "") -> Layer:
    """Build a layer from its name, positional and keyword arguments, with errors that name the layer."""
    prefix = f"{where}: " if where else ""
    key = LAYERS.key(name)
    if key is None or not LAYERS[key].grammar:
        hint = did_you_mean(name.lower(), list_layers(), cutoff=0.5)
        raise SpecError(f"{prefix}unknown layer '{name}'{hint or '; known layers: ' + ', '.join(grammar_kinds())}")
    cls = LAYERS[key].cls
    torch_form = _torch_style(name, key, positional, keywords)
    if torch_form:
        raise SpecError(f"{prefix}{torch_form}")
    label = f"{prefix}{key}"
    if len(positional) > len(cls.positional):
        raise SpecError(f"{label}: takes at most {len(cls.positional)} positional argument(s) "
                        f"({', '.join(cls.positional) or 'none'}), got {len(positional)}")
    args = dict(zip(cls.positional, positional, strict=False))
    names = {f.name for f in dataclasses.fields(cls)}
    for k, v in keywords.items():
        fname = cls.keywords.get(k, k)
        if fname not in names:
            hint = did_you_mean(k, sorted(names | set(cls.keywords)))
            raise SpecError(f"{label}: unknown argument '{k}'{hint} (accepted: {', '.join(sorted(names))})")
        if fname in args:
            raise SpecError(f"{label}: argument '{fname}' given twice")
        args[fname] = v
    missing = [f.name for f in dataclasses.fields(cls) if field_default(f) is dataclasses.MISSING
               and f.name not in args]
    if missing:
        raise SpecError(f"{label}: missing required argument(s) {', '.join(missing)}")
    try:
        return cls(**args)
    except SpecError as e:
        raise SpecError(f"{label}: {e}") from None
    except TypeError as e:  # wrong value types the field checks did not catch
        raise SpecError(f"{label}: {e}") from None


def _torch_style(name: str, kind: str, positional: list[Any], keywords: dict[str, Any]) -> str:
    """A message when ``name(...)`` is PyTorch's constructor (``Conv2d(1,6,5)``, ``Linear(400,120)``):
    its input-size arguments would be misread as ablab's. ``""`` when it is not."""
    tmap = LAYERS[kind].torch
    if tmap is None or name == name.lower() or name not in {p.rsplit(".", 1)[1] for p in tmap.modules()}:
        return ""
    torch_args = list(tmap.args)
    given = dict(zip(torch_args, positional, strict=False))
    if not any(isinstance(tmap.args[a], str) and tmap.args[a].startswith("in") for a in given):
        return ""  # no input size among the positional arguments: the call reads the same either way
    fields = {f.name for f in dataclasses.fields(LAYERS[kind].cls)}
    kw = {tmap.args.get(k, k): v for k, v in {**given, **keywords}.items()
          if not (isinstance(tmap.args.get(k), str) and tmap.args[k].startswith("in"))}
    kw = {k: v for k, v in kw.items() if k in fields}
    sig = ", ".join(torch_args)
    try:
        form = f"write {LAYERS[kind].cls(**kw).to_string()}"
    except (SpecError, TypeError):
        form = f"write {kind}(...) without them"
    call = ", ".join([*map(show, positional), *(f"{k}={show(v)}" for k, v in keywords.items())])
    return (f"{name}({call}) is PyTorch's nn.{name}({sig}); in a spec the input "
            f"sizes come from the previous layer: {form}")
