"""The plain sentence under each comparison: how big the difference is, how sure, and whether it beats the
seed-to-seed noise — or why no verdict can be given."""

from __future__ import annotations

import math
from typing import Any

from ablab.report.stats import MIN_SEEDS_VERDICT

Comparison = Any  # ablab.report.analysis.Comparison, which imports this module


def pts(x: float) -> str:
    """A fraction difference in percentage points, signed."""
    return f"{100 * x:+.2f}"



def sentence(c: Comparison, confidence: float, binomial: tuple[float, float] | None, split: str = "test") -> str:
    """One plain sentence: how big the difference is, how sure, and whether it beats the noise."""
    d = c.test.diff
    level = round(100 * (1 - confidence))
    n = d.n
    if n == 0:
        return f"{c.cell} vs {c.reference}: no seed finished in both; nothing to compare yet."
    if n == 1:
        return (f"{c.cell} vs {c.reference}: {pts(d.mean)} points from a single pair of runs — one seed cannot "
                "separate a difference from seed-to-seed noise; run more seeds.")
    if n < MIN_SEEDS_VERDICT:
        return (f"{c.cell} vs {c.reference}: {pts(d.mean)} points over {n} pairs of runs — too few seeds to conclude "
                f"(a verdict needs at least {MIN_SEEDS_VERDICT}); run more seeds.")
    if math.isnan(c.test.p):
        return (f"{c.cell} vs {c.reference}: {pts(d.mean)} points on every one of {n} seeds — no spread, so no "
                "test is possible (identical differences usually mean the variant changed nothing).")
    ci = f"{100 * confidence:g}% CI {pts(d.lo)} to {pts(d.hi)}"
    stats = f"paired over {n} seeds, p = {c.test.p:.3g}, Holm-adjusted p = {c.p_holm:.3g}"
    head = f"{c.cell} vs {c.reference}: {pts(d.mean)} points ({ci}; {stats})"
    if c.p_holm < 1 - confidence:
        direction = "higher" if d.mean > 0 else "lower"
        return (f"{head}. Distinguishable from seed-to-seed noise at the {level}% level after Holm correction: "
                f"{c.cell} is {direction}.")
    tail = ""
    if binomial is not None and abs(d.mean) < (binomial[1] - binomial[0]) / 2:
        tail = (f" The difference is also smaller than one run's {split}-set interval "
                f"(±{100 * (binomial[1] - binomial[0]) / 2:.2f} points).")
    if not math.isnan(c.mdd):
        tail += (f" With {n} seeds, only true differences of about {100 * c.mdd:.2f} points or more are detected "
                 "4 times in 5 (80% power); 'ablab study plan' says how many seeds a smaller one needs.")
    return f"{head}. Not distinguishable from noise: this study cannot tell the two apart.{tail}"
