"""Sample-ratio mismatch for adaptively allocated traffic (bandits, ramps).

A bandit moves traffic towards the arm that looks best, so its observed split is *meant* to
differ from the static weights, and the chi-square test of :mod:`abscope.stats.srm` flags a
correctly working Thompson experiment as broken. What stays testable is whether each user was
counted in proportion to the probability with which the service chose the variant for them.
Every exposure logs that probability ``p_u`` (the allocation in force × the traffic share), and
the store keeps two sums per variant, ``H_i = Σ_{u∈i} 1/p_u`` and ``Q_i = Σ_{u∈i} 1/p_u²``;
:func:`adaptive_sample_ratio_mismatch` tests them.

The same logged probabilities fix the estimates too: rates and means taken from adaptively
allocated traffic are biased (the policy keeps sending users to an arm while it looks good by
luck, and takes them away while it looks bad), whereas weighting each user by ``1/p_u``
(Horvitz-Thompson / inverse-probability weighting) gives unbiased ones. :data:`ADAPTIVE_NOTE`
says this in plain words for the results.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from scipy import optimize as _opt
from scipy import stats as _sp

from abscope.stats._validate import check_count, check_finite, check_open_unit
from abscope.stats.srm import DEFAULT_SRM_THRESHOLD, SRMResult, sample_ratio_mismatch

__all__ = ["ADAPTIVE_NOTE", "adaptive_sample_ratio_mismatch"]

ADAPTIVE_NOTE = (
    "Traffic was allocated adaptively, so the split is tested against the assignment"
    " probability logged with each exposure, not against the static weights. The plain rates"
    " and lifts of adaptively allocated traffic are biased: a bandit sends more users to an"
    " arm while it looks good by chance and fewer while it looks bad. Weighting each user by"
    " the inverse of the logged probability (inverse-probability weighting) gives unbiased"
    " estimates."
)
"""The results' plain-words warning for experiments whose allocation is not fixed."""

_RELATIVE_SLACK = 1e-9  # float sums of 1/p may fall a hair below the count


def _check_sum(name: str, value: float) -> float:
    number = check_finite(name, value)
    if number < 0.0:
        raise ValueError(f"{name} must be non-negative, got {value!r}")
    return number


def _undefined(
    counts: tuple[int, ...], expected: tuple[float, ...], level: float, reason: str
) -> SRMResult:
    """The undefined result, in the form :func:`sample_ratio_mismatch` gives one."""
    k = len(counts)
    empty = sample_ratio_mismatch([0] * k, [1.0 / k] * k, threshold=level)
    return replace(empty, observed=counts, expected=expected, reason=reason)


def _variances(h: list[float], q: list[float], consensus: float) -> list[float]:
    """``V_i = Q_i · max(1, N̂ / H_i)``: never below the null variance of an arm that fell short."""
    return [qi * max(1.0, consensus / hi) for hi, qi in zip(h, q, strict=True)]


def _consensus(h: list[float], q: list[float]) -> float:
    """The ``N`` with ``Σ (H_i − N) / V_i(N) = 0``: the GLS mean at its own variances.

    Each term decreases strictly in ``N``, so the root is unique and lies in
    ``[min H, max H]``.
    """
    low, high = min(h), max(h)
    if high - low <= _RELATIVE_SLACK * high:
        return high

    def score(n: float) -> float:
        return math.fsum((hi - n) / vi for hi, vi in zip(h, _variances(h, q, n), strict=True))

    root: float = _opt.brentq(score, low, high, xtol=1e-12 * high, rtol=1e-15, maxiter=200)
    return root


