r"""Arm means and effects from adaptively allocated traffic, weighted by the logged probabilities.

A bandit sends more users to an arm while it looks good by luck and fewer while it looks bad,
so the plain mean of each arm is biased (downwards, for the arms it starves). Every exposure
logs ``p``, the probability with which the user was given the variant, and weighting each
user by a function of ``p`` undoes the bias. Every estimator here is a function of a few
per-variant sums that a store can keep exactly and merge by addition
(:class:`WeightedSums`); none needs per-user data.

========================  ==================================================================
method                    estimate of arm ``a``'s mean ``μ_a`` and its standard error
========================  ==================================================================
``"naive"``               ``Σy / n``, Welch's ``s/√n``: biased under adaptive allocation,
                          shown for comparison
``"horvitz_thompson"``    ``Σ y/p / N`` over the ``N`` users randomised (every arm)
``"hajek"``               ``Σ y/p / Σ 1/p``: the weights normalised, no ``N`` needed
``"aipw"``                ``m_a + Σ (y − m_a)/p / N`` with a fixed outcome model ``m_a``
``"stabilized"``          ``Σ y/√p / Σ 1/√p``: square-root weights, whose variance does not
                          depend on the allocation; the intervals to show, but the point
                          estimate has an ``O(1/n)`` bias towards the naive mean
========================  ==================================================================

What the Thompson simulations (floor 0.01, ``benchmarks/calibration.py``, 2,000 runs of
5,000 to 50,000 users) show: the naive mean is biased down, by up to 0.6 of its standard
error, for an arm the policy starves and for both arms of an A/A test; Horvitz-Thompson,
Hájek and AIPW are unbiased to within their Monte Carlo error. Their plain 95% intervals are
not reliable under adaptivity: 93-96% when one arm is clearly better, but up to 98% for the
difference in an A/A test, whose allocation never settles, and 88% when the starved arm has
a dozen conversions. The square-root-weighted intervals stay within 2 points of 95% in every
scenario from 20,000 users on; their point estimate's bias is at most about a quarter of
its standard error and shrinks as ``1/n``. With a dozen conversions in an arm no Wald
interval here covers. So report the Hájek estimate as the unbiased one, and the
square-root-weighted interval as the interval.

The sums (per variant, over its users; ``y`` is the user's outcome, 0/1 for a conversion, the
user's total for a value metric):

=========================================  ============  ==================================
field                                      sum           kept today?
=========================================  ============  ==================================
``samples``                                ``n``         yes
``value_sum``                              ``Σ y``       yes (``conversions``/``value_sum``)
``value_square_sum``                       ``Σ y²``      yes (``value_sum_squares``; for
                                                         0/1 outcomes it is ``Σ y``)
``inverse_probability_sum``                ``Σ 1/p``     yes
``inverse_probability_square_sum``         ``Σ 1/p²``    yes
``inverse_sqrt_probability_sum``           ``Σ 1/√p``    new
``value_inverse_probability_sum``          ``Σ y/p``     new
``value_inverse_probability_square_sum``   ``Σ y/p²``    new
``value_inverse_sqrt_probability_sum``     ``Σ y/√p``    new
``square_inverse_probability_sum``         ``Σ y²/p``    new (``Σ y/p`` for 0/1 outcomes)
``square_inverse_probability_square_sum``  ``Σ y²/p²``   new (``Σ y/p²`` for 0/1 outcomes)
=========================================  ============  ==================================

A conversion adds ``1/p``, ``1/p²`` and ``1/√p`` with the ``p`` of the user's exposure, so
the store must remember each user's ``p`` beside their variant. A value ``v`` added to a
user whose running total is ``t`` adds ``v/p``, ``v/p²`` and ``v/√p`` to the linear sums and
``(2tv + v²)/p`` and ``(2tv + v²)/p²`` to the square sums, as ``value_sum_squares`` does
today; ``Σ 1/√p`` is added at the exposure.

The AIPW estimator with the usual *adaptive* outcome model (the arm's running mean at each
user's arrival) is not computable from these sums: its score has a term ``m̂_t(a)`` for
every user of every arm, so the store would have to add the current mean of every arm to
per-arm sums at each exposure. The square-root weights of Hadad et al. (2021) likewise need
``p_t(a)`` for users *not* given arm ``a``, which is not logged (only the chosen arm's
probability is). What is kept instead: AIPW with an outcome model ``m_a`` fixed before the
phase (for example the arm's mean in the previous phase); with ``m_a`` set to the Hájek
mean it *is* the Hájek estimator. And the square-root weights on the arm's own users, with
the Hájek normalisation, which is the adaptively weighted M-estimator of Zhang, Janson and
Murphy (2021) and needs only ``Σ 1/√p``, ``Σ y/√p``, ``Σ y/p``, ``Σ y²/p`` and ``Σ 1/p``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Literal, cast, get_args

from abscope.stats._validate import check_count, check_finite, check_open_unit
from abscope.stats.proportions import z_critical
from abscope.stats.results import EffectEstimate, Interval

__all__ = [
    "AdaptiveMethod",
    "WeightedSums",
    "adaptive_difference",
    "adaptive_mean",
]

AdaptiveMethod = Literal["naive", "horvitz_thompson", "hajek", "aipw", "stabilized"]
"""The estimators of this module (see the table in the module docstring)."""

_RELATIVE_SLACK = 1e-9  # float sums of 1/p may fall a hair below the count
_CANCELLATION = 1e-12  # a sum of squares expanded from its terms is 0 below this share of them


def _expanded(*terms: float) -> float:
    """``Σ terms`` for a sum of squares expanded into its terms: 0 when it is rounding."""
    total = math.fsum(terms)
    return 0.0 if total <= _CANCELLATION * math.fsum(abs(t) for t in terms) else total


@dataclass(frozen=True, slots=True)
class WeightedSums:
    """One variant's sums over its users, each user weighted by its logged probability ``p``.

    The fields are the sums of the module docstring's table. Sums of disjoint sets of users
    add (``a + b``). :meth:`from_users` builds them from per-user outcomes and probabilities.

    Examples
    --------
    >>> s = WeightedSums.from_users([1.0, 0.0, 1.0], [0.5, 0.25, 0.5])
    >>> s.samples, s.inverse_probability_sum, s.value_inverse_probability_sum
    (3, 8.0, 4.0)
    >>> (s + s).samples
    6
    """

    samples: int = 0
    value_sum: float = 0.0
    value_square_sum: float = 0.0
    inverse_probability_sum: float = 0.0
    inverse_probability_square_sum: float = 0.0
    inverse_sqrt_probability_sum: float = 0.0
    value_inverse_probability_sum: float = 0.0
    value_inverse_probability_square_sum: float = 0.0
    value_inverse_sqrt_probability_sum: float = 0.0
    square_inverse_probability_sum: float = 0.0
    square_inverse_probability_square_sum: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "samples", check_count("samples", self.samples))
        for field in fields(self)[1:]:
            value = check_finite(field.name, getattr(self, field.name))
            object.__setattr__(self, field.name, value)
        for name in (
            "value_square_sum",
            "inverse_probability_sum",
            "inverse_probability_square_sum",
            "inverse_sqrt_probability_sum",
            "square_inverse_probability_sum",
            "square_inverse_probability_square_sum",
        ):
            if getattr(self, name) < 0.0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)!r}")

    def __add__(self, other: WeightedSums) -> WeightedSums:
        if not isinstance(other, WeightedSums):
            return NotImplemented
        return WeightedSums(
            self.samples + other.samples,
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)[1:]),
        )

    @classmethod
    def from_users(cls, values: Iterable[float], probabilities: Iterable[float]) -> WeightedSums:
        """The sums over users with outcomes ``values`` and logged ``probabilities`` in (0, 1]."""
        ys = [check_finite(f"values[{i}]", y) for i, y in enumerate(values)]
        ps = [check_finite(f"probabilities[{i}]", p) for i, p in enumerate(probabilities)]
        if len(ys) != len(ps):
            raise ValueError(
                f"probabilities must have one entry per value ({len(ys)}), got {len(ps)}"
            )
        for i, p in enumerate(ps):
            if not 0.0 < p <= 1.0:
                raise ValueError(f"probabilities[{i}] must be in (0, 1], got {p!r}")
        pairs = list(zip(ys, ps, strict=True))
        return cls(
            samples=len(ys),
            value_sum=math.fsum(ys),
            value_square_sum=math.fsum(y * y for y in ys),
            inverse_probability_sum=math.fsum(1.0 / p for p in ps),
            inverse_probability_square_sum=math.fsum(1.0 / (p * p) for p in ps),
            inverse_sqrt_probability_sum=math.fsum(1.0 / math.sqrt(p) for p in ps),
            value_inverse_probability_sum=math.fsum(y / p for y, p in pairs),
            value_inverse_probability_square_sum=math.fsum(y / (p * p) for y, p in pairs),
            value_inverse_sqrt_probability_sum=math.fsum(y / math.sqrt(p) for y, p in pairs),
            square_inverse_probability_sum=math.fsum(y * y / p for y, p in pairs),
            square_inverse_probability_square_sum=math.fsum(y * y / (p * p) for y, p in pairs),
        )


def _check_method(method: str) -> AdaptiveMethod:
    if method in get_args(AdaptiveMethod):
        return cast(AdaptiveMethod, method)
    raise ValueError(f"method must be one of {', '.join(get_args(AdaptiveMethod))}; got {method!r}")


def _check_total(total: int | None, method: str, *arms: WeightedSums) -> int:
    if total is None:
        raise ValueError(f"total is required for method {method!r} (users randomised, all arms)")
    count = check_count("total", total)
    if count < sum(arm.samples for arm in arms):
        raise ValueError(f"total must be at least the arms' users, got {total!r}")
    return count


def _degenerate(sums: WeightedSums, method: AdaptiveMethod) -> str | None:
    if sums.samples == 0:
        return "no_samples"
    if method == "naive":
        return None
    slack = 1.0 - _RELATIVE_SLACK
    h, q, g = (
        sums.inverse_probability_sum,
        sums.inverse_probability_square_sum,
        sums.inverse_sqrt_probability_sum,
    )
    # p ≤ 1 gives Σ1/p² ≥ Σ1/p ≥ Σ1/√p ≥ n: otherwise some probabilities were not recorded.
    if g < sums.samples * slack or h < g * slack or q < h * slack:
        return "missing_probabilities"
    return None


def _estimate(value: float, variance: float, confidence_level: float) -> EffectEstimate:
    se = math.sqrt(max(variance, 0.0))
    if se == 0.0:
        return EffectEstimate(value, 0.0, None, "zero_variance")
    half = z_critical(confidence_level) * se
    return EffectEstimate(value, se, Interval(value - half, value + half, confidence_level))


def _residual_sums(s: WeightedSums, m: float) -> tuple[float, float]:
    """``Σ (y − m)/p`` and ``Σ (y − m)²/p²`` over the arm's users."""
    linear = s.value_inverse_probability_sum - m * s.inverse_probability_sum
    square = _expanded(
        s.square_inverse_probability_square_sum,
        -2.0 * m * s.value_inverse_probability_square_sum,
        m * m * s.inverse_probability_square_sum,
    )
    return linear, square


