"""Ratio metrics: a per-user numerator total over a per-user denominator total.

Errors per request, latency per request, tokens per second: each user ``i`` has a
denominator total ``x_i`` (requests, seconds) and a numerator total ``y_i`` (errors, latency
ms, tokens), and the metric of an arm is the ratio of sums ``r̂ = Σy / Σx``. Requests of one
user are not independent (a user on a bad connection has many slow requests), so the unit of
analysis is the user: the variance of ``r̂`` comes from the delta method over per-user totals
(the user is the cluster), never from a per-request count.

All of it needs six sums over users, kept by :class:`RatioStats`, which a store updates in
place per event with :func:`user_update`.

Numerical accuracy
------------------
The variance needs centred co-moments, and the textbook formulas on raw sums such as
``Σy² − (Σy)²/n`` cancel catastrophically when the per-user values are large against their
spread. ``MeanStats`` avoids that by storing sums shifted around the mean; a ratio store
cannot, because the per-user update trick works on raw sums whose shift would have to be
fixed before the first user. :class:`RatioStats` therefore keeps raw sums and evaluates the
variance formula *exactly* in rational arithmetic (:class:`fractions.Fraction`: every float
is a dyadic rational) with a single rounding at the end, so the formula itself adds no
error. What remains is the rounding of the stored sums:

* integer sums (counts, integer milliseconds) are kept as Python ints, which do not
  overflow; :func:`user_update` and :meth:`RatioStats.from_users` on integer-valued inputs
  are then exact at any ``n``, and so is every figure derived from them up to the final
  rounding;
* float sums carry a relative error ``ε`` (``2⁻⁵³`` for :meth:`RatioStats.from_users`,
  which sums with :func:`math.fsum`), and the residual sum of squares
  ``Q = Σ(y_i − r̂ x_i)²`` then has a relative error of about ``ε · Σy² / Q``, small unless
  every user's ratio is within about ``10⁻⁶`` of the others (then the variance is reported
  as 0: the float sums carry no significant digit of it).

References
----------
.. [1] W. G. Cochran, Sampling Techniques, 3rd ed., Wiley 1977, sections 6.3-6.4 (the
   variance of the ratio estimator).
.. [2] A. Deng, U. Knoblich and J. Lu, "Applying the delta method in metric analytics: a
   practical guide with novel ideas", KDD 2018, 233-242.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np
from numpy.typing import ArrayLike, NDArray

from abscope.stats._types import Alternative, check_alternative
from abscope.stats._validate import check_count, check_finite
from abscope.stats.proportions import p_value_from_z, z_critical
from abscope.stats.results import EffectEstimate, Interval, TestResult
from abscope.stats.sequential import (
    DEFAULT_TUNING_N,
    SequentialReason,
    SequentialResult,
    sequential_test,
)

__all__ = [
    "RatioStats",
    "ratio_cv",
    "ratio_difference_ci",
    "ratio_difference_sequential",
    "ratio_difference_ztest",
    "ratio_estimate",
    "ratio_lift_sequential",
    "ratio_lift_ztest",
    "relative_ratio_lift_ci",
    "user_update",
]

_SUMS = ("sum_x", "sum_y", "sum_xx", "sum_yy", "sum_xy")
_CONSISTENCY_TOLERANCE = 1e-9
_FLOAT_NOISE = 1e-12  # residual sums below this share of their terms are rounding noise
_EXACT_INT_LIMIT = 2**62  # integer-valued floats below this convert to int64 exactly
_z = functools.lru_cache(maxsize=16)(z_critical)  # the normal quantile costs more than the rest


def _check_sum(name: str, value: float) -> int | float:
    """An int stays an exact Python int; anything else must be a finite float."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got a bool")
    if isinstance(value, int | np.integer):
        if abs(int(value)) >= 2**1023:  # beyond float64: no test statistic could use it
            raise ValueError(f"{name} is too large, got a number of {int(value).bit_length()} bits")
        return int(value)
    return check_finite(name, value)


