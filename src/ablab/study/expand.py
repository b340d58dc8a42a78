"""Expansion: a study's variants × grid points × seeds, each a fully specified TrainConfig.

Runs are ordered seed-major (every cell's seed 0, then every cell's seed 1, ...), so a study that is
stopped halfway already has complete, pairable seeds for every cell.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from ablab.study.studyfile import Study, StudyError, variant_config
from ablab.train.config import TrainConfig


@dataclass(frozen=True)
class PlannedRun:
    """One run of a study: which cell (variant + grid point) and which seed."""

    variant: str
    point: tuple[tuple[str, Any], ...]  # grid axis values, in the study's axis order
    seed: int
    config: TrainConfig

    @property
    def cell(self) -> str:
        return cell_name(self.variant, dict(self.point))

    @property
    def label(self) -> str:
        return f"{self.cell}/seed{self.seed}"

    @property
    def key(self) -> str:
        """The run's identity in the store: the hash of its full config (seed included)."""
        return self.config.config_hash()


def fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v).lower() if isinstance(v, bool) else str(v)


def cell_name(variant: str, point: dict[str, Any]) -> str:
    """``bn`` or, with a grid, ``bn lr=0.001 model=mlp:100,10``."""
    return " ".join([variant, *(f"{k}={fmt_value(v)}" for k, v in point.items())])


def grid_points(study: Study) -> list[dict[str, Any]]:
    """Every combination of the grid axes (one empty point when there is no grid)."""
    keys = [k for k, _ in study.grid]
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(v for _, v in study.grid))]


def expand(study: Study) -> list[PlannedRun]:
    """All runs of the study, seed-major; two runs with the same config are an error. A study that
    expands past ``study.max_runs`` is refused before anything is built (the count comes from the axes)."""
    n = study.run_count()
    if n > study.max_runs:
        raise StudyError(f"{study.source}: the study expands to {n:,} runs, more than the limit of "
                         f"{study.max_runs:,}; shrink the grid or the seeds, or raise the limit with --max-runs N "
                         "or [study] max_runs = N")
    runs: list[PlannedRun] = []
    seen: dict[str, str] = {}
    points = grid_points(study)
    for seed in study.seeds:
        for variant in study.variants:
            for point in points:
                config = variant_config(study.base, variant, point).replace(seed=seed)
                run = PlannedRun(variant.name, tuple(point.items()), seed, config)
                if run.key in seen:
                    raise StudyError(f"{study.source}: {run.label} and {seen[run.key]} have identical configs; "
                                     "make the variants differ or drop one")
                seen[run.key] = run.label
                runs.append(run)
    return runs


def comparisons(study: Study) -> list[tuple[str, str]]:
    """(cell, reference cell) pairs the report tests, paired by seed.

    Every variant against the baseline variant at the same grid point; and, when there is a grid, every
    grid point of the baseline variant against the reference point (``[study] reference``).
    """
    out: list[tuple[str, str]] = []
    points = grid_points(study)
    for point in points:
        for v in study.variants:
            if v.name != study.baseline:
                out.append((cell_name(v.name, point), cell_name(study.baseline, point)))
    if len(points) > 1:
        ref = cell_name(study.baseline, study.reference)
        for point in points:
            c = cell_name(study.baseline, point)
            if c != ref:
                out.append((c, ref))
    return out
