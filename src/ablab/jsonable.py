"""The one JSON helper: any result, config or layer as plain JSON types."""

from __future__ import annotations

import contextlib
import math
from typing import Any


def jsonable(x: Any, *, nonfinite: str = "keep") -> Any:
    """Plain JSON types only: dicts (string keys), lists (from lists and tuples), str, int, float, bool,
    None; tensors and NumPy scalars become numbers (``.item()``), anything else its ``str``.

    ``nonfinite="string"`` writes NaN and infinities as the strings "nan", "inf", "-inf" (strict JSON
    has no literal for them); ``"keep"`` leaves them as floats (Python's ``json`` writes ``NaN``)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v, nonfinite=nonfinite) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v, nonfinite=nonfinite) for v in x]
    if isinstance(x, float):
        if nonfinite == "string" and not math.isfinite(x):
            return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
        return x
    if x is None or isinstance(x, bool | int | str):
        return x
    if hasattr(x, "item"):
        with contextlib.suppress(Exception):
            return jsonable(x.item(), nonfinite=nonfinite)
    return str(x)
