"""Bayesian comparison of two variants: chance to beat control and expected loss.

A binary metric gets a conjugate Beta posterior per variant; a continuous metric gets the
normal approximation to the posterior of its mean. For two variants this module computes

* the *chance to beat control* ``P(θ_t > θ_c)``, and
* the *expected loss* of choosing one variant, ``E[max(θ_other − θ_chosen, 0)]``: how much
  metric is given up, on average over the posterior, if the choice turns out wrong.

Both are computed exactly (numerical quadrature or closed forms), never by sampling, so they
are reproducible and accurate in the far tails. With more than two arms the probability of
being best is estimated by seeded Monte Carlo (:func:`prob_best`).

Independence of the arms' posteriors is assumed throughout (separate users per variant).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import integrate, special

from abscope.stats._validate import check_count, check_finite, check_open_unit, check_positive
from abscope.stats.sufficient import MeanStats, ProportionStats

__all__ = [
    "BayesianComparison",
    "BayesianReason",
    "BetaPosterior",
    "NormalPosterior",
    "compare_means_bayes",
    "compare_proportions_bayes",
    "expected_loss",
    "expected_loss_normal",
    "prob_beats",
    "prob_beats_normal",
    "prob_best",
]

BayesianReason = Literal["no_samples", "insufficient_samples", "zero_variance", "not_computed"]
"""Why a comparison's figures are undefined (``None``).

The codes are those of :mod:`abscope.stats.results`. ``"no_samples"``: an arm has no users.
``"insufficient_samples"``: an arm has a single user, so the variance of its mean cannot be
estimated. ``"zero_variance"``: within each arm every value is identical, so the normal
approximation has no spread. A binary metric never needs them: without data the posterior
is the prior. ``"not_computed"``: the caller asked for no Bayesian view
(:class:`abscope.stats.analysis.AnalysisOptions` ``bayesian=False``).
"""

# Mass left out in each tail when integrating a Beta density: far below the 1e-10 target.
_TAIL = 1e-15
_EPSREL = 1e-12
_QUAD_LIMIT = 200
_SMALLEST = math.ulp(0.0)
_BELOW_ONE = 1.0 - math.ulp(1.0) / 2.0


@dataclass(frozen=True, slots=True)
class BetaPosterior:
    """Beta(``alpha``, ``beta``) posterior of a conversion rate.

    Parameters
    ----------
    alpha, beta : float
        Shape parameters, both > 0. After observing ``k`` conversions out of ``n`` users
        under a Beta(a0, b0) prior they are ``a0 + k`` and ``b0 + n − k``.

    Notes
    -----
    Mean ``α / (α + β)``, variance ``αβ / ((α + β)² (α + β + 1))``.

    Examples
    --------
    >>> post = BetaPosterior.from_stats(ProportionStats(n=100, conversions=10))
    >>> post
    BetaPosterior(alpha=11.0, beta=91.0)
    >>> round(post.mean, 4)
    0.1078
    >>> [round(x, 4) for x in post.interval(0.95)]
    [0.0556, 0.1746]
    """

    alpha: float
    beta: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", check_positive("alpha", self.alpha))
        object.__setattr__(self, "beta", check_positive("beta", self.beta))

    @classmethod
    def from_stats(
        cls, stats: ProportionStats, prior_alpha: float = 1.0, prior_beta: float = 1.0
    ) -> BetaPosterior:
        """Conjugate update of a Beta(``prior_alpha``, ``prior_beta``) prior (default uniform)."""
        a0 = check_positive("prior_alpha", prior_alpha)
        b0 = check_positive("prior_beta", prior_beta)
        return cls(a0 + stats.conversions, b0 + stats.n - stats.conversions)

    @property
    def mean(self) -> float:
        """Posterior mean ``α / (α + β)``."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def variance(self) -> float:
        """Posterior variance ``αβ / ((α + β)² (α + β + 1))``."""
        total = self.alpha + self.beta
        return self.alpha * self.beta / (total * total * (total + 1.0))

    @property
    def std(self) -> float:
        """Posterior standard deviation."""
        return math.sqrt(self.variance)

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Equal-tailed credible interval holding posterior mass ``level``."""
        tail = (1.0 - check_open_unit("level", level)) / 2.0
        lower = float(special.betaincinv(self.alpha, self.beta, tail))
        upper = float(special.betainccinv(self.alpha, self.beta, tail))
        return lower, upper

    def sample(self, rng: np.random.Generator, size: int) -> NDArray[np.float64]:
        """``size`` independent draws from the posterior."""
        return rng.beta(self.alpha, self.beta, size=size)


@dataclass(frozen=True, slots=True)
class NormalPosterior:
    """Normal N(``mean``, ``variance``) posterior of a metric's mean.

    Parameters
    ----------
    mean : float
        Posterior mean.
    variance : float
        Posterior variance, ≥ 0 (0 is a point mass).

    Notes
    -----
    Under a flat prior and the central limit theorem, the posterior of a population mean
    given ``n`` values with sample mean ``x̄`` and sample variance ``s²`` is approximately
    ``N(x̄, s² / n)`` (Gelman et al., *Bayesian Data Analysis*, 3rd ed., section 4.1).

    Examples
    --------
    >>> post = NormalPosterior.from_stats(MeanStats.from_moments(n=400, mean=10.0, std=4.0))
    >>> post
    NormalPosterior(mean=10.0, variance=0.04)
    >>> [round(x, 3) for x in post.interval(0.95)]
    [9.608, 10.392]
    """

    mean: float
    variance: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", check_finite("mean", self.mean))
        variance = check_finite("variance", self.variance)
        if variance < 0:
            raise ValueError(f"variance must be non-negative, got {variance!r}")
        object.__setattr__(self, "variance", variance)

    @classmethod
    def from_stats(cls, stats: MeanStats) -> NormalPosterior:
        """``N(x̄, s²/n)``; ``stats`` needs at least 2 values to estimate ``s²``."""
        if stats.n < 2:
            raise ValueError(f"stats must hold at least 2 values, got n={stats.n}")
        return cls(stats.mean, stats.variance / stats.n)

    @property
    def std(self) -> float:
        """Posterior standard deviation."""
        return math.sqrt(self.variance)

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Equal-tailed credible interval ``mean ± z·std`` holding mass ``level``."""
        tail = (1.0 - check_open_unit("level", level)) / 2.0
        half = -float(special.ndtri(tail)) * self.std
        return self.mean - half, self.mean + half

    def sample(self, rng: np.random.Generator, size: int) -> NDArray[np.float64]:
        """``size`` independent draws from the posterior."""
        return rng.normal(self.mean, self.std, size=size)