def _point_and_variance(
    s: WeightedSums, method: AdaptiveMethod, total: int, m: float
) -> tuple[float, float]:
    """An arm's estimate and its variance (before the degenerate cases are sorted out)."""
    n = s.samples
    if method == "naive":
        mean = s.value_sum / n
        if n < 2:
            return mean, math.nan
        ss = _expanded(s.value_square_sum, -n * mean * mean)
        return mean, ss / (n - 1) / n
    if method == "hajek":
        mean = s.value_inverse_probability_sum / s.inverse_probability_sum
        _, square = _residual_sums(s, mean)
        return mean, square / s.inverse_probability_sum**2 if n > 1 else math.nan
    if method == "stabilized":
        g = s.inverse_sqrt_probability_sum
        mean = s.value_inverse_sqrt_probability_sum / g
        square = _expanded(
            s.square_inverse_probability_sum,
            -2.0 * mean * s.value_inverse_probability_sum,
            mean * mean * s.inverse_probability_sum,
        )
        return mean, square / g**2 if n > 1 else math.nan
    # Horvitz-Thompson is AIPW with the outcome model 0.
    linear, square = _residual_sums(s, m)
    mean = m + linear / total
    if total < 2:
        return mean, math.nan
    # Σ_t Γ_t² over all N users, less N μ̂².
    centred = _expanded(total * m * m, 2.0 * m * linear, square, -total * mean * mean)
    return mean, centred / (total * (total - 1))


