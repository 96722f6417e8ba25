"""Always-valid inference: p-values and confidence sequences that survive daily peeking.

A fixed-horizon test is valid only if it is read once, at a sample size chosen in advance.
Reading it every day and stopping at the first ``p < alpha`` inflates the false-positive
rate several-fold (to 15–30 % over a month of daily looks at ``alpha = 0.05``). The test here
is valid *uniformly over time*: with probability at least ``1 − alpha`` the confidence
sequence covers the true effect at every look simultaneously, so it may be read as often as
wished and the experiment stopped as soon as it is significant.

Method
------
The mixture sequential probability ratio test (mSPRT) with a normal mixture (Johari et al.,
2017, 2022), applied to any asymptotically normal estimate ``θ̂`` with variance ``V = SE²``
after ``n`` observations. Mixing the likelihood ratio of ``N(θ, V)`` against ``N(θ0, V)`` over
``θ − θ0 ~ N(0, τ²)`` gives

    ``Λ(θ0) = sqrt(V / (V + τ²)) · exp(τ² (θ̂ − θ0)² / (2 V (V + τ²)))``.

``Λ(θ0)`` is (asymptotically) a nonnegative martingale under ``θ = θ0``, so Ville's
inequality bounds ``P(sup_n Λ(θ0) ≥ 1/α) ≤ α``. Hence

* the always-valid p-value ``p = min(1, 1 / Λ(0))``, and
* the confidence sequence ``{θ0 : Λ(θ0) < 1/α}``, which is
  ``θ̂ ± sqrt(2 V (V + τ²) / τ² · (log(1/α) + ½ log((V + τ²) / V)))``.

This is also the asymptotic confidence sequence with the normal-mixture boundary of Howard et
al. (2021) and Waudby-Smith et al. (2023), which GrowthBook uses for sequential testing.

The tuning parameter
--------------------
The mixing variance is ``τ² = σ̂² ρ²`` with ``σ̂² = n V`` the per-observation variance, so
``(V + τ²) / V = 1 + n ρ²``, and

    ``ρ² = (−2 log α + log(−2 log α + 1)) / N*``,

where ``N* = tuning_n`` is the total sample size (both arms) at which the confidence sequence
is tightest (Howard et al., 2021). Set it to about the sample size you expect the experiment
to reach: the sequence is then only ~1.5× wider than a fixed-horizon interval there, and
the price of a poor guess is mild (widths grow slowly away from ``N*``). The default 5000
matches GrowthBook's ``sequentialTuningParameter``. ``ρ`` is fixed by the design ``alpha``, so
``p < alpha`` exactly when the confidence sequence excludes 0; the p-value is therefore tied
to the ``alpha`` it was computed for.

References
----------
.. [1] R. Johari, P. Koomen, L. Pekelis and D. Walsh, "Peeking at A/B tests: why it matters,
   and what to do about it", KDD 2017, 1517-1525.
.. [2] R. Johari, P. Koomen, L. Pekelis and D. Walsh, "Always valid inference: continuous
   monitoring of A/B tests", Operations Research 70(3), 1806-1821 (2022).
.. [3] S. R. Howard, A. Ramdas, J. McAuliffe and J. Sekhon, "Time-uniform, nonparametric,
   nonasymptotic confidence sequences", Annals of Statistics 49(2), 1055-1080 (2021).
.. [4] I. Waudby-Smith, D. Arbour, R. Sinha, E. H. Kennedy and A. Ramdas, "Time-uniform
   central limit theory and asymptotic confidence sequences", arXiv:2103.06476 (2023).
.. [5] GrowthBook documentation, "Sequential testing",
   https://docs.growthbook.io/statistics/sequential
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from abscope.stats._validate import check_alpha, check_count, check_finite

__all__ = [
    "DEFAULT_TUNING_N",
    "SequentialReason",
    "boundary_z",
    "SequentialResult",
    "sequential_path",
    "sequential_test",
]

DEFAULT_TUNING_N = 5000
"""Default ``tuning_n``: GrowthBook's default ``sequentialTuningParameter``."""