@dataclass(frozen=True, slots=True)
class BayesianComparison:
    """Treatment against control, summarised by the posterior.

    Attributes
    ----------
    chance_to_beat_control : float
        ``P(θ_t > θ_c)``.
    expected_loss_treatment : float
        ``E[max(θ_c − θ_t, 0)]``: the expected shortfall if treatment is shipped.
    expected_loss_control : float
        ``E[max(θ_t − θ_c, 0)]``: the expected shortfall if control is kept.
    reason : BayesianReason or None
        Set when the data cannot support a comparison; the three figures are then ``None``
        (undefined, not a neutral 0.5).
    """

    chance_to_beat_control: float | None
    expected_loss_treatment: float | None
    expected_loss_control: float | None
    reason: BayesianReason | None = None


def _log_ratio(x: float, m: float) -> float:
    """``log(x / m)``, through ``log1p`` when the ratio is near 1."""
    step = (x - m) / m
    return math.log1p(step) if abs(step) < 0.5 else math.log(x) - math.log(m)


def _log_ratio_complement(x: float, m: float) -> float:
    """``log((1 − x) / (1 − m))``, through ``log1p`` when the ratio is near 1."""
    step = (m - x) / (1.0 - m)
    return math.log1p(step) if abs(step) < 0.5 else math.log1p(-x) - math.log1p(-m)


_Piece = tuple[Callable[[float], tuple[float, float]], float, float]