@dataclass(frozen=True, slots=True)
class RatioStats:
    """Users ``n`` and the sums ``Σx, Σy, Σx², Σy², Σxy`` of their per-user totals.

    ``x`` is the denominator total of a user (requests, seconds) and ``y`` the numerator
    total (errors, latency ms, tokens). Integer sums are kept as exact Python ints, float
    sums as floats (see the module docstring on accuracy). Summaries add field by field.

    A summary with ``n ≥ 1`` must satisfy the moment inequalities of real data
    (``n Σx² ≥ (Σx)²``, likewise for ``y``, and Cauchy–Schwarz for the cross moment),
    within a relative ``1e-9``, and non-negative sums of squares; a violation raises
    ``ValueError``. With ``n = 0`` the sums may be anything: that is the increment of a
    user already counted (:func:`user_update`; a total that shrinks makes ``Σx²`` fall),
    and the estimators treat it as no users.

    Examples
    --------
    >>> s = RatioStats.from_users([10, 20, 5], [1, 3, 0])
    >>> s
    RatioStats(n=3, sum_x=35, sum_y=4, sum_xx=525, sum_yy=10, sum_xy=70)
    >>> round(s.ratio, 6)
    0.114286
    >>> (s + RatioStats.from_users([7], [2])).sum_y
    6
    """

    n: int
    sum_x: float
    sum_y: float
    sum_xx: float
    sum_yy: float
    sum_xy: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", check_count("n", self.n))
        for name in _SUMS:
            object.__setattr__(self, name, _check_sum(name, getattr(self, name)))
        if self.n:
            self._check_moments()

    def _check_moments(self) -> None:
        if self.sum_xx < 0 or self.sum_yy < 0:
            name = "sum_xx" if self.sum_xx < 0 else "sum_yy"
            raise ValueError(f"{name} must be non-negative, got {getattr(self, name)!r}")
        n, sx, sy = self.n, float(self.sum_x), float(self.sum_y)
        sxx, syy, sxy = float(self.sum_xx), float(self.sum_yy), float(self.sum_xy)
        slack = 1.0 + _CONSISTENCY_TOLERANCE
        if sx * sx > n * sxx * slack:
            raise ValueError("sum_xx is smaller than sum_x**2 / n: the sums are inconsistent")
        if sy * sy > n * syy * slack:
            raise ValueError("sum_yy is smaller than sum_y**2 / n: the sums are inconsistent")
        cxx, cyy, cxy = n * sxx - sx * sx, n * syy - sy * sy, n * sxy - sx * sy
        noise = _CONSISTENCY_TOLERANCE * (n * n * sxx * syy + (sx * sy) ** 2)
        if cxy * cxy > max(cxx, 0.0) * max(cyy, 0.0) + noise:
            raise ValueError(
                "sum_xy is outside the Cauchy-Schwarz bounds: the sums are inconsistent"
            )

    @classmethod
    def from_users(cls, xs: ArrayLike, ys: ArrayLike) -> RatioStats:
        """Summarise per-user totals: ``xs[i]`` the denominator and ``ys[i]`` the numerator.

        Integer-valued arrays are summed exactly as integers; float arrays with
        :func:`math.fsum` (one rounding per product, none in the sum).
        """
        x = _users_array("xs", xs)
        y = _users_array("ys", ys)
        if x.shape != y.shape:
            raise ValueError(f"ys must have one entry per user ({x.size}), got {y.size}")
        return cls(
            n=int(x.size),
            sum_x=_dot(x, None),
            sum_y=_dot(y, None),
            sum_xx=_dot(x, x),
            sum_yy=_dot(y, y),
            sum_xy=_dot(x, y),
        )

    @property
    def ratio(self) -> float | None:
        """``Σy / Σx``, correctly rounded; ``None`` when ``Σx = 0`` or there are no users."""
        if self.n == 0 or self.sum_x == 0:
            return None
        return float(Fraction(self.sum_y) / Fraction(self.sum_x))

    def __add__(self, other: RatioStats) -> RatioStats:
        if not isinstance(other, RatioStats):
            return NotImplemented
        return RatioStats(
            self.n + other.n,
            self.sum_x + other.sum_x,
            self.sum_y + other.sum_y,
            self.sum_xx + other.sum_xx,
            self.sum_yy + other.sum_yy,
            self.sum_xy + other.sum_xy,
        )


