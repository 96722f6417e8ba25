"""Experiment planning: how many users, and how many days, a conversion test needs.

:func:`plan_duration` turns a baseline conversion rate, the smallest relative lift worth
detecting and the daily traffic into a :class:`DurationPlan`: users per arm and days to run.
:func:`sensitivity_curve` and :func:`power_grid` return the numbers behind the planner's charts
(days against lift; power against sample size and lift) as plain tuples, leaving the drawing to
:mod:`abscope.charts`.

Two tests can decide an experiment, and a plan is for the one that will. Experiments are
sequential by default (:mod:`abscope.stats.sequential`: an always-valid mSPRT that may be read
every day), so ``sequential=True`` is the default here too, with the analysis' tuning
(``sequential_tuning_n``, 5000 as :class:`~abscope.stats.analysis.AnalysisOptions`). Its size
comes from :func:`abscope.stats.sequential_power.sequential_sample_size`: the total at which the
always-valid test of the difference of rates, read at that total, rejects with the target
power. Every plan also carries both modes' figures, ``fixed_horizon`` and ``always_valid``
(:class:`ModeFigures`), so the price of peeking is visible next to the plan.

The fixed-horizon size comes from :func:`abscope.stats.power.sample_size_proportions` (pooled
z-test, R's ``power.prop.test`` convention, ``strict=False``) with ``ratio = s/(1 − s)`` for a
treatment share ``s``. A one-sided plan (``two_sided=False``) tests in the direction of the lift,
so a negative lift plans for detecting a decrease; the sequential test is always two-sided, so
``two_sided`` changes only the fixed-horizon figures.

Rounding
--------
Users are whole, and so are days, so every count is rounded *up*, and only once, from exact
values:

* ``control_samples = ⌈n_c⌉`` where ``n_c`` is the exact control size (for the sequential
  test, ``n_c = (1 − s) n`` of the exact total ``n``);
* ``treatment_samples = ⌈r·n_c⌉``, the product taken in rational arithmetic;
* ``days = ⌈(control_samples + treatment_samples) / (daily_traffic · allocation)⌉``.

Float inputs such as ``allocation = 0.3`` stand for the decimal the user typed, so they are read
as the shortest decimal that round-trips (``Fraction(repr(x))``) and the divisions above are done
exactly with :class:`fractions.Fraction`. Binary floating point would otherwise turn an exact
``25`` days into ``25.000000000000004`` and plan a 26th day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from abscope.stats._types import Alternative
from abscope.stats._validate import (
    check_alpha,
    check_count,
    check_finite,
    check_open_unit,
    check_positive,
)
from abscope.stats.power import power_proportions, sample_size_proportions
from abscope.stats.sequential import DEFAULT_TUNING_N
from abscope.stats.sequential_power import sequential_power, sequential_sample_size

__all__ = [
    "DurationPlan",
    "ModeFigures",
    "PowerGrid",
    "SensitivityCurve",
    "plan_duration",
    "power_grid",
    "sensitivity_curve",
]

# Default chart ranges, as multiples of the planned lift or the planned control size.
_LIFT_FACTORS = tuple(Fraction(k, 10) for k in range(5, 31))  # 0.5x .. 3x, 26 points
_SIZE_FACTORS = tuple(Fraction(k, 10) for k in range(1, 21))  # 0.1x .. 2x, 20 points


@dataclass(frozen=True, slots=True)
class ModeFigures:
    """Users and days for one of the two tests; both are part of every :class:`DurationPlan`.

    Attributes
    ----------
    mode : {"sequential", "fixed_horizon"}
        The test these figures are for.
    exact_control_samples : float
        Unrounded control size.
    control_samples, treatment_samples, total_samples : int
        Users per arm, rounded up, and their sum.
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
class DurationPlan:
    """Users and days a conversion-rate experiment needs; built by :func:`plan_duration`.

    Attributes
    ----------
    baseline_rate, min_relative_lift, daily_traffic, allocation, treatment_share, power, alpha,
    two_sided, sequential, sequential_tuning_n
        The inputs, as given (after validation).
    mode : {"sequential", "fixed_horizon"}
        The test the headline figures below are for: ``"sequential"`` when ``sequential``.
    treatment_rate : float
        ``baseline_rate · (1 + min_relative_lift)``, the rate the test is powered to detect.
    exact_control_samples : float
        Unrounded control size from the sample-size formula.
    control_samples, treatment_samples, total_samples : int
        Users per arm, rounded up, and their sum.
    days : int
        Whole days needed to collect ``total_samples`` users.
    daily_users_in_test : float
        ``daily_traffic · allocation``, the users entering the experiment each day.
    fixed_horizon, always_valid : ModeFigures
        Both tests' figures; the headline ones equal one of them (``always_valid`` when
        ``sequential``).
    """

    baseline_rate: float
    min_relative_lift: float
    daily_traffic: float
    allocation: float
    treatment_share: float
    power: float
    alpha: float
    two_sided: bool
    sequential: bool
    sequential_tuning_n: int
    mode: str
    treatment_rate: float
    exact_control_samples: float
    control_samples: int
    treatment_samples: int
    total_samples: int
    days: int
    daily_users_in_test: float
    fixed_horizon: ModeFigures
    always_valid: ModeFigures