def _beta_pieces(a: float, b: float) -> list[_Piece]:
    """Split ``∫ f(x) w(x) dx`` for the Beta(a, b) density ``f`` at the mean ``m``.

    Each piece is ``(transform, start, stop)`` with ``transform(u) = (x, g(u))``, so that the
    piece contributes ``∫_start^stop g(u) w(x(u)) du``, and ``g`` is proportional to ``f``
    (times the Jacobian) with the same constant for every piece. The constant cancels, since
    callers divide by the integral of ``g``.

    * The log density is taken relative to the mean, ``(a−1)·log(x/m) + (b−1)·log((1−x)/(1−m))``
      with ``log1p`` near ``m``, which stays accurate for ``a, b ~ 1e6``; the textbook
      ``(a−1)·log x − log B(a, b)`` loses ~1e-10 to cancellation there.
    * Where ``f`` has mass, between the ``1e-15`` and ``1 − 1e-15`` quantiles, ``x`` itself is
      the variable.
    * A shape below 1 makes ``f`` infinite at that end; the substitution ``x = s^(1/a)``
      (``1 − x = t^(1/b)`` at the top) absorbs ``x^(a−1) dx = ds / a`` and leaves a bounded
      integrand on the whole of ``[0, m]`` (``[m, 1]``).
    """
    m = a / (a + b)

    def density(x: float) -> tuple[float, float]:
        return x, math.exp((a - 1.0) * _log_ratio(x, m) + (b - 1.0) * _log_ratio_complement(x, m))

    pieces: list[_Piece] = []
    if a < 1.0:
        scale = (1.0 - a) * math.log(m) - math.log(a)

        def bottom(s: float) -> tuple[float, float]:
            x = s ** (1.0 / a)
            return x, math.exp((b - 1.0) * _log_ratio_complement(x, m) + scale)

        pieces.append((bottom, 0.0, m**a))
    else:
        lower = max(float(special.betaincinv(a, b, _TAIL)), _SMALLEST)
        pieces.append((density, min(lower, m), m))
    if b < 1.0:
        scale = (1.0 - b) * math.log1p(-m) - math.log(b)

        def top(t: float) -> tuple[float, float]:
            x = 1.0 - t ** (1.0 / b)
            return x, math.exp((a - 1.0) * _log_ratio(x, m) + scale)

        pieces.append((top, 0.0, (1.0 - m) ** b))
    else:
        upper = min(float(special.betainccinv(a, b, _TAIL)), _BELOW_ONE)
        pieces.append((density, m, max(upper, m)))
    return pieces


def _beta_expectation(a: float, b: float, weight: Callable[[float], float]) -> float:
    """``E[w(X)]`` for ``X ~ Beta(a, b)`` and ``0 ≤ w ≤ 1``, by adaptive quadrature.

    The integral of ``f·w`` over the pieces of :func:`_beta_pieces` is divided by that of ``f``
    over the same pieces, so the normalising constant ``B(a, b)`` is never computed.
    """
    pieces = _beta_pieces(a, b)
    norm = 0.0
    for transform, start, stop in pieces:
        value, _ = integrate.quad(
            lambda u, g=transform: g(u)[1],
            start,
            stop,
            epsabs=0.0,
            epsrel=_EPSREL,
            limit=_QUAD_LIMIT,
        )
        norm += value

    def weighted(u: float, g: Callable[[float], tuple[float, float]]) -> float:
        x, mass = g(u)
        return mass * weight(x)

    total = 0.0
    for transform, start, stop in pieces:
        value, _ = integrate.quad(
            weighted,
            start,
            stop,
            args=(transform,),
            epsabs=1e-3 * _EPSREL * norm,
            epsrel=_EPSREL,
            limit=_QUAD_LIMIT,
        )
        total += value
    return min(max(total / norm, 0.0), 1.0)


