"""Comparing two study folders cell by cell (e.g. the same study on two code versions or machines).

Runs of two studies are not paired (different sessions, possibly different code), so each common cell's
deciding metric is compared with Welch's unpaired t-test, Holm-corrected across cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ablab.report.analysis import StudyReport, analyze
from ablab.report.stats import Interval, holm, welch_t


@dataclass
class CellDelta:
    cell: str
    a: Interval
    b: Interval
    diff: float  # mean(b) − mean(a), fraction
    t: float
    df: float
    p: float
    p_holm: float = math.nan
    sentence: str = ""


def compare_studies(dir_a: str | Path, dir_b: str | Path, metric: str | None = None
                    ) -> tuple[StudyReport, StudyReport, list[CellDelta], str]:
    """(report A, report B, per-cell deltas B − A, the metric used)."""
    a, b = analyze(dir_a), analyze(dir_b)
    metric = metric or a.metric
    cells_b = {c.cell: c for c in b.cells}
    out = []
    for ca in a.cells:
        cb = cells_b.get(ca.cell)
        if cb is None:
            continue
        va = [x for m in ca.per_seed.values() if (x := m.get(metric)) is not None]
        vb = [x for m in cb.per_seed.values() if (x := m.get(metric)) is not None]
        ia, ib = ca.metrics[metric], cb.metrics[metric]
        t, df, p = welch_t(va, vb)
        out.append(CellDelta(ca.cell, ia, ib, ib.mean - ia.mean, -t if not math.isnan(t) else t, df, p))
    for d, ph in zip(out, holm([d.p for d in out]), strict=True):
        d.p_holm = ph
        alpha = 1 - a.confidence
        if math.isnan(ph):
            d.sentence = f"{d.cell}: {100 * d.diff:+.2f} points (B − A); too few seeds on one side to test."
        elif ph < alpha:
            d.sentence = (f"{d.cell}: {100 * d.diff:+.2f} points (B − A), Welch p = {d.p:.3g}, Holm p = {ph:.3g}: "
                          "the two studies differ beyond seed noise.")
        else:
            d.sentence = (f"{d.cell}: {100 * d.diff:+.2f} points (B − A), Welch p = {d.p:.3g}, Holm p = {ph:.3g}: "
                          "not distinguishable from seed noise.")
    return a, b, out, metric
