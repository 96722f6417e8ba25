"""Experiment planning: how many users, and how many days, a test needs.

:func:`plan_duration` turns a baseline (a conversion rate, or a mean and standard deviation),
the smallest effect worth detecting (relative, or absolute) and the daily traffic into a
:class:`DurationPlan`: users per arm and days to run, with warnings when the plan is long.
:func:`sensitivity_curve` and :func:`power_grid` return the numbers behind the planner's charts
(days against effect; power against sample size and effect) as plain tuples, leaving the
drawing to :mod:`abscope.charts`.

Units
-----
Every rate, share and probability is a *fraction* (0.1 is 10%): ``baseline_rate``,
``min_relative_lift``, ``allocation``, ``treatment_share``, ``power``, ``alpha``, and for a
binary metric ``min_absolute_effect`` (0.01 is one percentage point). The planner page shows
percent and converts; the API and the library take fractions. For a continuous metric
``baseline_mean``, ``standard_deviation`` and ``min_absolute_effect`` are in the metric's unit.

Metrics and effects
-------------------
A binary metric plans the two-proportion test (rates ``p`` and ``p_t``); a continuous one the
difference of means with a common standard deviation ``σ`` (the analysis runs Welch's t-test;
the plan uses its normal approximation, as ``statsmodels``' ``NormalIndPower``). The effect is
relative (``p_t = p (1 + L)``) or absolute (``p_t = p + d``): give exactly one of
``min_relative_lift`` and ``min_absolute_effect``; the plan carries both.

Arms and the multiplicity correction
------------------------------------
With ``arms = k`` the analysis compares each of the ``m = k − 1`` treatments with the control
and corrects the ``m`` p-values by Holm's method (:mod:`abscope.stats.multiple`, the analysis'
default). A treatment with the planned effect is found by Holm whenever its p-value is below
``alpha / m``, since Holm's first step is Bonferroni's and every later step is more lenient,
so each comparison is sized at ``alpha / m`` (``alpha_per_comparison``): the plan keeps its
power under Holm (and under Benjamini–Hochberg, which rejects at least what Holm does).
Each treatment arm holds ``treatment_share`` of the experiment's users (by default an equal
split, ``1/k``), the control the rest.

Two tests can decide an experiment, and a plan is for the one that will. Experiments are
sequential by default (:mod:`abscope.stats.sequential`: an always-valid mSPRT that may be read
every day), so ``sequential=True`` is the default here too, with the analysis' tuning
(``sequential_tuning_n``, 5000 as :class:`~abscope.stats.analysis.AnalysisOptions`). Its size
comes from :func:`abscope.stats.sequential_power.sequential_sample_size`: the total of the two
arms compared at which the always-valid test of the difference, read at that total, rejects
at ``alpha / m`` with the target power (the mixture tuned at ``alpha``, as the analysis tunes
it). Every plan also carries both modes' figures, ``fixed_horizon`` and ``always_valid``
(:class:`ModeFigures`), so the price of peeking is visible next to the plan.

The fixed-horizon size comes from :func:`abscope.stats.power.sample_size_proportions` (pooled
z-test, R's ``power.prop.test`` convention, ``strict=False``) or
:func:`abscope.stats.power.sample_size_means`, with ``ratio = r`` treatment users per control
user. A one-sided plan (``two_sided=False``) tests in the direction of the effect, so a
negative one plans for detecting a decrease; the sequential test is always two-sided, so
``two_sided`` changes only the fixed-horizon figures.

CUPED
-----
With ``covariate_correlation = ρ`` (the expected correlation of the metric with its
pre-exposure covariate, in [0, 1)) the plan is for the CUPED-adjusted test the analysis runs
when users carry a covariate (:mod:`abscope.stats.cuped`): the adjustment leaves
``1 − ρ²`` (:func:`abscope.stats.cuped.variance_factor`) of each user's outcome variance, so
every variance in the sizing is multiplied by it, the ``p(1 − p)`` terms of a rate and the
``σ²`` of a mean alike. For the fixed-horizon test both standard deviations of the formula
(under the null and the alternative) then shrink by ``√(1 − ρ²)``, so the exact size is
``1 − ρ²`` times the unadjusted one; the sequential size solves the same equation with the
unit variance ``(1 − ρ²) σ_1²``, about ``1 − ρ²`` times the unadjusted size too (not exactly:
the always-valid boundary depends on ``n``).
The plan keeps the unadjusted figures of its mode beside the adjusted ones (``unadjusted``),
and the charts follow the adjusted plan. ``ρ = 0``, or leaving it out, is the plan without
CUPED, figure for figure.

Warnings
--------
``warnings`` holds :class:`PlanWarning` codes: ``"longer_than_a_year"`` when the plan needs
more than 365 days, and ``"traffic_cannot_reach"`` when ``max_days`` (the longest the
experiment can run) is given and the daily traffic cannot bring the sample in that time.

Rounding
--------
Users are whole, and so are days, so every count is rounded *up*, and only once, from exact
values:

* ``control_samples = ⌈n_c⌉`` where ``n_c`` is the exact control size (for the sequential
  test, ``n_c = n (1 − s')`` of the exact pair total ``n``, ``s' = r/(1 + r)``);
* ``treatment_samples = ⌈r·n_c⌉`` in each treatment arm, the product taken in rational
  arithmetic;
* ``total_samples = control_samples + m · treatment_samples``;
* ``days = ⌈total_samples / (daily_traffic · allocation)⌉``.

Float inputs such as ``allocation = 0.3`` stand for the decimal the user typed, so they are read
as the shortest decimal that round-trips (``Fraction(repr(x))``) and the divisions above are done
exactly with :class:`fractions.Fraction`. Binary floating point would otherwise turn an exact
``25`` days into ``25.000000000000004`` and plan a 26th day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Literal

from abscope.stats._types import Alternative
from abscope.stats._validate import (
    check_alpha,
    check_count,
    check_finite,
    check_open_unit,
    check_positive,
)
from abscope.stats.cuped import variance_factor
from abscope.stats.plan_results import (
    DurationPlan,
    ModeFigures,
    PlanWarning,
    PowerGrid,
    SensitivityCurve,
)
from abscope.stats.power import (
    power_means,
    power_proportions,
    sample_size_means,
    sample_size_proportions,
)
from abscope.stats.sequential import DEFAULT_TUNING_N
from abscope.stats.sequential_power import sequential_power, sequential_sample_size

__all__ = [
    "MAX_ARMS",
    "DurationPlan",
    "EffectScale",
    "ModeFigures",
    "PlanMetric",
    "PlanWarning",
    "PowerGrid",
    "SensitivityCurve",
    "plan_duration",
    "power_grid",
    "sensitivity_curve",
]

PlanMetric = Literal["binary", "continuous"]
EffectScale = Literal["relative", "absolute"]

MAX_ARMS = 26
"""The most arms a plan may have (as many as an experiment's variants)."""

_A_YEAR = 365

# Default chart ranges, as multiples of the planned effect or the planned control size.
_LIFT_FACTORS = tuple(Fraction(k, 10) for k in range(5, 31))  # 0.5x .. 3x, 26 points
_SIZE_FACTORS = tuple(Fraction(k, 10) for k in range(1, 21))  # 0.1x .. 2x, 20 points


@dataclass(frozen=True, slots=True)
class _Inputs:
    metric_type: PlanMetric
    baseline: float  # the rate or the mean
    std: float | None  # continuous only
    effect_scale: EffectScale
    min_effect: float  # on effect_scale
    daily_traffic: float
    allocation: float
    arms: int
    treatment_share: float
    power: float
    alpha: float
    two_sided: bool
    sequential: bool
    sequential_tuning_n: int
    max_days: int | None
    covariate_correlation: float | None
    variance_factor: float  # 1 − ρ², 1.0 without CUPED
    ratio: Fraction  # n_treatment / n_control in each comparison, exactly
    pair_share: Fraction  # n_treatment / (n_control + n_treatment), exactly
    daily_users: Fraction  # daily_traffic · allocation, exactly

    @property
    def comparisons(self) -> int:
        return self.arms - 1

    @property
    def alpha_per(self) -> float:
        return self.alpha / self.comparisons

    @property
    def cuped(self) -> bool:
        return self.variance_factor != 1.0


def _decimal(value: float) -> Fraction:
    """The shortest decimal that round-trips to ``value``, as an exact fraction."""
    return Fraction(repr(float(value)))


def _absolute(metric: PlanMetric, baseline: float, scale: EffectScale, effect: float) -> float:
    """``δ``: the effect on the absolute scale."""
    if scale == "absolute":
        return effect
    return baseline * effect


def _relative(baseline: float, delta: float) -> float | None:
    return None if baseline == 0.0 else delta / baseline


def _shifted(metric: PlanMetric, baseline: float, scale: EffectScale, effect: float) -> float:
    """The treatment's rate or mean."""
    if scale == "relative":
        return baseline * (1.0 + effect)
    return baseline + effect


def _check_effect(
    name: str, effect: float, metric: PlanMetric, baseline: float, scale: EffectScale
) -> float:
    value = check_finite(name, effect)
    if value == 0.0:
        raise ValueError(f"{name} must be nonzero: a zero effect needs infinite samples")
    shifted = _shifted(metric, baseline, scale, value)
    if metric == "binary" and not 0.0 < shifted < 1.0:
        sign = "×" if scale == "relative" else "+"
        factor = f"(1 + {value!r})" if scale == "relative" else repr(value)
        raise ValueError(
            f"{name} must keep the treatment rate in (0, 1): baseline_rate {baseline!r} "
            f"{sign} {factor} = {shifted!r}"
        )
    if shifted == baseline or not math.isfinite(shifted):
        what = "baseline_rate" if metric == "binary" else "baseline_mean"
        raise ValueError(f"{name} {value!r} is too small to change {what} {baseline!r}")
    return value


def _check_size(name: str, value: int) -> int:
    size = check_count(name, value)
    if size < 1:
        raise ValueError(f"{name} must be at least 1, got {value!r}")
    return size


def _check_correlation(value: float | None) -> float | None:
    if value is None:
        return None
    rho = check_finite("covariate_correlation", value)
    if not 0.0 <= rho < 1.0:
        raise ValueError(
            f"covariate_correlation must be in [0, 1) (0 or left out: no CUPED), got {value!r}:"
            " the correlation of the metric with the same metric in a pre-period; for a"
            " negative one give its absolute value, which reduces the variance as much"
        )
    return rho


def _check_absent(name: str, value: float | None, metric: str) -> None:
    if value is not None:
        raise ValueError(f"{name} is for the other metric type; leave it out for {metric}")


def _validate(
    metric_type: str,
    baseline_rate: float | None,
    baseline_mean: float | None,
    standard_deviation: float | None,
    min_relative_lift: float | None,
    min_absolute_effect: float | None,
    daily_traffic: float,
    allocation: float,
    arms: int,
    treatment_share: float | None,
    power: float,
    alpha: float,
    two_sided: bool,
    sequential: bool,
    sequential_tuning_n: int,
    max_days: int | None,
    covariate_correlation: float | None,
) -> _Inputs:
    metric: PlanMetric
    std: float | None = None
    if metric_type == "binary":
        metric = "binary"
        if baseline_rate is None:
            raise ValueError("baseline_rate is required for a binary metric")
        _check_absent("baseline_mean", baseline_mean, metric)
        _check_absent("standard_deviation", standard_deviation, metric)
        baseline = check_open_unit("baseline_rate", baseline_rate)
    elif metric_type == "continuous":
        metric = "continuous"
        _check_absent("baseline_rate", baseline_rate, metric)
        if baseline_mean is None:
            raise ValueError("baseline_mean is required for a continuous metric")
        if standard_deviation is None:
            raise ValueError("standard_deviation is required for a continuous metric")
        baseline = check_finite("baseline_mean", baseline_mean)
        std = check_positive("standard_deviation", standard_deviation)
    else:
        raise ValueError(f"metric_type must be binary or continuous, got {metric_type!r}")
    scale: EffectScale
    if (min_relative_lift is None) == (min_absolute_effect is None):
        raise ValueError(
            "min_relative_lift or min_absolute_effect: give exactly one of the two, got "
            + ("both" if min_relative_lift is not None else "neither")
        )
    if min_relative_lift is not None:
        scale, name, given = "relative", "min_relative_lift", min_relative_lift
        if metric == "continuous" and baseline == 0.0:
            raise ValueError(
                "min_relative_lift is undefined for a baseline_mean of 0: give min_absolute_effect"
            )
    else:
        assert min_absolute_effect is not None
        scale, name, given = "absolute", "min_absolute_effect", min_absolute_effect
    effect = _check_effect(name, given, metric, baseline, scale)
    traffic = check_positive("daily_traffic", daily_traffic)
    share_of_traffic = check_finite("allocation", allocation)
    if not 0.0 < share_of_traffic <= 1.0:
        raise ValueError(f"allocation must be in (0, 1], got {allocation!r}")
    if isinstance(arms, bool) or not isinstance(arms, int) or not 2 <= arms <= MAX_ARMS:
        raise ValueError(f"arms must be a whole number from 2 to {MAX_ARMS}, got {arms!r}")
    if treatment_share is None:
        exact_share = Fraction(1, arms)
        share = float(exact_share)
    else:
        share = check_open_unit("treatment_share", treatment_share)
        exact_share = _decimal(share)
        if exact_share * (arms - 1) >= 1:
            raise ValueError(
                f"treatment_share must leave users for the control: {arms - 1} treatment "
                f"arm(s) × {share!r} is not below 1"
            )
    level = check_alpha(alpha)
    target = check_open_unit("power", power)
    if target <= level:
        raise ValueError(f"power must be greater than alpha ({alpha!r}), got {power!r}")
    if not isinstance(two_sided, bool):
        raise ValueError(f"two_sided must be a bool, got {two_sided!r}")
    if not isinstance(sequential, bool):
        raise ValueError(f"sequential must be a bool, got {sequential!r}")
    tuning = _check_size("sequential_tuning_n", sequential_tuning_n)
    longest = None if max_days is None else _check_size("max_days", max_days)
    rho = _check_correlation(covariate_correlation)
    control_share = 1 - (arms - 1) * exact_share
    ratio = exact_share / control_share
    return _Inputs(
        metric_type=metric,
        baseline=baseline,
        std=std,
        effect_scale=scale,
        min_effect=effect,
        daily_traffic=traffic,
        allocation=share_of_traffic,
        arms=arms,
        treatment_share=share,
        power=target,
        alpha=level,
        two_sided=two_sided,
        sequential=sequential,
        sequential_tuning_n=tuning,
        max_days=longest,
        covariate_correlation=rho,
        variance_factor=1.0 if rho is None else variance_factor(rho),
        ratio=ratio,
        pair_share=ratio / (1 + ratio),
        daily_users=_decimal(traffic) * _decimal(share_of_traffic),
    )


def _inputs_of(plan: DurationPlan) -> _Inputs:
    # An equal split is kept as the exact 1/arms, not as its float.
    equal = plan.treatment_share == float(Fraction(1, plan.arms))
    relative = plan.effect_scale == "relative"
    return _validate(
        plan.metric_type,
        plan.baseline_rate,
        plan.baseline_mean,
        plan.standard_deviation,
        plan.min_relative_lift if relative else None,
        None if relative else plan.min_absolute_effect,
        plan.daily_traffic,
        plan.allocation,
        plan.arms,
        None if equal else plan.treatment_share,
        plan.power,
        plan.alpha,
        plan.two_sided,
        plan.sequential,
        plan.sequential_tuning_n,
        plan.max_days,
        plan.covariate_correlation,
    )


def _alternative(two_sided: bool, delta: float) -> Alternative:
    if two_sided:
        return "two-sided"
    return "greater" if delta > 0 else "less"


def _treatment_size(inputs: _Inputs, control: float | int) -> int:
    return math.ceil(inputs.ratio * Fraction(control))


def _total(inputs: _Inputs, control: int, treatment: int) -> int:
    return control + inputs.comparisons * treatment


def _days(inputs: _Inputs, total: int) -> int:
    return math.ceil(Fraction(total) / inputs.daily_users)


def _mode(inputs: _Inputs) -> str:
    return "sequential" if inputs.sequential else "fixed_horizon"


def _delta(inputs: _Inputs, effect: float) -> float:
    return _absolute(inputs.metric_type, inputs.baseline, inputs.effect_scale, effect)


def _unit_variance(inputs: _Inputs, effect: float) -> float:
    """``n · Var(θ̂_t − θ̂_c)`` of one comparison, ``n`` its two arms' users: the variance the
    sequential test uses (unpooled for rates), times ``1 − ρ²`` with CUPED."""
    share = float(inputs.pair_share)
    if inputs.metric_type == "continuous":
        assert inputs.std is not None
        variance = inputs.std**2 * (1.0 / (1.0 - share) + 1.0 / share)
    else:
        baseline = inputs.baseline
        rate = _shifted(inputs.metric_type, baseline, inputs.effect_scale, effect)
        variance = baseline * (1.0 - baseline) / (1.0 - share) + rate * (1.0 - rate) / share
    return variance * inputs.variance_factor if inputs.cuped else variance


def _figures(inputs: _Inputs, mode: str, exact_control: float) -> ModeFigures:
    control = math.ceil(exact_control)
    treatment = _treatment_size(inputs, exact_control)
    total = _total(inputs, control, treatment)
    return ModeFigures(mode, exact_control, control, treatment, total, _days(inputs, total))


def _fixed_size(inputs: _Inputs, effect: float) -> float:
    """The exact fixed-horizon control size, ``1 − ρ²`` times the unadjusted one with CUPED
    (both standard deviations of the formula scale by ``√(1 − ρ²)``)."""
    unadjusted = _unadjusted_fixed_size(inputs, effect)
    return unadjusted * inputs.variance_factor if inputs.cuped else unadjusted


def _unadjusted_fixed_size(inputs: _Inputs, effect: float) -> float:
    delta = _delta(inputs, effect)
    alternative = _alternative(inputs.two_sided, delta)
    if inputs.metric_type == "continuous":
        assert inputs.std is not None
        return sample_size_means(
            delta,
            inputs.std,
            alpha=inputs.alpha_per,
            power=inputs.power,
            ratio=float(inputs.ratio),
            alternative=alternative,
        )
    return sample_size_proportions(
        inputs.baseline,
        _shifted(inputs.metric_type, inputs.baseline, inputs.effect_scale, effect),
        alpha=inputs.alpha_per,
        power=inputs.power,
        ratio=float(inputs.ratio),
        alternative=alternative,
    )


def _sequential_figures(inputs: _Inputs, effect: float) -> ModeFigures:
    """The always-valid figures for detecting ``effect``."""
    pair_total = sequential_sample_size(
        _delta(inputs, effect),
        _unit_variance(inputs, effect),
        alpha=inputs.alpha,
        power=inputs.power,
        tuning_n=inputs.sequential_tuning_n,
        comparisons=inputs.comparisons,
    )
    exact_control = float(Fraction(pair_total) * (1 - inputs.pair_share))
    return _figures(inputs, "sequential", exact_control)


def _both(inputs: _Inputs, effect: float) -> tuple[ModeFigures, ModeFigures]:
    """(fixed-horizon, always-valid) figures for detecting ``effect``."""
    fixed = _figures(inputs, "fixed_horizon", _fixed_size(inputs, effect))
    return fixed, _sequential_figures(inputs, effect)


def _warnings(inputs: _Inputs, chosen: ModeFigures) -> tuple[PlanWarning, ...]:
    found: list[PlanWarning] = []
    if chosen.days > _A_YEAR:
        years = chosen.days / _A_YEAR
        remedies = "detect a larger effect" + (
            ", put more of the traffic in the experiment" if inputs.allocation < 1.0 else ""
        )
        remedies += ", or use fewer arms" if inputs.arms > 2 else ""
        found.append(
            PlanWarning(
                "longer_than_a_year",
                f"The plan needs {chosen.days:,} days (about {years:,.1f} years): {remedies}.",
            )
        )
    if inputs.max_days is not None and chosen.days > inputs.max_days:
        reached = math.floor(inputs.daily_users * inputs.max_days)
        found.append(
            PlanWarning(
                "traffic_cannot_reach",
                f"In {inputs.max_days:,} days the traffic brings {reached:,} of the "
                f"{chosen.total_samples:,} users the test needs.",
            )
        )
    return tuple(found)


def _unadjusted(inputs: _Inputs, effect: float) -> ModeFigures | None:
    """The plan's mode's figures without CUPED, or ``None`` when the plan has none."""
    if not inputs.cuped:
        return None
    plain = replace(inputs, variance_factor=1.0)
    if inputs.sequential:
        return _sequential_figures(plain, effect)
    return _figures(plain, "fixed_horizon", _fixed_size(plain, effect))


def _plan(inputs: _Inputs, effect: float) -> DurationPlan:
    fixed, always_valid = _both(inputs, effect)
    chosen = always_valid if inputs.sequential else fixed
    binary = inputs.metric_type == "binary"
    delta = _delta(inputs, effect)
    shifted = _shifted(inputs.metric_type, inputs.baseline, inputs.effect_scale, effect)
    return DurationPlan(
        metric_type=inputs.metric_type,
        baseline_rate=inputs.baseline if binary else None,
        baseline_mean=None if binary else inputs.baseline,
        standard_deviation=inputs.std,
        effect_scale=inputs.effect_scale,
        min_relative_lift=effect
        if inputs.effect_scale == "relative"
        else _relative(inputs.baseline, delta),
        min_absolute_effect=delta,
        daily_traffic=inputs.daily_traffic,
        allocation=inputs.allocation,
        arms=inputs.arms,
        comparisons=inputs.comparisons,
        treatment_share=inputs.treatment_share,
        power=inputs.power,
        alpha=inputs.alpha,
        alpha_per_comparison=inputs.alpha_per,
        two_sided=inputs.two_sided,
        sequential=inputs.sequential,
        sequential_tuning_n=inputs.sequential_tuning_n,
        max_days=inputs.max_days,
        mode=_mode(inputs),
        treatment_rate=shifted if binary else None,
        treatment_mean=None if binary else shifted,
        exact_control_samples=chosen.exact_control_samples,
        control_samples=chosen.control_samples,
        treatment_samples=chosen.treatment_samples,
        total_samples=chosen.total_samples,
        days=chosen.days,
        daily_users_in_test=float(inputs.daily_users),
        fixed_horizon=fixed,
        always_valid=always_valid,
        covariate_correlation=inputs.covariate_correlation,
        variance_factor=inputs.variance_factor,
        unadjusted=_unadjusted(inputs, effect),
        warnings=_warnings(inputs, chosen),
    )


def _effects(inputs: _Inputs, lifts: Sequence[float] | None) -> tuple[float, ...]:
    """Explicit effects, each validated, or the default range around the planned one."""
    metric, baseline, scale = inputs.metric_type, inputs.baseline, inputs.effect_scale
    if lifts is not None:
        chosen = tuple(
            _check_effect(f"lifts[{i}]", lift, metric, baseline, scale)
            for i, lift in enumerate(lifts)
        )
        if not chosen:
            raise ValueError("lifts must not be empty")
        return chosen
    result: list[float] = []
    for factor in _LIFT_FACTORS:
        effect = float(factor * _decimal(inputs.min_effect))
        shifted = _shifted(metric, baseline, scale, effect)
        if shifted != baseline and (metric == "continuous" or 0.0 < shifted < 1.0):
            result.append(effect)
    return tuple(result)


def _effect_of(plan: DurationPlan) -> float:
    if plan.effect_scale == "relative":
        assert plan.min_relative_lift is not None
        return plan.min_relative_lift
    return plan.min_absolute_effect


def plan_duration(
    baseline_rate: float | None,
    min_relative_lift: float | None,
    daily_traffic: float,
    allocation: float = 1.0,
    treatment_share: float | None = None,
    power: float = 0.8,
    alpha: float = 0.05,
    two_sided: bool = True,
    sequential: bool = True,
    sequential_tuning_n: int = DEFAULT_TUNING_N,
    *,
    metric_type: str = "binary",
    baseline_mean: float | None = None,
    standard_deviation: float | None = None,
    min_absolute_effect: float | None = None,
    arms: int = 2,
    max_days: int | None = None,
    covariate_correlation: float | None = None,
) -> DurationPlan:
    r"""Users per arm and days needed to detect an effect on a rate or a mean.

    Parameters
    ----------
    baseline_rate : float or None
        Control conversion rate ``p`` in (0, 1), for ``metric_type="binary"`` (else ``None``).
    min_relative_lift : float or None
        Smallest relative change worth detecting, ``L`` (0.05 is +5%); nonzero, with
        ``p(1 + L)`` in (0, 1) for a rate. Negative lifts plan for detecting a decrease.
        Give this or ``min_absolute_effect``.
    daily_traffic : float
        Eligible users per day, greater than zero.
    allocation : float, default 1.0
        Fraction of the traffic that enters the experiment, in (0, 1].
    treatment_share : float, optional
        Fraction of the experiment's users in *each* treatment arm, ``s``; the control gets
        ``1 − (arms − 1) s``, which must be positive. By default ``1/arms`` (an equal split).
    power : float, default 0.8
        Target power of each comparison, in (alpha, 1).
    alpha : float, default 0.05
        Family-wise significance level in (0, 1), split over the comparisons.
    two_sided : bool, default True
        Two-sided fixed-horizon test; ``False`` tests only in the direction of the effect.
        The sequential test is always two-sided.
    sequential : bool, default True
        Plan for the always-valid sequential test, which a new experiment runs by default;
        ``False`` plans for the fixed-horizon test, read once. Both are in the result.
    sequential_tuning_n : int, default 5000
        The sequential test's ``tuning_n``, as in
        :class:`~abscope.stats.analysis.AnalysisOptions`.
    metric_type : {"binary", "continuous"}, default "binary"
        A conversion rate, or a mean.
    baseline_mean, standard_deviation : float, optional
        The control's mean and the standard deviation of one user's value (assumed the same
        in every arm), for ``metric_type="continuous"``.
    min_absolute_effect : float, optional
        The smallest absolute change worth detecting: a difference of rates (0.01 is one
        percentage point) or of means. Give this or ``min_relative_lift``.
    arms : int, default 2
        Control plus treatments, 2 to :data:`MAX_ARMS`.
    max_days : int, optional
        The longest the experiment can run; a plan that needs longer has a
        ``"traffic_cannot_reach"`` warning.
    covariate_correlation : float, optional
        CUPED: the expected correlation ``ρ`` in [0, 1) of the metric with a covariate
        measured before exposure (typically the same metric over a pre-period, e.g. the
        last 28 days: estimate it from past data). Every outcome variance is multiplied by
        ``1 − ρ²``; the plan's figures are for the adjusted test and ``unadjusted`` keeps
        the plan without it. ``None`` or 0: no CUPED (the same plan as without).

    Returns
    -------
    DurationPlan

    Raises
    ------
    ValueError
        If an argument is invalid; the message starts with the argument's name.

    Notes
    -----
    With ``m = arms − 1``, ``α' = α/m``, ``r = s/(1 − m s)`` and the treatment rate ``p_t``,
    the exact control size of a rate is

    .. math::

        n_c = \frac{\left(z_{1-α''}\sqrt{p̄ q̄ (1 + 1/r)} + z_{1-β}\sqrt{p q + p_t q_t / r}\right)^2}
                   {(p_t - p)^2}, \qquad p̄ = \frac{p + r p_t}{1 + r}

    (``α'' = α'/2`` two-sided) for the fixed-horizon test, and of a mean
    ``n_c = (z_{1-α''} + z_{1-β})^2 σ^2 (1 + 1/r) / δ^2``. For the sequential test the pair
    total ``n`` solves ``Φ(δ√n/σ_1 − c(n)) + Φ(−δ√n/σ_1 − c(n)) = power`` with
    ``σ_1² = p q/(1 − s') + p_t q_t/s'`` (or ``σ²/(1 − s') + σ²/s'``), ``s' = r/(1 + r)``
    and ``c(n)`` the always-valid boundary at ``α'``
    (:func:`~abscope.stats.sequential_power.sequential_sample_size`), and ``n_c = (1 − s') n``.
    With CUPED every variance above (``p q``, ``p̄ q̄``, ``p_t q_t``, ``σ²``) is multiplied by
    ``1 − ρ²`` (Deng et al., 2013), so the fixed-horizon ``n_c`` is ``1 − ρ²`` times the
    unadjusted one. Then ``control = ⌈n_c⌉``, ``treatment = ⌈r n_c⌉`` per arm,
    ``total = control + m · treatment`` and ``days = ⌈total / (daily_traffic · allocation)⌉``,
    all computed exactly (see the module docstring).

    The sequential test may be read every day and stopped at the first significant look. The
    plan's power is its chance of being significant when read at the planned total; earlier
    looks only add chances to stop sooner (the error rate stays ``alpha``), so it is a lower
    bound on the share of experiments that have called a winner by then.

    References
    ----------
    .. [1] R Core Team, ``power.prop.test``, package *stats*.
    .. [2] statsmodels, ``statsmodels.stats.power.NormalIndPower.solve_power``.
    .. [3] R. Kohavi, D. Tang, Y. Xu, *Trustworthy Online Controlled Experiments*, Cambridge
       University Press, 2020, chapter 17 (statistics behind online experiments).
    .. [4] A. Deng, Y. Xu, R. Kohavi and T. Walker, "Improving the sensitivity of online
       controlled experiments by utilizing pre-experiment data", WSDM 2013 (CUPED).

    Examples
    --------
    >>> plan = plan_duration(0.2, 0.25, daily_traffic=200, sequential=False)
    >>> plan.treatment_rate, plan.control_samples, plan.total_samples, plan.days
    (0.25, 1094, 2188, 11)
    >>> plan = plan_duration(0.2, 0.25, daily_traffic=200)  # always-valid, as by default
    >>> plan.mode, plan.control_samples, plan.days, plan.fixed_horizon.days
    ('sequential', 2093, 21, 11)
    >>> plan = plan_duration(0.2, None, 200, min_absolute_effect=0.05, sequential=False)
    >>> plan.min_relative_lift, plan.control_samples
    (0.25, 1094)
    >>> three = plan_duration(0.2, 0.25, 200, arms=3, sequential=False)
    >>> three.alpha_per_comparison, three.control_samples, three.total_samples
    (0.025, 1325, 3975)
    >>> plan = plan_duration(None, None, 1000, metric_type="continuous", baseline_mean=10.0,
    ...                      standard_deviation=4.0, min_absolute_effect=1.0, sequential=False)
    >>> plan.treatment_mean, plan.control_samples, plan.days
    (11.0, 252, 1)
    >>> cuped = plan_duration(0.2, 0.25, 200, sequential=False, covariate_correlation=0.7)
    >>> cuped.variance_factor, cuped.control_samples, cuped.days, cuped.unadjusted.days
    (0.51, 558, 6, 11)
    """
    inputs = _validate(
        metric_type,
        baseline_rate,
        baseline_mean,
        standard_deviation,
        min_relative_lift,
        min_absolute_effect,
        daily_traffic,
        allocation,
        arms,
        treatment_share,
        power,
        alpha,
        two_sided,
        sequential,
        sequential_tuning_n,
        max_days,
        covariate_correlation,
    )
    return _plan(inputs, inputs.min_effect)


def sensitivity_curve(
    plan: DurationPlan,
    *,
    lifts: Sequence[float] | None = None,
) -> SensitivityCurve:
    """Users and days needed as the effect to detect varies: the planner's sensitivity chart.

    Parameters
    ----------
    plan : DurationPlan
        The plan from :func:`plan_duration`; its inputs set the baseline, arms, split,
        traffic, power, alpha and sidedness.
    lifts : sequence of float, optional
        Effects to evaluate on the plan's scale (relative lifts, or absolute effects when the
        plan was given ``min_absolute_effect``), each valid as the plan's effect would be (an
        invalid one raises, naming ``lifts[i]``). By default 26 effects from 0.5× to 3× the
        plan's in steps of 0.1×, leaving out any that would push a rate outside (0, 1).

    Returns
    -------
    SensitivityCurve

    Notes
    -----
    Each point is :func:`plan_duration` at that effect, with the same rounding and mode. Fewer
    users are needed to detect bigger effects, roughly as ``1/δ²``.

    Examples
    --------
    >>> curve = sensitivity_curve(plan_duration(0.1, 0.1, daily_traffic=1000, sequential=False))
    >>> len(curve.lifts), curve.lifts[5], curve.days[5], curve.always_valid_days[5]
    (26, 0.1, 30, 64)
    """
    inputs = _inputs_of(plan)
    plans = [_plan(inputs, effect) for effect in _effects(inputs, lifts)]
    binary = inputs.metric_type == "binary"
    return SensitivityCurve(
        mode=_mode(inputs),
        metric_type=inputs.metric_type,
        effect_scale=inputs.effect_scale,
        baseline_rate=plan.baseline_rate,
        baseline_mean=plan.baseline_mean,
        min_relative_lift=plan.min_relative_lift,
        min_effect=inputs.min_effect,
        daily_users_in_test=float(inputs.daily_users),
        effects=tuple(_effect_of(p) for p in plans),
        lifts=tuple(p.min_relative_lift for p in plans),
        absolute_effects=tuple(p.min_absolute_effect for p in plans),
        treatment_rates=tuple(p.treatment_rate for p in plans if p.treatment_rate is not None)
        if binary
        else None,
        control_samples=tuple(p.control_samples for p in plans),
        treatment_samples=tuple(p.treatment_samples for p in plans),
        total_samples=tuple(p.total_samples for p in plans),
        days=tuple(p.days for p in plans),
        fixed_horizon_days=tuple(p.fixed_horizon.days for p in plans),
        always_valid_days=tuple(p.always_valid.days for p in plans),
        covariate_correlation=inputs.covariate_correlation,
        unadjusted_days=tuple(p.unadjusted.days for p in plans if p.unadjusted is not None)
        if inputs.cuped
        else None,
    )


def _fixed_power(inputs: _Inputs, effect: float, n_c: int, n_t: int) -> float:
    """The fixed-horizon power; with CUPED every variance is ``(1 − ρ²)`` times smaller,
    which is the unadjusted test's power with ``1/(1 − ρ²)`` times the users."""
    delta = _delta(inputs, effect)
    alternative = _alternative(inputs.two_sided, delta)
    factor = inputs.variance_factor if inputs.cuped else 1.0
    control, treatment = (n_c / factor, n_t / factor) if inputs.cuped else (n_c, n_t)
    if inputs.metric_type == "continuous":
        assert inputs.std is not None
        return power_means(
            delta, inputs.std, control, treatment, alpha=inputs.alpha_per, alternative=alternative
        )
    return power_proportions(
        inputs.baseline,
        _shifted(inputs.metric_type, inputs.baseline, inputs.effect_scale, effect),
        control,
        treatment,
        alpha=inputs.alpha_per,
        alternative=alternative,
    )


def power_grid(
    plan: DurationPlan,
    *,
    sample_sizes: Sequence[int] | None = None,
    lifts: Sequence[float] | None = None,
) -> PowerGrid:
    """Power over control sample size × effect: the planner's power heatmap.

    Parameters
    ----------
    plan : DurationPlan
        The plan from :func:`plan_duration`; its inputs set the baseline, arms, split,
        traffic, power, alpha and sidedness.
    sample_sizes : sequence of int, optional
        Control users, whole numbers of at least 1 (returned sorted, without duplicates). By
        default 0.1× to 2× the plan's ``control_samples`` in steps of 0.1×, rounded up; the
        plan's own size is among them.
    lifts : sequence of float, optional
        As in :func:`sensitivity_curve`, with the same default.

    Returns
    -------
    PowerGrid

    Notes
    -----
    Each treatment arm of a control size ``n`` holds ``⌈r n⌉`` users. The power is that of
    one comparison at ``alpha / (arms − 1)``: for a sequential plan
    :func:`abscope.stats.sequential_power.sequential_power` at the pair total, with the
    plan's tuning (and the fixed-horizon table is alongside); otherwise
    :func:`abscope.stats.power.power_proportions` or :func:`~abscope.stats.power.power_means`
    with the plan's sidedness (one-sided tests look in the direction of each effect). At the
    plan's control size and effect the power is at least the target.

    Examples
    --------
    >>> grid = power_grid(plan_duration(0.2, 0.25, daily_traffic=200, sequential=False))
    >>> column = grid.sample_sizes.index(1094)
    >>> row = grid.lifts.index(0.25)
    >>> round(grid.power[row][column], 3)
    0.8
    """
    inputs = _inputs_of(plan)
    chosen = _effects(inputs, lifts)
    if sample_sizes is None:
        planned = _plan(inputs, inputs.min_effect).control_samples
        sizes = sorted({max(1, math.ceil(f * planned)) for f in _SIZE_FACTORS})
    else:
        sizes = sorted({_check_size(f"sample_sizes[{i}]", n) for i, n in enumerate(sample_sizes)})
        if not sizes:
            raise ValueError("sample_sizes must not be empty")
    treatments = [_treatment_size(inputs, n) for n in sizes]
    pairs = list(zip(sizes, treatments, strict=True))
    fixed = tuple(
        tuple(_fixed_power(inputs, effect, n_c, n_t) for n_c, n_t in pairs) for effect in chosen
    )
    table = fixed
    if inputs.sequential:
        table = tuple(
            tuple(
                sequential_power(
                    _delta(inputs, effect),
                    _unit_variance(inputs, effect),
                    n_c + n_t,
                    alpha=inputs.alpha,
                    tuning_n=inputs.sequential_tuning_n,
                    comparisons=inputs.comparisons,
                )
                for n_c, n_t in pairs
            )
            for effect in chosen
        )
    return PowerGrid(
        mode=_mode(inputs),
        metric_type=inputs.metric_type,
        effect_scale=inputs.effect_scale,
        baseline_rate=plan.baseline_rate,
        baseline_mean=plan.baseline_mean,
        min_relative_lift=plan.min_relative_lift,
        min_effect=inputs.min_effect,
        arms=inputs.arms,
        treatment_share=inputs.treatment_share,
        alpha=inputs.alpha,
        alpha_per_comparison=inputs.alpha_per,
        two_sided=inputs.two_sided,
        sequential_tuning_n=inputs.sequential_tuning_n,
        target_power=inputs.power,
        sample_sizes=tuple(sizes),
        treatment_sample_sizes=tuple(treatments),
        days=tuple(_days(inputs, _total(inputs, n_c, n_t)) for n_c, n_t in pairs),
        effects=chosen,
        lifts=chosen
        if inputs.effect_scale == "relative"
        else tuple(_relative(inputs.baseline, e) for e in chosen),
        power=table,
        fixed_horizon_power=fixed if inputs.sequential else None,
        covariate_correlation=inputs.covariate_correlation,
    )