SequentialReason = Literal[
    "no_samples",
    "insufficient_samples",
    "zero_denominator",
    "zero_variance",
    "zero_baseline",
    "zero_treatment",
    "disjoint_looks",
]
"""Why a sequential result is not an ordinary one.

All but the last are codes of :mod:`abscope.stats.results` and leave the test undefined: the
p-value and both interval ends are ``None``. :func:`sequential_test` itself gives
``"no_samples"`` (``n = 0``) and ``"zero_variance"`` (the estimate has variance 0, so it
carries no measure of its own noise); the analysis passes on the reason of an undefined
effect (``"insufficient_samples"``, ``"zero_baseline"``, ``"zero_treatment"``, and
``"zero_denominator"`` for ratio metrics, :mod:`abscope.stats.ratio`).
``"disjoint_looks"`` (paths only): the confidence sequence of some look did not overlap the
running intersection of the earlier ones. That happens with probability at most ``alpha`` if
the effect is constant, so it usually means the effect drifts over time; the interval then
stays the running intersection of the looks that did overlap.
"""


@dataclass(frozen=True, slots=True)
class SequentialResult:
    """Always-valid p-value and confidence sequence at one look.

    Attributes
    ----------
    p_value : float or None
        Always-valid p-value for ``θ = 0``; ``None`` when undefined.
    ci_lower, ci_upper : float or None
        Confidence sequence for ``θ`` at level ``1 − alpha``; ``None`` when undefined.
    significant : bool
        ``p_value < alpha``, equivalently the interval excludes 0.
    alpha : float
        Significance level the sequence was built for.
    tuning_n : int
        Total sample size at which the sequence is tightest.
    reason : SequentialReason or None
        Set for degenerate data (then the p-value and interval are ``None``) or when the
        looks of a path stopped overlapping.
    """

    p_value: float | None
    ci_lower: float | None
    ci_upper: float | None
    significant: bool
    alpha: float
    tuning_n: int
    reason: SequentialReason | None = None


def _rho_squared(alpha: float, tuning_n: float) -> float:
    """``ρ² = (−2 log α + log(−2 log α + 1)) / N*``: tightest boundary at ``n = N*``."""
    two_log = -2.0 * math.log(alpha)
    return (two_log + math.log(two_log + 1.0)) / tuning_n


def _check_tuning_n(tuning_n: int) -> int:
    value = check_count("tuning_n", tuning_n)
    if value == 0:
        raise ValueError("tuning_n must be at least 1, got 0")
    return value


def _check_variance(variance: float, name: str = "variance") -> float:
    value = check_finite(name, variance)
    if value < 0:
        raise ValueError(f"{name} must be non-negative, got {variance!r}")
    return value


def _test(
    estimate: float, variance: float, n: int, alpha: float, tuning_n: int
) -> SequentialResult:
    """:func:`sequential_test` on arguments that are already validated."""
    if n == 0 or variance == 0.0:
        reason: SequentialReason = "no_samples" if n == 0 else "zero_variance"
        return SequentialResult(None, None, None, False, alpha, tuning_n, reason)
    growth = n * _rho_squared(alpha, tuning_n)  # n ρ² = τ² / V
    shrink = growth / (1.0 + growth)  # τ² / (V + τ²)
    # log Λ(0) = ½ [ (θ̂² / V) · τ² / (V + τ²) − log(1 + n ρ²) ]
    log_ratio = 0.5 * (estimate * estimate / variance * shrink - math.log1p(growth))
    p_value = 1.0 if log_ratio <= 0.0 else math.exp(-log_ratio)
    half_width = math.sqrt(variance) * _boundary(n, alpha, tuning_n)
    return SequentialResult(
        p_value=p_value,
        ci_lower=estimate - half_width,
        ci_upper=estimate + half_width,
        significant=p_value < alpha,
        alpha=alpha,
        tuning_n=tuning_n,
    )


