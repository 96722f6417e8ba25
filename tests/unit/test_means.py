"""Welch's t-test and intervals against SciPy, statsmodels and R's documented example."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as sp
from statsmodels.stats._delta_method import NonlinearDeltaCov
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

from abscope.stats import MeanStats
from abscope.stats.means import (
    mean_difference_ci,
    mean_interval,
    relative_mean_lift_ci,
    welch_ttest,
)

REL = 1e-9

# R's `sleep` data set (Cushny & Peebles), as used in the example of ?t.test.
SLEEP_GROUP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_GROUP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]

samples = st.lists(
    st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False),
    min_size=2,
    max_size=60,
)


def test_matches_r_welch_example() -> None:
    # R 4.x: t.test(extra ~ group, data = sleep)
    #   t = -1.8608, df = 17.776, p-value = 0.07939
    #   95 percent confidence interval: -3.3654832  0.2054832
    # R tests group 1 − group 2, so group 1 plays the treatment here.
    control, treatment = MeanStats.from_values(SLEEP_GROUP_2), MeanStats.from_values(SLEEP_GROUP_1)
    result = welch_ttest(control, treatment)
    assert result.statistic == pytest.approx(-1.8608, abs=5e-5)
    assert result.df == pytest.approx(17.776, abs=5e-4)
    assert result.p_value == pytest.approx(0.07939, abs=5e-6)
    ci = mean_difference_ci(control, treatment).ci
    assert (ci.lower, ci.upper) == (
        pytest.approx(-3.3654832, abs=5e-8),
        pytest.approx(0.2054832, abs=5e-8),
    )


@settings(max_examples=300, deadline=None)
@given(samples, samples, st.sampled_from(["two-sided", "greater", "less"]))
def test_matches_scipy_and_statsmodels(a: list[float], b: list[float], alternative: str) -> None:
    assume(np.var(a) > 1e-6 and np.var(b) > 1e-6)
    result = welch_ttest(
        MeanStats.from_values(a), MeanStats.from_values(b), alternative=alternative
    )  # type: ignore[arg-type]
    reference = sp.ttest_ind(b, a, equal_var=False, alternative=alternative)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-9, abs=1e-9)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)
    assert result.df == pytest.approx(reference.df, rel=REL)
    sm_alt = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}[alternative]
    t, p, df = ttest_ind(np.array(b), np.array(a), usevar="unequal", alternative=sm_alt)
    assert (result.statistic, result.p_value, result.df) == (
        pytest.approx(t, rel=1e-9, abs=1e-9),
        pytest.approx(p, rel=1e-9, abs=1e-300),
        pytest.approx(df, rel=1e-9),
    )


@settings(max_examples=200, deadline=None)
@given(samples, samples, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_difference_ci_matches_statsmodels(a: list[float], b: list[float], level: float) -> None:
    assume(np.var(a) > 1e-6 and np.var(b) > 1e-6)
    ci = mean_difference_ci(MeanStats.from_values(a), MeanStats.from_values(b), confidence=level).ci
    compare = CompareMeans(DescrStatsW(np.array(b)), DescrStatsW(np.array(a)))
    low, high = compare.tconfint_diff(alpha=1 - level, usevar="unequal")
    scale = max(abs(low), abs(high), 1.0)
    assert ci.lower == pytest.approx(low, rel=1e-9, abs=1e-9 * scale)
    assert ci.upper == pytest.approx(high, rel=1e-9, abs=1e-9 * scale)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(min_value=2, max_value=10**6),
    st.integers(min_value=2, max_value=10**6),
    st.floats(min_value=0.5, max_value=100.0),
    st.floats(min_value=0.5, max_value=100.0),
    st.floats(min_value=0.1, max_value=50.0),
    st.floats(min_value=0.1, max_value=50.0),
)
def test_relative_lift_matches_statsmodels_delta_method(
    nc: int, nt: int, mc: float, mt: float, sc: float, s_t: float
) -> None:
    control, treatment = MeanStats.from_moments(nc, mc, sc), MeanStats.from_moments(nt, mt, s_t)
    cov = np.diag([sc**2 / nc, s_t**2 / nt])
    delta = NonlinearDeltaCov(lambda x: np.array([x[1] / x[0] - 1.0]), np.array([mc, mt]), cov)
    ours = relative_mean_lift_ci(control, treatment)
    assert ours.estimate == pytest.approx(mt / mc - 1.0, rel=1e-9, abs=1e-12)
    # statsmodels differentiates numerically: agreement to ~1e-6 relative.
    assert ours.std_error == pytest.approx(float(delta.se_vectorized()[0]), rel=1e-5)


@pytest.mark.parametrize(
    ("control", "treatment", "reason"),
    [
        (MeanStats(0, 0.0, 0.0), MeanStats.from_values([1.0, 2.0]), "no_samples"),
        (MeanStats.from_values([1.0]), MeanStats.from_values([1.0, 2.0]), "insufficient_samples"),
        (
            MeanStats.from_values([3.0, 3.0]),
            MeanStats.from_values([5.0, 5.0, 5.0]),
            "zero_variance",
        ),
    ],
)
def test_degenerate_data_gives_a_reason_and_no_numbers(
    control: MeanStats, treatment: MeanStats, reason: str
) -> None:
    result = welch_ttest(control, treatment)
    assert (result.statistic, result.p_value, result.df, result.reason) == (
        None, None, None, reason
    )  # fmt: skip
    difference = mean_difference_ci(control, treatment)
    assert (difference.ci, difference.reason) == (None, reason)


def test_two_constant_samples_with_different_means_have_no_p_value() -> None:
    """3, 3 against 5, 5, 5: t = 2 / 0. R's t.test stops with "data are essentially
    constant"; a p-value of 1 would claim there is no evidence of a difference."""
    control, treatment = MeanStats.from_values([3.0, 3.0]), MeanStats.from_values([5.0] * 3)
    result = welch_ttest(control, treatment)
    assert result.p_value is None and result.reason == "zero_variance"
    difference = mean_difference_ci(control, treatment)
    assert difference.estimate == pytest.approx(2.0) and difference.ci is None