@dataclass(frozen=True, slots=True)
class SensitivityCurve:
    """Sample size and duration over a range of lifts; built by :func:`sensitivity_curve`.

    All tuples have one entry per lift in ``lifts``; the headline tuples are for the plan's
    ``mode``, and ``fixed_horizon_days`` / ``always_valid_days`` give both.

    Attributes
    ----------
    mode : {"sequential", "fixed_horizon"}
        The test the headline figures are for.
    baseline_rate, min_relative_lift : float
        The plan's baseline and chosen lift (the curve passes through the chosen lift when the
        default range is used).
    daily_users_in_test : float
        ``daily_traffic · allocation``.
    lifts : tuple of float
        Relative lifts, ordered as given (default: by increasing ``|lift|``).
    treatment_rates : tuple of float
        ``baseline_rate · (1 + lift)``.
    control_samples, treatment_samples, total_samples, days : tuple of int
        As in :class:`DurationPlan`, for each lift.
    fixed_horizon_days, always_valid_days : tuple of int
        Days for each lift with either test.
    """

    mode: str
    baseline_rate: float
    min_relative_lift: float
    daily_users_in_test: float
    lifts: tuple[float, ...]
    treatment_rates: tuple[float, ...]
    control_samples: tuple[int, ...]
    treatment_samples: tuple[int, ...]
    total_samples: tuple[int, ...]
    days: tuple[int, ...]
    fixed_horizon_days: tuple[int, ...]
    always_valid_days: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PowerGrid:
    """Power over control sample size × relative lift; built by :func:`power_grid`.

    Attributes
    ----------
    mode : {"sequential", "fixed_horizon"}
        The test whose power ``power`` holds (the plan's); ``fixed_horizon_power`` holds the
        fixed-horizon test's when the mode is sequential, else ``None``.
    baseline_rate, min_relative_lift, treatment_share, alpha, two_sided, sequential_tuning_n
        The plan's inputs.
    target_power : float
        The plan's ``power``, for drawing a contour.
    sample_sizes : tuple of int
        Control users per arm (the x axis), increasing.
    treatment_sample_sizes : tuple of int
        ``⌈r · n⌉`` treatment users for each control size.
    days : tuple of int
        Days needed to collect each pair of arm sizes.
    lifts : tuple of float
        Relative lifts (the y axis).
    power : tuple of tuple of float
        ``power[i][j]`` is the power at ``lifts[i]`` and ``sample_sizes[j]``: one row per lift,
        the layout of a heatmap's ``z``.
    fixed_horizon_power : tuple of tuple of float, or None
        The same table for the fixed-horizon test, when ``mode`` is ``"sequential"``.
    """

    mode: str
    baseline_rate: float
    min_relative_lift: float
    treatment_share: float
    alpha: float
    two_sided: bool
    sequential_tuning_n: int
    target_power: float
    sample_sizes: tuple[int, ...]
    treatment_sample_sizes: tuple[int, ...]
    days: tuple[int, ...]
    lifts: tuple[float, ...]
    power: tuple[tuple[float, ...], ...]
    fixed_horizon_power: tuple[tuple[float, ...], ...] | None


@dataclass(frozen=True, slots=True)
class _Inputs:
    baseline_rate: float
    min_relative_lift: float
    daily_traffic: float
    allocation: float
    treatment_share: float
    power: float
    alpha: float
    two_sided: bool
    sequential: bool
    sequential_tuning_n: int
    ratio: Fraction  # n_treatment / n_control, exactly
    share: Fraction  # n_treatment / n, exactly
    daily_users: Fraction  # daily_traffic · allocation, exactly