def _boundary(n: float, alpha: float, tuning_n: int) -> float:
    growth = n * _rho_squared(alpha, tuning_n)  # x = n ρ²
    # Λ(θ0) < 1/α  ⟺  (θ̂ − θ0)² / V < 2 (1 + x) / x · (log(1/α) + ½ log(1 + x))
    radius = math.log(1.0 / alpha) + 0.5 * math.log1p(growth)
    return math.sqrt(2.0 * (1.0 + growth) / growth * radius)


def boundary_z(n: int, *, alpha: float = 0.05, tuning_n: int = DEFAULT_TUNING_N) -> float:
    """The sequential test's critical value: it rejects at ``n`` when ``|θ̂| / SE`` exceeds this.

    Notes
    -----
    With ``x = n ρ²``: ``c(n) = sqrt(2 (1 + x) / x · (log(1/α) + ½ log(1 + x)))``. The
    confidence sequence is ``θ̂ ± c(n) · SE``. ``c(n)`` is always above the fixed-horizon
    ``z_{1−α/2}`` and grows like ``sqrt(log n)`` for large ``n``.

    Examples
    --------
    >>> round(boundary_z(5000), 3) > 1.96
    True
    """
    count = check_count("n", n)
    if count == 0:
        raise ValueError("n must be at least 1, got 0")
    return _boundary(count, check_alpha(alpha), _check_tuning_n(tuning_n))


def sequential_test(
    estimate: float,
    variance: float,
    n: int,
    *,
    alpha: float = 0.05,
    tuning_n: int = DEFAULT_TUNING_N,
) -> SequentialResult:
    """Always-valid (mSPRT) test and confidence sequence for one look at an estimate.

    Parameters
    ----------
    estimate : float
        An asymptotically normal estimate ``θ̂``: an absolute difference ``x̄_t − x̄_c``, or a
        relative lift with its delta-method variance, or any other.
    variance : float
        Its variance ``V = SE²`` at this look, ≥ 0.
    n : int
        Total number of observations behind it (both arms together).
    alpha : float, default 0.05
        Significance level, in (0, 1); the sequence has coverage ``1 − alpha`` over all looks.
    tuning_n : int, default 5000
        ``N*``, the total sample size at which the sequence is tightest; choose about the
        sample size you expect to reach (see the module docstring).

    Returns
    -------
    SequentialResult
        The p-value and interval are ``None``, with reason ``"no_samples"`` (``n = 0``) or
        ``"zero_variance"`` (``V = 0``): an estimate without a measure of its noise cannot
        be tested.

    Notes
    -----
    With ``x = n ρ²`` and ``z² = θ̂² / V``,

    ``p = min(1, sqrt(1 + x) · exp(−z² x / (2 (1 + x))))``,

    ``θ̂ ± sqrt(V · 2 (1 + x) / x · (log(1/α) + ½ log(1 + x)))``.

    The interval is always wider than the fixed-horizon ``θ̂ ± z_{1−α/2} sqrt(V)``, since
    ``z²_{1−α/2} < 2 log(1/α)``; its width shrinks like ``sqrt(log n / n)``.

    References
    ----------
    .. [1] R. Johari, P. Koomen, L. Pekelis and D. Walsh, "Always valid inference: continuous
       monitoring of A/B tests", Operations Research 70(3), 1806-1821 (2022).
    .. [2] S. R. Howard, A. Ramdas, J. McAuliffe and J. Sekhon, "Time-uniform, nonparametric,
       nonasymptotic confidence sequences", Annals of Statistics 49(2), 1055-1080 (2021).

    Examples
    --------
    A difference of 1.2 percentage points with standard error 0.35 points after 12 000 users:

    >>> result = sequential_test(0.012, 0.0035**2, 12_000)
    >>> round(result.p_value, 4), result.significant
    (0.0168, True)
    >>> round(result.ci_lower, 5), round(result.ci_upper, 5)
    (0.00123, 0.02277)
    >>> sequential_test(0.0, 0.0, 0).reason
    'no_samples'
    """
    return _test(
        check_finite("estimate", estimate),
        _check_variance(variance),
        check_count("n", n),
        check_alpha(alpha),
        _check_tuning_n(tuning_n),
    )


