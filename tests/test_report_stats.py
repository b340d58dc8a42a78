"""The report's statistics against SciPy's own implementations (and hand-checkable numbers)."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from ablab.report.stats import clopper_pearson, holm, paired_t, t_interval, welch_t, wilson

A = [0.8912, 0.8950, 0.8897, 0.8931, 0.8968]  # five seeds' test accuracies
B = [0.8889, 0.8941, 0.8860, 0.8902, 0.8930]


def test_t_interval_matches_scipy():
    iv = t_interval(A)
    lo, hi = stats.t.interval(0.95, len(A) - 1, loc=sum(A) / len(A), scale=stats.sem(A))
    assert iv.mean == pytest.approx(sum(A) / 5, abs=1e-15)
    assert (iv.lo, iv.hi) == pytest.approx((lo, hi), abs=1e-12)
    assert iv.n == 5 and iv.sd == pytest.approx(stats.tstd(A), abs=1e-15)


def test_t_interval_hand_checkable():
    # values 1, 2, 3: mean 2, sd 1, se 1/sqrt(3), t_{0.975,2} = 4.302653 -> half width 2.484138
    iv = t_interval([1.0, 2.0, 3.0])
    assert iv.half_width == pytest.approx(4.302652729749462 / math.sqrt(3), rel=1e-12)
    assert t_interval([1.0, 2.0, 3.0], confidence=0.9).half_width == pytest.approx(2.919985580353724 / math.sqrt(3))


def test_t_interval_degenerate_sizes():
    one = t_interval([0.9])
    assert one.n == 1 and one.mean == 0.9 and math.isnan(one.lo) and math.isnan(one.sd)
    assert t_interval([]).n == 0


def test_paired_t_matches_ttest_rel():
    a = dict(enumerate(A))
    b = dict(enumerate(B))
    res = paired_t(a, b)
    ref = stats.ttest_rel(A, B)
    assert res.t == pytest.approx(ref.statistic, rel=1e-10)
    assert res.p == pytest.approx(ref.pvalue, rel=1e-10)
    ci = ref.confidence_interval(0.95)
    assert (res.diff.lo, res.diff.hi) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_paired_t_uses_only_common_seeds():
    res = paired_t({0: 0.9, 1: 0.91, 2: 0.92, 7: 0.5}, {0: 0.89, 1: 0.905, 2: 0.9, 9: 0.1})
    assert res.seeds == (0, 1, 2)
    assert res.p == pytest.approx(stats.ttest_rel([0.9, 0.91, 0.92], [0.89, 0.905, 0.9]).pvalue)


def test_paired_t_undefined_without_spread():
    res = paired_t({0: 0.9, 1: 0.8}, {0: 0.9, 1: 0.8})
    assert math.isnan(res.p) and res.diff.mean == 0


def test_welch_matches_scipy():
    t, df, p = welch_t(A, B[:4])
    ref = stats.ttest_ind(A, B[:4], equal_var=False)
    assert (t, p) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-10)
    assert df == pytest.approx(ref.df, rel=1e-10)


def test_holm_known_values():
    # Holm 1979 step-down by hand: sorted 0.01, 0.02, 0.03, 0.04 with m = 4:
    # 4*0.01 = 0.04; 3*0.02 = 0.06; 2*0.03 = 0.06 (monotone); 1*0.04 = 0.06 (monotone)
    assert holm([0.04, 0.01, 0.03, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    out = holm([0.01, math.nan, 0.02])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)


def test_holm_between_raw_and_bonferroni():
    # Holm equals Bonferroni for the smallest p-value, never exceeds Bonferroni, never undercuts the raw p
    ps = [0.001, 0.2, 0.03, 0.004, 0.5]
    adj = holm(ps)
    assert adj[0] == pytest.approx(0.005)
    assert all(p <= h <= min(1.0, 5 * p) + 1e-15 for h, p in zip(adj, ps, strict=True))


@pytest.mark.parametrize("k,n", [(9000, 10000), (0, 20), (20, 20), (37, 50), (1, 3)])
def test_binomial_intervals_match_scipy(k, n):
    ref_exact = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    ref_wilson = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert clopper_pearson(k, n) == pytest.approx((ref_exact.low, ref_exact.high), abs=1e-12)
    assert wilson(k, n) == pytest.approx((ref_wilson.low, ref_wilson.high), abs=1e-12)


def test_binomial_interval_of_the_issue():
    # 10,000 test images at 90%: the binomial 95% interval is about ±0.6 points
    lo, hi = clopper_pearson(9000, 10000)
    assert (hi - lo) / 2 == pytest.approx(0.0059, abs=0.0002)


# ---------------------------------------------------------------- bootstrap, superiority, effect size, power

SKEWED = [0.812, 0.845, 0.851, 0.853, 0.858, 0.861, 0.862, 0.866, 0.870, 0.871, 0.874, 0.901]


@pytest.mark.parametrize("method", ["BCa", "percentile"])
def test_bootstrap_matches_scipy(method):
    import numpy as np

    from ablab.report.stats import bootstrap_interval

    ours = bootstrap_interval(SKEWED, 0.95, method=method, n_resamples=40_000, seed=1)
    ref = stats.bootstrap((np.array(SKEWED),), np.mean, confidence_level=0.95, method=method,
                          n_resamples=40_000, random_state=np.random.default_rng(2)).confidence_interval
    width = ref.high - ref.low
    # two independent Monte Carlo runs of the same estimator: equal within a few percent of the width
    assert ours.lo == pytest.approx(ref.low, abs=0.04 * width)
    assert ours.hi == pytest.approx(ref.high, abs=0.04 * width)
    assert ours.mean == pytest.approx(float(np.mean(SKEWED)))


def test_bootstrap_is_seeded_and_bca_differs_from_percentile():
    from ablab.report.stats import bootstrap_interval

    a, b = bootstrap_interval(SKEWED, seed=3), bootstrap_interval(SKEWED, seed=3)
    assert (a.lo, a.hi) == (b.lo, b.hi)
    p = bootstrap_interval(SKEWED, method="percentile", seed=3)
    assert (a.lo, a.hi) != (p.lo, p.hi)  # the left-skewed sample moves the BCa interval
    assert math.isnan(bootstrap_interval([0.9, 0.9, 0.9]).lo)  # no spread: no interval
    assert math.isnan(bootstrap_interval([0.9]).lo)


def test_bootstrap_coverage_by_simulation():
    # 95% percentile bootstrap of the mean of n = 30 normal values covers the true mean ~94-95% of the time
    import numpy as np

    from ablab.report.stats import bootstrap_interval

    rng = np.random.default_rng(0)
    hits = sum(iv.lo <= 0.0 <= iv.hi for iv in (bootstrap_interval(rng.normal(0, 1, 30), method="percentile",
                                                                     n_resamples=2000, seed=k) for k in range(400)))
    assert 0.90 <= hits / 400 <= 0.98


def test_prob_better_against_simulation():
    import numpy as np

    from ablab.report.stats import prob_better

    rng = np.random.default_rng(0)
    mu, sigma = 0.003, 0.005  # +0.3 points on average, 0.5 points of seed noise in the difference
    a = rng.normal(0.90 + mu, 0.004, 200_000)
    b = a - rng.normal(mu, sigma, 200_000)  # paired: the seed's luck is shared
    truth = stats.norm.cdf(mu / sigma)  # 0.7257
    res = prob_better(a - b)
    assert res.p_model == pytest.approx(truth, abs=0.005)
    assert res.p_count == pytest.approx(np.mean(a > b), abs=1e-12) == pytest.approx(truth, abs=0.005)
    small = prob_better([0.01, -0.002, 0.004, 0.0])
    assert (small.wins, small.ties, small.n, small.p_count) == (2, 1, 4, 0.625)
    assert prob_better([0.01, 0.01]).p_model == 1.0


def test_effect_size_is_t_over_root_n():
    from ablab.report.stats import effect_size

    d = [x - y for x, y in zip(A, B, strict=True)]
    dz, gz = effect_size(d)
    assert dz == pytest.approx(stats.ttest_rel(A, B).statistic / math.sqrt(5), rel=1e-12)
    assert gz == pytest.approx(dz * (1 - 3 / 15), rel=1e-12)  # J = 1 - 3/(4*4 - 1)
    assert math.isnan(effect_size([0.1, 0.1])[0])


def _simulated_power(delta: float, sd: float, n: int, trials: int, seed: int = 0) -> float:
    import numpy as np

    d = np.random.default_rng(seed).normal(delta, sd, size=(trials, n))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    return float(np.mean(np.abs(t) > stats.t.ppf(0.975, n - 1)))


@pytest.mark.parametrize(("delta", "sd", "n"), [(0.004, 0.005, 5), (0.003, 0.005, 12), (0.0, 0.005, 5)])
def test_power_against_simulation(delta, sd, n):
    from ablab.report.power import power

    trials = 40_000
    p = power(delta, sd, n)
    sim = _simulated_power(delta, sd, n, trials)
    assert sim == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / trials) + 1e-3)
    if delta == 0:
        assert p == pytest.approx(0.05, abs=1e-12)  # no true difference: the test's own level


def test_seeds_needed_and_min_detectable():
    from ablab.report.power import min_detectable, power, seeds_needed

    sd = 0.0047  # the baseline-vs-dropout paired sd of fashion-regularization, as a fraction
    n = seeds_needed(0.003, sd)
    assert power(0.003, sd, n) >= 0.8 > power(0.003, sd, n - 1)
    # the normal-approximation closed form n ≈ ((z_.975 + z_.8)σ/δ)² + z_.975²/2 (Guenther 1981) agrees
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert abs(n - ((z * sd / 0.003) ** 2 + stats.norm.ppf(0.975) ** 2 / 2)) <= 1.5
    assert n == 22
    mdd = min_detectable(sd, 5)
    assert power(mdd, sd, 5) == pytest.approx(0.8, abs=1e-9)
    assert _simulated_power(mdd, sd, 5, 40_000, seed=3) == pytest.approx(0.8, abs=0.01)
    assert min_detectable(sd, 22) <= 0.003 < min_detectable(sd, 21)
    assert math.isnan(min_detectable(sd, 1))