def test_identical_means_give_p_of_one() -> None:
    a = MeanStats.from_values([1.0, 2.0, 3.0])
    result = welch_ttest(a, MeanStats.from_values([0.0, 2.0, 4.0]))
    assert result.statistic == 0.0 and result.p_value == pytest.approx(1.0)


def test_lift_over_a_zero_mean_is_undefined() -> None:
    zero = MeanStats.from_values([-1.0, 1.0])
    lift = relative_mean_lift_ci(zero, MeanStats.from_values([1.0, 3.0]))
    assert (lift.estimate, lift.ci, lift.reason) == (None, None, "zero_baseline")


@settings(max_examples=100, deadline=None)
@given(
    st.integers(min_value=2, max_value=10**6),
    st.integers(min_value=2, max_value=10**6),
    st.floats(min_value=0.5, max_value=100.0),
    st.floats(min_value=0.5, max_value=100.0),
    st.floats(min_value=0.1, max_value=50.0),
    st.floats(min_value=0.1, max_value=50.0),
    st.sampled_from([0.8, 0.95, 0.99]),
)
def test_relative_lift_of_positive_means_is_a_log_ratio_interval(
    nc: int, nt: int, mc: float, mt: float, sc: float, s_t: float, level: float
) -> None:
    control, treatment = MeanStats.from_moments(nc, mc, sc), MeanStats.from_moments(nt, mt, s_t)
    cov = np.diag([sc**2 / nc, s_t**2 / nt])
    # statsmodels' delta method on log(m_t / m_c), mapped back by exp(.) - 1.
    delta = NonlinearDeltaCov(lambda x: np.array([np.log(x[1] / x[0])]), np.array([mc, mt]), cov)
    low, high = np.expm1(delta.conf_int(alpha=1 - level)[0])
    ours = relative_mean_lift_ci(control, treatment, confidence=level)
    assert ours.ci is not None and ours.log_std_error is not None
    assert ours.log_std_error == pytest.approx(float(delta.se_vectorized()[0]), rel=1e-5)
    width = high - low
    assert ours.ci.lower == pytest.approx(low, abs=1e-5 * width)
    assert ours.ci.upper == pytest.approx(high, abs=1e-5 * width)
    assert ours.ci.lower >= -1.0  # exp(-x) - 1 rounds to -1 for huge x


def test_relative_lift_with_a_negative_mean_keeps_the_linear_interval() -> None:
    control = MeanStats.from_moments(100, -2.0, 1.0)
    treatment = MeanStats.from_moments(100, 1.0, 1.0)
    lift = relative_mean_lift_ci(control, treatment)
    assert lift.estimate == pytest.approx(-1.5) and lift.log_std_error is None
    assert lift.ci is not None and lift.std_error is not None
    assert lift.ci.lower == pytest.approx(-1.5 - 1.959963984540054 * lift.std_error)


def test_one_arm_without_variance_still_has_a_test() -> None:
    result = welch_ttest(
        MeanStats.from_values([2.0, 2.0, 2.0]), MeanStats.from_values([1.0, 3.0, 5.0])
    )
    reference = sp.ttest_ind_from_stats(3.0, 2.0, 3, 2.0, 0.0, 3, equal_var=False)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.df == pytest.approx(2.0)


@settings(max_examples=200, deadline=None)
@given(samples, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_mean_interval_matches_scipy_t_interval(values: list[float], level: float) -> None:
    assume(np.var(values) > 1e-6)
    stats = MeanStats.from_values(values)
    ci = mean_interval(stats, confidence=level)
    low, high = sp.t.interval(level, len(values) - 1, np.mean(values), sp.sem(values))
    scale = max(abs(low), abs(high), 1.0)
    assert ci.lower == pytest.approx(low, rel=1e-9, abs=1e-9 * scale)
    assert ci.upper == pytest.approx(high, rel=1e-9, abs=1e-9 * scale)


def test_mean_interval_of_one_value_is_unbounded() -> None:
    ci = mean_interval(MeanStats.from_values([3.0]))
    assert (ci.lower, ci.upper) == (-np.inf, np.inf)
