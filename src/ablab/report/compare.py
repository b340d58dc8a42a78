"""Comparing two study folders cell by cell (e.g. the same study on two code versions or machines).

Runs of two studies are not paired (different sessions, possibly different code), so each common cell's
deciding metric is compared with Welch's unpaired t-test, Holm-corrected across cells.

Cells are paired by name, but a name is not a setting: before testing, each pair's training configs
(model, dataset, epochs, optimizer, ... — everything but the seeds, the thread count and where the data
lives) are compared. A pair that differs is not tested — its difference would mix the changed setting
with seed noise — and is listed with what differs; when no common cell is comparable the comparison is
refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablab.errors import UserError
from ablab.report.analysis import StudyReport, analyze
from ablab.report.stats import Interval, holm, welch_t
from ablab.store import Store, find_stores
from ablab.train.config import SEED_KEYS

# config keys that may differ between two studies of the same cells without changing what is measured
NOT_SETTINGS = (*SEED_KEYS, "threads", "data_dir")


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
    differs: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # setting -> (A's, B's): not tested

    @property
    def comparable(self) -> bool:
        return not self.differs


def cell_settings(study_dir: str | Path, study: str | None = None) -> dict[str, dict[str, Any]]:
    """cell -> its runs' training config without the seeds (read-only); the settings of the cell's
    first run (the runs of one cell differ only in their seeds)."""
    paths = find_stores(study_dir)
    if not paths:
        return {}
    out: dict[str, dict[str, Any]] = {}
    with Store(paths[0], readonly=True) as store:
        for r in store.iter_runs(study):  # streamed: one run at a time, the first of each cell kept
            if r.cell not in out:
                out[r.cell] = {k: v for k, v in r.config.items() if k not in NOT_SETTINGS}
    return out


def setting_differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def describe(differs: dict[str, tuple[Any, Any]]) -> str:
    """``dataset 'fashion-mnist' vs 'synthetic', epochs 12 vs 3``."""
    return ", ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in differs.items())


def compare_studies(dir_a: str | Path, dir_b: str | Path, metric: str | None = None
                    ) -> tuple[StudyReport, StudyReport, list[CellDelta], str]:
    """(report A, report B, per-cell deltas B − A, the metric used). Cells whose settings differ carry
    ``differs`` and no test; a UserError when common cells exist but none is comparable."""
    a, b = analyze(dir_a), analyze(dir_b)
    metric = metric or a.metric
    settings_a, settings_b = cell_settings(dir_a, a.name), cell_settings(dir_b, b.name)
    cells_b = {c.cell: c for c in b.cells}
    out = []
    for ca in a.cells:
        cb = cells_b.get(ca.cell)
        if cb is None:
            continue
        ia, ib = ca.metrics[metric], cb.metrics[metric]
        differs = setting_differences(settings_a.get(ca.cell, {}), settings_b.get(ca.cell, {}))
        if differs:
            out.append(CellDelta(ca.cell, ia, ib, ib.mean - ia.mean, math.nan, math.nan, math.nan, differs=differs))
            continue
        va = [x for m in ca.per_seed.values() if (x := m.get(metric)) is not None]
        vb = [x for m in cb.per_seed.values() if (x := m.get(metric)) is not None]
        t, df, p = welch_t(va, vb)
        out.append(CellDelta(ca.cell, ia, ib, ib.mean - ia.mean, -t if not math.isnan(t) else t, df, p))
    if out and all(d.differs for d in out):
        d = out[0]
        raise UserError(f"{dir_a} and {dir_b}: no common cell has the same settings, so no difference between "
                        f"them is a seed-noise question (cell '{d.cell}': {describe(d.differs)}); compare studies "
                        "that differ only in seeds, code version or machine")
    tested = [d for d in out if d.comparable]
    for d, ph in zip(tested, holm([d.p for d in tested]), strict=True):
        d.p_holm = ph
    for d in out:
        ph = d.p_holm
        alpha = 1 - a.confidence
        if d.differs:
            d.sentence = (f"{d.cell}: {100 * d.diff:+.2f} points (B − A), not tested: the two cells differ in "
                          f"{describe(d.differs)} — not only in seeds.")
        elif math.isnan(ph):
            d.sentence = f"{d.cell}: {100 * d.diff:+.2f} points (B − A); too few seeds on one side to test."
        elif ph < alpha:
            d.sentence = (f"{d.cell}: {100 * d.diff:+.2f} points (B − A), Welch p = {d.p:.3g}, Holm p = {ph:.3g}: "
                          "the two studies differ beyond seed noise.")
        else:
            d.sentence = (f"{d.cell}: {100 * d.diff:+.2f} points (B − A), Welch p = {d.p:.3g}, Holm p = {ph:.3g}: "
                          "not distinguishable from seed noise.")
    return a, b, out, metric
