"""``ablab study plan``: from a finished (or pilot) study's paired differences, how many seeds a question needs.

For every comparison the study made, σ is the sample standard deviation of its per-seed differences; the
pooled σ combines them (weighted by degrees of freedom). For a difference of ``effect`` points the plan
gives the seeds a paired t-test needs to detect it with 80% power, and for the seeds the study has, the
smallest difference it detects with that power (:mod:`ablab.report.power`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ablab.errors import UserError
from ablab.report.analysis import analyze
from ablab.report.power import POWER, min_detectable, pooled_sd, seeds_needed


@dataclass(frozen=True)
class PlanRow:
    label: str  # a comparison, or "pooled"
    n: int  # paired seeds the study has
    sd: float  # sd of the per-seed differences (fraction); nan when n < 2
    needed: int | None  # seeds needed for the effect at the target power; None when sd is undefined
    mdd: float  # smallest difference the current n detects at the target power (fraction)


@dataclass(frozen=True)
class Plan:
    study: str
    metric: str
    effect: float  # the difference asked about, fraction (0.003 = 0.3 points)
    power: float
    alpha: float
    rows: list[PlanRow]  # one per comparison, then the pooled row


def _row(label: str, sd: float, n: int, effect: float, target: float, alpha: float) -> PlanRow:
    ok = n >= 2 and sd > 0 and not math.isnan(sd)
    return PlanRow(label, n, sd, seeds_needed(effect, sd, target, alpha) if ok else None,
                   min_detectable(sd, n, target, alpha) if ok else math.nan)


def plan_study(study_dir: str | Path, effect_points: float, target: float = POWER,
               alpha: float | None = None) -> Plan:
    """Seeds needed to detect ``effect_points`` percentage points at power ``target`` (two-sided paired t-test
    at ``alpha``, default 1 − the study's confidence), per comparison and pooled."""

    if not effect_points > 0:
        raise UserError(f"effect: expected a positive number of points, got {effect_points!r}")
    if not 0 < target < 1:
        raise UserError(f"power: expected a probability in (0, 1), got {target!r}")
    r = analyze(study_dir)
    alpha = 1 - r.confidence if alpha is None else alpha
    effect = effect_points / 100
    rows = [_row(c.label or f"{c.cell} − {c.reference}", c.test.diff.sd, c.test.diff.n, effect, target, alpha)
            for c in r.comparisons]
    if not rows:
        raise UserError(f"{study_dir}: study {r.name} has no comparison (one cell): nothing to plan from")
    usable = [x for x in rows if x.n >= 2 and not math.isnan(x.sd)]
    if not usable:
        raise UserError(f"{study_dir}: no comparison has 2 or more paired seeds yet; the plan needs the spread "
                        "of the paired differences (run at least 2 seeds)")
    sd = pooled_sd([x.sd for x in usable], [x.n for x in usable])
    n = min(x.n for x in usable)
    rows.append(_row("pooled", sd, n, effect, target, alpha))
    return Plan(r.name, r.metric, effect, target, alpha, rows)
