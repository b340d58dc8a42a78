"""Plain-text pieces every report format shares: times, intervals, p-values, the standing sentences."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ablab.report.analysis import Comparison, StudyReport

SUMMARY_COLUMNS = ("test_acc", "test_acc_at_best_val", "train_acc", "gap")  # the summary table's metrics
VERDICT_WORDS = {"better": "yes, higher", "worse": "yes, lower", "noise": "no", "few": "too few seeds"}


def human_time(s: float) -> str:
    if not math.isfinite(s):
        return "—"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h} h {m:02d} min {sec:02d} s" if h else (f"{m} min {sec:02d} s" if m else f"{sec} s")


def fmt_interval(iv: Any, scale: float = 100.0, digits: int = 2) -> str:
    """``89.41 ± 0.35`` (mean ± half-width of the t-interval), or the mean alone when n = 1."""
    if iv.n == 0:
        return "—"
    if math.isnan(iv.lo):
        return f"{scale * iv.mean:.{digits}f} (n=1)"
    return f"{scale * iv.mean:.{digits}f} ± {scale * iv.half_width:.{digits}f}"


def fmt_p(p: float) -> str:
    if math.isnan(p):
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "cell"


def wall_line(r: StudyReport) -> str:
    workers = "/".join(map(str, r.workers)) or "?"
    return (f"Study wall time: {human_time(r.wall_time_s)} over {r.sessions} session(s) with {workers} worker(s); "
            f"compute (sum of run times): {human_time(r.compute_time_s)}.")


def binomial_line(r: StudyReport) -> str:
    cells = [c for c in r.cells if c.binomial is not None]
    if not cells:
        return "No finished run reported its test-set size, so no binomial interval is shown."
    c = max(cells, key=lambda c: c.metrics["test_acc"].mean)
    lo, hi = c.binomial or (math.nan, math.nan)
    return (f"Test-set noise: with n = {c.n_test:,} test images, one run's accuracy of "
            f"{100 * c.metrics['test_acc'].mean:.2f}% has an exact (Clopper–Pearson) {100 * r.confidence:g}% "
            f"binomial interval of {100 * lo:.2f}–{100 * hi:.2f}% (±{50 * (hi - lo):.2f} points): differences "
            "smaller than that are within what resampling the test set alone would produce.")


def fmt_diff(iv: Any) -> str:
    """``+0.12 to +0.57`` (points), or — when undefined."""
    return "—" if iv is None or math.isnan(iv.lo) else f"{100 * iv.lo:+.2f} to {100 * iv.hi:+.2f}"


def comparison_cells(c: Comparison) -> dict[str, str]:
    """The comparison table's cells as text, one definition for HTML, Markdown and the terminal."""
    d = c.test.diff
    sup = c.superiority
    p_better = "—"
    if sup is not None and sup.n:
        model = "" if math.isnan(sup.p_model) else f" ({sup.p_model:.2f})"
        p_better = f"{sup.wins + sup.ties / 2:g}/{sup.n}{model}"
    return {
        "comparison": c.label or f"{c.cell} − {c.reference}", "n": str(d.n),
        "difference": "—" if d.n == 0 else f"{100 * d.mean:+.2f}", "interval": fmt_diff(d),
        "bootstrap": fmt_diff(c.bootstrap), "P(better)": p_better,
        "d_z": "—" if math.isnan(c.effect[0]) else f"{c.effect[0]:+.2f}",
        "MDD": "—" if math.isnan(c.mdd) else f"{100 * c.mdd:.2f}",
        "p": fmt_p(c.test.p), "Holm p": fmt_p(c.p_holm), "beats noise?": VERDICT_WORDS[c.verdict],
    }


COMPARISON_NOTE = ("difference in points (cell − reference), paired by seed; interval: {conf} t-interval; "
                   "bootstrap: {conf} BCa bootstrap interval (10,000 resamples, seed 0; too narrow with few seeds); "
                   "P(better): seeds where the cell won / pairs (normal-model probability Φ(d̄/s_d) that it wins on a "
                   "new seed); d_z: mean difference / sd of the differences; MDD: the smallest true difference these "
                   "seeds detect 80% of the time (paired t-test, two-sided α = {alpha:g}, before Holm); p: paired "
                   "t-test; Holm p: corrected across all comparisons; beats noise?: Holm p < {alpha:g}.")
