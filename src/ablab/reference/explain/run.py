"""Running a worked example from plain values — strings as typed on a command line, JSON values, or
arrays — merged with a JSON file of the same keys (the values given win). This is what ``ablab
explain`` calls; errors name the key (``x: row 2 has 1 values``) or the file and key, never a flag."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ablab.reading import load_json, read_utf8
from ablab.reference import autodiff
from ablab.reference.explain.activation import activation
from ablab.reference.explain.bn_backward import bn_backward
from ablab.reference.explain.bn_forward import bn_forward
from ablab.reference.explain.collapse import collapse
from ablab.reference.explain.conv_matrix import MAX_ENTRIES, ConvConfig, conv_matrix
from ablab.reference.explain.document import ExplainError, Explanation
from ablab.reference.explain.graph import graph
from ablab.reference.explain.inputs import as_array, parse_vector
from ablab.registry import did_you_mean
from ablab.spec.stack import parse_shape

MAX_SEED = 2**32 - 1

# the keys a --file may give, per example (the others come from arguments only)
FILE_KEYS: dict[str, tuple[str, ...]] = {
    "bn-forward": ("x", "gamma", "beta", "eps", "momentum"),
    "bn-backward": ("x", "gamma", "beta", "dy", "eps"),
    "conv-matrix": ("layer", "input", "w", "x", "g"),
    "collapse": ("layers",),
    "graph": (),
    "activation": (),
}


def load_file(path: str | Path | None, allowed: tuple[str, ...]) -> dict[str, tuple[Any, str]]:
    """A JSON object with only ``allowed`` keys: key -> (value, "file: key")."""
    if path is None:
        return {}
    p = Path(path)
    data = load_json(read_utf8(p), str(p), ExplainError)
    if not isinstance(data, dict):
        raise ExplainError(f"{p}: expected a JSON object with keys {', '.join(sorted(allowed))}")
    unknown = set(data) - set(allowed)
    if unknown:
        raise ExplainError(f"{p}: unknown key(s) {', '.join(sorted(unknown))}; expected {', '.join(sorted(allowed))}")
    return {k: (v, f"{p}: {k}") for k, v in data.items()}


class _Values:
    """The given values (by key) over the file's; each read names its source in errors."""

    def __init__(self, given: Mapping[str, Any], data: Mapping[str, tuple[Any, str]]):
        self.given, self.data = given, data

    def get(self, key: str) -> tuple[Any, str] | None:
        if self.given.get(key) is not None:
            return self.given[key], key
        return self.data.get(key)

    def array(self, key: str, ndim: int) -> Any:
        got = self.get(key)
        return None if got is None else as_array(got[0], got[1], ndim)

    def number(self, key: str, default: float) -> float:
        got = self.get(key)
        if got is None:
            return default
        value, where = got
        if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
            raise ExplainError(f"{where}: expected a finite number, got {value!r}")
        return float(value)

    def seed(self) -> int:
        """A seed NumPy accepts: an integer in [0, 2**32 - 1]."""
        got = self.get("seed")
        if got is None:
            return 0
        value, where = got
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
            raise ExplainError(f"{where}: expected an integer from 0 to {MAX_SEED:,}, got {value!r}")
        return value

    def raw(self, key: str, default: Any = None) -> Any:
        got = self.get(key)
        return default if got is None else got[0]


def _bn_forward(v: _Values, digits: int) -> Explanation:
    return bn_forward(v.array("x", 2), v.array("gamma", 1), v.array("beta", 1), v.number("eps", 1e-5),
                      v.number("momentum", 0.1), digits)


def _bn_backward(v: _Values, digits: int) -> Explanation:
    return bn_backward(v.array("x", 2), v.array("gamma", 1), v.array("beta", 1), v.array("dy", 2),
                       v.number("eps", 1e-5), digits)


def _conv_matrix(v: _Values, digits: int) -> Explanation:
    layer = v.get("layer") or ("conv(1,2)", "layer")
    if not isinstance(layer[0], str):
        raise ExplainError(f"{layer[1]}: expected a layer string like 'conv(1,2)'")
    shape_src, where = v.get("input") or ("1x3x3", "input")
    if isinstance(shape_src, list | tuple):
        shape_src = "x".join(map(str, shape_src))
    shape = parse_shape(str(shape_src), key="input")
    arrays = {}
    for key in ("w", "x", "g"):
        got = v.get(key)
        if got is not None:
            try:
                arrays[key] = np.asarray(got[0], dtype=np.float64)
            except (TypeError, ValueError):
                raise ExplainError(f"{got[1]}: expected nested lists of numbers") from None
    return conv_matrix(ConvConfig(layer[0], shape), arrays.get("w"), arrays.get("x"), arrays.get("g"),
                       v.seed(), digits, max_entries=int(v.raw("max_entries", MAX_ENTRIES)))


def _collapse(v: _Values, digits: int) -> Explanation:
    layers = None
    got = v.get("layers")
    if got is not None:
        raw, where = got
        if not isinstance(raw, list):
            raise ExplainError(f"{where}: expected a list of {{\"w\": [[...]], \"b\": [...]}}")
        layers = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict) or set(item) != {"w", "b"}:
                raise ExplainError(f"{where}[{i}]: expected an object with keys 'w' and 'b'")
            layers.append((as_array(item["w"], f"{where}[{i}].w", 2), as_array(item["b"], f"{where}[{i}].b", 1)))
    sizes = v.raw("sizes", (3, 4, 2))
    if isinstance(sizes, str):
        parts = sizes.split(",")
        if not all(p.strip().isdigit() and len(p.strip()) <= 4 for p in parts):
            raise ExplainError(f"sizes: expected integers like 3,4,2 (each at most 9999), got {sizes!r}")
        sizes = tuple(int(p) for p in parts)
    return collapse(layers, tuple(sizes), v.seed(), digits)


def _graph(v: _Values, digits: int) -> Explanation:
    source = v.raw("graph")
    g = autodiff.load_graph(source) if isinstance(source, str | Path) else source
    lr = v.get("lr")
    return graph(g, v.raw("weight"), None if lr is None else v.number("lr", 0.0), digits)


def _activation(v: _Values, digits: int) -> Explanation:
    x = v.raw("x")
    pts = parse_vector(x, "x") if isinstance(x, str) else (None if x is None else np.asarray(x, dtype=np.float64))
    return activation(str(v.raw("name", "")), pts, v.number("slope", 0.01), digits)


RUNNERS: dict[str, Callable[[_Values, int], Explanation]] = {
    "bn-forward": _bn_forward, "bn-backward": _bn_backward, "conv-matrix": _conv_matrix, "collapse": _collapse,
    "graph": _graph, "activation": _activation,
}


def run_example(example: str, file: str | Path | None = None, digits: int = 6, **given: Any) -> Explanation:
    """Run the worked example ``example`` (``bn-forward``, ``conv-matrix``, ...) on the ``given`` values
    (strings such as ``x="1,2;3,4"``, JSON-like values or arrays; ``None`` means not given) merged over
    the keys of the JSON ``file``."""
    if example not in RUNNERS:
        raise ExplainError(f"unknown example '{example}'{did_you_mean(example, RUNNERS)} "
                           f"(known: {', '.join(RUNNERS)})")
    return RUNNERS[example](_Values(given, load_file(file, FILE_KEYS[example])), digits)
