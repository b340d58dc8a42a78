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

from ablab.metrics import CONFIDENCE

# How many paired seeds a statistic needs before the report shows it (docs/study.md, "Few seeds"):
MIN_SEEDS_VERDICT = 3  # a paired t-test at n = 2 rests on one degree of freedom (t₀.₉₇₅ = 12.71) and one
#   estimate of the spread: the report says "too few seeds" instead of a verdict word below 3 pairs
MIN_SEEDS_EFFECT = 3  # Hedges' small-sample factor J(df) = Γ(df/2) / (√(df/2) Γ((df−1)/2)) is 0 at df = 1
#   (Hedges 1981): g_z is undefined for 2 seeds, not 0
MIN_SEEDS_BOOTSTRAP = 8  # bootstrap intervals undercover badly for small n: a resample of n values cannot
#   spread more than they do (Efron & Tibshirani 1993, §13.7 and ch. 14; DiCiccio & Efron 1996, §4)

@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided confidence interval, from ``n`` independent values."""

    mean: float
    lo: float  # nan when n < 2 (no spread to estimate)
    hi: float
    n: int
    sd: float  # sample standard deviation (ddof=1); nan when n < 2
    confidence: float = CONFIDENCE

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    def to_dict(self) -> dict[str, Any]:
        return {k: _clean(v) for k, v in asdict(self).items()}


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
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


def paired_t(a: dict[int, float], b: dict[int, float], confidence: float = CONFIDENCE) -> PairedTest:
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


def clopper_pearson(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact (Clopper–Pearson 1934) binomial interval of a proportion: the beta quantiles
    B(α/2; k, n−k+1) and B(1−α/2; k+1, n−k). Conservative: covers at least ``confidence`` for every p.
    """
    if n <= 0:
        return math.nan, math.nan
    alpha = 1 - confidence
    lo = 0.0 if successes == 0 else float(_st.beta.ppf(alpha / 2, successes, n - successes + 1))
    hi = 1.0 if successes == n else float(_st.beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return lo, hi


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson (1927) score interval: (p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)."""
    if n <= 0:
        return math.nan, math.nan
    z = float(_st.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


# ---------------------------------------------------------------- beyond the t-interval


BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0  # fixed: the same report twice gives the same bootstrap interval


def bootstrap_interval(values: Sequence[float], confidence: float = CONFIDENCE, method: str = "BCa",
                       n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Interval:
    """Seeded bootstrap interval of the mean (Efron & Tibshirani 1993, ch. 13-14).

    Draw ``n_resamples`` resamples of the n values with replacement (NumPy ``default_rng(seed)``) and take
    the mean of each. ``percentile``: the α/2 and 1−α/2 quantiles of those means. ``BCa`` (bias-corrected
    and accelerated): the quantiles at Φ(z₀ + (z₀ + z_q)/(1 − a(z₀ + z_q))) for z_q = Φ⁻¹(α/2), Φ⁻¹(1−α/2),
    with the bias z₀ = Φ⁻¹(share of resampled means below the mean) and the acceleration
    a = Σ(θ̄₍.₎ − θ₍ᵢ₎)³ / (6 [Σ(θ̄₍.₎ − θ₍ᵢ₎)²]^{3/2}) from the jackknife means θ₍ᵢ₎ — the same estimator
    as ``scipy.stats.bootstrap(method="BCa")``. It assumes nothing about the shape of the distribution, but
    with a handful of seeds it is *narrower* than it should be (a resample of 5 values cannot show more
    spread than those 5 values): read it beside the t-interval, not instead of it.
    """
    import numpy as np

    if method not in ("BCa", "percentile"):
        raise ValueError(f"method: expected 'BCa' or 'percentile', got {method!r}")
    x = np.asarray([float(v) for v in values])
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    if n < 2 or not sd > 0:
        return Interval(mean, math.nan, math.nan, n, sd, confidence)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)  # (n_resamples,)
    alpha = 1 - confidence
    q = np.array([alpha / 2, 1 - alpha / 2])
    if method == "BCa":
        z0 = float(_st.norm.ppf(np.mean(means < mean)))
        jack = (x.sum() - x) / (n - 1)  # (n,) mean without value i
        dev = jack.mean() - jack
        denom = 6.0 * float((dev**2).sum()) ** 1.5
        a = float((dev**3).sum()) / denom if denom > 0 else 0.0
        zq = _st.norm.ppf(q)
        q = _st.norm.cdf(z0 + (z0 + zq) / (1 - a * (z0 + zq)))
        if not np.all(np.isfinite(q)):  # every resample on one side of the mean: BCa is undefined
            q = np.array([alpha / 2, 1 - alpha / 2])
    lo, hi = np.quantile(means, q)
    return Interval(mean, float(lo), float(hi), n, sd, confidence)


@dataclass(frozen=True)
class Superiority:
    """How often a beats b on the same seed: counted, and under a normal model of the differences."""

    wins: int  # seeds where a > b
    ties: int
    n: int
    p_model: float  # Φ(d̄ / s_d): P(a − b > 0) for a new seed if differences are normal; nan when n < 2

    @property
    def p_count(self) -> float:
        """(wins + ties/2) / n: the share of seeds where a beat b."""
        return (self.wins + self.ties / 2) / self.n if self.n else math.nan


def prob_better(diffs: Sequence[float]) -> Superiority:
    """The probability that a beats b on a paired seed, from the per-seed differences d_i = a_i − b_i.

    Counted: the share of seeds with d_i > 0 (ties half). Modelled: if differences are N(μ, σ²) then
    P(d > 0) = Φ(μ/σ), estimated by Φ(d̄/s_d) — the "probability of superiority" of a paired design
    (the common-language effect size of McGraw & Wong 1992, for differences). With all differences equal
    (s_d = 0) it is 1, 0 or ½ by the sign of d̄.
    """
    d = [float(x) for x in diffs]
    n = len(d)
    wins, ties = sum(x > 0 for x in d), sum(x == 0 for x in d)
    if n < 2:
        return Superiority(wins, ties, n, math.nan)
    iv = t_interval(d)
    p = (1.0 if iv.mean > 0 else 0.0 if iv.mean < 0 else 0.5) if not iv.sd > 0 else float(_st.norm.cdf(iv.mean / iv.sd))
    return Superiority(wins, ties, n, p)


def effect_size(diffs: Sequence[float]) -> tuple[float, float]:
    """(Cohen's d_z, Hedges' g_z) of paired differences: d_z = d̄ / s_d (= t/√n), and g_z = J·d_z with
    the small-sample correction J = 1 − 3/(4(n−1) − 1) (Hedges 1981; Lakens 2013, eq. 7-8). nan when
    n < MIN_SEEDS_EFFECT (J is 0 for two seeds) or s_d = 0. The difference in points says how much; d_z says
    how much against the seed noise.
    """
    iv = t_interval(diffs)
    if iv.n < MIN_SEEDS_EFFECT or not iv.sd > 0:
        return math.nan, math.nan
    dz = iv.mean / iv.sd
    return dz, dz * (1 - 3 / (4 * (iv.n - 1) - 1))


def _clean(v: Any) -> Any:
    """nan -> None so JSON stays valid."""
    return None if isinstance(v, float) and math.isnan(v) else v