def _users_array(name: str, values: ArrayLike) -> NDArray[np.generic]:
    array = np.asarray(values)
    if array.dtype == np.bool_ or array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be an array of numbers")
    array = array.ravel()
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must all be finite")
    if array.dtype.kind == "f" and array.size:
        integral = bool(np.all(array == np.floor(array)))
        if integral and float(np.max(np.abs(array))) < _EXACT_INT_LIMIT:
            return array.astype(np.int64)
    return array


def _dot(a: NDArray[np.generic], b: NDArray[np.generic] | None) -> int | float:
    """``Σ a`` or ``Σ a·b``: exact for integers, correctly rounded sum for floats."""
    if a.dtype.kind in "iu" and (b is None or b.dtype.kind in "iu"):
        left = a.astype(object)  # Python ints: no overflow at any size
        products = left if b is None else left * b.astype(object)
        return int(sum(products.tolist()))
    terms = a.astype(float) if b is None else a.astype(float) * b.astype(float)
    return math.fsum(terms.tolist())


def _pair(name: str, values: tuple[float, float]) -> tuple[int | float, int | float]:
    if len(values) != 2:
        raise ValueError(f"{name} must be a pair (x, y), got {len(values)} values")
    return _check_sum(f"{name}[0]", values[0]), _check_sum(f"{name}[1]", values[1])


def user_update(totals: tuple[float, float] | None, delta: tuple[float, float]) -> RatioStats:
    """The increment of an arm's sums when one user's totals grow by ``delta = (dx, dy)``.

    Parameters
    ----------
    totals : (float, float) or None
        The user's totals ``(tx, ty)`` before the event; ``None`` for a user not seen yet.
    delta : (float, float)
        What the event adds: ``dx`` to the denominator, ``dy`` to the numerator.

    Returns
    -------
    RatioStats
        The increment, to be added to the arm's summary (a store applies the same five
        additions atomically). Its ``n`` is 1 for a new user and 0 otherwise.

    Notes
    -----
    ``(t + d)² − t² = 2 t d + d²`` and ``(tx + dx)(ty + dy) − tx ty = tx dy + ty dx + dx dy``,
    so ``Σx² += 2 tx dx + dx²``, ``Σy² += 2 ty dy + dy²`` and
    ``Σxy += tx dy + ty dx + dx dy``. With integer inputs every step is exact, so any
    sequence of updates ends at :meth:`RatioStats.from_users` of the final totals.

    Examples
    --------
    >>> s = user_update(None, (3, 1))
    >>> s = s + user_update((3, 1), (2, 0))
    >>> s == RatioStats.from_users([5], [1])
    True
    """
    dx, dy = _pair("delta", delta)
    if totals is None:
        return RatioStats(1, dx, dy, dx * dx, dy * dy, dx * dy)
    tx, ty = _pair("totals", totals)
    return RatioStats(
        0, dx, dy, 2 * tx * dx + dx * dx, 2 * ty * dy + dy * dy, tx * dy + ty * dx + dx * dy
    )


# --- one arm ------------------------------------------------------------------------------


def _undefined_reason(stats: RatioStats) -> str | None:
    if stats.n == 0:
        return "no_samples"
    if stats.n < 2:
        return "insufficient_samples"
    if stats.sum_x == 0:
        return "zero_denominator"
    return None


def _ratio_variance(stats: RatioStats) -> float:
    """``Var(r̂) = n Q / ((n − 1) (Σx)²)`` with ``Q = Σ(y − r̂ x)²``, evaluated exactly.

    ``(Σx)² Q = Σy² (Σx)² − 2 Σy Σx Σxy + (Σy)² Σx²``; needs ``n ≥ 2`` and ``Σx ≠ 0``.
    """
    n = stats.n
    sx, sy = Fraction(stats.sum_x), Fraction(stats.sum_y)
    sxx, syy, sxy = Fraction(stats.sum_xx), Fraction(stats.sum_yy), Fraction(stats.sum_xy)
    terms = (syy * sx * sx, 2 * sy * sx * sxy, sy * sy * sxx)
    scaled_q = terms[0] - terms[1] + terms[2]
    exact = all(isinstance(getattr(stats, name), int) for name in _SUMS)
    if exact:
        if scaled_q <= 0:
            return 0.0
    elif scaled_q <= _FLOAT_NOISE * (terms[0] + abs(terms[1]) + terms[2]):
        return 0.0
    return float(scaled_q * n / ((n - 1) * sx**4))