def _decimal(value: float) -> Fraction:
    """The shortest decimal that round-trips to ``value``, as an exact fraction."""
    return Fraction(repr(float(value)))


def _shifted_rate(baseline_rate: float, lift: float) -> float:
    return baseline_rate * (1.0 + lift)


def _check_lift(name: str, lift: float, baseline_rate: float) -> float:
    value = check_finite(name, lift)
    if value == 0.0:
        raise ValueError(f"{name} must be nonzero: a zero lift needs infinite samples")
    rate = _shifted_rate(baseline_rate, value)
    if not 0.0 < rate < 1.0:
        raise ValueError(
            f"{name} must keep the treatment rate in (0, 1): baseline_rate {baseline_rate!r} "
            f"× (1 + {value!r}) = {rate!r}"
        )
    if rate == baseline_rate:
        raise ValueError(f"{name} {value!r} is too small to change baseline_rate {baseline_rate!r}")
    return value


def _check_size(name: str, value: int) -> int:
    size = check_count(name, value)
    if size < 1:
        raise ValueError(f"{name} must be at least 1, got {value!r}")
    return size


def _validate(
    baseline_rate: float,
    min_relative_lift: float,
    daily_traffic: float,
    allocation: float,
    treatment_share: float,
    power: float,
    alpha: float,
    two_sided: bool,
    sequential: bool,
    sequential_tuning_n: int,
) -> _Inputs:
    baseline = check_open_unit("baseline_rate", baseline_rate)
    lift = _check_lift("min_relative_lift", min_relative_lift, baseline)
    traffic = check_positive("daily_traffic", daily_traffic)
    share_of_traffic = check_finite("allocation", allocation)
    if not 0.0 < share_of_traffic <= 1.0:
        raise ValueError(f"allocation must be in (0, 1], got {allocation!r}")
    share = check_open_unit("treatment_share", treatment_share)
    level = check_alpha(alpha)
    target = check_open_unit("power", power)
    if target <= level:
        raise ValueError(f"power must be greater than alpha ({alpha!r}), got {power!r}")
    if not isinstance(two_sided, bool):
        raise ValueError(f"two_sided must be a bool, got {two_sided!r}")
    if not isinstance(sequential, bool):
        raise ValueError(f"sequential must be a bool, got {sequential!r}")
    tuning = _check_size("sequential_tuning_n", sequential_tuning_n)
    exact_share = _decimal(share)
    return _Inputs(
        baseline_rate=baseline,
        min_relative_lift=lift,
        daily_traffic=traffic,
        allocation=share_of_traffic,
        treatment_share=share,
        power=target,
        alpha=level,
        two_sided=two_sided,
        sequential=sequential,
        sequential_tuning_n=tuning,
        ratio=exact_share / (1 - exact_share),
        share=exact_share,
        daily_users=_decimal(traffic) * _decimal(share_of_traffic),
    )


def _inputs_of(plan: DurationPlan) -> _Inputs:
    return _validate(
        plan.baseline_rate,
        plan.min_relative_lift,
        plan.daily_traffic,
        plan.allocation,
        plan.treatment_share,
        plan.power,
        plan.alpha,
        plan.two_sided,
        plan.sequential,
        plan.sequential_tuning_n,
    )


def _alternative(two_sided: bool, lift: float) -> Alternative:
    if two_sided:
        return "two-sided"
    return "greater" if lift > 0 else "less"


def _treatment_size(inputs: _Inputs, control: float | int) -> int:
    return math.ceil(inputs.ratio * Fraction(control))


def _days(inputs: _Inputs, total: int) -> int:
    return math.ceil(Fraction(total) / inputs.daily_users)


def _mode(inputs: _Inputs) -> str:
    return "sequential" if inputs.sequential else "fixed_horizon"


def _unit_variance(inputs: _Inputs, rate: float) -> float:
    """``n · Var(p̂_t − p̂_c)``: the unpooled variance the sequential test uses."""
    share = float(inputs.share)
    baseline = inputs.baseline_rate
    return baseline * (1.0 - baseline) / (1.0 - share) + rate * (1.0 - rate) / share


def _figures(inputs: _Inputs, mode: str, exact_control: float) -> ModeFigures:
    control = math.ceil(exact_control)
    treatment = _treatment_size(inputs, exact_control)
    total = control + treatment
    return ModeFigures(mode, exact_control, control, treatment, total, _days(inputs, total))


