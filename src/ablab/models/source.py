"""Resolving MODEL the way every command does: a preset name, a spec file (``.json`` or spec text) or
a spec string."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ablab.layers.values import Shape, SpecError
from ablab.models.presets import get_preset, is_preset
from ablab.reading import load_json, read_utf8
from ablab.spec.grammar import parse_spec
from ablab.spec.stack import Spec


def load_spec(source: str | Path, input_shape: Shape | None = None) -> Spec:
    """Resolve MODEL: a preset name (``lenet5``, ``mlp:1000,10``), a spec file (``.json`` or spec text),
    or a spec string. ``input_shape`` overrides the spec's own."""
    text = str(source)
    if is_preset(text):
        spec = get_preset(text)
    else:
        path = Path(text)
        if _looks_like_path(text) and path.is_file():
            spec = read_spec_file(path)
        elif _looks_like_path(text) and ("/" in text or text.endswith((".json", ".txt", ".spec"))):
            raise SpecError(f"{text}: no such spec file")
        else:
            spec = parse_spec(text)
    if input_shape is not None:
        spec = spec.with_input(input_shape)
    return spec


def read_spec_file(path: Path) -> Spec:
    """A ``.json`` spec or a spec-text file, UTF-8; named after the file unless it names itself."""
    content = read_utf8(path)
    if path.suffix == ".json":
        spec = Spec.from_dict(load_json(content, str(path), SpecError), where=str(path))
    else:
        spec = parse_spec(content, source=str(path))
    return spec if spec.name else dataclasses.replace(spec, name=path.stem)


def _looks_like_path(text: str) -> bool:
    return "(" not in text and " " not in text.strip()
