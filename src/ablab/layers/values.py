"""Strict values for layer fields: integers where integers are meant, finite numbers, real booleans.

Every check raises ``SpecError`` naming the field, what was expected and what was given, so a value
from a spec string, a JSON file or Python code gets the same message.
"""

from __future__ import annotations

import math
from typing import Any

from ablab.errors import UserError

Shape = tuple[int, ...]
Pairs = tuple[tuple[int, int], ...]
# Explicit padding: one (before, after) pair per spatial axis; or "same" (TensorFlow SAME) / "valid".
Padding = Pairs | str

MAX_SIZE = 2**31 - 1  # the largest size (channels, features, kernel, stride, input axis) a spec may hold


class SpecError(UserError, ValueError):
    """A spec that cannot be parsed or cannot work; the message names the place and what was expected."""


def fmt(v: Any) -> str:
    """A value as the spec grammar writes it: ``true``, ``3``, ``(1,2)``; equal tuple items collapse."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        if len(v) > 0 and all(x == v[0] for x in v) and not isinstance(v[0], tuple):
            return fmt(v[0])
        return "(" + ",".join(fmt(x) for x in v) + ")"
    return str(v)


def is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def show(value: Any, grammar: bool = True) -> str:
    """A value for an error message (tuples in the grammar's form unless ``grammar=False``), shortened:
    a 400-digit number is not worth printing whole."""
    text = fmt(value) if grammar and isinstance(value, tuple) else repr(value)
    return text if len(text) <= 40 else text[:20] + f"...({len(text)} characters)"


def size(value: Any, name: str, minimum: int = 1) -> int:
    """An integer in ``[minimum, MAX_SIZE]``."""
    if not is_int(value) or not minimum <= value <= MAX_SIZE:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise SpecError(f"{name}: expected {what} (at most {MAX_SIZE:,}), got {show(value)}")
    return int(value)


def ntuple(value: Any, n: int, name: str, minimum: int) -> tuple[int, ...]:
    """An integer (repeated ``n`` times) or ``n`` integers, each in ``[minimum, MAX_SIZE]``."""
    if is_int(value):
        value = (value,) * n
    if not (isinstance(value, tuple | list) and len(value) == n and all(is_int(x) for x in value)):
        raise SpecError(f"{name}: expected an integer or {n} integers, got {show(value)}")
    if any(x < minimum for x in value):
        raise SpecError(f"{name}: every value must be >= {minimum}, got {fmt(tuple(value))}")
    if any(x > MAX_SIZE for x in value):
        raise SpecError(f"{name}: every value must be at most {MAX_SIZE:,}, got {show(tuple(value))}")
    return tuple(value)


def padding(value: Any, n: int, name: str = "padding") -> Padding:
    """Normalize int / per-axis ints / per-axis (before, after) pairs / flat 2n ints / same / valid."""
    if isinstance(value, str):
        v = value.lower()
        if v not in ("same", "valid"):
            raise SpecError(f"{name}: expected an integer, a tuple, 'same' or 'valid', got {show(value)}")
        return v
    if is_int(value):
        value = (value,) * n
    if not isinstance(value, tuple | list):
        raise SpecError(f"{name}: expected an integer, a tuple, 'same' or 'valid', got {show(value)}")
    value = tuple(value)
    if len(value) == n and all(is_int(x) for x in value):
        pairs = tuple((x, x) for x in value)
    elif len(value) == n and all(isinstance(x, tuple | list) and len(x) == 2 and all(is_int(y) for y in x)
                                 for x in value):
        pairs = tuple((a, b) for a, b in value)
    elif len(value) == 2 * n and all(is_int(x) for x in value):
        pairs = tuple((value[2 * i], value[2 * i + 1]) for i in range(n))
    else:
        raise SpecError(f"{name}: expected integers: one, {n}, {n} (before,after) pairs or {2 * n}, "
                        f"got {show(value)}")
    if any(x < 0 for p in pairs for x in p):
        raise SpecError(f"{name}: padding must be >= 0, got {fmt(value)}")
    if any(x > MAX_SIZE for p in pairs for x in p):
        raise SpecError(f"{name}: padding must be at most {MAX_SIZE:,}, got {show(value)}")
    return pairs


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"{name}: expected true or false, got {show(value)}")
    return value


def number(value: Any, name: str, low: float | None = None, high: float | None = None, *,
           low_open: bool = False, high_open: bool = False, what: str = "a number") -> float:
    """A finite int or float (not a bool) within the bounds; returned as float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{name}: expected {what}, got {show(value)}")
    try:
        v = float(value)
    except OverflowError:
        raise SpecError(f"{name}: expected {what}, got a number too large for a float") from None
    if not math.isfinite(v):
        raise SpecError(f"{name}: expected {what} (finite), got {show(value)}")
    if (low is not None and (v < low or (low_open and v == low))) or \
            (high is not None and (v > high or (high_open and v == high))):
        raise SpecError(f"{name}: expected {what}, got {show(value)}")
    return v


def shape(value: Any, where: str) -> Shape:
    """An input shape: 1 to 3 integers in ``[1, MAX_SIZE]`` (C,H,W / C,L / F)."""
    if isinstance(value, list):
        value = tuple(value)
    if not (isinstance(value, tuple) and 1 <= len(value) <= 3 and all(is_int(x) and x >= 1 for x in value)):
        raise SpecError(f"{where}: input shape must be 1 to 3 positive integers (C,H,W / C,L / F), "
                        f"got {show(value, grammar=False)}")
    if any(x > MAX_SIZE for x in value):
        raise SpecError(f"{where}: every input size must be at most {MAX_SIZE:,}, got {show(value)}")
    return value