def prob_beats(treatment: BetaPosterior, control: BetaPosterior) -> float:
    """Posterior probability that the treatment's rate exceeds the control's.

    Parameters
    ----------
    treatment, control : BetaPosterior
        Independent posteriors of the two rates.

    Returns
    -------
    float
        ``P(p_t > p_c)``, accurate to about 1e-10 absolute.

    Notes
    -----
    ``P(p_t > p_c) = ∫ f_t(x) F_c(x) dx = ∫ f_c(x) (1 − F_t(x)) dx``, where ``f`` is a Beta
    density and ``F`` its CDF (the regularised incomplete beta function), integrated with
    ``scipy.integrate.quad`` rather than sampled:

    * over the narrower of the two densities, so that the other CDF is smooth there;
    * only where that density has mass (between its 1e-15 and 1 − 1e-15 quantiles), split at
      its mean, so very peaked posteriors (``α, β ~ 1e6``) are as accurate as flat ones;
    * mirrored (``1 − p ~ Beta(β, α)``) when that density sits above 0.5, so that rates near
      1 keep their precision;
    * with ``x = s^(1/α)`` near 0 (and likewise near 1) when a shape is below 1, which
      removes the infinite density of, e.g., a Jeffreys prior with no conversions.

    For integer parameters this equals Evan Miller's closed-form sum. Checked for shape
    parameters from 0.5 to 2e6; far smaller shapes may make the quadrature warn.

    References
    ----------
    .. [1] E. Miller, "Formulas for Bayesian A/B Testing" (2014),
       https://www.evanmiller.org/bayesian-ab-testing.html
    .. [2] J. D. Cook, "Exact calculation of beta inequalities", UT MD Anderson Cancer Center
       Department of Biostatistics, technical report UTMDABTR-005-05 (2005).

    Examples
    --------
    >>> control = BetaPosterior.from_stats(ProportionStats(n=1000, conversions=100))
    >>> treatment = BetaPosterior.from_stats(ProportionStats(n=1000, conversions=125))
    >>> round(prob_beats(treatment, control), 4)
    0.9614
    >>> prob_beats(control, control)
    0.5
    """
    if treatment == control:
        return 0.5
    t, c = treatment, control
    over_treatment = t.variance <= c.variance
    if (t if over_treatment else c).mean > 0.5:
        # P(T > C) = P(1 − C > 1 − T), and 1 − X ~ Beta(β, α): integrate near 0, where floats
        # are dense, rather than near 1, where 1 − x keeps few significant digits. The density
        # integrated over is the same one, mirrored, and now plays the other role.
        t, c = BetaPosterior(c.beta, c.alpha), BetaPosterior(t.beta, t.alpha)
        over_treatment = not over_treatment
    if over_treatment:

        def control_below(x: float) -> float:
            return float(special.betainc(c.alpha, c.beta, x))

        return _beta_expectation(t.alpha, t.beta, control_below)

    def treatment_above(x: float) -> float:
        return float(special.betaincc(t.alpha, t.beta, x))

    return _beta_expectation(c.alpha, c.beta, treatment_above)


def expected_loss(chosen: BetaPosterior, other: BetaPosterior) -> float:
    """Expected loss ``E[max(p_other − p_chosen, 0)]`` of choosing ``chosen`` over ``other``.

    Parameters
    ----------
    chosen : BetaPosterior
        Posterior of the variant that would be shipped.
    other : BetaPosterior
        Posterior of the alternative.

    Returns
    -------
    float
        The expected shortfall in conversion rate, ≥ 0.

    Notes
    -----
    With ``O ~ Beta(a_o, b_o)`` and ``C ~ Beta(a_c, b_c)``, the identity
    ``x · Beta(a, b).pdf(x) = a / (a + b) · Beta(a + 1, b).pdf(x)`` gives

    ``E[max(O − C, 0)] = E[O·1{O > C}] − E[C·1{O > C}]
    = mean_o · P(Beta(a_o + 1, b_o) > C) − mean_c · P(O > Beta(a_c + 1, b_c))``,

    two exact probabilities computed by :func:`prob_beats`.

    References
    ----------
    .. [1] C. Stucchio, "Bayesian A/B Testing at VWO" (2015).
    .. [2] E. Miller, "Formulas for Bayesian A/B Testing" (2014).

    Examples
    --------
    >>> control = BetaPosterior.from_stats(ProportionStats(n=1000, conversions=100))
    >>> treatment = BetaPosterior.from_stats(ProportionStats(n=1000, conversions=125))
    >>> round(expected_loss(treatment, control), 5)
    0.00022
    >>> round(expected_loss(control, treatment), 5)
    0.02517
    """
    shifted_other = BetaPosterior(other.alpha + 1.0, other.beta)
    shifted_chosen = BetaPosterior(chosen.alpha + 1.0, chosen.beta)
    gain = other.mean * prob_beats(shifted_other, chosen)
    cost = chosen.mean * prob_beats(other, shifted_chosen)
    return max(gain - cost, 0.0)


