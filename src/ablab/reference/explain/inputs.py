"""Numbers for the worked examples, from flag strings (``"1,2;3,4"``) or JSON values; errors name the
key (the command maps keys to its flags)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ablab.reference.explain.document import ExplainError
from ablab.reference.windows import Array


def parse_matrix(text: str, flag: str) -> Array:
    """``"1,2;3,4"`` -> 2x2 (rows by ``;``, values by ``,`` or spaces); errors name the flag."""
    rows = [r for r in text.strip().split(";") if r.strip()]
    if not rows:
        raise ExplainError(f"{flag}: expected numbers like '1,2;3,4' (rows separated by ';'), got {text!r}")
    out = []
    for i, r in enumerate(rows, start=1):
        try:
            out.append([float(v) for v in r.replace(",", " ").split()])
        except ValueError:
            raise ExplainError(f"{flag}: row {i} ({r.strip()!r}) is not a list of numbers") from None
        if len(out[-1]) != len(out[0]):
            raise ExplainError(f"{flag}: row {i} has {len(out[-1])} values, row 1 has {len(out[0])}")
    a = np.array(out)
    if not np.all(np.isfinite(a)):
        raise ExplainError(f"{flag}: values must be finite")
    return a


def parse_vector(text: str, flag: str) -> Array:
    a = parse_matrix(text, flag)
    if a.shape[0] != 1:
        raise ExplainError(f"{flag}: expected one row of numbers like '1,0.5,2', got {a.shape[0]} rows")
    return a[0]


def as_array(value: Any, key: str, ndim: int) -> Array:
    """A JSON value (nested lists) or flag string as a float array of the given rank."""
    if isinstance(value, str):
        a = parse_matrix(value, key) if ndim == 2 else parse_vector(value, key)
    else:
        try:
            a = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ExplainError(f"{key}: expected {'a matrix (list of rows)' if ndim == 2 else 'a list'} "
                               f"of numbers, got {value!r}") from None
    if a.ndim != ndim:
        raise ExplainError(f"{key}: expected a {'matrix' if ndim == 2 else 'vector'}, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ExplainError(f"{key}: values must be finite")
    return a
