"""The planner's typed results: :class:`DurationPlan` and the numbers behind its two charts.

:func:`abscope.stats.planner.plan_duration` builds a :class:`DurationPlan`,
:func:`~abscope.stats.planner.sensitivity_curve` a :class:`SensitivityCurve` and
:func:`~abscope.stats.planner.power_grid` a :class:`PowerGrid`; every one is a frozen
dataclass of plain values (floats, ints, strings and tuples), which
:func:`abscope.jsonable.to_jsonable` turns into the JSON of ``POST /calculate``, whose
response model is generated from :class:`DurationPlan`'s fields. The units, rounding and
formulas are described in :mod:`abscope.stats.planner`, which re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DurationPlan", "ModeFigures", "PlanWarning", "PowerGrid", "SensitivityCurve"]


@dataclass(frozen=True, slots=True)
class ModeFigures:
    """Users and days for one of the two tests; both are part of every :class:`DurationPlan`.

    Attributes
    ----------
    mode : {"sequential", "fixed_horizon"}
        The test these figures are for.
    exact_control_samples : float
        Unrounded control size.
    control_samples, treatment_samples : int
        Users in the control and in *each* treatment arm, rounded up.
    total_samples : int
        ``control_samples + (arms − 1) · treatment_samples``.
    days : int
        Whole days needed to collect ``total_samples`` users.
    """

    mode: str
    exact_control_samples: float
    control_samples: int
    treatment_samples: int
    total_samples: int
    days: int


@dataclass(frozen=True, slots=True)
class PlanWarning:
    """Something the plan's reader should know before starting.

    Attributes
    ----------
    code : {"longer_than_a_year", "traffic_cannot_reach"}
        What is wrong (see the module docstring).
    message : str
        The same in words.
    """

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class DurationPlan:
    """Users and days an experiment needs; built by :func:`plan_duration`.

    Attributes
    ----------
    metric_type, baseline_rate, baseline_mean, standard_deviation, daily_traffic, allocation,
    arms, treatment_share, power, alpha, two_sided, sequential, sequential_tuning_n, max_days
        The inputs after validation (``baseline_rate`` is ``None`` for a continuous metric,
        ``baseline_mean`` and ``standard_deviation`` for a binary one); ``treatment_share``
        is the share of each treatment arm, ``1/arms`` when not given.
    effect_scale : {"relative", "absolute"}
        Which of the two effects was given.
    min_relative_lift : float or None
        The relative effect ``δ / baseline``; ``None`` only for a continuous metric whose
        baseline mean is 0 (a relative change of 0 is undefined).
    min_absolute_effect : float
        The absolute effect ``δ`` (a difference of rates or of means).
    comparisons : int
        ``arms − 1`` treatments compared with the control.
    alpha_per_comparison : float
        ``alpha / comparisons``, the level each comparison is sized at (see the module
        docstring).
    mode : {"sequential", "fixed_horizon"}
        The test the headline figures below are for: ``"sequential"`` when ``sequential``.
    treatment_rate, treatment_mean : float or None
        The rate (binary) or mean (continuous) the test is powered to detect; the other is
        ``None``.
    exact_control_samples : float
        Unrounded control size from the sample-size formula.
    control_samples, treatment_samples : int
        Users in the control and in each treatment arm, rounded up.
    total_samples : int
        All arms' users.
    days : int
        Whole days needed to collect ``total_samples`` users.
    daily_users_in_test : float
        ``daily_traffic · allocation``, the users entering the experiment each day.
    fixed_horizon, always_valid : ModeFigures
        Both tests' figures; the headline ones equal one of them (``always_valid`` when
        ``sequential``).
    covariate_correlation : float or None
        The expected correlation ``ρ`` of the metric with its pre-exposure covariate (CUPED),
        in [0, 1); ``None`` when not given. Every figure above (headline, ``fixed_horizon``,
        ``always_valid``) is then for the CUPED-adjusted test.
    variance_factor : float
        ``1 − ρ²``, the share of each user's outcome variance left after the adjustment
        (1.0 without a correlation).
    unadjusted : ModeFigures or None
        The headline mode's figures without CUPED (``ρ = 0``), to set beside the shorter
        adjusted ones; ``None`` when ``ρ`` is ``None`` or 0.
    warnings : tuple of PlanWarning
        Empty when the plan is reasonable.
    """

    metric_type: str
    baseline_rate: float | None
    baseline_mean: float | None
    standard_deviation: float | None
    effect_scale: str
    min_relative_lift: float | None
    min_absolute_effect: float
    daily_traffic: float
    allocation: float
    arms: int
    comparisons: int
    treatment_share: float
    power: float
    alpha: float
    alpha_per_comparison: float
    two_sided: bool
    sequential: bool
    sequential_tuning_n: int
    max_days: int | None
    mode: str
    treatment_rate: float | None
    treatment_mean: float | None
    exact_control_samples: float
    control_samples: int
    treatment_samples: int
    total_samples: int
    days: int
    daily_users_in_test: float
    fixed_horizon: ModeFigures
    always_valid: ModeFigures
    covariate_correlation: float | None
    variance_factor: float
    unadjusted: ModeFigures | None
    warnings: tuple[PlanWarning, ...]


@dataclass(frozen=True, slots=True)
class SensitivityCurve:
    """Sample size and duration over a range of effects; built by :func:`sensitivity_curve`.

    All tuples have one entry per effect in ``effects``; the headline tuples are for the plan's
    ``mode``, and ``fixed_horizon_days`` / ``always_valid_days`` give both.

    Attributes
    ----------
    mode : {"sequential", "fixed_horizon"}
        The test the headline figures are for.
    metric_type, effect_scale : str
        As in :class:`DurationPlan`.
    baseline_rate, baseline_mean : float or None
        The plan's baseline (one of the two).
    min_relative_lift : float or None
        The plan's relative effect.
    min_effect : float
        The plan's effect on its own scale (the curve passes through it when the default
        range is used).
    daily_users_in_test : float
        ``daily_traffic · allocation``.
    effects : tuple of float
        Effects on the plan's scale, ordered as given (default: by increasing ``|effect|``).
    lifts : tuple of float or None
        The same effects, relative (``None`` where undefined, see :class:`DurationPlan`).
    absolute_effects : tuple of float
        The same effects, absolute.
    treatment_rates : tuple of float, or None
        ``baseline_rate + δ`` for a binary metric, else ``None``.
    control_samples, treatment_samples, total_samples, days : tuple of int
        As in :class:`DurationPlan`, for each effect.
    fixed_horizon_days, always_valid_days : tuple of int
        Days for each effect with either test.
    covariate_correlation : float or None
        The plan's ``ρ``: every figure above is CUPED-adjusted when it is given.
    unadjusted_days : tuple of int, or None
        Days for each effect in the plan's mode without CUPED; ``None`` without a ``ρ``
        above 0.
    """

    mode: str
    metric_type: str
    effect_scale: str
    baseline_rate: float | None
    baseline_mean: float | None
    min_relative_lift: float | None
    min_effect: float
    daily_users_in_test: float
    effects: tuple[float, ...]
    lifts: tuple[float | None, ...]
    absolute_effects: tuple[float, ...]
    treatment_rates: tuple[float, ...] | None
    control_samples: tuple[int, ...]
    treatment_samples: tuple[int, ...]
    total_samples: tuple[int, ...]
    days: tuple[int, ...]
    fixed_horizon_days: tuple[int, ...]
    always_valid_days: tuple[int, ...]
    covariate_correlation: float | None
    unadjusted_days: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class PowerGrid:
    """Power over control sample size × effect; built by :func:`power_grid`.

    Attributes
    ----------
    mode : {"sequential", "fixed_horizon"}
        The test whose power ``power`` holds (the plan's); ``fixed_horizon_power`` holds the
        fixed-horizon test's when the mode is sequential, else ``None``.
    metric_type, effect_scale, baseline_rate, baseline_mean, min_relative_lift, arms,
    treatment_share, alpha, alpha_per_comparison, two_sided, sequential_tuning_n
        The plan's.
    min_effect : float
        The plan's effect on its own scale.
    target_power : float
        The plan's ``power``, for drawing a contour.
    sample_sizes : tuple of int
        Control users (the x axis), increasing.
    treatment_sample_sizes : tuple of int
        ``⌈r · n⌉`` users in each treatment arm for each control size.
    days : tuple of int
        Days needed to collect all arms at each control size.
    effects : tuple of float
        Effects on the plan's scale (the y axis).
    lifts : tuple of float or None
        The same effects, relative.
    power : tuple of tuple of float
        ``power[i][j]`` is the power of one comparison at ``effects[i]`` and
        ``sample_sizes[j]``: one row per effect, the layout of a heatmap's ``z``.
    fixed_horizon_power : tuple of tuple of float, or None
        The same table for the fixed-horizon test, when ``mode`` is ``"sequential"``.
    covariate_correlation : float or None
        The plan's ``ρ``: the powers are those of the CUPED-adjusted test when it is given.
    """

    mode: str
    metric_type: str
    effect_scale: str
    baseline_rate: float | None
    baseline_mean: float | None
    min_relative_lift: float | None
    min_effect: float
    arms: int
    treatment_share: float
    alpha: float
    alpha_per_comparison: float
    two_sided: bool
    sequential_tuning_n: int
    target_power: float
    sample_sizes: tuple[int, ...]
    treatment_sample_sizes: tuple[int, ...]
    days: tuple[int, ...]
    effects: tuple[float, ...]
    lifts: tuple[float | None, ...]
    power: tuple[tuple[float, ...], ...]
    fixed_horizon_power: tuple[tuple[float, ...], ...] | None
    covariate_correlation: float | None
