"""Binary-metric tests and intervals against statsmodels and published values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from statsmodels.stats._delta_method import NonlinearDeltaCov
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

from abscope.stats import ProportionStats
from abscope.stats.proportions import (
    difference_ci,
    relative_lift_ci,
    two_proportion_ztest,
    wilson_interval,
)

REL = 1e-9


@st.composite
def arms(draw: st.DrawFn, min_n: int = 1) -> ProportionStats:
    n = draw(st.integers(min_value=min_n, max_value=10**7))
    return ProportionStats(n, draw(st.integers(min_value=0, max_value=n)))


levels = st.sampled_from([0.8, 0.9, 0.95, 0.99, 0.999])
alternatives = st.sampled_from(
    [("two-sided", "two-sided"), ("greater", "larger"), ("less", "smaller")]
)


@settings(max_examples=300, deadline=None)
@given(arms(), arms(), alternatives)
def test_ztest_matches_statsmodels(
    control: ProportionStats, treatment: ProportionStats, alt
) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = alt
    pooled = (control.conversions + treatment.conversions) / (control.n + treatment.n)
    assume(0.0 < pooled < 1.0)
    result = two_proportion_ztest(control, treatment, alternative=ours)
    # statsmodels tests count[0]/nobs[0] − count[1]/nobs[1]: treatment first.
    z, p = proportions_ztest(
        [treatment.conversions, control.conversions], [treatment.n, control.n], alternative=theirs
    )
    assert result.statistic == pytest.approx(z, rel=REL, abs=1e-12)
    assert result.p_value == pytest.approx(p, rel=REL, abs=1e-300)
    assert result.reason is None


@settings(max_examples=300, deadline=None)
@given(arms(), arms(), levels)
def test_wald_difference_ci_matches_statsmodels(
    control: ProportionStats, treatment: ProportionStats, level: float
) -> None:
    estimate = difference_ci(control, treatment, confidence=level)
    if estimate.std_error == 0.0:  # both arms constant: a zero-width interval is not given
        assert (estimate.ci, estimate.reason) == (None, "zero_variance")
        return
    assert estimate.ci is not None
    low, high = confint_proportions_2indep(
        treatment.conversions, treatment.n, control.conversions, control.n,
        method="wald", compare="diff", alpha=1 - level,
    )  # fmt: skip
    assert estimate.ci.lower == pytest.approx(low, rel=REL, abs=1e-12)
    assert estimate.ci.upper == pytest.approx(high, rel=REL, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(arms(min_n=2), arms(min_n=2), levels)
def test_relative_lift_error_matches_statsmodels_delta_method(
    control: ProportionStats, treatment: ProportionStats, level: float
) -> None:
    assume(control.conversions > 0 and treatment.conversions > 0)
    pc, pt = control.rate, treatment.rate
    cov = np.diag([pc * (1 - pc) / control.n, pt * (1 - pt) / treatment.n])
    assume(cov[1, 1] > 0 or cov[0, 0] > 0)
    # statsmodels differentiates numerically, so agreement is to ~1e-6, not 1e-9.
    delta = NonlinearDeltaCov(lambda x: np.array([x[1] / x[0] - 1.0]), np.array([pc, pt]), cov)
    ours = relative_lift_ci(control, treatment, confidence=level)
    assert ours.estimate == pytest.approx(pt / pc - 1.0, rel=REL, abs=1e-12)
    assert ours.std_error == pytest.approx(float(delta.se_vectorized()[0]), rel=1e-5)


@settings(max_examples=300, deadline=None)
@given(arms(), arms(), levels)
def test_relative_lift_ci_is_statsmodels_log_ratio_interval(
    control: ProportionStats, treatment: ProportionStats, level: float
) -> None:
    assume(control.conversions > 0 and treatment.conversions > 0)
    assume(control.conversions < control.n or treatment.conversions < treatment.n)
    ours = relative_lift_ci(control, treatment, confidence=level)
    # statsmodels compares count1/nobs1 to count2/nobs2: treatment first, ratio = p_t / p_c.
    low, high = confint_proportions_2indep(
        treatment.conversions, treatment.n, control.conversions, control.n,
        compare="ratio", method="log", alpha=1 - level,
    )  # fmt: skip
    assert ours.ci is not None and ours.reason is None
    assert ours.ci.lower == pytest.approx(low - 1.0, rel=1e-9, abs=1e-12)
    assert ours.ci.upper == pytest.approx(high - 1.0, rel=1e-9, abs=1e-12)


@settings(max_examples=300, deadline=None)
@given(arms(), arms(), levels)
def test_relative_lift_ci_never_goes_below_minus_100_percent(
    control: ProportionStats, treatment: ProportionStats, level: float
) -> None:
    ours = relative_lift_ci(control, treatment, confidence=level)
    if ours.ci is None:
        assert ours.reason is not None
        return
    assert -1.0 <= ours.ci.lower <= ours.estimate <= ours.ci.upper  # type: ignore[operator]


def test_small_samples_no_longer_give_an_impossible_lift() -> None:
    # 5/40 vs 1/40: the symmetric delta-method interval was −80% ± 1.47, i.e. below −200%.
    lift = relative_lift_ci(ProportionStats(40, 5), ProportionStats(40, 1))
    assert lift.estimate == pytest.approx(-0.8)
    assert lift.ci is not None and lift.ci.lower > -1.0
    assert lift.estimate - 1.96 * lift.std_error < -1.0  # type: ignore[operator]


@settings(max_examples=300, deadline=None)
@given(arms(), levels)
def test_wilson_matches_statsmodels(stats: ProportionStats, level: float) -> None:
    ci = wilson_interval(stats, confidence=level)
    low, high = proportion_confint(stats.conversions, stats.n, alpha=1 - level, method="wilson")
    assert ci.lower == pytest.approx(low, rel=REL, abs=1e-12)
    assert ci.upper == pytest.approx(high, rel=REL, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(arms(min_n=5), arms(min_n=5))
def test_label_swap_flips_the_statistic(a: ProportionStats, b: ProportionStats) -> None:
    forward, backward = two_proportion_ztest(a, b), two_proportion_ztest(b, a)
    assert forward.reason == backward.reason
    if forward.reason is not None:
        assert None is forward.p_value is backward.p_value is forward.statistic
        return
    assert forward.statistic is not None and backward.statistic is not None
    assert forward.statistic == pytest.approx(-backward.statistic, abs=1e-12)
    assert forward.p_value == pytest.approx(backward.p_value, rel=1e-12)
    greater = two_proportion_ztest(a, b, alternative="greater").p_value
    less = two_proportion_ztest(a, b, alternative="less").p_value
    assert greater is not None and less is not None
    assert greater + less == pytest.approx(1.0, abs=1e-12)


def test_sample_size_one_is_allowed() -> None:
    result = two_proportion_ztest(ProportionStats(1, 0), ProportionStats(1, 1))
    # pooled p = 1/2, SE = sqrt(0.25 * 2), z = 1 / SE.
    assert result.statistic == pytest.approx(1.0 / math.sqrt(0.5))
    assert difference_ci(ProportionStats(1, 0), ProportionStats(1, 1)).estimate == 1.0


@pytest.mark.parametrize(
    ("control", "treatment", "reason"),
    [
        (ProportionStats(0, 0), ProportionStats(100, 10), "no_samples"),
        (ProportionStats(100, 0), ProportionStats(100, 0), "zero_variance"),
        (ProportionStats(100, 100), ProportionStats(50, 50), "zero_variance"),
    ],
)
def test_degenerate_data_gives_a_reason_and_no_numbers(
    control: ProportionStats, treatment: ProportionStats, reason: str
) -> None:
    result = two_proportion_ztest(control, treatment)
    assert (result.statistic, result.p_value, result.reason) == (None, None, reason)
    difference = difference_ci(control, treatment)
    assert (difference.ci, difference.reason) == (None, reason)


def test_identical_rates_give_p_of_one() -> None:
    result = two_proportion_ztest(ProportionStats(400, 40), ProportionStats(800, 80))
    assert result.statistic == 0.0 and result.p_value == pytest.approx(1.0)
    assert difference_ci(ProportionStats(400, 40), ProportionStats(800, 80)).ci.contains(0.0)


def test_lift_over_a_zero_baseline_is_undefined() -> None:
    lift = relative_lift_ci(ProportionStats(100, 0), ProportionStats(100, 5))
    assert lift.reason == "zero_baseline"
    assert (lift.estimate, lift.std_error, lift.ci, lift.log_std_error) == (None,) * 4
    # The absolute difference is still defined: 5 points, with a Wald interval.
    difference = difference_ci(ProportionStats(100, 0), ProportionStats(100, 5))
    assert difference.estimate == pytest.approx(0.05) and difference.ci is not None


def test_lift_to_a_zero_treatment_rate_is_minus_100_percent_without_an_interval() -> None:
    lift = relative_lift_ci(ProportionStats(100, 10), ProportionStats(100, 0))
    assert (lift.estimate, lift.ci, lift.reason) == (-1.0, None, "zero_treatment")


def test_wilson_with_no_users_is_the_unit_interval() -> None:
    ci = wilson_interval(ProportionStats(0, 0))
    assert (ci.lower, ci.upper) == (0.0, 1.0)


def test_wilson_at_the_edges_stays_inside_the_unit_interval() -> None:
    assert wilson_interval(ProportionStats(20, 0)).lower == 0.0
    assert wilson_interval(ProportionStats(20, 20)).upper == 1.0


@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.5, math.nan])
def test_confidence_is_validated(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        difference_ci(ProportionStats(10, 1), ProportionStats(10, 2), confidence=confidence)


def test_alternative_is_validated() -> None:
    with pytest.raises(ValueError, match="alternative"):
        two_proportion_ztest(ProportionStats(10, 1), ProportionStats(10, 2), alternative="up")  # type: ignore[arg-type]


def test_ci_and_p_value_agree_away_from_the_boundary() -> None:
    """The test uses the pooled error and the interval the unpooled one, so they may disagree
    only when p is close to alpha; elsewhere the CI excludes 0 exactly when p < alpha."""
    for x in range(60, 141, 5):
        control, treatment = ProportionStats(1000, 100), ProportionStats(1000, x)
        p = two_proportion_ztest(control, treatment).p_value
        ci = difference_ci(control, treatment).ci
        if abs(p - 0.05) > 0.01:
            assert (p < 0.05) == (not ci.contains(0.0))