def ratio_estimate(stats: RatioStats, *, confidence: float = 0.95) -> EffectEstimate:
    """One arm's ratio ``r̂ = Σy / Σx``, its delta-method standard error and a z interval.

    Returns
    -------
    EffectEstimate
        With no users, or ``Σx = 0`` (``"zero_denominator"``), everything is ``None``. With
        one user the ratio is kept but the error and interval are ``None``
        (``"insufficient_samples"``); when every user has the same ratio ``y_i / x_i`` the
        error is 0 and the interval ``None`` (``"zero_variance"``).

    Notes
    -----
    With ``x̄ = Σx / n`` and the sample (co)variances ``s²_x, s²_y, s_xy`` (divisor
    ``n − 1``),

    ``Var(r̂) ≈ (s²_y − 2 r̂ s_xy + r̂² s²_x) / (n x̄²) = Σ(y_i − r̂ x_i)² / ((n − 1) n x̄²)``,

    the second form because ``Σ(y_i − r̂ x_i) = 0``. It is Cochran's (1977, section 6.4)
    sample estimate of the variance of the ratio estimator without the finite-population
    factor, and the ``n − 1``
    makes it the HC1 (small-sample corrected) sandwich variance of ``Σy / Σx`` as a
    weighted least-squares slope. Interval ``r̂ ± z_{(1+confidence)/2} · SE``.

    References
    ----------
    Cochran (1977), Sampling Techniques, sections 6.3-6.4; Deng, Knoblich & Lu (2018), KDD.

    Examples
    --------
    >>> e = ratio_estimate(RatioStats.from_users([10, 20, 5, 8], [1, 3, 0, 1]))
    >>> round(e.estimate, 4), round(e.std_error, 4)
    (0.1163, 0.0244)
    """
    z = _z(confidence)
    if stats.n == 0 or stats.sum_x == 0:
        return EffectEstimate.undefined("no_samples" if stats.n == 0 else "zero_denominator")
    ratio = stats.ratio
    assert ratio is not None
    if stats.n < 2:
        return EffectEstimate(ratio, None, None, "insufficient_samples")
    se = math.sqrt(_ratio_variance(stats))
    if se == 0.0:
        return EffectEstimate(ratio, 0.0, None, "zero_variance")
    return EffectEstimate(ratio, se, Interval(ratio - z * se, ratio + z * se, confidence))


def ratio_cv(stats: RatioStats) -> float | None:
    """One user's coefficient of variation for the ratio, the input of sample-size formulas.

    Notes
    -----
    The delta method makes ``r̂`` behave like the mean of ``n`` independent linearised
    values ``(y_i − r x_i) / x̄`` around ``r``, so ``n Var(r̂) / r̂² = s²_e / ȳ²`` with
    ``s²_e = Σ(y_i − r̂ x_i)² / (n − 1)``: the ``cv`` that the planners
    (:mod:`abscope.stats.power`, :mod:`abscope.stats.guardrail_power`) take for a mean,
    here for a ratio. ``None`` when the ratio is undefined or 0, or with fewer than 2 users.

    Examples
    --------
    >>> round(ratio_cv(RatioStats.from_users([10, 20, 5, 8], [1, 3, 0, 1])), 4)
    0.4193
    """
    if _undefined_reason(stats) is not None or stats.sum_y == 0:
        return None
    ratio = stats.ratio
    assert ratio is not None
    return math.sqrt(stats.n * _ratio_variance(stats)) / abs(ratio)


# --- two arms: the difference -------------------------------------------------------------