def _both(inputs: _Inputs, lift: float) -> tuple[ModeFigures, ModeFigures]:
    """(fixed-horizon, always-valid) figures for detecting ``lift``."""
    rate = _shifted_rate(inputs.baseline_rate, lift)
    fixed = sample_size_proportions(
        inputs.baseline_rate,
        rate,
        alpha=inputs.alpha,
        power=inputs.power,
        ratio=float(inputs.ratio),
        alternative=_alternative(inputs.two_sided, lift),
    )
    total = sequential_sample_size(
        rate - inputs.baseline_rate,
        _unit_variance(inputs, rate),
        alpha=inputs.alpha,
        power=inputs.power,
        tuning_n=inputs.sequential_tuning_n,
    )
    exact_control = float(Fraction(total) * (1 - inputs.share))
    return _figures(inputs, "fixed_horizon", fixed), _figures(inputs, "sequential", exact_control)


def _plan(inputs: _Inputs, lift: float) -> DurationPlan:
    fixed, always_valid = _both(inputs, lift)
    chosen = always_valid if inputs.sequential else fixed
    return DurationPlan(
        baseline_rate=inputs.baseline_rate,
        min_relative_lift=lift,
        daily_traffic=inputs.daily_traffic,
        allocation=inputs.allocation,
        treatment_share=inputs.treatment_share,
        power=inputs.power,
        alpha=inputs.alpha,
        two_sided=inputs.two_sided,
        sequential=inputs.sequential,
        sequential_tuning_n=inputs.sequential_tuning_n,
        mode=_mode(inputs),
        treatment_rate=_shifted_rate(inputs.baseline_rate, lift),
        exact_control_samples=chosen.exact_control_samples,
        control_samples=chosen.control_samples,
        treatment_samples=chosen.treatment_samples,
        total_samples=chosen.total_samples,
        days=chosen.days,
        daily_users_in_test=float(inputs.daily_users),
        fixed_horizon=fixed,
        always_valid=always_valid,
    )


def _lifts(inputs: _Inputs, lifts: Sequence[float] | None) -> tuple[float, ...]:
    """Explicit lifts, each validated, or the default range around the planned lift."""
    if lifts is not None:
        chosen = tuple(
            _check_lift(f"lifts[{i}]", lift, inputs.baseline_rate) for i, lift in enumerate(lifts)
        )
        if not chosen:
            raise ValueError("lifts must not be empty")
        return chosen
    result: list[float] = []
    for factor in _LIFT_FACTORS:
        lift = float(factor * _decimal(inputs.min_relative_lift))
        rate = _shifted_rate(inputs.baseline_rate, lift)
        if 0.0 < rate < 1.0 and rate != inputs.baseline_rate:
            result.append(lift)
    return tuple(result)


