"""The statistics of a report: intervals across seeds, paired tests, multiple comparisons, test-set noise.

Only the t and beta distributions come from SciPy; the estimators are written out so a reader can check
them against a textbook (references in each docstring). The tests compare every function with SciPy's
own implementation on known inputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scipy import stats as _st


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided confidence interval, from ``n`` independent values."""

    mean: float
    lo: float  # nan when n < 2 (no spread to estimate)
    hi: float
    n: int
    sd: float  # sample standard deviation (ddof=1); nan when n < 2
    confidence: float = 0.95

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    def to_dict(self) -> dict[str, Any]:
        return {k: _clean(v) for k, v in asdict(self).items()}


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Student-t interval of the mean: x̄ ± t_{1-α/2, n-1} · s/√n, s the sample sd (ddof=1).

    Assumes the values (one per seed) are independent draws from a roughly normal distribution; with
    n = 5 seeds t_{0.975,4} = 2.776, so the interval is 2.8 standard errors wide on each side.
    """
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, math.nan, confidence)
    mean = math.fsum(xs) / n
    if n < 2:
        return Interval(mean, math.nan, math.nan, 1, math.nan, confidence)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(_st.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, sd, confidence)


@dataclass(frozen=True)
class PairedTest:
    """Paired t-test of a − b over matched seeds: the mean difference, its interval, the p-value."""

    diff: Interval  # of the per-seed differences a_i − b_i
    t: float  # nan when undefined (n < 2 or all differences equal)
    p: float  # two-sided; nan when undefined
    seeds: tuple[int, ...]  # the seeds present in both

    def to_dict(self) -> dict[str, Any]:
        return {"diff": self.diff.to_dict(), "t": _clean(self.t), "p": _clean(self.p), "seeds": list(self.seeds)}


def paired_t(a: dict[int, float], b: dict[int, float], confidence: float = 0.95) -> PairedTest:
    """Paired t-test of ``a`` against ``b`` (each seed -> value), over the seeds both have.

    t = d̄ / (s_d/√n) with d_i = a_i − b_i, df = n − 1, p = 2·P(T_{n−1} ≥ |t|) (Student 1908; the same as
    ``scipy.stats.ttest_rel``). Pairing by seed removes what the seed does to both runs alike (the
    split is shared, so the same data order and initial weights' luck cancel in part).
    When every difference is identical the spread is zero and the test is undefined (t = p = nan).
    """
    seeds = tuple(sorted(set(a) & set(b)))
    d = [a[s] - b[s] for s in seeds]
    diff = t_interval(d, confidence)
    if diff.n < 2 or not diff.sd > 0:
        return PairedTest(diff, math.nan, math.nan, seeds)
    t = diff.mean / (diff.sd / math.sqrt(diff.n))
    p = float(2 * _st.t.sf(abs(t), diff.n - 1))
    return PairedTest(diff, t, p, seeds)


def welch_t(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Welch's unpaired t-test of mean(a) − mean(b): returns (t, df, two-sided p); nan if undefined.

    t = (ā − b̄)/√(s_a²/n_a + s_b²/n_b); df by Welch–Satterthwaite. Used to compare two studies, whose
    runs are not paired.
    """
    ia, ib = t_interval(a), t_interval(b)
    if ia.n < 2 or ib.n < 2:
        return math.nan, math.nan, math.nan
    va, vb = ia.sd**2 / ia.n, ib.sd**2 / ib.n
    if va + vb == 0:
        return math.nan, math.nan, math.nan
    t = (ia.mean - ib.mean) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (ia.n - 1) + vb**2 / (ib.n - 1))
    return t, df, float(2 * _st.t.sf(abs(t), df))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order; nan entries stay nan.

    Sort the m p-values ascending; the k-th smallest (k = 1..m) becomes min(1, max_{j≤k} (m − j + 1)·p_(j)).
    Rejecting where the adjusted p < α controls the family-wise error rate at α for any dependence.
    """
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    m = len(idx)
    order = sorted(idx, key=lambda i: pvalues[i])
    out = [math.nan] * len(pvalues)
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * pvalues[i]))
        out[i] = running
    return out


def clopper_pearson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson 1934) binomial interval of a proportion: the beta quantiles
    B(α/2; k, n−k+1) and B(1−α/2; k+1, n−k). Conservative: covers at least ``confidence`` for every p.
    """
    if n <= 0:
        return math.nan, math.nan
    alpha = 1 - confidence
    lo = 0.0 if successes == 0 else float(_st.beta.ppf(alpha / 2, successes, n - successes + 1))
    hi = 1.0 if successes == n else float(_st.beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return lo, hi


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson (1927) score interval: (p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)."""
    if n <= 0:
        return math.nan, math.nan
    z = float(_st.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _clean(v: Any) -> Any:
    """nan -> None so JSON stays valid."""
    return None if isinstance(v, float) and math.isnan(v) else v