def adaptive_sample_ratio_mismatch(
    observed: Sequence[int],
    inverse_probability_sums: Sequence[float],
    inverse_probability_square_sums: Sequence[float],
    *,
    threshold: float = DEFAULT_SRM_THRESHOLD,
) -> SRMResult:
    r"""Test the observed split against the assignment probabilities logged with each user.

    Parameters
    ----------
    observed : sequence of int
        Users per variant (two or more variants).
    inverse_probability_sums : sequence of float
        ``H_i = Σ_{u∈i} 1/p_u`` per variant, ``p_u`` being the logged probability with which
        user ``u`` was given the variant (allocation in force × traffic share).
    inverse_probability_square_sums : sequence of float
        ``Q_i = Σ_{u∈i} 1/p_u²`` per variant.
    threshold : float
        Flag a mismatch when ``p < threshold`` (0.001 by default, as for the static test).

    Returns
    -------
    SRMResult
        ``expected[i]`` is ``n_i · N̂ / H_i``: the users variant ``i`` would have if its
        estimate of the arrivals agreed with the consensus ``N̂``; for a fixed split
        ``N̂ · s · w_i``. Undefined results take the form of
        :func:`~abscope.stats.srm.sample_ratio_mismatch` with no users, with the reason
        ``"no_samples"`` (no users), ``"empty_variant"`` (some variant has none, so the
        variance of its sum cannot be estimated) or ``"missing_probabilities"`` (the sums contradict
        ``p ≤ 1``, ``Q_i ≥ H_i ≥ n_i``: users whose probabilities were not recorded, e.g.
        exposures logged before the store kept ``Σ 1/p²``).

    Raises
    ------
    ValueError
        If the arguments differ in length, a count is not a whole number, or a sum is negative
        or not finite.

    Notes
    -----
    **The martingale.** Let users arrive one by one; user ``u`` is given variant ``i`` with
    probability ``p_{u,i}``, set by the history before it (the bandit's counts, the ramp), and
    ``I_{u,i}`` says whether it was. Then ``E[I_{u,i}/p_{u,i} | past] = 1`` for every variant,
    so each ``H_i = Σ_u I_{u,i}/p_{u,i}`` is a Horvitz-Thompson estimate of the same number
    ``N`` of arrivals, and the contrasts ``H_i − H_1`` are martingales with mean 0. Users
    outside the experiment contribute 0 to every sum, so traffic shares and ramps cancel. A
    variant whose exposures are lost (or double-counted) makes its ``H_i`` drift away.

    **The variance.** ``Var(I/p | past) = 1/p − 1`` and ``Cov(I_i/p_i, I_j/p_j | past) = −1``,
    so the predictable variance of the contrasts is ``Σ_u 1/p_{u,i}`` per variant plus a term
    ``−N`` common to all variants, which contrasts cancel. ``Q_i`` estimates ``Σ_u 1/p_{u,i}``
    without bias, and ``δ_ij Q_i + Q_1`` is the realised quadratic variation of the contrasts.

    **The statistic.** ``W = min_N Σ_i (H_i − N)² / V_i``, equal to ``Sᵀ V⁻¹ S`` for the
    contrasts ``S_i = H_i − H_1``, whose covariance is ``δ_ij V_i + V_1``. With ``V_i = Q_i``
    this is the Wald statistic of the martingale CLT, ``W ≈ χ²(k − 1)``. It is
    anti-conservative when an arm sits at the exploration floor, because then ``H_i`` and
    ``Q_i`` are dominated by a few users with weight ``1/p ≈ 100``: an arm that got too few
    users by chance also gets a too small ``Q_i``, and looks significant. Seeded simulations of
    Thompson and UCB1 with floor 0.01 gave up to 13 false alarms per 1000 at the 0.001
    threshold. So the variance of an arm that fell short of the consensus is taken at the
    null, where its ``1/p`` would have been drawn ``N̂ / H_i`` times as often,

    .. math:: V_i = Q_i \max(1, \hat N / H_i), \qquad
              \hat N = \frac{\sum_i H_i / V_i}{\sum_i 1 / V_i}

    (``N̂`` solved by Brent's method: each ``(H_i − N)/V_i(N)`` decreases in ``N``). This is
    Pearson's null-variance choice (``(O − E)²/E``, not Neyman's ``(O − E)²/O``) for the
    arms that fell short, keeping ``Q_i`` for the others. The same simulations gave 0.1 to
    2 false alarms per 1000 at the 0.001 threshold (2 only for 1,000-user experiments
    re-allocated every 20 users). ``W`` is referred to ``χ²(k − 1)``.

    Forced users (logged with ``p = 1``) are not randomised and bias the test slightly; users
    given a variant with a probability other than the logged one break it, which is what it is
    meant to find.

    References
    ----------
    .. [1] D. G. Horvitz and D. J. Thompson (1952), A generalization of sampling without
       replacement from a finite universe, JASA 47(260), 663-685.
    .. [2] P. Hall and C. C. Heyde (1980), *Martingale Limit Theory and Its Application*,
       Academic Press, chapter 3 (the martingale CLT with the realised variance).
    .. [3] A. Fabijan et al. (2019), Diagnosing Sample Ratio Mismatch in Online Controlled
       Experiments, KDD '19.

    Examples
    --------
    A fixed 30/70 split at a traffic share of 1: ``p`` is 0.3 or 0.7 for every user.

    >>> r = adaptive_sample_ratio_mismatch([3000, 7000], [3000 / 0.3, 7000 / 0.7],
    ...                                    [3000 / 0.09, 7000 / 0.49])
    >>> round(r.statistic, 6), round(r.p_value, 3), r.mismatch
    (0.0, 1.0, False)
    >>> r = adaptive_sample_ratio_mismatch([2700, 7000], [2700 / 0.3, 7000 / 0.7],
    ...                                    [2700 / 0.09, 7000 / 0.49])
    >>> r.mismatch, [round(e) for e in r.expected]
    (True, [2908, 6785])
    """
    counts = tuple(check_count(f"observed[{i}]", value) for i, value in enumerate(observed))
    k = len(counts)
    if k < 2:
        raise ValueError(f"observed must have at least 2 variants, got {k}")
    h = [
        _check_sum(f"inverse_probability_sums[{i}]", x)
        for i, x in enumerate(inverse_probability_sums)
    ]
    q = [
        _check_sum(f"inverse_probability_square_sums[{i}]", x)
        for i, x in enumerate(inverse_probability_square_sums)
    ]
    for name, values in (("inverse_probability_sums", h), ("inverse_probability_square_sums", q)):
        if len(values) != k:
            raise ValueError(f"{name} must have one entry per variant ({k}), got {len(values)}")
    level = check_open_unit("threshold", threshold)
    nothing = tuple(0.0 for _ in counts)
    if sum(counts) == 0:
        return _undefined(counts, nothing, level, "no_samples")
    if any(n == 0 for n in counts):
        return _undefined(counts, nothing, level, "empty_variant")
    slack = 1.0 - _RELATIVE_SLACK
    if any(hi < n * slack or qi < hi * slack for n, hi, qi in zip(counts, h, q, strict=True)):
        # p ≤ 1 gives Q_i ≥ H_i ≥ n_i: users whose probabilities were not recorded.
        return _undefined(counts, nothing, level, "missing_probabilities")

    consensus = _consensus(h, q)
    v = _variances(h, q, consensus)
    statistic = max(0.0, math.fsum((hi - consensus) ** 2 / vi for hi, vi in zip(h, v, strict=True)))
    df = k - 1
    p_value = float(_sp.chi2.sf(statistic, df))
    expected = tuple(n * consensus / hi for n, hi in zip(counts, h, strict=True))
    return SRMResult(statistic, p_value, df, counts, expected, level, p_value < level)