def plan_duration(
    baseline_rate: float,
    min_relative_lift: float,
    daily_traffic: float,
    allocation: float = 1.0,
    treatment_share: float = 0.5,
    power: float = 0.8,
    alpha: float = 0.05,
    two_sided: bool = True,
    sequential: bool = True,
    sequential_tuning_n: int = DEFAULT_TUNING_N,
) -> DurationPlan:
    r"""Users per arm and days needed to detect a relative lift in a conversion rate.

    Parameters
    ----------
    baseline_rate : float
        Control conversion rate ``p`` in (0, 1).
    min_relative_lift : float
        Smallest relative change worth detecting, ``L``; nonzero, with ``p(1 + L)`` in (0, 1).
        Negative lifts plan for detecting a decrease.
    daily_traffic : float
        Eligible users per day, greater than zero.
    allocation : float, default 1.0
        Fraction of the traffic that enters the experiment, in (0, 1].
    treatment_share : float, default 0.5
        Fraction of the experiment's users sent to the treatment, ``s`` in (0, 1).
    power : float, default 0.8
        Target power, in (alpha, 1).
    alpha : float, default 0.05
        Significance level in (0, 1).
    two_sided : bool, default True
        Two-sided fixed-horizon test; ``False`` tests only in the direction of the lift. The
        sequential test is always two-sided.
    sequential : bool, default True
        Plan for the always-valid sequential test, which a new experiment runs by default;
        ``False`` plans for the fixed-horizon z-test, read once. Both are in the result.
    sequential_tuning_n : int, default 5000
        The sequential test's ``tuning_n``, as in
        :class:`~abscope.stats.analysis.AnalysisOptions`.

    Returns
    -------
    DurationPlan

    Raises
    ------
    ValueError
        If an argument is invalid; the message starts with the argument's name.

    Notes
    -----
    With ``r = s/(1 − s)`` and ``p_t = p(1 + L)``, the exact control size is

    .. math::

        n_c = \frac{\left(z_{1-α'}\sqrt{p̄ q̄ (1 + 1/r)} + z_{1-β}\sqrt{p q + p_t q_t / r}\right)^2}
                   {(p_t - p)^2}, \qquad p̄ = \frac{p + r p_t}{1 + r}

    (``α' = α/2`` two-sided) for the fixed-horizon test. For the sequential test the total
    ``n`` solves ``Φ(δ√n/σ − c(n)) + Φ(−δ√n/σ − c(n)) = power`` with ``δ = p_t − p``,
    ``σ² = p q/(1 − s) + p_t q_t/s`` and ``c(n)`` the always-valid boundary
    (:func:`~abscope.stats.sequential_power.sequential_sample_size`), and ``n_c = (1 − s) n``.
    Then ``control = ⌈n_c⌉``, ``treatment = ⌈r n_c⌉`` and
    ``days = ⌈(control + treatment) / (daily_traffic · allocation)⌉``, all computed exactly
    (see the module docstring). An even split (``s = 0.5``) needs the fewest users.

    The sequential test may be read every day and stopped at the first significant look. The
    plan's power is its chance of being significant when read at the planned total; earlier
    looks only add chances to stop sooner (the error rate stays ``alpha``), so it is a lower
    bound on the share of experiments that have called a winner by then.

    References
    ----------
    .. [1] R Core Team, ``power.prop.test``, package *stats*.
    .. [2] R. Kohavi, D. Tang, Y. Xu, *Trustworthy Online Controlled Experiments*, Cambridge
       University Press, 2020, chapter 17 (statistics behind online experiments).

    Examples
    --------
    >>> plan = plan_duration(0.2, 0.25, daily_traffic=200, sequential=False)
    >>> plan.treatment_rate, plan.control_samples, plan.total_samples, plan.days
    (0.25, 1094, 2188, 11)
    >>> plan = plan_duration(0.2, 0.25, daily_traffic=200)  # always-valid, as by default
    >>> plan.mode, plan.control_samples, plan.days, plan.fixed_horizon.days
    ('sequential', 2093, 21, 11)
    """
    inputs = _validate(
        baseline_rate,
        min_relative_lift,
        daily_traffic,
        allocation,
        treatment_share,
        power,
        alpha,
        two_sided,
        sequential,
        sequential_tuning_n,
    )
    return _plan(inputs, inputs.min_relative_lift)


def sensitivity_curve(
    plan: DurationPlan,
    *,
    lifts: Sequence[float] | None = None,
) -> SensitivityCurve:
    """Users and days needed as the lift to detect varies: the planner's sensitivity chart.

    Parameters
    ----------
    plan : DurationPlan
        The plan from :func:`plan_duration`; its inputs set the baseline, split, traffic,
        power, alpha and sidedness.
    lifts : sequence of float, optional
        Relative lifts to evaluate, each valid as ``min_relative_lift`` would be (an invalid one
        raises, naming ``lifts[i]``). By default 26 lifts from 0.5× to 3× ``min_relative_lift``
        in steps of 0.1×, leaving out any that would push the rate outside (0, 1).

    Returns
    -------
    SensitivityCurve

    Notes
    -----
    Each point is :func:`plan_duration` at that lift, with the same rounding and mode. Fewer
    users are needed to detect bigger lifts, roughly as ``1/L²``.

    Examples
    --------
    >>> curve = sensitivity_curve(plan_duration(0.1, 0.1, daily_traffic=1000, sequential=False))
    >>> len(curve.lifts), curve.lifts[5], curve.days[5], curve.always_valid_days[5]
    (26, 0.1, 30, 64)
    """
    inputs = _inputs_of(plan)
    plans = [_plan(inputs, lift) for lift in _lifts(inputs, lifts)]
    return SensitivityCurve(
        mode=_mode(inputs),
        baseline_rate=inputs.baseline_rate,
        min_relative_lift=inputs.min_relative_lift,
        daily_users_in_test=float(inputs.daily_users),
        lifts=tuple(p.min_relative_lift for p in plans),
        treatment_rates=tuple(p.treatment_rate for p in plans),
        control_samples=tuple(p.control_samples for p in plans),
        treatment_samples=tuple(p.treatment_samples for p in plans),
        total_samples=tuple(p.total_samples for p in plans),
        days=tuple(p.days for p in plans),
        fixed_horizon_days=tuple(p.fixed_horizon.days for p in plans),
        always_valid_days=tuple(p.always_valid.days for p in plans),
    )