def adaptive_mean(
    sums: WeightedSums,
    method: AdaptiveMethod,
    *,
    total: int | None = None,
    outcome_model: float = 0.0,
    confidence_level: float = 0.95,
) -> EffectEstimate:
    r"""One arm's mean from adaptively allocated traffic, with a normal interval.

    Parameters
    ----------
    sums : WeightedSums
        The arm's sums.
    method : {"naive", "horvitz_thompson", "hajek", "aipw", "stabilized"}
        The estimator (module docstring).
    total : int, optional
        ``N``, the users randomised in the phase over every arm, the ones the logged
        probabilities refer to. Required by ``"horvitz_thompson"`` and ``"aipw"``. With a
        traffic share below 1, ``p`` includes the share and ``N`` is the arrivals, entered
        or not; the other methods do not depend on it.
    outcome_model : float, default 0
        ``m_a`` for ``"aipw"``: a prediction of the arm's mean fixed before the phase (the
        previous phase's mean, a planned baseline). It changes the variance, not the bias.
    confidence_level : float, default 0.95
        Of the interval ``estimate ± z SE``.

    Returns
    -------
    EffectEstimate
        ``reason`` is ``"no_samples"`` (no users: all ``None``), ``"missing_probabilities"``
        (sums that contradict ``p ≤ 1``, e.g. users counted before the store kept them: all
        ``None``), ``"insufficient_samples"`` (one user, or ``N = 1``: no standard error)
        or ``"zero_variance"`` (SE 0: the estimate, no interval).

    Notes
    -----
    User ``t`` arrives, the policy gives arm ``a`` with probability ``π_t(a)`` set by the
    past, and ``I_t(a)`` says whether it did. For outcomes with mean ``μ_a`` given the past,
    ``Γ_t = m_a + I_t(a)(y_t − m_a)/π_t(a)`` has conditional mean ``μ_a``, so

    .. math:: \hat\mu^{\mathrm{AIPW}}_a = \frac1N \sum_{t=1}^N Γ_t
              = m_a + \frac1N \sum_{t \in a} \frac{y_t - m_a}{p_t},
              \qquad \widehat{\mathrm{Var}} = \frac{\sum_t Γ_t^2 - N \hat\mu^2}{N (N - 1)},

    with ``Σ_t Γ_t² = N m² + 2m Σ_a (y − m)/p + Σ_a (y − m)²/p²``; ``m_a = 0`` is the
    Horvitz-Thompson estimator ``Σ_a y/p / N``. It is unbiased for any fixed ``m_a``
    (Horvitz and Thompson 1952; the augmentation is that of Robins, Rotnitzky and Zhao 1994).
    Hájek's estimator divides by ``Σ_a 1/p`` instead of ``N``, and its linearised variance is
    ``Σ_a (y − μ̂)²/p² / (Σ_a 1/p)²`` (Hájek 1971): consistent, and invariant when every
    ``p`` is scaled by the same factor.

    These variances are the martingale ones; their intervals need the conditional variance
    ``Σ_t σ²/π_t`` to settle, which adaptive allocation does not guarantee, and they
    under-cover when an arm is starved (Hadad et al. 2021). The ``"stabilized"`` method
    weights the arm's users by ``1/√p`` (the square-root importance weights of Zhang,
    Janson and Murphy 2021, which Hadad et al. apply to the AIPW score):

    .. math:: \hat\mu^{\mathrm{stab}}_a = \frac{\sum_{t\in a} y_t/\sqrt{p_t}}
              {\sum_{t\in a} 1/\sqrt{p_t}}, \qquad \widehat{\mathrm{Var}} =
              \frac{\sum_{t\in a} (y_t - \hat\mu)^2/p_t}{(\sum_{t\in a} 1/\sqrt{p_t})^2}.

    The numerator's error ``Σ_t I_t(a)(y_t − μ_a)/√π_t`` is a martingale whose conditional
    variance ``Σ_t π_t σ²/π_t = N σ²`` does not depend on the allocation, so the
    self-normalised statistic is asymptotically normal whatever the policy does. Its
    denominator, though, estimates ``Σ_t √π_t``, which the policy moves with the arm's luck
    (Hájek's estimates ``N``, which it cannot), so in finite samples it is biased towards the
    naive mean: about a fifth of its standard error for the starved arm of the simulations.

    References
    ----------
    .. [1] D. G. Horvitz and D. J. Thompson (1952), A generalization of sampling without
       replacement from a finite universe, JASA 47(260), 663-685.
    .. [2] J. Hájek (1971), Comment on a paper by D. Basu, in *Foundations of Statistical
       Inference*, Holt, Rinehart and Winston, 236.
    .. [3] J. M. Robins, A. Rotnitzky and L. P. Zhao (1994), Estimation of regression
       coefficients when some regressors are not always observed, JASA 89(427), 846-866.
    .. [4] V. Hadad, D. A. Hirshberg, R. Zhan, S. Wager and S. Athey (2021), Confidence
       intervals for policy evaluation in adaptive experiments, PNAS 118(15), e2014602118.
    .. [5] K. W. Zhang, L. Janson and S. A. Murphy (2021), Statistical inference with
       M-estimators on adaptively collected data, NeurIPS 34.

    Examples
    --------
    Two users at ``p = 1/2`` (one converted) and one at ``p = 1/4`` who did not:

    >>> s = WeightedSums.from_users([1.0, 0.0, 0.0], [0.5, 0.5, 0.25])
    >>> adaptive_mean(s, "hajek").estimate
    0.25
    >>> adaptive_mean(s, "horvitz_thompson", total=4).estimate
    0.5
    >>> round(adaptive_mean(s, "stabilized").estimate, 4)
    0.2929
    """
    chosen = _check_method(method)
    level = check_open_unit("confidence_level", confidence_level)
    m = check_finite("outcome_model", outcome_model)
    if chosen == "horvitz_thompson":
        m = 0.0
    n_total = _check_total(total, chosen, sums) if chosen in ("horvitz_thompson", "aipw") else 0
    reason = _degenerate(sums, chosen)
    if reason is not None:
        return EffectEstimate.undefined(reason)
    mean, variance = _point_and_variance(sums, chosen, n_total, m)
    if math.isnan(variance):
        return EffectEstimate(mean, None, None, "insufficient_samples")
    return _estimate(mean, variance, level)


