"""CUPED (abscope.stats.cuped) against statsmodels OLS on randomised data, and seeded
simulations: the A/A false-positive rate (fixed and sequential) and the variance removed
when the covariate's correlation with the outcome is 0.7.

References: the pooled estimate is the treatment coefficient of
``statsmodels.api.OLS(y, [1, T, x - mean(x)])`` with its classical standard error; the
per-arm estimate is the treatment coefficient of the interacted fit
``OLS(y, [1, T, x - mean(x), T (x - mean(x))])``, and its variance the sum of the
intercept variances of ``OLS(y_k, [1, x_k - mean(x)])`` fitted in each arm alone.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from abscope.stats.cuped import CupedArm, cuped_effect, theta_method_for_split, variance_factor

REL = 1e-9


def arm(y: NDArray[np.float64], c: NDArray[np.float64], has: NDArray[np.bool_]) -> CupedArm:
    """The sufficient statistics of one arm, summed from raw per-user data."""
    return CupedArm(
        samples=len(y),
        outcome_sum=float(y.sum()),
        outcome_sum_squares=float((y * y).sum()),
        covariate_samples=int(has.sum()),
        covariate_sum=float(c[has].sum()),
        covariate_sum_squares=float((c[has] ** 2).sum()),
        covariate_outcome_sum=float(y[has].sum()),
        cross_sum=float((c[has] * y[has]).sum()),
    )


def imputed(
    c_a: NDArray[np.float64],
    has_a: NDArray[np.bool_],
    c_b: NDArray[np.float64],
    has_b: NDArray[np.bool_],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Both arms' covariates with the missing ones set to the mean of the observed ones."""
    fill = np.concatenate([c_a[has_a], c_b[has_b]]).mean()
    return np.where(has_a, c_a, fill), np.where(has_b, c_b, fill)


def data(
    seed: int, n_a: int, n_b: int, rho: float, missing: float, binary: bool
) -> tuple[NDArray[np.float64], ...]:
    rng = np.random.default_rng(seed)
    c = rng.normal(10.0, 3.0, n_a + n_b)
    noise = rng.normal(0.0, 3.0, n_a + n_b)
    y = 5.0 + rho * c + math.sqrt(1 - rho**2) * noise
    y[n_a:] += rng.normal(0.0, 1.0, n_b) + 0.5  # another slope and variance in treatment
    if binary:
        y = (y > np.median(y)).astype(float)
        # Both outcomes in each arm: an arm of all zeros has no relative effect
        # (zero_baseline) and one without variance no test, which are other tests' cases.
        y[[0, n_a]] = 0.0
        y[[1, n_a + 1]] = 1.0
    has = rng.random(n_a + n_b) >= missing
    has[0] = has[n_a] = True
    return y[:n_a], c[:n_a], has[:n_a], y[n_a:], c[n_a:], has[n_a:]


