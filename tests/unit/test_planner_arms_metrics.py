"""The planner's new cases, against independent references and seeded simulations.

* continuous metrics and absolute effects: statsmodels' ``NormalIndPower`` /
  ``zt_ind_solve_power`` and R's ``power.prop.test``;
* more than two arms: each comparison at ``alpha / (arms − 1)``, checked by simulating the
  analysis at the planned sample (Holm over the comparisons, as ``analyze_experiment`` does);
* the warnings past a year and past ``max_days``; the validation of the new inputs.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power
from statsmodels.stats.proportion import samplesize_proportions_2indep_onetail

from abscope.stats import AnalysisOptions, MeanStats, ProportionStats, analyze_experiment
from abscope.stats.multiple import holm
from abscope.stats.planner import plan_duration, power_grid, sensitivity_curve
from abscope.stats.sequential import sequential_test

# --------------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mean", "std", "delta", "ratio_share", "alpha", "power", "two_sided"),
    [
        (42.0, 30.0, 1.5, None, 0.05, 0.8, True),
        (10.0, 4.0, -0.25, 0.3, 0.01, 0.9, True),
        (0.0, 1.0, 0.05, None, 0.05, 0.8, False),  # a mean of 0: only absolute effects
    ],
)
def test_continuous_fixed_horizon_matches_statsmodels(
    mean: float,
    std: float,
    delta: float,
    ratio_share: float | None,
    alpha: float,
    power: float,
    two_sided: bool,
) -> None:
    plan = plan_duration(
        None, None, 1000, metric_type="continuous", baseline_mean=mean,
        standard_deviation=std, min_absolute_effect=delta, treatment_share=ratio_share,
        alpha=alpha, power=power, two_sided=two_sided, sequential=False,
    )  # fmt: skip
    share = 0.5 if ratio_share is None else ratio_share
    ratio = share / (1 - share)
    alternative = "two-sided" if two_sided else ("larger" if delta > 0 else "smaller")
    # NormalIndPower().solve_power(effect_size=δ/σ, alpha, power, ratio=n_t/n_c): nobs1 = n_c.
    # Two-sided, statsmodels also counts rejections in the far tail, which the plan (R's
    # convention, strict=False) leaves out: a relative difference of about 1e-6 here.
    tolerance = 1e-4 if two_sided else 1e-9
    expected = NormalIndPower().solve_power(
        effect_size=delta / std, alpha=alpha, power=power, ratio=ratio, alternative=alternative
    )
    assert plan.exact_control_samples == pytest.approx(expected, rel=tolerance)
    assert plan.exact_control_samples == pytest.approx(
        zt_ind_solve_power(
            effect_size=delta / std, alpha=alpha, power=power, ratio=ratio,
            alternative=alternative,
        ),
        rel=tolerance,
    )  # fmt: skip
    # Direct: n_c = (z_{1−α'} + z_{1−β})² σ² (1 + 1/r) / δ², α' = α/2 two-sided.
    z = sps.norm.isf(alpha / 2 if two_sided else alpha) + sps.norm.ppf(power)
    assert plan.exact_control_samples == pytest.approx(
        z**2 * std**2 * (1 + 1 / ratio) / delta**2, rel=1e-12
    )
    assert plan.treatment_mean == mean + delta
    assert plan.min_relative_lift == (None if mean == 0 else delta / mean)


def test_relative_effect_on_a_mean_is_the_same_plan_as_its_absolute_effect() -> None:
    common: dict[str, Any] = {
        "metric_type": "continuous", "baseline_mean": 40.0, "standard_deviation": 25.0,
    }  # fmt: skip
    relative = plan_duration(None, 0.05, 3000, **common)
    absolute = plan_duration(None, None, 3000, min_absolute_effect=2.0, **common)
    assert relative.min_absolute_effect == pytest.approx(2.0)
    assert (relative.total_samples, relative.days) == (absolute.total_samples, absolute.days)
    assert absolute.effect_scale == "absolute" and relative.effect_scale == "relative"


def test_absolute_rate_difference_matches_r() -> None:
    # R: power.prop.test(p1 = 0.2, p2 = 0.25, power = 0.8) -> n = 1093.739 per group
    plan = plan_duration(0.2, None, 1000, min_absolute_effect=0.05, sequential=False)
    assert plan.exact_control_samples == pytest.approx(1093.739, abs=1.2e-3)
    assert plan.treatment_rate == 0.25 and plan.min_relative_lift == pytest.approx(0.25)
    down = plan_duration(
        0.1, None, 1000, min_absolute_effect=-0.01, power=0.9, alpha=0.01, sequential=False
    )
    # samplesize_proportions_2indep_onetail(diff = p_t − p_c, prop2 = p_c, power, ratio = 1)
    expected = samplesize_proportions_2indep_onetail(-0.01, 0.1, 0.9, ratio=1.0, alpha=0.01)
    assert down.exact_control_samples == pytest.approx(expected, rel=1e-9)
    assert down.treatment_rate == pytest.approx(0.09)


@pytest.mark.parametrize("arms", [3, 4, 6])
def test_each_of_several_comparisons_is_sized_at_alpha_over_their_number(arms: int) -> None:
    plan = plan_duration(0.05, 0.1, 10_000, arms=arms, sequential=False)
    m = arms - 1
    assert plan.comparisons == m and plan.alpha_per_comparison == pytest.approx(0.05 / m)
    # samplesize_proportions_2indep_onetail(diff, prop2, power, ratio, alpha): a two-sided
    # test at alpha/m with equal arms, sample 1 = treatment.
    n_t = samplesize_proportions_2indep_onetail(
        plan.treatment_rate - 0.05, 0.05, 0.8, ratio=1.0, alpha=0.05 / m
    )
    assert plan.exact_control_samples == pytest.approx(n_t, rel=1e-9)
    assert plan.treatment_share == pytest.approx(1 / arms)
    assert plan.total_samples == plan.control_samples + m * plan.treatment_samples
    assert plan.days == math.ceil(Fraction(plan.total_samples, 10_000))
    two = plan_duration(0.05, 0.1, 10_000, sequential=False)
    assert plan.control_samples > two.control_samples  # a stricter level needs more users


def test_an_unequal_split_over_several_arms() -> None:
    # 4 arms, each treatment 20%: the control holds 40%, two users per treatment user.
    plan = plan_duration(0.1, 0.1, 1000, arms=4, treatment_share=0.2, sequential=False)
    assert plan.treatment_samples == math.ceil(plan.exact_control_samples / 2)
    n_t = samplesize_proportions_2indep_onetail(
        plan.treatment_rate - 0.1, 0.1, 0.8, ratio=2.0, alpha=0.05 / 3
    )
    assert plan.exact_control_samples == pytest.approx(2 * n_t, rel=1e-9)


def test_charts_pass_through_the_plan_for_every_new_case() -> None:
    plans = [
        plan_duration(0.1, None, 5000, min_absolute_effect=0.01, arms=3),
        plan_duration(None, None, 5000, metric_type="continuous", baseline_mean=0.0,
                      standard_deviation=2.0, min_absolute_effect=0.1, sequential=False),
        plan_duration(None, 0.05, 5000, metric_type="continuous", baseline_mean=20.0,
                      standard_deviation=9.0, arms=4, treatment_share=0.3),
    ]  # fmt: skip
    for plan in plans:
        curve = sensitivity_curve(plan)
        grid = power_grid(plan)
        given = plan.min_relative_lift if plan.effect_scale == "relative" else None
        planned = given if given is not None else plan.min_absolute_effect
        i = curve.effects.index(planned)
        assert (curve.total_samples[i], curve.days[i]) == (plan.total_samples, plan.days)
        row, column = grid.effects.index(planned), grid.sample_sizes.index(plan.control_samples)
        assert grid.power[row][column] == pytest.approx(plan.power, abs=0.003)
        assert grid.days[column] == plan.days


# --------------------------------------------------------------------------------------------
# simulations of the analysis at the planned sample
# --------------------------------------------------------------------------------------------

RUNS = 6_000  # binomial SE of a share near 0.8: 0.52 pp, so ±2.5 pp is ±4.8 SE


@pytest.mark.parametrize("sequential", [True, False])
def test_three_arms_at_the_planned_sample_find_the_effect_with_the_planned_power(
    sequential: bool,
) -> None:
    """Treatment ``a`` has the planned lift, ``b`` none. At the planned arm sizes, the share
    of runs in which ``a`` is significant against alpha/2 (Bonferroni) is the planned power,
    and under Holm (the analysis' correction) at least that; a sample of runs goes through
    ``analyze_experiment``, whose decisions must match the vectorised ones."""
    plan = plan_duration(0.1, 0.15, 10_000, arms=3, sequential=sequential)
    rng = np.random.default_rng(20261201 + sequential)
    n_c, n_t = plan.control_samples, plan.treatment_samples
    x_c = rng.binomial(n_c, 0.1, RUNS)
    x_a = rng.binomial(n_t, plan.treatment_rate, RUNS)
    x_b = rng.binomial(n_t, 0.1, RUNS)

    def p_values(x_t: np.ndarray) -> list[float]:
        r_c, r_t = x_c / n_c, x_t / n_t
        if not sequential:
            pooled = (x_c + x_t) / (n_c + n_t)
            z = (r_t - r_c) / np.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
            return list(2 * sps.norm.sf(np.abs(z)))
        variance = r_c * (1 - r_c) / n_c + r_t * (1 - r_t) / n_t
        return [
            float(sequential_test(d, v, n_c + n_t, alpha=0.05).p_value or 1.0)
            for d, v in zip(r_t - r_c, variance, strict=True)
        ]

    p_a, p_b = p_values(x_a), p_values(x_b)
    bonferroni = np.array(p_a) < 0.025
    adjusted = [holm([a, b])[0] for a, b in zip(p_a, p_b, strict=True)]
    holm_found = np.array(adjusted) < 0.05
    assert abs(bonferroni.mean() - plan.power) < 0.025, bonferroni.mean()
    assert holm_found.mean() >= bonferroni.mean()
    assert np.all(holm_found[bonferroni])  # Holm finds whatever Bonferroni finds

    options = AnalysisOptions(sequential=sequential)
    for i in range(0, RUNS, RUNS // 60):
        result = analyze_experiment(
            {"control": ProportionStats(n_c, int(x_c[i])), "a": ProportionStats(n_t, int(x_a[i])),
             "b": ProportionStats(n_t, int(x_b[i]))},
            [1 / 3, 1 / 3, 1 / 3], options=options,
        )  # fmt: skip
        a = result.comparisons[0]
        found = a.sequential_significant if sequential else a.significant
        assert found == bool(holm_found[i]), i


def test_a_continuous_plan_gives_its_power_to_welchs_test() -> None:
    """Normal data at the planned arm sizes: Welch's t-test (the analysis' test of a mean)
    rejects in the planned share of runs, so the z-approximation the plan uses holds."""
    plan = plan_duration(
        None, None, 1000, metric_type="continuous", baseline_mean=42.0,
        standard_deviation=30.0, min_absolute_effect=6.0, sequential=False,
    )  # fmt: skip
    rng = np.random.default_rng(7)
    n_c, n_t = plan.control_samples, plan.treatment_samples
    runs = 4_000  # SE of a share near 0.8: 0.63 pp
    control = rng.normal(42.0, 30.0, (runs, n_c))
    treated = rng.normal(48.0, 30.0, (runs, n_t))
    found = sps.ttest_ind(treated, control, axis=1, equal_var=False).pvalue < 0.05
    assert abs(found.mean() - plan.power) < 0.025, found.mean()
    first = {
        "control": MeanStats.from_values(control[0]),
        "treatment": MeanStats.from_values(treated[0]),
    }
    one = analyze_experiment(
        first,
        [0.5, 0.5], options=AnalysisOptions(sequential=False),
    )  # fmt: skip
    assert one.comparisons[0].significant == bool(found[0])


# --------------------------------------------------------------------------------------------
# warnings and validation
# --------------------------------------------------------------------------------------------


def test_a_plan_longer_than_a_year_says_so() -> None:
    long = plan_duration(0.01, 0.02, 300)
    assert long.days > 365
    assert [w.code for w in long.warnings] == ["longer_than_a_year"]
    assert f"{long.days:,} days" in long.warnings[0].message
    assert plan_duration(0.1, 0.05, 20_000).warnings == ()


def test_traffic_that_cannot_reach_the_sample_in_max_days_says_so() -> None:
    plan = plan_duration(0.1, 0.05, 2000, allocation=0.5, max_days=30)
    assert plan.days > 30
    (warning,) = plan.warnings
    assert warning.code == "traffic_cannot_reach"
    assert f"brings {30 * 1000:,} of the {plan.total_samples:,} users" in warning.message
    assert plan_duration(0.1, 0.05, 2000, max_days=plan.days * 2).warnings == ()


INVALID: list[tuple[str, dict[str, Any]]] = [
    ("min_relative_lift", {"min_absolute_effect": 0.01}),  # both
    ("min_relative_lift", {"min_relative_lift": None}),  # neither
    ("min_absolute_effect", {"min_relative_lift": None, "min_absolute_effect": 0.95}),
    ("min_absolute_effect", {"min_relative_lift": None, "min_absolute_effect": 0.0}),
    ("baseline_rate", {"baseline_rate": None}),
    ("baseline_mean", {"baseline_mean": 3.0}),  # for the other metric
    ("metric_type", {"metric_type": "ratio"}),
    ("arms", {"arms": 1}),
    ("arms", {"arms": 27}),
    ("arms", {"arms": 2.5}),
    ("arms", {"arms": True}),
    ("treatment_share", {"arms": 3, "treatment_share": 0.5}),  # nothing left for the control
    ("max_days", {"max_days": 0}),
]
CONTINUOUS_INVALID: list[tuple[str, dict[str, Any]]] = [
    ("baseline_mean", {"baseline_mean": None}),
    ("standard_deviation", {"standard_deviation": None}),
    ("standard_deviation", {"standard_deviation": 0.0}),
    ("baseline_rate", {"baseline_rate": 0.1}),
    (
        "min_relative_lift",
        {"baseline_mean": 0.0, "min_relative_lift": 0.1, "min_absolute_effect": None},
    ),  # fmt: skip
    ("baseline_mean", {"baseline_mean": math.inf}),
]


@pytest.mark.parametrize(("name", "bad"), INVALID)
def test_invalid_new_inputs_name_the_argument(name: str, bad: dict[str, Any]) -> None:
    valid: dict[str, Any] = {"baseline_rate": 0.5, "min_relative_lift": 0.1, "daily_traffic": 100}
    with pytest.raises(ValueError, match=f"^{name}"):
        plan_duration(**{**valid, **bad})


@pytest.mark.parametrize(("name", "bad"), CONTINUOUS_INVALID)
def test_invalid_continuous_inputs_name_the_argument(name: str, bad: dict[str, Any]) -> None:
    valid: dict[str, Any] = {
        "baseline_rate": None, "min_relative_lift": None, "daily_traffic": 100,
        "metric_type": "continuous", "baseline_mean": 5.0, "standard_deviation": 2.0,
        "min_absolute_effect": 0.5,
    }  # fmt: skip
    with pytest.raises(ValueError, match=f"^{name}"):
        plan_duration(**{**valid, **bad})