def _arms(control: RatioStats, treatment: RatioStats) -> tuple[str | None, tuple[float, ...]]:
    """A reason the comparison is undefined, or ``(r_c, r_t, V_c, V_t)``."""
    reason = _undefined_reason(control) or _undefined_reason(treatment)
    if reason:
        return reason, ()
    rc, rt = control.ratio, treatment.ratio
    assert rc is not None and rt is not None
    return None, (rc, rt, _ratio_variance(control), _ratio_variance(treatment))


def ratio_difference_ci(
    control: RatioStats, treatment: RatioStats, *, confidence: float = 0.95
) -> EffectEstimate:
    """``r_t − r_c`` with its delta-method standard error and a z interval.

    Notes
    -----
    The arms are independent samples of users, so ``Var(r̂_t − r̂_c) = Var(r̂_t) +
    Var(r̂_c)`` with each from :func:`ratio_estimate`; interval ``d ± z SE``. Undefined
    figures are ``None``: everything when an arm has fewer than 2 users or ``Σx = 0``; the
    interval when both variances are 0 (``"zero_variance"``, the estimate is kept).

    Examples
    --------
    >>> c = RatioStats.from_users([10, 20, 5, 8], [1, 3, 0, 1])
    >>> t = RatioStats.from_users([12, 9, 30, 4], [2, 2, 6, 1])
    >>> e = ratio_difference_ci(c, t)
    >>> round(e.estimate, 4), round(e.ci.lower, 4), round(e.ci.upper, 4)
    (0.0837, 0.0319, 0.1356)
    """
    z = _z(confidence)
    reason, figures = _arms(control, treatment)
    if reason:
        return EffectEstimate.undefined(reason)
    rc, rt, vc, vt = figures
    difference, se = rt - rc, math.sqrt(vc + vt)
    if se == 0.0:
        return EffectEstimate(difference, 0.0, None, "zero_variance")
    return EffectEstimate(
        difference, se, Interval(difference - z * se, difference + z * se, confidence)
    )


def ratio_difference_ztest(
    control: RatioStats, treatment: RatioStats, *, alternative: Alternative = "two-sided"
) -> TestResult:
    """z-test of ``r_t = r_c`` with the unpooled delta-method error.

    Notes
    -----
    ``z = (r̂_t − r̂_c) / sqrt(Var(r̂_t) + Var(r̂_c))`` against the standard normal. The
    error is the one of :func:`ratio_difference_ci`, so the test rejects at level ``α``
    exactly when the ``1 − α`` interval excludes 0. ``"greater"``: the treatment's ratio is
    higher.

    Examples
    --------
    >>> c = RatioStats.from_users([10, 20, 5, 8], [1, 3, 0, 1])
    >>> t = RatioStats.from_users([12, 9, 30, 4], [2, 2, 6, 1])
    >>> r = ratio_difference_ztest(c, t)
    >>> round(r.statistic, 3), round(r.p_value, 4)
    (3.164, 0.0016)
    """
    direction = check_alternative(alternative)
    effect = ratio_difference_ci(control, treatment)
    if effect.std_error is None or effect.estimate is None or effect.std_error == 0.0:
        return TestResult.undefined(effect.reason or "zero_variance", direction)
    z = effect.estimate / effect.std_error
    return TestResult(z, p_value_from_z(z, direction), direction)


# --- two arms: the relative lift ----------------------------------------------------------


