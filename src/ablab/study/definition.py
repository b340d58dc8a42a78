"""What a study is, once its file is read: named variants over a base config, a grid, seeds, the metric
that decides (:mod:`ablab.study.studyfile` reads and checks the file; :mod:`ablab.study.expand` turns
a :class:`Study` into runs)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ablab.errors import UserError

DEFAULT_MAX_RUNS = 10_000  # runs one study may expand to unless raised (--max-runs, [study] max_runs)


class StudyError(UserError, ValueError):
    """A study file that cannot be used; the message names the file, line and key."""


@dataclass(frozen=True)
class Variant:
    """A named set of overrides of the base config."""

    name: str
    overrides: dict[str, Any]  # TrainConfig fields
    use: tuple[str, ...] = ()  # named transforms (ablab.train.variants), applied before the overrides
    description: str = ""


@dataclass(frozen=True)
class Study:
    """A parsed, validated study file."""

    name: str
    description: str
    base: dict[str, Any]  # TrainConfig fields shared by every run
    variants: tuple[Variant, ...]
    grid: tuple[tuple[str, tuple[Any, ...]], ...]  # ordered axes: (field, values)
    seeds: tuple[int, ...]
    metric: str
    baseline: str
    reference: dict[str, Any]  # grid point other points are compared with
    confidence: float
    source: str  # path of the file (or "preset NAME")
    text: str  # the file's text, stored with the study for provenance
    max_runs: int = DEFAULT_MAX_RUNS  # expansion limit (checked before anything is built)
    tensorboard: bool = False  # write TensorBoard event files per run (ablab.study.tensorboard)

    def run_count(self) -> int:
        """seeds × variants × grid points, computed from the axes (nothing is built)."""
        return len(self.seeds) * len(self.variants) * math.prod(len(v) for _, v in self.grid)

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)
