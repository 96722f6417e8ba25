"""The planner's CUPED correlation: ``covariate_correlation = ρ`` multiplies every outcome
variance of the sizing by ``1 − ρ²``.

Checked against independent routes (statsmodels' ``NormalIndPower`` with the effect size
``d / (σ √(1 − ρ²))``; the two-proportion formula written out here with its variances scaled;
the unadjusted planner given ``σ √(1 − ρ²)``), as the old plan at ``ρ = 0``, as monotone in
``ρ`` (hypothesis), and by a seeded simulation: correlated normal data at the planned CUPED
size, analysed by :func:`abscope.stats.cuped.cuped_effect`, reject as often as planned.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtri
from statsmodels.stats.power import NormalIndPower

from abscope.jsonable import to_jsonable
from abscope.stats.cuped import CupedArm, cuped_effect
from abscope.stats.planner import DurationPlan, plan_duration, power_grid, sensitivity_curve


def _continuous(**kwargs: Any) -> DurationPlan:
    arguments: dict[str, Any] = {"metric_type": "continuous", "baseline_mean": 10.0,
                                 "standard_deviation": 4.0, "min_absolute_effect": 0.5,
                                 "sequential": False, **kwargs}  # fmt: skip
    return plan_duration(None, None, 1000, **arguments)


@pytest.mark.parametrize("rho", [0.3, 0.7, 0.95])
@pytest.mark.parametrize(
    ("arms", "share", "two_sided"), [(2, None, True), (2, 0.3, False), (3, None, True)]
)
def test_a_mean_plan_is_statsmodels_with_the_effect_size_over_the_reduced_sd(
    rho: float, arms: int, share: float | None, two_sided: bool
) -> None:
    plan = _continuous(
        covariate_correlation=rho, arms=arms, treatment_share=share, two_sided=two_sided
    )
    ratio = plan.treatment_share / (1 - (arms - 1) * plan.treatment_share)
    # statsmodels NormalIndPower().solve_power(effect_size=d/(σ√(1−ρ²)), alpha, power,
    # ratio=n_t/n_c, alternative="larger"): the control arm's size. The planner's two-sided
    # power counts the effect's tail only (R's strict=FALSE), which is the one-sided test at
    # α/2 (statsmodels' "two-sided" adds the other tail).
    reference = NormalIndPower().solve_power(
        effect_size=0.5 / (4.0 * math.sqrt(1 - rho**2)),
        alpha=plan.alpha_per_comparison / (2 if two_sided else 1),
        power=0.8,
        ratio=ratio,
        alternative="larger",
    )
    assert plan.exact_control_samples == pytest.approx(reference, rel=1e-6)
    assert plan.fixed_horizon.exact_control_samples == plan.exact_control_samples
    unadjusted = _continuous(arms=arms, treatment_share=share, two_sided=two_sided)
    assert plan.unadjusted == unadjusted.fixed_horizon
    assert plan.variance_factor == pytest.approx(1 - rho**2, rel=1e-15)


@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("rho", [0.4, 0.7])
def test_a_mean_plan_is_the_unadjusted_plan_with_sigma_squared_times_1_minus_rho_squared(
    sequential: bool, rho: float
) -> None:
    adjusted = _continuous(covariate_correlation=rho, sequential=sequential, arms=3)
    reduced = _continuous(standard_deviation=4.0 * math.sqrt(1 - rho**2), sequential=sequential,
                          arms=3)  # fmt: skip
    assert adjusted.exact_control_samples == pytest.approx(reduced.exact_control_samples, 1e-9)
    assert adjusted.always_valid.exact_control_samples == pytest.approx(
        reduced.always_valid.exact_control_samples, rel=1e-9
    )
    assert (adjusted.control_samples, adjusted.days) == (reduced.control_samples, reduced.days)


@pytest.mark.parametrize(("p", "lift", "ratio_share"), [(0.1, 0.05, None), (0.3, -0.1, 0.25)])
def test_a_rate_plan_scales_both_variances_of_the_two_proportion_formula(
    p: float, lift: float, ratio_share: float | None
) -> None:
    rho = 0.6
    plan = plan_duration(p, lift, 5000, treatment_share=ratio_share, sequential=False,
                         covariate_correlation=rho)  # fmt: skip
    # The formula of R's power.prop.test (Fleiss, without continuity correction) written out
    # with every p(1 − p) term times 1 − ρ².
    s = plan.treatment_share
    r = s / (1 - s)
    p_t = p * (1 + lift)
    pooled = (p + r * p_t) / (1 + r)
    f = 1 - rho**2
    z_a, z_b = -float(ndtri(0.025)), float(ndtri(0.8))
    numerator = z_a * math.sqrt(f * pooled * (1 - pooled) * (1 + 1 / r)) + z_b * math.sqrt(
        f * (p * (1 - p) + p_t * (1 - p_t) / r)
    )
    assert plan.exact_control_samples == pytest.approx(numerator**2 / (p_t - p) ** 2, rel=1e-9)
    assert plan.unadjusted is not None
    assert plan.unadjusted.days >= plan.days


def _without(plan: DurationPlan) -> dict[str, Any]:
    figures = to_jsonable(plan)
    assert isinstance(figures, dict)
    figures.pop("covariate_correlation")
    return figures


@pytest.mark.parametrize("sequential", [True, False])
def test_rho_0_is_the_plan_without_cuped_figure_for_figure(sequential: bool) -> None:
    arguments: dict[str, Any] = {"allocation": 0.3, "arms": 3, "sequential": sequential}
    old = plan_duration(0.1, 0.05, 20000, **arguments)
    zero = plan_duration(0.1, 0.05, 20000, covariate_correlation=0.0, **arguments)
    assert old.covariate_correlation is None and zero.covariate_correlation == 0.0
    assert old.unadjusted is None and zero.unadjusted is None
    assert old.variance_factor == zero.variance_factor == 1.0
    assert _without(old) == _without(zero)
    assert (
        to_jsonable(sensitivity_curve(old))["days"] == to_jsonable(sensitivity_curve(zero))["days"]
    )
    assert power_grid(old).power == power_grid(zero).power


@settings(max_examples=25, deadline=None)
@given(
    p=st.floats(0.02, 0.5),
    lift=st.floats(0.03, 0.5),
    rhos=st.lists(st.floats(0.0, 0.95), min_size=2, max_size=2),
    sequential=st.booleans(),
)
def test_the_plan_shrinks_as_the_correlation_grows(
    p: float, lift: float, rhos: list[float], sequential: bool
) -> None:
    low, high = sorted(rhos)
    weak = plan_duration(p, lift, 1000, sequential=sequential, covariate_correlation=low)
    strong = plan_duration(p, lift, 1000, sequential=sequential, covariate_correlation=high)
    assert strong.exact_control_samples <= weak.exact_control_samples
    assert strong.control_samples <= weak.control_samples and strong.days <= weak.days
    plain = plan_duration(p, lift, 1000, sequential=sequential)
    assert weak.control_samples <= plain.control_samples
    if strong.unadjusted is not None:
        assert strong.unadjusted == (plain.always_valid if sequential else plain.fixed_horizon)


def test_the_charts_follow_the_adjusted_plan() -> None:
    plan = plan_duration(0.1, 0.05, 20000, covariate_correlation=0.7)
    plain = plan_duration(0.1, 0.05, 20000)
    curve = sensitivity_curve(plan)
    at = curve.lifts.index(0.05)
    assert curve.days[at] == plan.days and curve.covariate_correlation == 0.7
    assert curve.unadjusted_days == sensitivity_curve(plain).days
    assert all(a <= u for a, u in zip(curve.days, curve.unadjusted_days, strict=True))
    grid = power_grid(plan)
    row, column = grid.lifts.index(0.05), grid.sample_sizes.index(plan.control_samples)
    assert grid.power[row][column] >= plan.power
    assert grid.power[row][column] == pytest.approx(plan.power, abs=1e-3)
    assert grid.fixed_horizon_power is not None
    fixed = plan.fixed_horizon
    fixed_grid = power_grid(plan, sample_sizes=[fixed.control_samples], lifts=[0.05])
    assert fixed_grid.fixed_horizon_power is not None
    assert fixed_grid.fixed_horizon_power[0][0] == pytest.approx(0.8, abs=1e-3)
    assert sensitivity_curve(plain).unadjusted_days is None


@pytest.mark.parametrize("rho", [1.0, -0.1, 1.5, math.nan, math.inf])
def test_a_correlation_outside_0_1_is_refused_naming_it(rho: float) -> None:
    with pytest.raises(ValueError, match=r"^covariate_correlation"):
        plan_duration(0.1, 0.05, 1000, covariate_correlation=rho)


RUNS = 2000  # binomial SE of a share near 0.8: 0.9 pp; the tolerance is 4 SE


def _realised_power(n: int, delta: float, rho: float, seed: int) -> tuple[float, float]:
    """Share of ``RUNS`` simulated experiments with ``n`` users per arm, the outcome
    correlated ``rho`` with a pre-exposure covariate and the treatment adding ``delta``,
    whose CUPED test rejects: (fixed-horizon at 5%, always-valid at 5%)."""
    rng = np.random.default_rng(seed)

    def arm(shift: float) -> list[CupedArm]:
        x = rng.standard_normal((RUNS, n))
        y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal((RUNS, n)) + shift
        sums = zip(y.sum(1), (y * y).sum(1), x.sum(1), (x * x).sum(1), (x * y).sum(1),
                   strict=True)  # fmt: skip
        return [CupedArm(n, sy, syy, n, sx, sxx, sy, sxy) for sy, syy, sx, sxx, sxy in sums]

    fixed = sequential = 0
    for control, treatment in zip(arm(0.0), arm(delta), strict=True):
        result = cuped_effect(control, treatment, theta="pooled")
        assert result.p_value is not None and result.sequential is not None
        fixed += result.p_value < 0.05
        sequential += result.sequential.significant
    return fixed / RUNS, sequential / RUNS


@pytest.mark.parametrize("sequential", [False, True])
def test_the_cuped_test_at_the_planned_size_has_the_planned_power(sequential: bool) -> None:
    rho, delta = 0.7, 0.2
    plan = plan_duration(None, None, 1000, metric_type="continuous", baseline_mean=0.0,
                         standard_deviation=1.0, min_absolute_effect=delta,
                         sequential=sequential, covariate_correlation=rho)  # fmt: skip
    assert plan.unadjusted is not None
    assert plan.control_samples < 0.6 * plan.unadjusted.control_samples
    fixed, always_valid = _realised_power(plan.control_samples, delta, rho, seed=14)
    realised = always_valid if sequential else fixed
    tolerance = 4 * math.sqrt(0.8 * 0.2 / RUNS)
    assert abs(realised - 0.8) < tolerance, (realised, plan.control_samples)
