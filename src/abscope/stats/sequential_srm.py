"""Sequential sample-ratio mismatch: an SRM check that stays valid however often it is run.

The chi-square check of :mod:`abscope.stats.srm` is a fixed-sample test: run on every look it
raises false alarms far more often than its threshold (30 daily looks at p < 0.05 flag about
29 in 100 healthy experiments, see ``tests/unit/test_sequential_srm.py``). The test here is
the Dirichlet-multinomial Bayes factor of Lindon and Malek (2022), a nonnegative martingale
under the configured split, so its running maximum exceeds ``1/α`` with probability at most
``α`` over *all* looks, however many there are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike
from scipy.special import gammaln

from abscope.stats._validate import (
    check_count,
    check_finite,
    check_open_unit,
    check_positive,
    check_weights,
)
from abscope.stats.srm import DEFAULT_SRM_THRESHOLD

__all__ = [
    "DEFAULT_CONCENTRATION",
    "SequentialSRMResult",
    "log_bayes_factors",
    "sequential_sample_ratio_mismatch",
]

DEFAULT_CONCENTRATION = 100.0
"""The prior's total pseudo-count ``c``: ``α_i = c · w_i`` (the authors' default, 100)."""

_MAX_LOG = math.log(np.finfo(np.float64).max)


@dataclass(frozen=True, slots=True)
class SequentialSRMResult:
    """Outcome of the sequential (Dirichlet-multinomial) sample-ratio test at one look.

    Attributes
    ----------
    log_bayes_factor : float or None
        ``log BF`` at the current counts: the log e-value of the configured split.
    max_log_bayes_factor : float or None
        The running maximum of ``log BF`` over this look and the earlier ones the caller
        passed in (``previous_max_log_bayes_factor``); carry it to the next look.
    p_value : float or None
        The always-valid p-value ``min(1, 1 / max BF)``.
    observed, expected : tuple
        Users per variant and ``N · w_i``.
    concentration : float
        The prior's total pseudo-count ``c``.
    threshold : float
        ``mismatch`` is ``p_value < threshold``.
    mismatch : bool
        Whether the split is rejected; once rejected it stays rejected for as long as the
        caller carries the running maximum.
    reason : str or None
        ``"no_samples"`` when no user has been counted yet (every figure is then ``None`` and
        there is no mismatch).
    """

    log_bayes_factor: float | None
    max_log_bayes_factor: float | None
    p_value: float | None
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    concentration: float
    threshold: float
    mismatch: bool
    reason: str | None = None

    @property
    def bayes_factor(self) -> float | None:
        """``BF`` at the current counts (capped at the largest float, never ``inf``)."""
        if self.log_bayes_factor is None:
            return None
        return math.exp(min(self.log_bayes_factor, _MAX_LOG))


def log_bayes_factors(
    counts: ArrayLike, weights: Sequence[float], concentration: float
) -> npt.NDArray[np.float64]:
    """``log BF`` of the Dirichlet-multinomial test for every row of counts, vectorised.

    Parameters
    ----------
    counts : array_like, shape (..., K)
        Users per variant (whole numbers ``>= 0``); leading dimensions are looks or runs.
    weights : sequence of float
        The configured split ``w``, each ``> 0``, summing to 1.
    concentration : float
        The prior's total pseudo-count ``c > 0`` (``α_i = c w_i``).

    Returns
    -------
    ndarray, shape (...)
        ``log BF`` per row (see :func:`sequential_sample_ratio_mismatch` for the formula).

    Examples
    --------
    The first user never moves the Bayes factor (``α_i / c = w_i``); evidence builds later:

    >>> np.round(log_bayes_factors([[0, 0], [1, 0], [600, 400]], [0.5, 0.5], 100.0), 3).tolist()
    [0.0, 0.0, 17.099]
    """
    n = np.asarray(counts, dtype=np.float64)
    if n.ndim == 0 or n.shape[-1] < 2:
        raise ValueError(f"counts must have shape (..., K) with K >= 2, got {n.shape}")
    if not np.all(np.isfinite(n)) or np.any(n < 0) or np.any(n != np.floor(n)):
        raise ValueError("counts must be non-negative whole numbers")
    w = np.asarray(check_weights(tuple(weights), n.shape[-1]))
    c = check_positive("concentration", concentration)
    alpha = c * w
    total = np.sum(n, axis=-1)
    log_marginal = (
        gammaln(c) - gammaln(c + total) + np.sum(gammaln(alpha + n) - gammaln(alpha), axis=-1)
    )
    log_null = np.sum(n * np.log(w), axis=-1)
    return np.asarray(log_marginal - log_null, dtype=np.float64)


def sequential_sample_ratio_mismatch(
    observed: Sequence[int],
    weights: Sequence[float],
    *,
    concentration: float = DEFAULT_CONCENTRATION,
    threshold: float = DEFAULT_SRM_THRESHOLD,
    previous_max_log_bayes_factor: float | None = None,
) -> SequentialSRMResult:
    r"""Anytime-valid SRM test: the Dirichlet-multinomial Bayes factor against the weights.

    Parameters
    ----------
    observed : sequence of int
        Users per variant so far (two or more variants), cumulative over the phase.
    weights : sequence of float
        The configured split ``w``, each ``> 0``, summing to 1 within 1e-9. It must not change
        during the phase: a new split starts a new test (new counts, no carried maximum).
    concentration : float, default 100
        The prior's total pseudo-count ``c``: under the alternative the split ``θ`` is drawn
        from ``Dirichlet(c w)``, centred on ``w`` with ``Var θ_i = w_i (1 − w_i) / (c + 1)``.
        A small ``c`` spreads the prior wide and catches gross mismatches with few users; a
        large ``c`` concentrates it near ``w`` and catches small imbalances sooner once the
        counts pass about ``c``. Any ``c > 0`` keeps the false-alarm guarantee.
    threshold : float, default 0.001
        ``α``: flag a mismatch when the always-valid ``p < α``, i.e. ``max BF > 1/α``. The
        probability of *ever* flagging a healthy experiment, over all looks, is at most ``α``.
    previous_max_log_bayes_factor : float, optional
        The ``max_log_bayes_factor`` of the previous look of this phase, ``>= 0``; omit it at
        the first look (or when the caller keeps no state, see the notes).

    Returns
    -------
    SequentialSRMResult
        With no users at all every figure is ``None``, ``reason = "no_samples"`` and there
        is no mismatch.

    Raises
    ------
    ValueError
        If a count is not a whole number, the weights are invalid, or ``concentration``,
        ``threshold`` or ``previous_max_log_bayes_factor`` is out of range; the message names
        the argument.

    Notes
    -----
    **The Bayes factor.** Let users arrive one by one, each given variant ``i`` with
    probability ``θ_i``; under the null ``θ = w``. Mixing the alternative over the prior
    ``θ ~ Dirichlet(α)``, ``α = c w``, the likelihood ratio of the sequence after ``n_i``
    users per variant, ``N = Σ n_i``, is

    .. math:: \mathrm{BF}_N = \frac{B(\alpha + n)}{B(\alpha)} \prod_i w_i^{-n_i}, \qquad
              B(a) = \frac{\prod_i \Gamma(a_i)}{\Gamma(\sum_i a_i)},

    computed as ``log BF = lnΓ(c) − lnΓ(c + N) + Σ_i [lnΓ(α_i + n_i) − lnΓ(α_i)] − Σ_i n_i ln
    w_i``. It depends on the counts only (the Dirichlet-multinomial predictive is
    exchangeable), and equals the product over users of ``(α_i + n_i^{before}) / (c +
    N^{before}) / w_i``, which is how it is checked.

    **Why it is valid under peeking.** Under the null each factor has mean 1 given the past,
    so ``BF_N`` is a nonnegative martingale with ``BF_0 = 1``, and Ville's inequality gives
    ``P(sup_N BF_N ≥ 1/α) ≤ α``. Looks are a subsequence of users, so the same bound holds
    for any schedule of looks, chosen in any way.

    **The p-value, and the state a caller keeps.** ``p_N = min(1, 1 / max_{t≤N} BF_t)``
    (Lindon and Malek's sequential p-value) is non-increasing, and
    ``P(∃N: p_N ≤ α) ≤ α``: this is what ``p_value`` is when the caller passes the previous
    look's ``max_log_bayes_factor`` back in each time. A caller that keeps no state (the
    store has only the current counts) passes nothing and gets ``min(1, 1/BF_N)``. That is
    a valid p-value too, at every look and even at a look picked after the fact:
    it is never below the running-maximum one, so ``P(∃N: 1/BF_N ≤ α) = P(sup BF ≥ 1/α) ≤
    α``. Flagging at the first look where the current p is below α, and keeping the flag,
    flags exactly the runs the running maximum flags; what is lost without the state is only
    the p-value shown afterwards, which can rise again after a dip (and ``mismatch``, which
    then clears, so a stateless caller must latch it). The running maximum is a maximum over
    the looks made, not over every user, so it too is bounded by ``sup BF``.

    The counts must be of users randomised with probabilities ``w`` independently of one
    another (sticky hashing does this); a split that changes mid-phase (a ramp of the
    weights) breaks the martingale, and adaptive traffic needs
    :mod:`abscope.stats.adaptive_srm` instead.

    References
    ----------
    .. [1] M. Lindon and A. Malek (2022), Anytime-valid inference for multinomial count data,
       Advances in Neural Information Processing Systems 35 (NeurIPS 2022).
    .. [2] J. Ville (1939), *Étude critique de la notion de collectif*, Gauthier-Villars
       (the maximal inequality for nonnegative supermartingales).

    Examples
    --------
    >>> r = sequential_sample_ratio_mismatch([5000, 5200], [0.5, 0.5])
    >>> round(r.log_bayes_factor, 3), round(r.p_value, 3), r.mismatch
    (-0.378, 1.0, False)
    >>> r = sequential_sample_ratio_mismatch([50000, 52000], [0.5, 0.5])
    >>> r.p_value < 1e-4, r.mismatch
    (True, True)
    >>> later = sequential_sample_ratio_mismatch(
    ...     [51000, 52500], [0.5, 0.5], previous_max_log_bayes_factor=r.max_log_bayes_factor)
    >>> later.max_log_bayes_factor >= r.max_log_bayes_factor, later.mismatch
    (True, True)
    """
    counts = tuple(check_count(f"observed[{i}]", value) for i, value in enumerate(observed))
    if len(counts) < 2:
        raise ValueError(f"observed must have at least 2 variants, got {len(counts)}")
    shares = check_weights(tuple(weights), len(counts))
    c = check_positive("concentration", concentration)
    level = check_open_unit("threshold", threshold)
    previous = 0.0
    if previous_max_log_bayes_factor is not None:
        previous = check_finite("previous_max_log_bayes_factor", previous_max_log_bayes_factor)
        if previous < 0.0:
            raise ValueError(
                "previous_max_log_bayes_factor must be >= 0 (BF starts at 1), "
                f"got {previous_max_log_bayes_factor!r}"
            )
    total = sum(counts)
    expected = tuple(total * w for w in shares)
    if total == 0:
        return SequentialSRMResult(
            None, None, None, counts, expected, c, level, False, "no_samples"
        )
    log_bf = float(log_bayes_factors(counts, shares, c))
    running = max(previous, log_bf)
    p_value = math.exp(-running) if running > 0.0 else 1.0
    return SequentialSRMResult(
        log_bf, running, p_value, counts, expected, c, level, p_value < level
    )