def prob_beats_normal(treatment: NormalPosterior, control: NormalPosterior) -> float:
    """Posterior probability that the treatment's mean exceeds the control's.

    Notes
    -----
    ``θ_t − θ_c ~ N(μ_t − μ_c, σ_t² + σ_c²)``, so ``P(θ_t > θ_c) = Φ((μ_t − μ_c) / σ)`` with
    ``σ = sqrt(σ_t² + σ_c²)``. Two point masses give 1, 0 or 0.5 (a tie).

    References
    ----------
    .. [1] A. Gelman et al., *Bayesian Data Analysis*, 3rd ed. (2013), section 4.1.

    Examples
    --------
    >>> control = NormalPosterior(mean=10.0, variance=0.04)
    >>> treatment = NormalPosterior(mean=10.3, variance=0.05)
    >>> round(prob_beats_normal(treatment, control), 4)
    0.8413
    """
    difference = treatment.mean - control.mean
    spread = math.sqrt(treatment.variance + control.variance)
    if spread == 0.0:
        return 0.5 if difference == 0.0 else float(difference > 0.0)
    return float(special.ndtr(difference / spread))


def expected_loss_normal(chosen: NormalPosterior, other: NormalPosterior) -> float:
    """Expected loss ``E[max(θ_other − θ_chosen, 0)]`` for normal posteriors, in closed form.

    Notes
    -----
    With ``X = θ_other − θ_chosen ~ N(μ, σ²)``, ``μ = μ_o − μ_c``, ``σ² = σ_o² + σ_c²``:

    ``E[max(X, 0)] = σ φ(μ/σ) + μ Φ(μ/σ)``

    (the mean of a rectified normal: ``∫_0^∞ x φ((x − μ)/σ) / σ dx``, substituting
    ``x = μ + σz``), and ``max(μ, 0)`` when ``σ = 0``.

    References
    ----------
    .. [1] N. L. Johnson, S. Kotz and N. Balakrishnan, *Continuous Univariate Distributions*,
       vol. 1, 2nd ed. (1994), chapter 13 (truncated normal moments).

    Examples
    --------
    >>> control = NormalPosterior(mean=10.0, variance=0.04)
    >>> treatment = NormalPosterior(mean=10.3, variance=0.05)
    >>> round(expected_loss_normal(treatment, control), 5)
    0.02499
    """
    mu = other.mean - chosen.mean
    sigma = math.sqrt(other.variance + chosen.variance)
    if sigma == 0.0:
        return max(mu, 0.0)
    z = mu / sigma
    density = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return max(sigma * density + mu * float(special.ndtr(z)), 0.0)


