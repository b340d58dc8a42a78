"""Sweeps: the deciding metric against each grid axis, the two-axis table behind a heat map, and the best
cell chosen on validation.

For an axis A, every other axis's values (and the variant) fix a line; the points of a line are the
cells that differ only in A, each with its t-interval across seeds. Axis values that are strings sharing
a prefix (``mlp:100,10``, ``mlp:500,10``) are shown without it, the prefix going to the axis title.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ablab.report.text import fmt_interval
from ablab.study.expand import fmt_value

if TYPE_CHECKING:
    from ablab.report.analysis import CellSummary, StudyReport
    from ablab.report.stats import Interval

LOG_AXES = ("lr", "weight_decay", "l2_penalty")  # swept over orders of magnitude: a log axis


@dataclass
class SweepLine:
    variant: str
    fixed: dict[str, Any]  # the other axes' values on this line
    points: list[tuple[Any, Interval]]  # (axis value, interval of the metric), in the grid's order
    label: str = ""  # the other axes' values as shown ("model=100,10"; prefixes in the axis titles)


@dataclass
class SweepAxis:
    name: str
    values: list[Any]
    ticks: list[str]  # the values as shown (common prefix removed)
    title: str  # axis title, with the removed prefix
    log: bool
    numeric: bool
    lines: list[SweepLine]


def short_labels(name: str, values: list[Any]) -> tuple[list[str], str]:
    """(tick labels, axis title): string values lose their common prefix up to a ':' or '=' (``mlp:``)."""

    shown = [fmt_value(v) for v in values]
    if len(shown) > 1 and all(isinstance(v, str) for v in values):
        prefix = os.path.commonprefix(shown)
        cut = max(prefix.rfind(":"), prefix.rfind("="))
        if cut >= 0:
            return [s[cut + 1:] for s in shown], f"{name} ({prefix[:cut + 1]}…)"
    return shown, name


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def sweep_axes(r: StudyReport, metric: str | None = None) -> list[SweepAxis]:
    """One SweepAxis per grid axis (none without a grid)."""
    metric = metric or r.metric
    grid = [(k, list(v)) for k, v in r.info.get("grid", [])]
    by_key = {(c.variant, _key(c.point)): c for c in r.cells}
    variants = list(dict.fromkeys(c.variant for c in r.cells))
    shown = {k: dict(zip(map(repr, v), short_labels(k, v)[0], strict=True)) for k, v in grid}
    out = []
    for name, values in grid:
        others = [(k, v) for k, v in grid if k != name]
        numeric = all(_is_num(v) for v in values)
        log = numeric and all(v > 0 for v in values) and (name in LOG_AXES or max(values) / min(values) >= 100)
        lines = []
        for variant in variants:
            for fixed in _points(others):
                pts = []
                for v in values:
                    c = by_key.get((variant, _key({**fixed, name: v})))
                    if c is not None and c.metrics[metric].n > 0:
                        pts.append((v, c.metrics[metric]))
                if pts:
                    label = " ".join(f"{k}={shown[k][repr(v)]}" for k, v in fixed.items())
                    lines.append(SweepLine(variant, fixed, pts, label))
        ticks, title = short_labels(name, values)
        out.append(SweepAxis(name, values, ticks, title, log, numeric, lines))
    return out


def _key(point: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in point.items()))


def _points(axes: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    keys = [k for k, _ in axes]
    return [dict(zip(keys, vs, strict=True)) for vs in itertools.product(*(v for _, v in axes))]


@dataclass
class HeatMap:
    variant: str
    rows: SweepAxis  # first grid axis
    cols: SweepAxis  # second grid axis
    cells: list[list[Interval | None]]  # [row][col]


def heat_maps(r: StudyReport, metric: str | None = None) -> list[HeatMap]:
    """For a two-axis grid: per variant, the metric at every (axis 1, axis 2) point; [] otherwise."""
    metric = metric or r.metric
    axes = sweep_axes(r, metric)
    if len(axes) != 2:
        return []
    rows, cols = axes
    by_key = {(c.variant, _key(c.point)): c for c in r.cells}
    out = []
    for variant in dict.fromkeys(c.variant for c in r.cells):
        grid: list[list[Interval | None]] = []
        for a in rows.values:
            row: list[Interval | None] = []
            for b in cols.values:
                c = by_key.get((variant, _key({rows.name: a, cols.name: b})))
                row.append(c.metrics[metric] if c is not None and c.metrics[metric].n > 0 else None)
            grid.append(row)
        out.append(HeatMap(variant, rows, cols, grid))
    return out


@dataclass
class BestCell:
    cell: CellSummary
    chosen_on: str  # the validation metric the choice maximized
    val: Interval
    test: Interval  # test accuracy at the best-validation epoch of the chosen cell
    runner_up: CellSummary | None

    def sentence(self) -> str:
        def pct(iv: Interval) -> str:  # "89.90 ± 0.30%" or "89.90% (n=1)"
            text = fmt_interval(iv)
            return text.replace(" (n=1)", "% (n=1)") if text.endswith("(n=1)") else f"{text}%"

        conf = f"{100 * self.test.confidence:g}%"
        s = (f"Best cell on validation ({self.chosen_on}, mean over seeds): {self.cell.cell}, validation "
             f"{pct(self.val)}; its test accuracy (at the best-validation epoch) is {pct(self.test)} (mean ± {conf} "
             f"t-interval, n = {self.test.n}). The test set played no part in the choice.")
        if self.runner_up is not None:
            s += f" Runner-up: {self.runner_up.cell} ({pct(self.runner_up.metrics[self.chosen_on])} validation)."
        return s


def best_on_validation(r: StudyReport) -> BestCell | None:
    """The cell with the highest mean best-validation accuracy (None without validation or with one cell)."""
    for key in ("best_val_acc", "val_acc"):
        ranked = sorted((c for c in r.cells if c.metrics[key].n > 0 and not math.isnan(c.metrics[key].mean)),
                        key=lambda c: -c.metrics[key].mean)
        if len(ranked) >= 2:
            top = ranked[0]
            return BestCell(top, key, top.metrics[key], top.metrics["test_acc_at_best_val"], ranked[1])
    return None