def sequential_path(
    estimates: Sequence[float],
    variances: Sequence[float],
    ns: Sequence[int],
    *,
    alpha: float = 0.05,
    tuning_n: int = DEFAULT_TUNING_N,
) -> tuple[SequentialResult, ...]:
    """Always-valid results over successive looks, each using everything seen so far.

    Parameters
    ----------
    estimates, variances, ns : sequence
        Estimate, its variance and the total sample size at each look (cumulative data, so
        ``ns`` must not decrease).
    alpha : float, default 0.05
        Significance level of the whole sequence of looks.
    tuning_n : int, default 5000
        Total sample size at which the sequence is tightest.

    Returns
    -------
    tuple of SequentialResult
        One result per look: the running minimum of the p-values and the running
        intersection of the confidence sequences, so p never increases and the intervals are
        nested. Looks whose test is undefined (no samples, zero variance) add nothing:
        until the first defined look the p-value and interval are ``None``.

    Notes
    -----
    Both operations keep validity: ``P(min_k p_k < α) = P(∃k: p_k < α) ≤ α`` and the event
    "every look covers θ" already implies that their intersection does. Duality survives as
    well, because intervals that all contain 0 intersect in an interval containing 0. A look
    whose interval is disjoint from the running intersection is not intersected, and that
    result and all later ones carry the reason ``"disjoint_looks"``.

    References
    ----------
    .. [1] S. R. Howard, A. Ramdas, J. McAuliffe and J. Sekhon, "Time-uniform, nonparametric,
       nonasymptotic confidence sequences", Annals of Statistics 49(2), 1055-1080 (2021).

    Examples
    --------
    >>> variances = [0.007**2, 0.005**2, 0.004**2]
    >>> path = sequential_path([0.004, 0.015, 0.013], variances, [4000, 8000, 12000])
    >>> [round(r.p_value, 3) for r in path]
    [1.0, 0.057, 0.03]
    >>> [r.significant for r in path]
    [False, False, True]
    >>> [round(r.ci_upper, 4) for r in path]
    [0.0253, 0.0253, 0.0253]
    """
    if len(variances) != len(estimates):
        raise ValueError(
            f"variances must have one entry per estimate ({len(estimates)}), got {len(variances)}"
        )
    if len(ns) != len(estimates):
        raise ValueError(f"ns must have one entry per estimate ({len(estimates)}), got {len(ns)}")
    level = check_alpha(alpha)
    tuning = _check_tuning_n(tuning_n)
    counts = [check_count(f"ns[{i}]", n) for i, n in enumerate(ns)]
    for i in range(1, len(counts)):
        if counts[i] < counts[i - 1]:
            raise ValueError(
                f"ns must be non-decreasing, got ns[{i}]={counts[i]} < {counts[i - 1]}"
            )
    results: list[SequentialResult] = []
    p_min: float | None = None
    lower, upper = -math.inf, math.inf
    disjoint = False
    for i, (estimate, variance, n) in enumerate(zip(estimates, variances, counts, strict=True)):
        look = _test(
            check_finite(f"estimates[{i}]", estimate),
            _check_variance(variance, f"variances[{i}]"),
            n,
            level,
            tuning,
        )
        if look.p_value is not None and look.ci_lower is not None and look.ci_upper is not None:
            p_min = look.p_value if p_min is None else min(p_min, look.p_value)
            new_lower, new_upper = max(lower, look.ci_lower), min(upper, look.ci_upper)
            if new_lower <= new_upper:
                lower, upper = new_lower, new_upper
            else:
                disjoint = True
        known = p_min is not None
        results.append(
            SequentialResult(
                p_value=p_min,
                ci_lower=lower if known else None,
                ci_upper=upper if known else None,
                significant=p_min is not None and p_min < level,
                alpha=level,
                tuning_n=tuning,
                reason="disjoint_looks" if disjoint else None if known else look.reason,
            )
        )
    return tuple(results)