def prob_best(
    posteriors: Sequence[BetaPosterior] | Sequence[NormalPosterior],
    rng: np.random.Generator,
    draws: int = 100_000,
) -> tuple[float, ...]:
    """Probability that each arm has the highest rate or mean, by seeded Monte Carlo.

    Parameters
    ----------
    posteriors : sequence of BetaPosterior, or sequence of NormalPosterior
        One independent posterior per arm, all of the same kind.
    rng : numpy.random.Generator
        Source of randomness; pass a seeded one for reproducible results.
    draws : int, default 100_000
        Joint draws; the standard error of each probability is ``sqrt(p(1−p)/draws)``.

    Returns
    -------
    tuple of float
        ``P(arm i is best)`` for each arm, summing to 1.

    Notes
    -----
    ``P(θ_i = max_j θ_j)`` is estimated by the share of joint posterior draws in which arm
    ``i`` is largest. For two arms use :func:`prob_beats` or :func:`prob_beats_normal`, which
    are exact.

    References
    ----------
    .. [1] S. L. Scott, "A modern Bayesian look at the multi-armed bandit", Applied Stochastic
       Models in Business and Industry 26(6), 639-658 (2010).

    Examples
    --------
    >>> arms = [BetaPosterior(11, 91), BetaPosterior(16, 86), BetaPosterior(21, 81)]
    >>> probs = prob_best(arms, np.random.default_rng(7), draws=20_000)
    >>> len(probs), round(sum(probs), 12)
    (3, 1.0)
    >>> probs.index(max(probs))
    2
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    count = check_count("draws", draws)
    if count == 0:
        raise ValueError("draws must be at least 1, got 0")
    arms: list[BetaPosterior | NormalPosterior] = list(posteriors)
    if not arms:
        raise ValueError("posteriors must hold at least one posterior")
    kinds = {type(arm) for arm in arms}
    if not kinds <= {BetaPosterior, NormalPosterior}:
        raise ValueError("posteriors must be BetaPosterior or NormalPosterior instances")
    if len(kinds) > 1:
        raise ValueError("posteriors must all be of one kind (all Beta or all Normal)")
    samples = np.column_stack([arm.sample(rng, count) for arm in arms])
    winners = np.bincount(np.argmax(samples, axis=1), minlength=len(arms))
    return tuple(float(w) / count for w in winners)


def compare_proportions_bayes(
    control: ProportionStats,
    treatment: ProportionStats,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
) -> BayesianComparison:
    """Beta-binomial comparison of two conversion rates.

    Parameters
    ----------
    control, treatment : ProportionStats
        Users and conversions per variant.
    prior_alpha, prior_beta : float, default 1.0
        Beta prior shared by both arms; Beta(1, 1) is uniform.

    Returns
    -------
    BayesianComparison
        Chance to beat control and the expected loss of each choice. An arm with ``n = 0``
        is not degenerate: its posterior is the prior.

    Notes
    -----
    Posteriors ``Beta(a0 + k, b0 + n − k)``; see :func:`prob_beats` and
    :func:`expected_loss` for the exact integrals.

    References
    ----------
    .. [1] C. Stucchio, "Bayesian A/B Testing at VWO" (2015).

    Examples
    --------
    >>> result = compare_proportions_bayes(ProportionStats(1000, 100), ProportionStats(1000, 125))
    >>> round(result.chance_to_beat_control, 4), result.reason
    (0.9614, None)
    >>> round(result.expected_loss_treatment, 5), round(result.expected_loss_control, 5)
    (0.00022, 0.02517)
    """
    posterior_c = BetaPosterior.from_stats(control, prior_alpha, prior_beta)
    posterior_t = BetaPosterior.from_stats(treatment, prior_alpha, prior_beta)
    return BayesianComparison(
        chance_to_beat_control=prob_beats(posterior_t, posterior_c),
        expected_loss_treatment=expected_loss(posterior_t, posterior_c),
        expected_loss_control=expected_loss(posterior_c, posterior_t),
    )


def compare_means_bayes(control: MeanStats, treatment: MeanStats) -> BayesianComparison:
    """Normal-approximation comparison of two means (flat prior).

    Parameters
    ----------
    control, treatment : MeanStats
        Sufficient statistics per variant.

    Returns
    -------
    BayesianComparison
        Chance to beat control and the expected loss of each choice, with reason
        ``"no_samples"`` or ``"insufficient_samples"`` if an arm has 0 or 1 values, or
        ``"zero_variance"`` if both arms have zero sample variance (then the figures are
        ``None``).

    Notes
    -----
    Posteriors ``N(x̄, s²/n)`` per arm; see :func:`prob_beats_normal` and
    :func:`expected_loss_normal` for the closed forms.

    References
    ----------
    .. [1] A. Gelman et al., *Bayesian Data Analysis*, 3rd ed. (2013), section 4.1.

    Examples
    --------
    >>> control = MeanStats.from_moments(n=400, mean=10.0, std=4.0)
    >>> treatment = MeanStats.from_moments(n=500, mean=10.3, std=5.0)
    >>> result = compare_means_bayes(control, treatment)
    >>> round(result.chance_to_beat_control, 4)
    0.8413
    >>> compare_means_bayes(control, MeanStats.from_values([1.0])).reason
    'insufficient_samples'
    """
    if control.n == 0 or treatment.n == 0:
        return BayesianComparison(None, None, None, reason="no_samples")
    if control.n < 2 or treatment.n < 2:
        return BayesianComparison(None, None, None, reason="insufficient_samples")
    if control.variance == 0.0 and treatment.variance == 0.0:
        return BayesianComparison(None, None, None, reason="zero_variance")
    posterior_c = NormalPosterior.from_stats(control)
    posterior_t = NormalPosterior.from_stats(treatment)
    return BayesianComparison(
        chance_to_beat_control=prob_beats_normal(posterior_t, posterior_c),
        expected_loss_treatment=expected_loss_normal(posterior_t, posterior_c),
        expected_loss_control=expected_loss_normal(posterior_c, posterior_t),
    )
