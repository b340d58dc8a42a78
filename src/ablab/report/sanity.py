"""Checks that a study's numbers can mean what the report says: seeds that should differ, and do."""

from __future__ import annotations

from typing import Any


def identical_seeds(cells: list[Any]) -> list[str]:
    """A note for every cell whose finished seeds gave identical results to the last digit. Different seeds
    draw different initial weights, shuffles and dropout masks, so identical results mean the seed did not
    reach the run — most often a model that calls ``torch.manual_seed`` itself (in ``__init__``) — and the
    cell's ± 0 interval is not a measure of anything."""
    notes = []
    for c in cells:
        results = [tuple(sorted((k, repr(v)) for k, v in m.items())) for m in c.per_seed.values()]
        if len(results) >= 2 and len(set(results)) == 1:
            notes.append(f"All {len(results)} seeds of {c.cell} gave identical results: the seed does not reach "
                         "the run (does the model call torch.manual_seed itself?), so its interval (± 0) measures "
                         "nothing and comparisons with it are not evidence.")
    return notes
