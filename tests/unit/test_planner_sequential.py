"""The planner plans the test the analysis runs: sequential by default, fixed-horizon on request.

The acceptance check simulates experiments at exactly the planned sample with exactly the
planned lift and asks how often the analysis' decision is "winner". The data are generated
vectorised and the decision's figures computed the way :func:`analyze_experiment` computes
them (pooled z-test; always-valid test of the difference with the unpooled variance); a
sample of the runs goes through :func:`analyze_experiment` itself, which must agree.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy.special import ndtr

from abscope.stats import AnalysisOptions, ProportionStats, analyze_experiment
from abscope.stats.planner import DurationPlan, plan_duration, power_grid, sensitivity_curve
from abscope.stats.sequential import boundary_z
from abscope.stats.sequential_power import sequential_power, sequential_sample_size

RUNS = 20_000  # binomial SE of a share near 0.8: 0.28 pp, so ±2 pp is ±7 SE
CHECKED = 200  # runs also analysed by analyze_experiment


def _winners(
    plan: DurationPlan, sequential: bool, seed: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Whether each simulated experiment's decision is "winner", and its conversions."""
    rng = np.random.default_rng(seed)
    n_c, n_t = plan.control_samples, plan.treatment_samples
    x_c = rng.binomial(n_c, plan.baseline_rate, RUNS)
    x_t = rng.binomial(n_t, plan.treatment_rate, RUNS)
    r_c, r_t = x_c / n_c, x_t / n_t
    diff = r_t - r_c
    if sequential:
        se = np.sqrt(r_c * (1 - r_c) / n_c + r_t * (1 - r_t) / n_t)
        c = boundary_z(n_c + n_t, alpha=plan.alpha, tuning_n=plan.sequential_tuning_n)
        significant = np.abs(diff) > c * se
    else:
        pooled = (x_c + x_t) / (n_c + n_t)
        z = diff / np.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
        significant = 2 * ndtr(-np.abs(z)) < plan.alpha
    return significant, x_c, x_t  # significant either way is a "winner" (treatment or control)


@pytest.mark.slow
@pytest.mark.parametrize("sequential", [True, False])
@pytest.mark.parametrize(
    ("baseline", "lift", "share", "alpha", "power"),
    [(0.10, 0.10, 0.5, 0.05, 0.8), (0.05, 0.20, 0.3, 0.01, 0.9)],
)
def test_share_of_winners_at_the_planned_sample_is_the_planned_power(
    baseline: float, lift: float, share: float, alpha: float, power: float, sequential: bool
) -> None:
    plan = plan_duration(
        baseline, lift, 10_000, treatment_share=share, power=power, alpha=alpha,
        sequential=sequential,
    )  # fmt: skip
    assert plan.mode == ("sequential" if sequential else "fixed_horizon")
    winners, x_c, x_t = _winners(plan, sequential, seed=int(1000 * baseline) + sequential)
    assert winners.mean() == pytest.approx(power, abs=0.02)

    # The same verdicts from analyze_experiment, with the options the service uses.
    options = AnalysisOptions(
        alpha=alpha, sequential=sequential, min_relative_lift=lift, power=power,
        prob_best_draws=1,
    )  # fmt: skip
    for i in range(CHECKED):
        analysis = analyze_experiment(
            {
                "control": ProportionStats(plan.control_samples, int(x_c[i])),
                "treatment": ProportionStats(plan.treatment_samples, int(x_t[i])),
            },
            [1 - share, share],
            options=options,
        )
        assert (analysis.decision.verdict == "winner") == winners[i], i


@pytest.mark.slow
def test_a_fixed_horizon_plan_underpowers_the_sequential_analysis() -> None:
    # The bug, which the check above would catch: sized for the z-test, the
    # always-valid analysis calls far fewer winners than planned.
    fixed = plan_duration(0.10, 0.10, 10_000, sequential=False)
    winners, _, _ = _winners(fixed, sequential=True, seed=5)
    assert winners.mean() < fixed.power - 0.15


def test_both_modes_are_in_every_plan() -> None:
    sequential = plan_duration(0.1, 0.1, 1000)
    fixed = plan_duration(0.1, 0.1, 1000, sequential=False)
    assert sequential.sequential and sequential.mode == "sequential"
    assert sequential.always_valid == fixed.always_valid
    assert sequential.fixed_horizon == fixed.fixed_horizon
    assert sequential.total_samples == sequential.always_valid.total_samples
    assert fixed.total_samples == fixed.fixed_horizon.total_samples
    assert fixed.days == fixed.fixed_horizon.days
    assert sequential.always_valid.total_samples > sequential.fixed_horizon.total_samples


@pytest.mark.parametrize("share", [0.5, 0.3])
@pytest.mark.parametrize("tuning", [1000, 5000, 100_000])
def test_sequential_size_is_sequential_sample_size(share: float, tuning: int) -> None:
    plan = plan_duration(0.2, 0.15, 500, treatment_share=share, sequential_tuning_n=tuning)
    p, q = 0.2, 0.2 * 1.15
    variance = p * (1 - p) / (1 - share) + q * (1 - q) / share
    total = sequential_sample_size(q - p, variance, alpha=0.05, power=0.8, tuning_n=tuning)
    assert plan.exact_control_samples == pytest.approx(total * (1 - share), rel=1e-12)
    assert plan.control_samples == math.ceil(plan.exact_control_samples)
    at_plan = sequential_power(q - p, variance, plan.total_samples, tuning_n=tuning)
    assert 0.8 <= at_plan < 0.8 + 0.002
    assert plan.sequential_tuning_n == tuning
    assert plan.days == math.ceil(plan.total_samples / 500)


def test_charts_follow_the_plan_mode() -> None:
    plan = plan_duration(0.2, 0.25, daily_traffic=200)
    curve = sensitivity_curve(plan)
    grid = power_grid(plan)
    row = curve.lifts.index(0.25)
    assert curve.mode == grid.mode == "sequential"
    assert curve.days[row] == curve.always_valid_days[row] == plan.days
    assert curve.fixed_horizon_days[row] == plan.fixed_horizon.days
    column = grid.sample_sizes.index(plan.control_samples)
    assert grid.power[grid.lifts.index(0.25)][column] == pytest.approx(0.8, abs=0.002)
    assert grid.fixed_horizon_power is not None
    assert grid.fixed_horizon_power[grid.lifts.index(0.25)][column] > 0.95
    fixed_grid = power_grid(plan_duration(0.2, 0.25, daily_traffic=200, sequential=False))
    assert fixed_grid.mode == "fixed_horizon" and fixed_grid.fixed_horizon_power is None


@pytest.mark.parametrize("bad", [{"sequential": "yes"}, {"sequential_tuning_n": 0}])
def test_invalid_sequential_arguments_name_themselves(bad: dict[str, object]) -> None:
    name = next(iter(bad))
    with pytest.raises(ValueError, match=f"^{name}"):
        plan_duration(0.1, 0.1, 1000, **bad)  # type: ignore[arg-type]