def relative_ratio_lift_ci(
    control: RatioStats, treatment: RatioStats, *, confidence: float = 0.95
) -> EffectEstimate:
    """Relative lift ``r_t / r_c − 1``, its delta-method error and an interval.

    Notes
    -----
    With ``V_c, V_t`` the variances of :func:`ratio_estimate`, the delta method gives
    ``Var(r̂_t / r̂_c) ≈ V_t / r_c² + r_t² V_c / r_c⁴`` (``std_error``) and
    ``Var(log(r̂_t / r̂_c)) ≈ V_t / r_t² + V_c / r_c²`` (``log_std_error``).

    When both ratios are positive (the usual case: rates, latencies, throughputs) the
    interval is built on the log scale, ``exp(log(r_t / r_c) ± z SE_log) − 1``: the log of
    a ratio of ratios is closer to normal than the ratio itself, the interval never goes
    below −100%, and it is the scale on which :func:`ratio_lift_sequential` (and the
    analysis of the other metric kinds) build the relative confidence sequence. When a
    ratio is negative the log does not exist and the interval is the symmetric
    ``(R − 1) ± z SE`` (``log_std_error`` is then ``None``), as for means. Undefined
    figures are ``None``: everything when an arm has fewer than 2 users, ``Σx = 0`` or the
    control ratio is 0 (``"zero_baseline"``); the errors and interval when the treatment
    ratio is 0 (``"zero_treatment"``); the interval when both variances are 0.

    References
    ----------
    Casella & Berger (2002), Statistical Inference, section 5.5.4; Deng, Knoblich & Lu
    (2018), section 3.

    Examples
    --------
    >>> c = RatioStats.from_users([10, 20, 5, 8], [1, 3, 0, 1])
    >>> t = RatioStats.from_users([12, 9, 30, 4], [2, 2, 6, 1])
    >>> e = relative_ratio_lift_ci(c, t)
    >>> round(e.estimate, 4), round(e.ci.lower, 4), round(e.ci.upper, 4)
    (0.72, 0.1266, 1.6259)
    """
    z = _z(confidence)
    reason, figures = _arms(control, treatment)
    if reason:
        return EffectEstimate.undefined(reason)
    rc, rt, vc, vt = figures
    if rc == 0.0:
        return EffectEstimate.undefined("zero_baseline")
    lift = rt / rc - 1.0
    if rt == 0.0:
        return EffectEstimate(lift, None, None, "zero_treatment")
    # The same formulas, written so that no power of a small ratio underflows.
    se = math.hypot(math.sqrt(vt), rt / rc * math.sqrt(vc)) / abs(rc)
    if se == 0.0:
        return EffectEstimate(lift, 0.0, None, "zero_variance")
    if rc > 0.0 and rt > 0.0:
        log_se = math.hypot(math.sqrt(vt) / rt, math.sqrt(vc) / rc)
        centre = math.log(rt) - math.log(rc)
        ci = Interval(math.expm1(centre - z * log_se), math.expm1(centre + z * log_se), confidence)
        return EffectEstimate(lift, se, ci, None, log_se)
    return EffectEstimate(lift, se, Interval(lift - z * se, lift + z * se, confidence))


def _log_ratio(control: RatioStats, treatment: RatioStats) -> float:
    """``log(r_t / r_c)`` of two positive ratios, without forming the quotient."""
    rc, rt = control.ratio, treatment.ratio
    assert rc is not None and rt is not None
    return math.log(rt) - math.log(rc)


def ratio_lift_ztest(
    control: RatioStats, treatment: RatioStats, *, alternative: Alternative = "two-sided"
) -> TestResult:
    """z-test of ``r_t / r_c = 1`` on the scale of :func:`relative_ratio_lift_ci`'s interval.

    Notes
    -----
    ``z = log(r̂_t / r̂_c) / SE_log`` when both ratios are positive, else
    ``z = (r̂_t / r̂_c − 1) / SE``; either way the test rejects at level ``α`` exactly when
    the ``1 − α`` lift interval excludes 0.

    Examples
    --------
    >>> c = RatioStats.from_users([10, 20, 5, 8], [1, 3, 0, 1])
    >>> t = RatioStats.from_users([12, 9, 30, 4], [2, 2, 6, 1])
    >>> r = ratio_lift_ztest(c, t)
    >>> round(r.statistic, 3), round(r.p_value, 4)
    (2.512, 0.012)
    """
    direction = check_alternative(alternative)
    effect = relative_ratio_lift_ci(control, treatment)
    if effect.estimate is None or effect.std_error is None or effect.ci is None:
        return TestResult.undefined(effect.reason or "zero_variance", direction)
    if effect.log_std_error is not None:
        z = _log_ratio(control, treatment) / effect.log_std_error
    else:
        z = effect.estimate / effect.std_error
    return TestResult(z, p_value_from_z(z, direction), direction)


# --- always valid -------------------------------------------------------------------------


