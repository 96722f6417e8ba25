"""Power, sample size and minimum detectable effect of two-sample z-tests.

Two metrics are covered, each with the same three questions (how many users, how much power,
how small an effect):

* users needed in the control arm: :func:`sample_size_proportions`, :func:`sample_size_means`;
* power at given arm sizes: :func:`power_proportions`, :func:`power_means`;
* smallest detectable effect: :func:`mde_proportions` (relative lift), :func:`mde_means`
  (absolute difference).

The effect is always ``treatment − control``; ``alternative="greater"`` means the treatment is
expected to be higher. Sizes are *exact* (unrounded) floats so that the functions invert each
other; round up (``math.ceil``) before recruiting users, as :mod:`abscope.stats.planner` does.

The model
---------
The difference of the two sample means (or rates) ``D`` is normal with mean ``δ`` and standard
error ``se₁`` under the alternative; the test divides it by its standard error under the null,
``se₀``, and rejects beyond the normal critical value ``z``. The probability of rejecting in the
upper tail is ``Φ((δ − z·se₀)/se₁)`` and in the lower tail ``Φ((−δ − z·se₀)/se₁)``.

* For means ``se₀ = se₁ = σ·√(1/n_c + 1/n_t)`` (a z-test with a known common ``σ``).
* For rates the null variance pools the two rates, ``p̄ = (n_c·p_c + n_t·p_t)/(n_c + n_t)``,
  ``se₀ = √(p̄(1−p̄)(1/n_c + 1/n_t))``, and the alternative one does not,
  ``se₁ = √(p_c(1−p_c)/n_c + p_t(1−p_t)/n_t)``.

Two-sided tests use ``z = z_{1−α/2}``. By default (``strict=False``, as R's ``power.prop.test``
and ``power.t.test``) their power counts only rejections in the direction of the true effect;
the other tail adds a negligible amount at any useful power. ``strict=True`` counts both tails,
so that power is exactly ``α`` when there is no effect (with ``strict=False`` it is ``α/2``).
For one-sided tests the two conventions coincide.

Degenerate and invalid input
----------------------------
Every argument is checked and a bad one raises :class:`ValueError` whose message starts with the
argument's name: rates must lie in (0, 1), sizes must be finite and greater than zero (a test with
an empty arm has no power to speak of, so ``n = 0`` is an error rather than a made-up value),
``power`` must exceed ``alpha`` (a level-``α`` test reaches power ``α`` with no data at all), and a
sample size asked for equal rates, a zero ``delta`` or an effect in the wrong direction for a
one-sided test is an error, as it could never be reached.

References
----------
.. [1] R Core Team, ``power.prop.test`` and ``power.t.test``, package *stats*.
.. [2] S.-C. Chow, J. Shao, H. Wang, Y. Lokhnygina, *Sample Size Calculations in Clinical
   Research*, 3rd ed., CRC Press, 2017, chapters 3 (means) and 4 (proportions).
.. [3] J. L. Fleiss, B. Levin, M. C. Paik, *Statistical Methods for Rates and Proportions*,
   3rd ed., Wiley, 2003, chapter 4.
.. [4] statsmodels, ``statsmodels.stats.proportion.power_proportions_2indep`` and
   ``statsmodels.stats.power.NormalIndPower``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from scipy.optimize import brentq
from scipy.special import ndtr, ndtri

from abscope.stats._types import Alternative, check_alternative
from abscope.stats._validate import check_alpha, check_finite, check_open_unit, check_positive

__all__ = [
    "mde_means",
    "mde_proportions",
    "power_means",
    "power_proportions",
    "sample_size_means",
    "sample_size_proportions",
]

# brentq stops within xtol + rtol·|x|; 4·eps is the smallest rtol scipy accepts.
_XTOL = 1e-300
_RTOL = 4.0 * math.ulp(1.0)
_MAX_EXPANSIONS = 64
_MDE_GRID = 64


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return value


def _check_power(power: float, alpha: float) -> float:
    target = check_open_unit("power", power)
    if target <= alpha:
        raise ValueError(
            f"power must be greater than alpha ({alpha!r}), got {power!r}: a test at level alpha "
            "rejects that often with no effect at all"
        )
    return target


def _check_direction(name: str, effect: float, alternative: Alternative, what: str) -> None:
    """Reject a zero effect, or one the one-sided test can never detect."""
    if effect == 0.0:
        raise ValueError(f"{name} must differ from {what}: a zero effect needs infinite samples")
    if alternative == "greater" and effect < 0.0:
        raise ValueError(
            f"{name} must be above {what} for alternative='greater' (treatment − control > 0)"
        )
    if alternative == "less" and effect > 0.0:
        raise ValueError(
            f"{name} must be below {what} for alternative='less' (treatment − control < 0)"
        )


# --------------------------------------------------------------------------------------------
# shared maths
# --------------------------------------------------------------------------------------------


def _critical(alpha: float, alternative: Alternative) -> float:
    """``z_{1−α'}`` with ``α' = α/2`` for two-sided tests, else ``α``."""
    level = alpha / 2.0 if alternative == "two-sided" else alpha
    return -float(ndtri(level))


def _rejection_probability(
    shift: float, threshold: float, alternative: Alternative, strict: bool
) -> float:
    """Power from ``shift = δ/se₁`` and ``threshold = z·se₀/se₁``.

    Upper tail ``Φ(shift − threshold)``, lower tail ``Φ(−shift − threshold)``.
    """
    if alternative == "greater":
        return float(ndtr(shift - threshold))
    if alternative == "less":
        return float(ndtr(-shift - threshold))
    if strict:
        return float(ndtr(shift - threshold)) + float(ndtr(-shift - threshold))
    return float(ndtr(abs(shift) - threshold))


def _proportion_sds(p_c: float, p_t: float, ratio: float) -> tuple[float, float]:
    """Per-√n_c standard deviations of ``p̂_t − p̂_c`` under H0 (pooled) and H1 (unpooled)."""
    pooled = (p_c + ratio * p_t) / (1.0 + ratio)
    sd_null = math.sqrt(pooled * (1.0 - pooled) * (1.0 + 1.0 / ratio))
    sd_alt = math.sqrt(p_c * (1.0 - p_c) + p_t * (1.0 - p_t) / ratio)
    return sd_null, sd_alt


def _proportion_power(
    p_c: float, p_t: float, n_c: float, ratio: float, crit: float, alt: Alternative, strict: bool
) -> float:
    """Power with ``n_t = ratio·n_c``; defined for ``n_c = 0`` and rates in [0, 1] too."""
    sd_null, sd_alt = _proportion_sds(p_c, p_t, ratio)
    shift = (p_t - p_c) * math.sqrt(n_c) / sd_alt
    return _rejection_probability(shift, crit * sd_null / sd_alt, alt, strict)


def _solve_increasing(
    f: Callable[[float], float], lo: float, hi: float, name: str, message: str
) -> float:
    """Root of a non-decreasing ``f`` with ``f(lo) < 0``, widening ``hi`` if need be."""
    if f(lo) >= 0.0:
        raise ValueError(f"{name} {message}")
    for _ in range(_MAX_EXPANSIONS):
        value = f(hi)
        if value == 0.0:
            return hi
        if value > 0.0:
            break
        lo, hi = hi, 2.0 * hi
    else:  # pragma: no cover - the callers bracket the root analytically
        raise ValueError(f"{name} {message}")
    root: float = brentq(f, lo, hi, xtol=_XTOL, rtol=_RTOL, maxiter=500)
    return root


def _size_ratio(n_control: float, n_treatment: float) -> tuple[float, float, float]:
    n_c = check_positive("n_control", n_control)
    n_t = check_positive("n_treatment", n_treatment)
    return n_c, n_t, n_t / n_c


# --------------------------------------------------------------------------------------------
# proportions
# --------------------------------------------------------------------------------------------


def sample_size_proportions(
    baseline_rate: float,
    treatment_rate: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    alternative: Alternative = "two-sided",
    strict: bool = False,
) -> float:
    r"""Users needed in the control arm to detect a change of conversion rate.

    Parameters
    ----------
    baseline_rate : float
        Conversion rate of the control arm, ``p_c`` in (0, 1).
    treatment_rate : float
        Conversion rate of the treatment arm under the alternative, ``p_t`` in (0, 1).
    alpha : float, default 0.05
        Significance level in (0, 1).
    power : float, default 0.8
        Target power, in (alpha, 1).
    ratio : float, default 1.0
        ``r = n_treatment / n_control``; the treatment arm needs ``ratio`` times the result.
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
        Direction of ``p_t − p_c`` under the alternative.
    strict : bool, default False
        For two-sided tests, also count rejections in the wrong tail (R's ``strict = TRUE``).

    Returns
    -------
    float
        The exact, unrounded control sample size ``n_c``; round it up before use.

    Raises
    ------
    ValueError
        If an argument is invalid, the rates are equal, the direction contradicts a one-sided
        ``alternative``, or ``power`` is already reached with no data (possible only with very
        unequal arms and a low target).

    Notes
    -----
    With ``p̄ = (p_c + r·p_t)/(1 + r)``, ``q = 1 − p`` and ``α' = α/2`` for a two-sided test,

    .. math::

        n_c = \frac{\left(z_{1-α'}\sqrt{p̄ q̄ (1 + 1/r)}
              + z_{1-β}\sqrt{p_c q_c + p_t q_t / r}\right)^2}{(p_t - p_c)^2}

    which is the root of :func:`power_proportions` for one-sided tests and for two-sided tests
    with ``strict=False``. With ``strict=True`` the two-sided power, now counting both tails, is
    solved for ``n_c`` with Brent's method; the extra tail makes the answer slightly smaller.
    For ``ratio=1`` this is R's ``power.prop.test(p1, p2, power=...)``.

    References
    ----------
    .. [1] R Core Team, ``power.prop.test``, package *stats*.
    .. [2] J. L. Fleiss, B. Levin, M. C. Paik, *Statistical Methods for Rates and Proportions*,
       3rd ed., Wiley, 2003, chapter 4 (the formula without continuity correction).

    Examples
    --------
    >>> round(sample_size_proportions(0.2, 0.25), 3)  # power.prop.test(p1=.2, p2=.25, power=.8)
    1093.739
    >>> n = sample_size_proportions(0.2, 0.25, ratio=2.0)
    >>> round(n, 1), round(2.0 * n, 1)
    (828.6, 1657.1)
    """
    p_c = check_open_unit("baseline_rate", baseline_rate)
    p_t = check_open_unit("treatment_rate", treatment_rate)
    alpha = check_alpha(alpha)
    target = _check_power(power, alpha)
    r = check_positive("ratio", ratio)
    alt = check_alternative(alternative)
    strict = _check_bool("strict", strict)
    _check_direction("treatment_rate", p_t - p_c, alt, "baseline_rate")

    crit = _critical(alpha, alt)
    sd_null, sd_alt = _proportion_sds(p_c, p_t, r)
    numerator = crit * sd_null + float(ndtri(target)) * sd_alt
    trivial = (
        f"{target!r} is reached with any sample size for these rates and ratio "
        "(the null and alternative variances differ too much); ask for a higher power"
    )
    if numerator <= 0.0:
        raise ValueError(f"power {trivial}")
    one_tail = numerator**2 / (p_t - p_c) ** 2
    if alt != "two-sided" or not strict:
        return one_tail

    def excess(n_c: float) -> float:
        return _proportion_power(p_c, p_t, n_c, r, crit, alt, True) - target

    # Strict power is at least the one-tail power, so the root lies in [0, one_tail].
    return _solve_increasing(excess, 0.0, one_tail, "power", trivial)


def power_proportions(
    baseline_rate: float,
    treatment_rate: float,
    n_control: float,
    n_treatment: float,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    strict: bool = False,
) -> float:
    r"""Power of the pooled two-proportion z-test at given arm sizes.

    Parameters
    ----------
    baseline_rate, treatment_rate : float
        Conversion rates ``p_c`` and ``p_t`` in (0, 1), either way round.
    n_control, n_treatment : float
        Users in each arm, greater than zero (fractional sizes are allowed so that the function
        is continuous in them).
    alpha : float, default 0.05
        Significance level in (0, 1).
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
        Direction of ``p_t − p_c`` the test looks for.
    strict : bool, default False
        For two-sided tests, also count rejections in the wrong tail.

    Returns
    -------
    float
        Probability that the test rejects. With equal rates this is the size of the test:
        ``α`` (``α/2`` for a two-sided test with ``strict=False``).

    Notes
    -----
    With ``δ = p_t − p_c``, ``p̄ = (n_c p_c + n_t p_t)/(n_c + n_t)``,
    ``se₀ = √(p̄ q̄ (1/n_c + 1/n_t))`` and ``se₁ = √(p_c q_c/n_c + p_t q_t/n_t)``:

    .. math::

        \text{greater: } Φ\left(\frac{δ - z_{1-α} se_0}{se_1}\right), \quad
        \text{less: } Φ\left(\frac{-δ - z_{1-α} se_0}{se_1}\right), \quad
        \text{two-sided: } Φ\left(\frac{|δ| - z_{1-α/2} se_0}{se_1}\right)

    and with ``strict=True`` the two-sided power adds ``Φ((−|δ| − z_{1−α/2} se₀)/se₁)``.

    References
    ----------
    .. [1] R Core Team, ``power.prop.test``, package *stats*.
    .. [2] statsmodels, ``statsmodels.stats.proportion.power_proportions_2indep``.

    Examples
    --------
    >>> round(power_proportions(0.5, 0.75, 50, 50), 7)  # power.prop.test(n=50, p1=.5, p2=.75)
    0.7401659
    >>> round(power_proportions(0.5, 0.5, 100, 300, strict=True), 12)
    0.05
    """
    p_c = check_open_unit("baseline_rate", baseline_rate)
    p_t = check_open_unit("treatment_rate", treatment_rate)
    n_c, _, r = _size_ratio(n_control, n_treatment)
    alpha = check_alpha(alpha)
    alt = check_alternative(alternative)
    strict = _check_bool("strict", strict)
    return _proportion_power(p_c, p_t, n_c, r, _critical(alpha, alt), alt, strict)


def mde_proportions(
    baseline_rate: float,
    n_control: float,
    n_treatment: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Alternative = "two-sided",
    strict: bool = False,
) -> float:
    """Minimum detectable relative lift of a conversion rate at given arm sizes.

    Parameters
    ----------
    baseline_rate : float
        Control conversion rate ``p_c`` in (0, 1).
    n_control, n_treatment : float
        Users in each arm, greater than zero.
    alpha : float, default 0.05
        Significance level in (0, 1).
    power : float, default 0.8
        Target power, in (alpha, 1).
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
        ``"less"`` looks for a decrease and returns a negative lift; the others an increase.
    strict : bool, default False
        For two-sided tests, also count rejections in the wrong tail.

    Returns
    -------
    float
        The relative lift ``L = p_t/p_c − 1`` at which :func:`power_proportions` equals
        ``power``.

    Raises
    ------
    ValueError
        If an argument is invalid, or no rate in (0, 1) reaches ``power`` (the treatment rate
        would have to exceed 1, or fall below 0 for ``"less"``); the message starts with
        ``power``.

    Notes
    -----
    The smallest treatment rate ``p_t`` above ``p_c`` (below it for ``"less"``) solving
    ``power_proportions(p_c, p_t, n_c, n_t) = power`` is found with Brent's method, after a
    64-point scan of ``(p_c, 1]`` (``[0, p_c)``) brackets the first crossing: at ``p_t = p_c``
    the power is the test's size, below the target, and with very few users the power need not
    grow monotonically towards the boundary. This is R's ``power.prop.test(n, p1, power)``,
    reported as a relative lift.

    References
    ----------
    .. [1] R Core Team, ``power.prop.test``, package *stats*.

    Examples
    --------
    >>> lift = mde_proportions(0.5, 50, 50, power=0.9)  # power.prop.test(n=50, p1=.5, power=.9)
    >>> round(0.5 * (1 + lift), 4)
    0.8026
    """
    p_c = check_open_unit("baseline_rate", baseline_rate)
    n_c, n_t, r = _size_ratio(n_control, n_treatment)
    alpha = check_alpha(alpha)
    target = _check_power(power, alpha)
    alt = check_alternative(alternative)
    strict = _check_bool("strict", strict)
    crit = _critical(alpha, alt)
    direction = -1.0 if alt == "less" else 1.0

    def excess(distance: float) -> float:
        p_t = p_c + direction * distance
        return _proportion_power(p_c, p_t, n_c, r, crit, alt, strict) - target

    # Power grows with the distance at any practical size, but not always with a handful of
    # users (the pooled variance can grow faster than the difference). Scanning a grid for the
    # *first* crossing keeps the result the smallest detectable lift, to 1/64 of the range.
    room = 1.0 - p_c if direction > 0 else p_c
    grid = [room * k / _MDE_GRID for k in range(_MDE_GRID + 1)]
    upper = next((k for k in range(1, _MDE_GRID + 1) if excess(grid[k]) > 0.0), None)
    if upper is None:
        bound = "exceed 1" if direction > 0 else "fall below 0"
        raise ValueError(
            f"power {target!r} is not achievable with n_control={n_c!r} and "
            f"n_treatment={n_t!r}: the treatment rate would have to {bound}"
        )
    if excess(grid[upper - 1]) == 0.0:
        return direction * grid[upper - 1] / p_c
    distance = _solve_increasing(excess, grid[upper - 1], grid[upper], "power", "is not achievable")
    return direction * distance / p_c


# --------------------------------------------------------------------------------------------
# means
# --------------------------------------------------------------------------------------------


def sample_size_means(
    delta: float,
    std: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    alternative: Alternative = "two-sided",
    strict: bool = False,
) -> float:
    r"""Users needed in the control arm to detect a difference of means (z-test).

    Parameters
    ----------
    delta : float
        Difference of means ``δ = μ_t − μ_c`` under the alternative; nonzero.
    std : float
        Common standard deviation ``σ`` of one user's outcome, greater than zero.
    alpha : float, default 0.05
        Significance level in (0, 1).
    power : float, default 0.8
        Target power, in (alpha, 1).
    ratio : float, default 1.0
        ``r = n_treatment / n_control``.
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
        Direction of ``δ`` under the alternative.
    strict : bool, default False
        For two-sided tests, also count rejections in the wrong tail.

    Returns
    -------
    float
        The exact, unrounded control sample size; the treatment arm needs ``ratio`` times it.

    Notes
    -----
    .. math::

        n_c = \frac{(z_{1-α'} + z_{1-β})^2 σ^2 (1 + 1/r)}{δ^2}

    with ``α' = α/2`` for a two-sided test. With ``strict=True`` the two-sided power including
    the wrong tail is solved for ``n_c`` with Brent's method. This is the normal approximation;
    R's ``power.t.test`` uses the t distribution and asks for slightly more users when ``n`` is
    small.

    References
    ----------
    .. [1] S.-C. Chow, J. Shao, H. Wang, Y. Lokhnygina, *Sample Size Calculations in Clinical
       Research*, 3rd ed., CRC Press, 2017, chapter 3 (two-sample parallel design).
    .. [2] statsmodels, ``statsmodels.stats.power.NormalIndPower.solve_power``.

    Examples
    --------
    >>> round(sample_size_means(1.0, 4.0), 2)
    251.16
    >>> round(sample_size_means(-1.0, 4.0, alternative="less"), 2)
    197.84
    """
    d = check_finite("delta", delta)
    sigma = check_positive("std", std)
    alpha = check_alpha(alpha)
    target = _check_power(power, alpha)
    r = check_positive("ratio", ratio)
    alt = check_alternative(alternative)
    strict = _check_bool("strict", strict)
    _check_direction("delta", d, alt, "0")

    crit = _critical(alpha, alt)
    scale = sigma**2 * (1.0 + 1.0 / r) / d**2
    one_tail = (crit + float(ndtri(target))) ** 2 * scale
    if alt != "two-sided" or not strict:
        return one_tail

    def excess(n_c: float) -> float:
        return _rejection_probability(math.sqrt(n_c / scale), crit, alt, True) - target

    return _solve_increasing(excess, 0.0, one_tail, "power", "is not achievable")


def power_means(
    delta: float,
    std: float,
    n_control: float,
    n_treatment: float,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    strict: bool = False,
) -> float:
    """Power of the two-sample z-test for a difference of means at given arm sizes.

    Parameters
    ----------
    delta : float
        True difference ``μ_t − μ_c``, any sign (zero gives the size of the test).
    std : float
        Common standard deviation ``σ``, greater than zero.
    n_control, n_treatment : float
        Users in each arm, greater than zero.
    alpha : float, default 0.05
        Significance level in (0, 1).
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
        Direction of ``δ`` the test looks for.
    strict : bool, default False
        For two-sided tests, also count rejections in the wrong tail.

    Returns
    -------
    float
        Probability that the test rejects.

    Notes
    -----
    With ``se = σ√(1/n_c + 1/n_t)``: ``"greater"`` has power ``Φ(δ/se − z_{1−α})``, ``"less"``
    ``Φ(−δ/se − z_{1−α})`` and two-sided ``Φ(|δ|/se − z_{1−α/2})``, plus
    ``Φ(−|δ|/se − z_{1−α/2})`` when ``strict=True``.

    References
    ----------
    .. [1] statsmodels, ``statsmodels.stats.power.NormalIndPower.power``.

    Examples
    --------
    >>> round(power_means(1.0, 4.0, 251.16, 251.16), 4)
    0.8
    >>> round(power_means(0.0, 4.0, 100, 100, strict=True), 12)
    0.05
    """
    d = check_finite("delta", delta)
    sigma = check_positive("std", std)
    n_c, n_t, _ = _size_ratio(n_control, n_treatment)
    alpha = check_alpha(alpha)
    alt = check_alternative(alternative)
    strict = _check_bool("strict", strict)
    shift = d / (sigma * math.sqrt(1.0 / n_c + 1.0 / n_t))
    return _rejection_probability(shift, _critical(alpha, alt), alt, strict)


def mde_means(
    std: float,
    n_control: float,
    n_treatment: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Alternative = "two-sided",
    strict: bool = False,
) -> float:
    r"""Minimum detectable absolute difference of means at given arm sizes.

    Parameters
    ----------
    std : float
        Common standard deviation ``σ``, greater than zero.
    n_control, n_treatment : float
        Users in each arm, greater than zero.
    alpha : float, default 0.05
        Significance level in (0, 1).
    power : float, default 0.8
        Target power, in (alpha, 1).
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
        ``"less"`` returns a negative difference; the others a positive one.
    strict : bool, default False
        For two-sided tests, also count rejections in the wrong tail.

    Returns
    -------
    float
        The difference ``δ`` at which :func:`power_means` equals ``power``.

    Notes
    -----
    .. math::

        |δ| = (z_{1-α'} + z_{1-β}) σ \sqrt{1/n_c + 1/n_t}

    with ``α' = α/2`` for a two-sided test; with ``strict=True`` the two-tailed power is solved
    for ``δ`` with Brent's method.

    References
    ----------
    .. [1] statsmodels, ``statsmodels.stats.power.NormalIndPower.solve_power``.

    Examples
    --------
    >>> round(mde_means(4.0, 251.16, 251.16), 4)
    1.0
    """
    sigma = check_positive("std", std)
    n_c, n_t, _ = _size_ratio(n_control, n_treatment)
    alpha = check_alpha(alpha)
    target = _check_power(power, alpha)
    alt = check_alternative(alternative)
    strict = _check_bool("strict", strict)
    crit = _critical(alpha, alt)
    se = sigma * math.sqrt(1.0 / n_c + 1.0 / n_t)
    direction = -1.0 if alt == "less" else 1.0
    one_tail = (crit + float(ndtri(target))) * se
    if alt != "two-sided" or not strict:
        return direction * one_tail

    def excess(d: float) -> float:
        return _rejection_probability(d / se, crit, alt, True) - target

    return _solve_increasing(excess, 0.0, one_tail, "power", "is not achievable")
