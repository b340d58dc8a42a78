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