def adaptive_difference(
    treatment: WeightedSums,
    control: WeightedSums,
    method: AdaptiveMethod,
    *,
    total: int | None = None,
    outcome_models: tuple[float, float] = (0.0, 0.0),
    confidence_level: float = 0.95,
) -> EffectEstimate:
    r"""The difference ``μ_treatment − μ_control`` from adaptively allocated traffic.

    Parameters
    ----------
    treatment, control : WeightedSums
        The two arms' sums.
    method, total, confidence_level
        As for :func:`adaptive_mean`.
    outcome_models : tuple of float, default (0, 0)
        ``(m_treatment, m_control)`` for ``"aipw"``.

    Returns
    -------
    EffectEstimate
        With the reasons of :func:`adaptive_mean` (the first arm's reason wins).

    Notes
    -----
    A user is in one arm only, so for ``"hajek"``, ``"stabilized"`` and ``"naive"`` the two
    arms' errors are uncorrelated martingales and ``Var = V_t + V_c``. For AIPW (and HT) the
    score of the difference is ``D_t = Γ_t(t) − Γ_t(c)`` over all ``N`` users, with
    ``Σ D_t² = N (m_t − m_c)² + 2 (m_t − m_c)(r_t − r_c) + Σ_t (y−m_t)²/p² + Σ_c (y−m_c)²/p²``,
    ``r_a = Σ_a (y − m_a)/p``, and ``Var = (Σ D² − N Δ̂²) / (N (N − 1))``, which keeps the
    negative covariance the shared ``N`` induces.

    Examples
    --------
    >>> t = WeightedSums.from_users([1.0, 1.0, 0.0, 1.0], [0.8, 0.8, 0.8, 0.5])
    >>> c = WeightedSums.from_users([0.0, 1.0, 0.0], [0.2, 0.5, 0.5])
    >>> round(adaptive_difference(t, c, "hajek").estimate, 4)
    0.5604
    """
    chosen = _check_method(method)
    level = check_open_unit("confidence_level", confidence_level)
    if len(outcome_models) != 2:
        raise ValueError(f"outcome_models must have 2 entries, got {len(outcome_models)}")
    m_t = check_finite("outcome_models[0]", outcome_models[0])
    m_c = check_finite("outcome_models[1]", outcome_models[1])
    if chosen == "horvitz_thompson":
        m_t = m_c = 0.0
    scored = chosen in ("horvitz_thompson", "aipw")
    n_total = _check_total(total, chosen, treatment, control) if scored else 0
    for arm in (treatment, control):
        reason = _degenerate(arm, chosen)
        if reason is not None:
            return EffectEstimate.undefined(reason)
    mean_t, var_t = _point_and_variance(treatment, chosen, n_total, m_t)
    mean_c, var_c = _point_and_variance(control, chosen, n_total, m_c)
    diff = mean_t - mean_c
    if not scored:
        variance = var_t + var_c
    elif n_total < 2:
        variance = math.nan
    else:
        r_t, sq_t = _residual_sums(treatment, m_t)
        r_c, sq_c = _residual_sums(control, m_c)
        gap = m_t - m_c
        centred = _expanded(
            n_total * gap * gap, 2.0 * gap * (r_t - r_c), sq_t, sq_c, -n_total * diff * diff
        )
        variance = centred / (n_total * (n_total - 1))
    if math.isnan(variance):
        return EffectEstimate(diff, None, None, "insufficient_samples")
    return _estimate(diff, variance, level)
