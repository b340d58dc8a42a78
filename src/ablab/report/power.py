"""Seed planning: how many seeds a paired comparison needs, and the smallest difference n seeds can see.

A study's comparison is a paired t-test over seeds: d_i = a_i − b_i, t = d̄/(s_d/√n), df = n − 1. If the
true mean difference is δ and the per-seed differences have standard deviation σ, t follows a
noncentral t distribution with df = n − 1 and noncentrality λ = δ√n/σ, so the two-sided test at level α
rejects with probability (its power)

    power(δ, σ, n) = P(T'_{n−1,λ} > t_{1−α/2,n−1}) + P(T'_{n−1,λ} < −t_{1−α/2,n−1})

(Cohen 1988, ch. 2; the same formula as G*Power's "means: difference from constant, matched pairs").
σ comes from the study itself: the sample sd of the observed paired differences. Holm's correction is not
included: with m comparisons the per-comparison level is smaller, so treat these as lower bounds.
"""

from __future__ import annotations

import math

from scipy import stats as _st

POWER = 0.8  # the conventional target: a real difference of the given size is detected 4 times in 5
ALPHA = 0.05
MAX_SEEDS = 100_000


def power(delta: float, sd: float, n: int, alpha: float = ALPHA) -> float:
    """Probability that a two-sided paired t-test at level ``alpha`` over ``n`` seeds detects a true
    mean difference ``delta`` when the per-seed differences have standard deviation ``sd``."""
    if n < 2 or not sd > 0:
        return math.nan
    df = n - 1
    nc = delta * math.sqrt(n) / sd
    tc = float(_st.t.ppf(1 - alpha / 2, df))
    upper, lower = float(_st.nct.sf(tc, df, nc)), float(_st.nct.cdf(-tc, df, nc))
    if math.isnan(lower):  # SciPy's far tail can be nan; it is then below 1e-16 and irrelevant
        lower = 0.0
    if math.isnan(upper):
        upper = 1.0 - float(_st.nct.cdf(tc, df, nc))
    return upper + lower


def seeds_needed(delta: float, sd: float, target: float = POWER, alpha: float = ALPHA) -> int:
    """The smallest n >= 2 with power(delta, sd, n) >= target; raises ValueError past MAX_SEEDS."""
    if not delta > 0 or not sd > 0:
        raise ValueError(f"expected delta > 0 and sd > 0, got delta={delta!r}, sd={sd!r}")
    # the normal approximation n ≈ ((z_{1−α/2} + z_power)·σ/δ)² is a lower bound: start a little below it
    z = float(_st.norm.ppf(1 - alpha / 2) + _st.norm.ppf(target))
    n = max(2, int((z * sd / delta) ** 2) - 1)
    while power(delta, sd, n, alpha) < target:
        n += 1
        if n > MAX_SEEDS:
            raise ValueError(f"more than {MAX_SEEDS:,} seeds needed for delta={delta:g} with sd={sd:g}")
    return n


def min_detectable(sd: float, n: int, target: float = POWER, alpha: float = ALPHA) -> float:
    """The smallest true difference that ``n`` paired seeds detect with probability ``target``: the δ
    solving power(δ, sd, n) = target (nan when n < 2 or sd is 0 or undefined)."""
    if n < 2 or not sd > 0 or math.isnan(sd):
        return math.nan
    from scipy.optimize import brentq

    hi = sd
    for _ in range(64):  # bracket the root: 2^64 sd; a level so strict that nothing is detected has no answer
        if not power(hi, sd, n, alpha) < target:
            break
        hi *= 2
    else:
        return math.nan
    return float(brentq(lambda d: power(d, sd, n, alpha) - target, 0.0, hi, xtol=1e-12 * sd))


def pooled_sd(sds: list[float], ns: list[int]) -> float:
    """sqrt(Σ(n_i − 1)s_i² / Σ(n_i − 1)): one σ from several comparisons' paired-difference sds."""
    pairs = [(s, n) for s, n in zip(sds, ns, strict=True) if n >= 2 and not math.isnan(s)]
    dof = sum(n - 1 for _, n in pairs)
    return math.sqrt(sum((n - 1) * s * s for s, n in pairs) / dof) if dof else math.nan