def power_grid(
    plan: DurationPlan,
    *,
    sample_sizes: Sequence[int] | None = None,
    lifts: Sequence[float] | None = None,
) -> PowerGrid:
    """Power over control sample size × relative lift: the planner's power heatmap.

    Parameters
    ----------
    plan : DurationPlan
        The plan from :func:`plan_duration`; its inputs set the baseline, split, traffic,
        power, alpha and sidedness.
    sample_sizes : sequence of int, optional
        Control users per arm, whole numbers of at least 1 (returned sorted, without
        duplicates). By default 0.1× to 2× the plan's ``control_samples`` in steps of 0.1×,
        rounded up; the plan's own size is among them.
    lifts : sequence of float, optional
        As in :func:`sensitivity_curve`, with the same default.

    Returns
    -------
    PowerGrid

    Notes
    -----
    The treatment arm of a control size ``n`` holds ``⌈r n⌉`` users, ``r = s/(1 − s)``. For a
    sequential plan the power is :func:`abscope.stats.sequential_power.sequential_power` at the
    total, with the plan's tuning (and the fixed-horizon table is alongside); otherwise it is
    :func:`abscope.stats.power.power_proportions` with the plan's ``alpha`` and sidedness
    (one-sided tests look in the direction of each lift). At the plan's control size and lift
    the power is at least the target.

    Examples
    --------
    >>> grid = power_grid(plan_duration(0.2, 0.25, daily_traffic=200, sequential=False))
    >>> column = grid.sample_sizes.index(1094)
    >>> row = grid.lifts.index(0.25)
    >>> round(grid.power[row][column], 3)
    0.8
    """
    inputs = _inputs_of(plan)
    chosen_lifts = _lifts(inputs, lifts)
    if sample_sizes is None:
        planned = _plan(inputs, inputs.min_relative_lift).control_samples
        sizes = sorted({max(1, math.ceil(f * planned)) for f in _SIZE_FACTORS})
    else:
        sizes = sorted({_check_size(f"sample_sizes[{i}]", n) for i, n in enumerate(sample_sizes)})
        if not sizes:
            raise ValueError("sample_sizes must not be empty")
    treatments = [_treatment_size(inputs, n) for n in sizes]
    pairs = list(zip(sizes, treatments, strict=True))
    fixed = tuple(
        tuple(
            power_proportions(
                inputs.baseline_rate,
                _shifted_rate(inputs.baseline_rate, lift),
                n_c,
                n_t,
                alpha=inputs.alpha,
                alternative=_alternative(inputs.two_sided, lift),
            )
            for n_c, n_t in pairs
        )
        for lift in chosen_lifts
    )
    table = fixed
    if inputs.sequential:
        table = tuple(
            tuple(
                sequential_power(
                    _shifted_rate(inputs.baseline_rate, lift) - inputs.baseline_rate,
                    _unit_variance(inputs, _shifted_rate(inputs.baseline_rate, lift)),
                    n_c + n_t,
                    alpha=inputs.alpha,
                    tuning_n=inputs.sequential_tuning_n,
                )
                for n_c, n_t in pairs
            )
            for lift in chosen_lifts
        )
    return PowerGrid(
        mode=_mode(inputs),
        baseline_rate=inputs.baseline_rate,
        min_relative_lift=inputs.min_relative_lift,
        treatment_share=inputs.treatment_share,
        alpha=inputs.alpha,
        two_sided=inputs.two_sided,
        sequential_tuning_n=inputs.sequential_tuning_n,
        target_power=inputs.power,
        sample_sizes=tuple(sizes),
        treatment_sample_sizes=tuple(treatments),
        days=tuple(_days(inputs, n_c + n_t) for n_c, n_t in zip(sizes, treatments, strict=True)),
        lifts=chosen_lifts,
        power=table,
        fixed_horizon_power=fixed if inputs.sequential else None,
    )