cases = st.tuples(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.integers(min_value=5, max_value=80),
    st.integers(min_value=5, max_value=80),
    st.sampled_from([0.0, 0.3, 0.9]),
    st.sampled_from([0.0, 0.0, 0.2, 0.6]),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(cases)
def test_pooled_theta_is_the_ols_treatment_coefficient(
    case: tuple[int, int, int, float, float, bool],
) -> None:
    y_a, c_a, has_a, y_b, c_b, has_b = data(*case)
    x_a, x_b = imputed(c_a, has_a, c_b, has_b)
    result = cuped_effect(arm(y_a, c_a, has_a), arm(y_b, c_b, has_b), theta="pooled")
    x = np.concatenate([x_a, x_b])
    y = np.concatenate([y_a, y_b])
    treated = np.r_[np.zeros(len(y_a)), np.ones(len(y_b))]
    fit = sm.OLS(y, np.column_stack([np.ones_like(y), treated, x - x.mean()])).fit()
    assert result.reason is None
    assert result.difference == pytest.approx(fit.params[1], rel=REL, abs=1e-12)
    assert result.difference_se == pytest.approx(fit.bse[1], rel=REL)
    slope = fit.params[2]
    assert (
        result.theta_control == result.theta_treatment == pytest.approx(slope, rel=REL, abs=1e-12)
    )
    assert result.treatment_mean == pytest.approx(fit.params[0] + fit.params[1], rel=REL, abs=1e-12)
    welch = math.sqrt(y_a.var(ddof=1) / len(y_a) + y_b.var(ddof=1) / len(y_b))
    assert result.unadjusted_se == pytest.approx(welch, rel=REL)
    assert result.variance_reduction == pytest.approx(
        1 - fit.bse[1] ** 2 / welch**2, rel=1e-7, abs=1e-9
    )


@settings(max_examples=200, deadline=None)
@given(cases)
def test_per_arm_theta_is_the_interacted_fit(
    case: tuple[int, int, int, float, float, bool],
) -> None:
    y_a, c_a, has_a, y_b, c_b, has_b = data(*case)
    x_a, x_b = imputed(c_a, has_a, c_b, has_b)
    result = cuped_effect(arm(y_a, c_a, has_a), arm(y_b, c_b, has_b), theta="per_arm")
    x = np.concatenate([x_a, x_b])
    y = np.concatenate([y_a, y_b])
    centre = x.mean()
    treated = np.r_[np.zeros(len(y_a)), np.ones(len(y_b))]
    design = np.column_stack([np.ones_like(y), treated, x - centre, treated * (x - centre)])
    interacted = sm.OLS(y, design).fit()
    per_arm = [
        sm.OLS(y_k, np.column_stack([np.ones_like(y_k), x_k - centre])).fit()
        for y_k, x_k in ((y_a, x_a), (y_b, x_b))
    ]
    if result.reason == "zero_covariate_variance":  # e.g. one arm's covariates all equal:
        assert np.var(x_a) < 1e-12 or np.var(x_b) < 1e-12  # OLS has no slope to fit there
        return
    assert result.difference == pytest.approx(interacted.params[1], rel=REL, abs=1e-12)
    se = math.sqrt(per_arm[0].bse[0] ** 2 + per_arm[1].bse[0] ** 2)
    assert result.difference_se == pytest.approx(se, rel=REL)
    assert result.theta_control == pytest.approx(per_arm[0].params[1], rel=REL, abs=1e-12)
    assert result.theta_treatment == pytest.approx(per_arm[1].params[1], rel=REL, abs=1e-12)
    # relative effect: the delta method on the two independent intercepts
    m_a, m_b = per_arm[0].params[0], per_arm[1].params[0]
    if abs(m_a) < 1e-12:  # a binary control without conversions: no relative effect
        assert result.reason == "zero_baseline" and result.relative is None
        return
    assert result.reason is None
    assert result.relative == pytest.approx(m_b / m_a - 1, rel=REL)
    rel_se = math.sqrt((per_arm[1].bse[0] / m_a) ** 2 + (m_b * per_arm[0].bse[0] / m_a**2) ** 2)
    assert result.relative_interval is not None
    half = (result.relative_interval[1] - result.relative_interval[0]) / 2
    assert half == pytest.approx(1.959963984540054 * rel_se, rel=1e-9)


def test_undefined_cases_are_null_with_a_reason() -> None:
    plain = CupedArm(10, 5.0, 5.0)
    assert cuped_effect(plain, plain).reason == "no_covariates"
    assert cuped_effect(plain, plain).difference is None
    constant = CupedArm(10, 5.0, 5.0, 10, 30.0, 90.0, 5.0, 15.0)
    assert cuped_effect(constant, constant).reason == "zero_covariate_variance"
    tiny = CupedArm(2, 1.0, 1.0, 2, 1.0, 1.0, 1.0, 1.0)
    assert cuped_effect(tiny, constant, theta="per_arm").reason == "insufficient_samples"
    with pytest.raises(ValueError, match="control.covariate_samples"):
        cuped_effect(CupedArm(1, 0.0, 0.0, 2), constant)
    with pytest.raises(ValueError, match="theta"):
        cuped_effect(constant, constant, theta="median")  # type: ignore[arg-type]


def test_variance_factor_checks_rho() -> None:
    with pytest.raises(ValueError, match="rho"):
        variance_factor(1.5)


def test_the_split_picks_theta() -> None:
    assert theta_method_for_split(1 / 3, 1 / 3) == "pooled"
    assert theta_method_for_split(0.3, 0.7) == "per_arm"
    with pytest.raises(ValueError, match="control_weight"):
        theta_method_for_split(0.0, 1.0)


# --- seeded simulations ------------------------------------------------------------------------

RUNS = 2000


def _simulate(
    rng: np.random.Generator, n_a: int, n_b: int, rho: float, effect: float = 0.0
) -> tuple[CupedArm, CupedArm, float]:
    c = rng.normal(0.0, 1.0, n_a + n_b)
    y = 10.0 + rho * c + math.sqrt(1 - rho**2) * rng.normal(0.0, 1.0, n_a + n_b)
    y[n_a:] += effect
    has = np.ones(n_a + n_b, dtype=bool)
    unadjusted = float(y[n_a:].mean() - y[:n_a].mean())
    return arm(y[:n_a], c[:n_a], has[:n_a]), arm(y[n_a:], c[n_a:], has[n_a:]), unadjusted


@pytest.mark.parametrize(("n_a", "n_b", "theta"), [(300, 300, "pooled"), (480, 120, "per_arm")])
def test_aa_false_positive_rate_is_alpha(n_a: int, n_b: int, theta: str) -> None:
    rng = np.random.default_rng(20261201)
    alpha = 0.05
    rejections = 0
    for _ in range(RUNS):
        a, b, _ = _simulate(rng, n_a, n_b, rho=0.7)
        result = cuped_effect(a, b, theta=theta)  # type: ignore[arg-type]
        assert result.p_value is not None
        rejections += result.p_value < alpha
    rate = rejections / RUNS
    error = math.sqrt(alpha * (1 - alpha) / RUNS)
    print(f"CUPED A/A ({theta}, {n_a}/{n_b}): false-positive rate {rate:.4f} ± {error:.4f}")
    assert abs(rate - alpha) <= 3 * error


def test_sequential_aa_over_daily_looks_stays_below_alpha() -> None:
    rng = np.random.default_rng(7)
    alpha, looks, per_look, runs = 0.05, 14, 100, 600
    flagged = 0
    for _ in range(runs):
        c = rng.normal(0.0, 1.0, (2, looks * per_look))
        y = 10.0 + 0.7 * c + math.sqrt(1 - 0.49) * rng.normal(0.0, 1.0, c.shape)
        has = np.ones(looks * per_look, dtype=bool)
        for day in range(1, looks + 1):
            upto = day * per_look
            result = cuped_effect(
                arm(y[0, :upto], c[0, :upto], has[:upto]),
                arm(y[1, :upto], c[1, :upto], has[:upto]),
                tuning_n=looks * per_look * 2,
            )
            assert result.sequential is not None
            if result.sequential.significant:
                flagged += 1
                break
    rate = flagged / runs
    error = math.sqrt(alpha * (1 - alpha) / runs)
    print(
        f"CUPED sequential A/A, {looks} daily looks: false-positive rate {rate:.4f} ± {error:.4f}"
    )
    assert rate <= alpha + 2 * error


def test_rho_07_removes_about_half_the_variance() -> None:
    rng = np.random.default_rng(12)
    rho, runs = 0.7, 1000
    reductions, adjusted, unadjusted = [], [], []
    for _ in range(runs):
        a, b, plain = _simulate(rng, 1000, 1000, rho, effect=0.1)
        result = cuped_effect(a, b)
        assert result.variance_reduction is not None and result.difference is not None
        reductions.append(result.variance_reduction)
        adjusted.append(result.difference)
        unadjusted.append(plain)
    reported = float(np.mean(reductions))
    realised = 1 - float(np.var(adjusted, ddof=1) / np.var(unadjusted, ddof=1))
    print(
        f"rho = 0.7: reported variance reduction {reported:.4f}, realised over {runs} runs"
        f" {realised:.4f} (rho^2 = {rho**2:.2f}; what remains: 1 - rho^2 = {1 - rho**2:.2f})"
    )
    # the variance falls by rho^2 = 0.49, to 1 - rho^2 = 0.51 of the unadjusted one
    assert 1 - reported == pytest.approx(variance_factor(rho), abs=0.01)
    assert reported == pytest.approx(rho**2, abs=0.01)
    assert realised == pytest.approx(rho**2, abs=0.06)
    assert float(np.mean(adjusted)) == pytest.approx(0.1, abs=0.005)  # unbiased