def _undefined_sequence(reason: str, alpha: float, tuning_n: int) -> SequentialResult:
    """An undefined result, with ``alpha`` and ``tuning_n`` validated by ``sequential_test``."""
    empty = sequential_test(0.0, 0.0, 0, alpha=alpha, tuning_n=tuning_n)
    code: SequentialReason = _SEQUENTIAL_REASONS.get(reason, "zero_variance")
    return replace(empty, reason=code)


_SEQUENTIAL_REASONS: dict[str, SequentialReason] = {
    "no_samples": "no_samples",
    "insufficient_samples": "insufficient_samples",
    "zero_denominator": "zero_denominator",
    "zero_variance": "zero_variance",
    "zero_baseline": "zero_baseline",
    "zero_treatment": "zero_treatment",
}


def ratio_difference_sequential(
    control: RatioStats,
    treatment: RatioStats,
    *,
    alpha: float = 0.05,
    tuning_n: int = DEFAULT_TUNING_N,
) -> SequentialResult:
    """Always-valid p-value and confidence sequence of ``r_t − r_c`` at one look.

    Notes
    -----
    :func:`abscope.stats.sequential.sequential_test` on the estimate and variance of
    :func:`ratio_difference_ci`, with ``n = n_c + n_t`` users: the mixture SPRT needs an
    asymptotically normal estimate, which the delta method provides. ``tuning_n`` is the
    total number of users at which the sequence is tightest. An undefined difference gives
    ``None`` figures with its reason.

    Examples
    --------
    >>> c = RatioStats.from_users([10, 20, 5, 8], [1, 3, 0, 1])
    >>> t = RatioStats.from_users([12, 9, 30, 4], [2, 2, 6, 1])
    >>> s = ratio_difference_sequential(c, t, tuning_n=8)
    >>> round(s.ci_lower, 4), round(s.ci_upper, 4), s.significant
    (0.0034, 0.164, True)
    """
    effect = ratio_difference_ci(control, treatment)
    if effect.estimate is None or effect.std_error is None or effect.ci is None:
        return _undefined_sequence(effect.reason or "zero_variance", alpha, tuning_n)
    n = control.n + treatment.n
    return sequential_test(effect.estimate, effect.std_error**2, n, alpha=alpha, tuning_n=tuning_n)


def ratio_lift_sequential(
    control: RatioStats,
    treatment: RatioStats,
    *,
    alpha: float = 0.05,
    tuning_n: int = DEFAULT_TUNING_N,
) -> SequentialResult:
    """Always-valid p-value and confidence sequence of the lift ``r_t / r_c − 1``.

    Notes
    -----
    When both ratios are positive the sequence is built for ``log(r_t / r_c)`` with the
    variance ``SE_log²`` of :func:`relative_ratio_lift_ci` and mapped back by
    ``exp(·) − 1``, so it never goes below −100%, as the analysis does for the other metric
    kinds; the p-value tests the same null (ratio 1). Otherwise it is built on the lift
    itself with the direct delta-method variance. ``n = n_c + n_t``.

    Examples
    --------
    >>> c = RatioStats.from_users([10, 20, 5, 8], [1, 3, 0, 1])
    >>> t = RatioStats.from_users([12, 9, 30, 4], [2, 2, 6, 1])
    >>> s = ratio_lift_sequential(c, t, tuning_n=8)
    >>> round(s.ci_lower, 4), round(s.ci_upper, 4)
    (-0.1068, 2.312)
    """
    effect = relative_ratio_lift_ci(control, treatment)
    if effect.estimate is None or effect.std_error is None or effect.ci is None:
        return _undefined_sequence(effect.reason or "zero_variance", alpha, tuning_n)
    n = control.n + treatment.n
    if effect.log_std_error is None:
        return sequential_test(
            effect.estimate, effect.std_error**2, n, alpha=alpha, tuning_n=tuning_n
        )
    log_result = sequential_test(
        _log_ratio(control, treatment), effect.log_std_error**2, n, alpha=alpha, tuning_n=tuning_n
    )
    assert log_result.ci_lower is not None and log_result.ci_upper is not None
    return replace(
        log_result,
        ci_lower=math.expm1(log_result.ci_lower),
        ci_upper=math.expm1(log_result.ci_upper),
    )
