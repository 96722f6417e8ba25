"""Experiment planner: sample sizes, exact rounding to users and days, and chart data.

These tests check the fixed-horizon figures, so ``plan_duration`` here plans with
``sequential=False``; tests/unit/test_planner_sequential.py covers the default mode.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import samplesize_proportions_2indep_onetail

from abscope.stats import planner
from abscope.stats.planner import (
    DurationPlan,
    power_grid,
    sensitivity_curve,
)
from abscope.stats.power import power_proportions, sample_size_proportions


def plan_duration(*args: Any, **kwargs: Any) -> DurationPlan:
    """:func:`abscope.stats.planner.plan_duration` for the fixed-horizon test."""
    return planner.plan_duration(*args, **{"sequential": False, **kwargs})


def decimal(value: float) -> Fraction:
    return Fraction(repr(value))


# --------------------------------------------------------------------------------------------
# sample sizes
# --------------------------------------------------------------------------------------------


def test_r_example_rounds_up_to_whole_users() -> None:
    # power.prop.test(p1 = 0.2, p2 = 0.25, power = 0.8) -> n = 1093.739 per group
    plan = plan_duration(0.2, 0.25, daily_traffic=1000)
    assert plan.treatment_rate == 0.25
    assert plan.exact_control_samples == pytest.approx(1093.739, abs=1.2e-4)
    assert (plan.control_samples, plan.treatment_samples, plan.total_samples) == (1094, 1094, 2188)
    assert plan.days == 3  # 2188 users at 1000 a day
    assert plan.daily_users_in_test == 1000.0


def test_plan_echoes_its_inputs() -> None:
    plan = plan_duration(0.1, -0.2, 5000, 0.3, 0.4, 0.9, 0.01, False)
    assert (
        plan.baseline_rate,
        plan.min_relative_lift,
        plan.daily_traffic,
        plan.allocation,
        plan.treatment_share,
        plan.power,
        plan.alpha,
        plan.two_sided,
    ) == (0.1, -0.2, 5000, 0.3, 0.4, 0.9, 0.01, False)
    assert plan.daily_users_in_test == 1500.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.days = 1  # type: ignore[misc]


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=0.01, max_value=0.9),
    st.floats(min_value=0.02, max_value=0.5),
    st.sampled_from([0.2, 0.3, 0.5, 0.6, 0.75]),
)
def test_matches_statsmodels_sample_size(baseline: float, lift: float, share: float) -> None:
    # samplesize_proportions_2indep_onetail(diff, prop2, power, ratio): sample 1 = treatment,
    # prop2 = control rate, nobs2 = ratio * nobs1 = control size for ratio = (1 − s)/s.
    assume(baseline * (1 + lift) < 1)
    plan = plan_duration(baseline, lift, 1000, treatment_share=share)
    n_t = samplesize_proportions_2indep_onetail(
        plan.treatment_rate - baseline, baseline, 0.8, ratio=(1 - share) / share, alpha=0.05
    )
    assert plan.exact_control_samples == pytest.approx(n_t * (1 - share) / share, rel=1e-9)


def test_one_sided_tests_in_the_direction_of_the_lift() -> None:
    up = plan_duration(0.1, 0.1, 1000, two_sided=False)
    assert up.exact_control_samples == sample_size_proportions(
        0.1, up.treatment_rate, alternative="greater"
    )
    down = plan_duration(0.1, -0.1, 1000, two_sided=False)
    assert down.treatment_rate < 0.1
    assert down.exact_control_samples == sample_size_proportions(
        0.1, down.treatment_rate, alternative="less"
    )
    assert up.total_samples < plan_duration(0.1, 0.1, 1000).total_samples
    assert down.total_samples < plan_duration(0.1, -0.1, 1000).total_samples


def test_unequal_split_needs_more_users() -> None:
    even = plan_duration(0.1, 0.1, 1000)
    small_treatment = plan_duration(0.1, 0.1, 1000, treatment_share=0.2)
    assert small_treatment.total_samples > even.total_samples
    assert small_treatment.days > even.days
    # A 20% treatment share means four control users per treatment user.
    assert small_treatment.treatment_samples == math.ceil(small_treatment.exact_control_samples / 4)
    # The treatment arm still gets the power the plan promises.
    achieved = power_proportions(
        0.1,
        small_treatment.treatment_rate,
        small_treatment.control_samples,
        small_treatment.treatment_samples,
    )
    assert achieved >= 0.8


def test_lower_allocation_takes_longer() -> None:
    full = plan_duration(0.05, 0.1, 2000)
    tenth = plan_duration(0.05, 0.1, 2000, allocation=0.1)
    assert tenth.total_samples == full.total_samples
    assert tenth.days == math.ceil(full.total_samples / 200)


# --------------------------------------------------------------------------------------------
# rounding
# --------------------------------------------------------------------------------------------
# Found by a search over baseline rates, lifts and decimal allocations: the total is exactly
# 25 days of traffic in decimal arithmetic, yet the naive float ceil(total / (traffic * alloc))
# gives 26 because traffic * alloc (or the quotient) rounds just below the decimal value.
TWENTY_FIVE_DAYS = [
    # baseline, lift, daily_traffic, allocation, total_samples
    (0.1, 0.2, 307.28, 1.0, 7682),
    (0.1, 0.2, 1229.12, 0.25, 7682),
    (0.1, -0.1, 1079.6, 1.0, 26990),
    (0.1, -0.1, 6747.5, 0.16, 26990),
    (0.2, 0.1, 13020.0, 0.04, 13020),
    (0.2, 0.1, 4340.0, 0.12, 13020),
]


@pytest.mark.parametrize(("baseline", "lift", "traffic", "allocation", "total"), TWENTY_FIVE_DAYS)
def test_exactly_twenty_five_days_is_not_twenty_six(
    baseline: float, lift: float, traffic: float, allocation: float, total: int
) -> None:
    plan = plan_duration(baseline, lift, traffic, allocation)
    assert plan.total_samples == total
    assert Fraction(total) / (decimal(traffic) * decimal(allocation)) == 25
    assert math.ceil(total / (traffic * allocation)) == 26  # the float error being guarded
    assert plan.days == 25


def test_treatment_arm_product_is_exact() -> None:
    # A 1% share gives r = 1/99, so 297 control users pair with exactly 3 treatment users,
    # while the float product 0.01 / 0.99 * 297 is 3.0000000000000004 and would round to 4.
    assert math.ceil(0.01 / (1 - 0.01) * 297) == 4
    grid = power_grid(plan_duration(0.1, 0.5, 1000, treatment_share=0.01), sample_sizes=[297, 1089])
    assert grid.treatment_sample_sizes == (3, 11)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=0.01, max_value=0.9),
    st.floats(min_value=0.01, max_value=1.0),
    st.floats(min_value=1.0, max_value=1e6),
    st.integers(min_value=1, max_value=100).map(lambda k: k / 100),
    st.integers(min_value=1, max_value=99).map(lambda k: k / 100),
    st.booleans(),
)
def test_rounding_is_exact_ceiling(
    baseline: float, lift: float, traffic: float, allocation: float, share: float, two_sided: bool
) -> None:
    assume(baseline * (1 + lift) < 1)
    plan = plan_duration(
        baseline, lift, traffic, allocation, treatment_share=share, two_sided=two_sided
    )
    exact = Fraction(plan.exact_control_samples)
    ratio = decimal(share) / (1 - decimal(share))
    assert plan.control_samples - 1 < exact <= plan.control_samples
    assert plan.treatment_samples - 1 < ratio * exact <= plan.treatment_samples
    assert plan.total_samples == plan.control_samples + plan.treatment_samples
    daily = decimal(traffic) * decimal(allocation)
    assert plan.days - 1 < plan.total_samples / daily <= plan.days
    assert plan.daily_users_in_test == float(daily)


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
INVALID = [
    ("baseline_rate", {"baseline_rate": 0.0}),
    ("baseline_rate", {"baseline_rate": 1.0}),
    ("baseline_rate", {"baseline_rate": math.nan}),
    ("min_relative_lift", {"min_relative_lift": 0.0}),
    ("min_relative_lift", {"min_relative_lift": math.inf}),
    ("min_relative_lift", {"min_relative_lift": 1.0}),  # 0.5 * 2 = 1, outside (0, 1)
    ("min_relative_lift", {"min_relative_lift": -1.0}),
    ("min_relative_lift", {"min_relative_lift": 1e-17}),  # too small to move the rate
    ("daily_traffic", {"daily_traffic": 0}),
    ("daily_traffic", {"daily_traffic": -10.0}),
    ("daily_traffic", {"daily_traffic": math.inf}),
    ("allocation", {"allocation": 0.0}),
    ("allocation", {"allocation": 1.5}),
    ("treatment_share", {"treatment_share": 0.0}),
    ("treatment_share", {"treatment_share": 1.0}),
    ("power", {"power": 1.0}),
    ("power", {"power": 0.05}),  # not greater than alpha
    ("power", {"power": 0.3, "alpha": 0.4}),
    ("alpha", {"alpha": 0.0}),
    ("alpha", {"alpha": 1.0}),
    ("two_sided", {"two_sided": 1}),
    ("two_sided", {"two_sided": "yes"}),
]
VALID: dict[str, object] = {"baseline_rate": 0.5, "min_relative_lift": 0.1, "daily_traffic": 100}


@pytest.mark.parametrize(("name", "bad"), INVALID)
def test_invalid_inputs_name_the_argument(name: str, bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=f"^{name}"):
        plan_duration(**{**VALID, **bad})  # type: ignore[arg-type]


def test_power_reached_with_no_users_is_reported_as_power() -> None:
    # Very unequal variances (50% vs 1%, a 10:1 split) and a power barely above alpha.
    with pytest.raises(ValueError, match="^power"):
        plan_duration(0.5, -0.98, 1000, treatment_share=10 / 11, power=0.06, two_sided=False)


def test_invalid_chart_grids_name_the_entry() -> None:
    with pytest.raises(ValueError, match=r"^lifts\[1\]"):
        sensitivity_curve(plan_duration(0.5, 0.1, 100), lifts=[0.1, 0.0])
    with pytest.raises(ValueError, match=r"^lifts\[0\]"):
        power_grid(plan_duration(0.5, 0.1, 100), lifts=[1.5])
    with pytest.raises(ValueError, match=r"^lifts must not be empty"):
        sensitivity_curve(plan_duration(0.5, 0.1, 100), lifts=[])
    with pytest.raises(ValueError, match=r"^sample_sizes\[2\]"):
        power_grid(plan_duration(0.5, 0.1, 100), sample_sizes=[10, 20, 0])
    with pytest.raises(ValueError, match=r"^sample_sizes\[0\]"):
        power_grid(plan_duration(0.5, 0.1, 100), sample_sizes=[2.5])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"^sample_sizes must not be empty"):
        power_grid(plan_duration(0.5, 0.1, 100), sample_sizes=[])


# --------------------------------------------------------------------------------------------
# chart data
# --------------------------------------------------------------------------------------------


def test_default_sensitivity_range_passes_through_the_plan() -> None:
    curve = sensitivity_curve(plan_duration(0.1, 0.1, 1000))
    assert len(curve.lifts) == 26
    assert curve.lifts[0] == pytest.approx(0.05)
    assert curve.lifts[-1] == pytest.approx(0.3)
    plan = plan_duration(0.1, 0.1, 1000)
    i = curve.lifts.index(0.1)
    assert (curve.total_samples[i], curve.days[i]) == (plan.total_samples, plan.days)
    assert curve.treatment_rates[i] == plan.treatment_rate
    assert curve.daily_users_in_test == 1000.0


def test_default_sensitivity_range_skips_impossible_rates() -> None:
    # 0.5 × (1 + 2 × 0.5) = 1: lifts from 2× the chosen one upwards are left out.
    up = sensitivity_curve(plan_duration(0.5, 0.5, 1000))
    assert len(up.lifts) == 15
    assert max(up.treatment_rates) < 1
    down = sensitivity_curve(plan_duration(0.1, -0.5, 1000))
    assert len(down.lifts) == 15
    assert min(down.treatment_rates) > 0
    assert all(lift < 0 for lift in down.lifts)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(min_value=0.01, max_value=0.95),
    st.floats(min_value=0.02, max_value=0.5),
    st.booleans(),
    st.booleans(),
    st.sampled_from([0.2, 0.5, 0.7]),
)
def test_days_do_not_grow_with_the_lift(
    baseline: float, lift: float, negative: bool, two_sided: bool, share: float
) -> None:
    lift = -lift if negative else lift
    assume(0 < baseline * (1 + lift) < 1)
    curve = sensitivity_curve(
        plan_duration(baseline, lift, 500, treatment_share=share, two_sided=two_sided)
    )
    sizes = [abs(x) for x in curve.lifts]
    assert sizes == sorted(sizes)
    for earlier, later in zip(curve.days, curve.days[1:], strict=False):
        assert later <= earlier
    for earlier, later in zip(curve.total_samples, curve.total_samples[1:], strict=False):
        assert later <= earlier


def test_explicit_lifts_keep_their_order() -> None:
    curve = sensitivity_curve(plan_duration(0.2, 0.1, 1000), lifts=[0.3, -0.1, 0.1])
    assert curve.lifts == (0.3, -0.1, 0.1)
    assert curve.days[0] < curve.days[2]


def test_power_grid_default_shape_and_plan_point() -> None:
    grid = power_grid(plan_duration(0.1, 0.1, 1000, treatment_share=0.3))
    plan = plan_duration(0.1, 0.1, 1000, treatment_share=0.3)
    assert len(grid.sample_sizes) == 20
    assert list(grid.sample_sizes) == sorted(set(grid.sample_sizes))
    assert plan.control_samples in grid.sample_sizes
    assert len(grid.power) == len(grid.lifts) == 26
    assert all(len(row) == len(grid.sample_sizes) for row in grid.power)
    row, column = grid.lifts.index(0.1), grid.sample_sizes.index(plan.control_samples)
    assert grid.power[row][column] >= grid.target_power == 0.8
    assert grid.days[column] == math.ceil(
        (plan.control_samples + grid.treatment_sample_sizes[column]) / 1000
    )


@settings(max_examples=50, deadline=None)
@given(
    st.floats(min_value=0.01, max_value=0.9),
    st.floats(min_value=0.02, max_value=0.3),
    st.booleans(),
    st.sampled_from([0.2, 0.5, 0.7]),
)
def test_power_grows_with_sample_size_and_lift(
    baseline: float, lift: float, two_sided: bool, share: float
) -> None:
    assume(baseline * (1 + 3 * lift) < 1)
    grid = power_grid(
        plan_duration(baseline, lift, 1000, treatment_share=share, two_sided=two_sided)
    )
    for row in grid.power:
        assert all(b >= a for a, b in zip(row, row[1:], strict=False))
    for column in zip(*grid.power, strict=True):
        assert all(b >= a for a, b in zip(column, column[1:], strict=False))
    assert all(b >= a for a, b in zip(grid.days, grid.days[1:], strict=False))


def test_small_sample_sizes_in_default_grid_are_at_least_one() -> None:
    grid = power_grid(plan_duration(0.3, 2.0, 10))  # a huge lift needs only a handful of users
    assert grid.sample_sizes[0] >= 1
    assert list(grid.sample_sizes) == sorted(set(grid.sample_sizes))


def test_plan_type() -> None:
    assert isinstance(plan_duration(0.3, 0.1, 10), DurationPlan)
