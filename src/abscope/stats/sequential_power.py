"""Power and sample size of the sequential (mSPRT) test of :mod:`abscope.stats.sequential`.

The sequential test pays for safe peeking with a wider boundary, so it needs more users than
a fixed-horizon test to detect the same effect. These functions size an experiment for the
test that will actually decide it.

With several treatments the analysis tests each against the control with the mixture tuned at
``alpha`` and compares the always-valid p-values, after Holm's correction, with ``alpha``. The
smallest p-value is compared with ``alpha / m`` (Bonferroni), and Holm rejects every hypothesis
Bonferroni does, so ``comparisons=m`` sizes each comparison for rejecting at ``alpha / m``
with the mixture still tuned at ``alpha``: a plan that keeps its power under Holm.
"""

from __future__ import annotations

import math

from scipy import optimize as _opt
from scipy.special import ndtr

from abscope.stats._validate import (
    check_alpha,
    check_count,
    check_finite,
    check_open_unit,
    check_positive,
)
from abscope.stats.sequential import DEFAULT_TUNING_N, _rho_squared

__all__ = ["sequential_power", "sequential_sample_size"]


def _boundary(n: float, alpha: float, tuning_n: int, comparisons: int) -> float:
    """``|θ̂|/SE`` above which the p-value (mixture tuned at ``alpha``) is below ``alpha/m``."""
    growth = n * _rho_squared(alpha, tuning_n)
    radius = math.log(comparisons / alpha) + 0.5 * math.log1p(growth)
    return math.sqrt(2.0 * (1.0 + growth) / growth * radius)


def _power(
    effect: float,
    unit_variance: float,
    n: float,
    alpha: float,
    tuning_n: int,
    comparisons: int = 1,
) -> float:
    shift = abs(effect) * math.sqrt(n / unit_variance)
    c = _boundary(n, alpha, tuning_n, comparisons)
    # ndtr is Φ; scipy.stats.norm's methods cost ~20× more per scalar call.
    return float(ndtr(shift - c) + ndtr(-c - shift))


def _check_comparisons(comparisons: int) -> int:
    value = check_count("comparisons", comparisons)
    if value < 1:
        raise ValueError(f"comparisons must be at least 1, got {comparisons!r}")
    return value


def sequential_power(
    effect: float,
    unit_variance: float,
    n: float,
    *,
    alpha: float = 0.05,
    tuning_n: int = DEFAULT_TUNING_N,
    comparisons: int = 1,
) -> float:
    """Probability that the sequential test rejects at a look with ``n`` users in total.

    Parameters
    ----------
    effect : float
        The true effect ``θ`` (same scale as the estimate the test is run on).
    unit_variance : float
        Variance of the estimate times the total sample size, ``σ² = n · SE²``: for a
        difference of rates with shares ``w_c, w_t`` of the users, ``p_c q_c / w_c +
        p_t q_t / w_t``.
    n : float
        Total users at the look (of the two arms compared).
    comparisons : int, default 1
        Treatments compared with the control, ``m``: the p-value must be below ``alpha / m``
        (see the module docstring).

    Notes
    -----
    With ``x = n ρ²`` (``ρ`` tuned at ``alpha``, as :func:`abscope.stats.sequential.boundary_z`)
    the test rejects at level ``alpha/m`` when ``|θ̂|/SE`` exceeds
    ``c(n) = sqrt(2 (1 + x)/x · (log(m/α) + ½ log(1 + x)))``, so with ``δ = |θ| sqrt(n) / σ``:
    ``power = Φ(δ − c(n)) + Φ(−δ − c(n))``. For ``m = 1`` ``c(n)`` is ``boundary_z``. This
    is the chance of rejecting *at* this look; the chance of having rejected at *some* look up
    to ``n`` is higher, so sizes derived from it are conservative.

    References
    ----------
    Johari, Koomen, Pekelis & Walsh (2022), Always valid inference, Operations Research 70(3).

    Examples
    --------
    >>> round(sequential_power(0.01, 0.18, 20_000), 3)
    0.582
    >>> round(sequential_power(0.01, 0.18, 20_000, comparisons=3), 3)
    0.445
    """
    return _power(
        check_finite("effect", effect),
        check_positive("unit_variance", unit_variance),
        check_positive("n", n),
        check_alpha(alpha),
        int(check_positive("tuning_n", tuning_n)),
        _check_comparisons(comparisons),
    )


def sequential_sample_size(
    effect: float,
    unit_variance: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    tuning_n: int = DEFAULT_TUNING_N,
    comparisons: int = 1,
) -> float:
    """Total users at which the sequential test reaches ``power`` for ``effect``.

    Solves ``sequential_power(effect, unit_variance, n) = power`` for ``n`` by Brent's
    method. See :func:`sequential_power` for the arguments.

    Examples
    --------
    >>> n = sequential_sample_size(0.01, 0.18)
    >>> round(sequential_power(0.01, 0.18, n), 6)
    0.8
    """
    theta = check_finite("effect", effect)
    if theta == 0.0:
        raise ValueError("effect must be nonzero to size a test")
    sigma2 = check_positive("unit_variance", unit_variance)
    level = check_alpha(alpha)
    target = check_open_unit("power", power)
    if target <= level:
        raise ValueError(f"power must be greater than alpha, got power={power}")
    tune = int(check_positive("tuning_n", tuning_n))
    m = _check_comparisons(comparisons)

    def gap(n: float) -> float:
        return _power(theta, sigma2, n, level, tune, m) - target

    low, high = 1e-6, 1.0
    if gap(low) >= 0:
        return low
    while gap(high) < 0:
        low, high = high, high * 4.0
        if high > 1e18:
            raise ValueError("effect is too small to detect with any sample size")
    return float(_opt.brentq(gap, low, high, xtol=1e-9, rtol=1e-12))
