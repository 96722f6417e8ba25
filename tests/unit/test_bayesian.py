"""Bayesian comparisons checked against independent references.

* Exact: Evan Miller's closed-form sum for ``P(p_B > p_A)`` with integer Beta parameters,
  evaluated in rational arithmetic (``fractions.Fraction``), so it carries no rounding at all.
* Numerical: composite Gauss-Legendre quadrature over scipy.stats.beta's pdf/cdf (Boost),
  for counts too large for the exact sum; ``scipy.integrate.dblquad`` for the expected loss.
* Monte Carlo: large seeded simulations, compared within 5 standard errors.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from abscope.stats.bayesian import (
    BayesianComparison,
    BayesianReason,
    BetaPosterior,
    NormalPosterior,
    compare_means_bayes,
    compare_proportions_bayes,
    expected_loss,
    expected_loss_normal,
    prob_beats,
    prob_beats_normal,
    prob_best,
)
from abscope.stats.sufficient import MeanStats, ProportionStats

PROPERTY = settings(max_examples=60, deadline=None)
MC_SIGMAS = 5.0


# --- independent references -------------------------------------------------------------


def _beta_fn(a: int, b: int) -> Fraction:
    """B(a, b) = (a−1)! (b−1)! / (a+b−1)! exactly, for positive integers."""
    return Fraction(math.factorial(a - 1) * math.factorial(b - 1), math.factorial(a + b - 1))


def _miller_exact(a_c: int, b_c: int, a_t: int, b_t: int) -> Fraction:
    """P(p_t > p_c) for p_t ~ Beta(a_t, b_t), p_c ~ Beta(a_c, b_c), integer parameters.

    E. Miller, "Formulas for Bayesian A/B Testing" (2014), with A = control, B = treatment:
    Σ_{i=0}^{α_B−1} B(α_A + i, β_A + β_B) / ((β_B + i) B(1 + i, β_B) B(α_A, β_A)).
    """
    norm_c = _beta_fn(a_c, b_c)
    return sum(
        (
            _beta_fn(a_c + i, b_c + b_t) / ((b_t + i) * _beta_fn(1 + i, b_t) * norm_c)
            for i in range(a_t)
        ),
        Fraction(0),
    )


def _gauss_legendre_prob(t: BetaPosterior, c: BetaPosterior, panels: int = 4000) -> float:
    """∫ f_t(x) F_c(x) dx by composite 64-point Gauss-Legendre over the mean ± 40 sd of t.

    Uses scipy.stats.beta (Boost's pdf and cdf), not the code under test.
    """
    lo, hi = max(0.0, t.mean - 40 * t.std), min(1.0, t.mean + 40 * t.std)
    nodes, weights = np.polynomial.legendre.leggauss(64)
    edges = np.linspace(lo, hi, panels + 1)
    left, right = edges[:-1, None], edges[1:, None]
    x = (left + right) / 2 + (right - left) / 2 * nodes
    w = (right - left) / 2 * weights
    values = stats.beta.pdf(x, t.alpha, t.beta) * stats.beta.cdf(x, c.alpha, c.beta)
    return float(np.sum(w * values))


def _mc_prob(t: BetaPosterior, c: BetaPosterior, draws: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    wins = np.mean(rng.beta(t.alpha, t.beta, draws) > rng.beta(c.alpha, c.beta, draws))
    return float(wins), math.sqrt(wins * (1 - wins) / draws)


# --- strategies ---------------------------------------------------------------------------

small_counts = st.integers(min_value=0, max_value=40).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n))
)
shapes = st.floats(min_value=math.log(0.5), max_value=math.log(2e6)).map(math.exp)
beta_posteriors = st.builds(BetaPosterior, shapes, shapes)
normal_posteriors = st.builds(
    NormalPosterior,
    st.floats(min_value=-100, max_value=100),
    st.floats(min_value=1e-6, max_value=100),
)


# --- BetaPosterior ------------------------------------------------------------------------


def test_beta_posterior_conjugate_update_and_moments() -> None:
    post = BetaPosterior.from_stats(ProportionStats(n=50, conversions=12), 2.0, 3.0)
    assert post == BetaPosterior(14.0, 41.0)
    assert post.mean == pytest.approx(stats.beta.mean(14, 41), rel=1e-14)
    assert post.variance == pytest.approx(stats.beta.var(14, 41), rel=1e-14)
    assert post.std == pytest.approx(stats.beta.std(14, 41), rel=1e-14)


def test_beta_interval_is_equal_tailed() -> None:
    post = BetaPosterior(14.0, 41.0)
    lower, upper = post.interval(0.9)
    assert stats.beta.cdf(lower, 14, 41) == pytest.approx(0.05, abs=1e-12)
    assert stats.beta.sf(upper, 14, 41) == pytest.approx(0.05, abs=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"alpha": 0.0, "beta": 1.0}, "alpha"),
        ({"alpha": 1.0, "beta": -2.0}, "beta"),
        ({"alpha": math.inf, "beta": 1.0}, "alpha"),
    ],
)
def test_beta_posterior_rejects_bad_shapes(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}"):
        BetaPosterior(**kwargs)


def test_beta_from_stats_and_interval_name_bad_arguments() -> None:
    with pytest.raises(ValueError, match="^prior_alpha"):
        BetaPosterior.from_stats(ProportionStats(10, 1), prior_alpha=0.0)
    with pytest.raises(ValueError, match="^prior_beta"):
        BetaPosterior.from_stats(ProportionStats(10, 1), prior_beta=-1.0)
    with pytest.raises(ValueError, match="^level"):
        BetaPosterior(1.0, 1.0).interval(1.0)


# --- prob_beats ---------------------------------------------------------------------------


@PROPERTY
@given(control=small_counts, treatment=small_counts, prior=st.sampled_from([(1, 1), (2, 5)]))
def test_prob_beats_matches_exact_rational_formula(
    control: tuple[int, int], treatment: tuple[int, int], prior: tuple[int, int]
) -> None:
    (n_c, k_c), (n_t, k_t) = control, treatment
    a0, b0 = prior
    exact = _miller_exact(a0 + k_c, b0 + n_c - k_c, a0 + k_t, b0 + n_t - k_t)
    post_c = BetaPosterior.from_stats(ProportionStats(n_c, k_c), a0, b0)
    post_t = BetaPosterior.from_stats(ProportionStats(n_t, k_t), a0, b0)
    assert prob_beats(post_t, post_c) == pytest.approx(float(exact), abs=1e-9)


def test_prob_beats_exact_examples() -> None:
    # Hand-checkable cases of the rational formula.
    assert _miller_exact(1, 1, 1, 1) == Fraction(1, 2)
    assert _miller_exact(1, 1, 2, 1) == Fraction(2, 3)  # P(max(U1,U2) > U3)
    assert prob_beats(BetaPosterior(2, 1), BetaPosterior(1, 1)) == pytest.approx(2 / 3, abs=1e-14)


@pytest.mark.parametrize(
    ("b_c", "b_t"),
    [(1001, 2001), (10**6 + 1, 2 * 10**6 + 1), (3, 10**6), (10**6, 3)],
)
def test_prob_beats_zero_conversions(b_c: int, b_t: int) -> None:
    # With α = 1 on both sides Miller's sum is one term: P(p_t > p_c) = β_c / (β_c + β_t).
    if b_c + b_t < 10_000:
        assert _miller_exact(1, b_c, 1, b_t) == Fraction(b_c, b_c + b_t)
    got = prob_beats(BetaPosterior(1, b_t), BetaPosterior(1, b_c))
    assert got == pytest.approx(b_c / (b_c + b_t), abs=1e-12)


@pytest.mark.parametrize(
    ("treatment", "control"),
    [
        (BetaPosterior(100_501, 899_501), BetaPosterior(100_001, 900_001)),
        (BetaPosterior(1_001_001, 999_001), BetaPosterior(1_000_001, 1_000_001)),
        (BetaPosterior(3, 5), BetaPosterior(500_001, 499_999)),
        (BetaPosterior(500_001, 499_999), BetaPosterior(3, 5)),
        (BetaPosterior(50_200, 949_800), BetaPosterior(50_000, 950_000)),
        (BetaPosterior(2_000, 998_000), BetaPosterior(2_400, 997_600)),  # far tail, ~1e-9
    ],
)
def test_prob_beats_peaked_posteriors_match_boost_quadrature(
    treatment: BetaPosterior, control: BetaPosterior
) -> None:
    got = prob_beats(treatment, control)
    assert got == pytest.approx(_gauss_legendre_prob(treatment, control), abs=1e-10)
    assert got == pytest.approx(1.0 - _gauss_legendre_prob(control, treatment), abs=1e-10)


def test_prob_beats_rates_near_one() -> None:
    # 1 − p ~ Beta(β, α): P(p_t > p_c) = P(1 − p_c > 1 − p_t), and the reference is evaluated
    # in the mirrored coordinates, where floating point resolves 1 − p finely.
    treatment, control = BetaPosterior(999_601, 401), BetaPosterior(999_501, 501)
    reference = _gauss_legendre_prob(BetaPosterior(501, 999_501), BetaPosterior(401, 999_601))
    assert prob_beats(treatment, control) == pytest.approx(reference, abs=1e-10)
    assert _miller_exact(38, 3, 40, 2) == _miller_exact(2, 40, 3, 38)
    assert prob_beats(BetaPosterior(40, 2), BetaPosterior(38, 3)) == pytest.approx(
        float(_miller_exact(38, 3, 40, 2)), abs=1e-12
    )


@pytest.mark.parametrize(
    ("treatment", "control", "seed"),
    [
        (BetaPosterior(10_101, 89_901), BetaPosterior(10_001, 90_001), 11),
        (BetaPosterior(1_000_501, 999_501), BetaPosterior(1_000_001, 1_000_001), 12),
        (BetaPosterior(0.5, 1000.5), BetaPosterior(0.5, 2000.5), 13),  # Jeffreys, 0 conversions
    ],
)
def test_prob_beats_matches_large_monte_carlo(
    treatment: BetaPosterior, control: BetaPosterior, seed: int
) -> None:
    estimate, se = _mc_prob(treatment, control, 2_000_000, seed)
    assert abs(prob_beats(treatment, control) - estimate) < MC_SIGMAS * se


@PROPERTY
@given(a=beta_posteriors, b=beta_posteriors)
def test_prob_beats_is_antisymmetric(a: BetaPosterior, b: BetaPosterior) -> None:
    forward, backward = prob_beats(a, b), prob_beats(b, a)
    assert 0.0 <= forward <= 1.0
    assert forward + backward == pytest.approx(1.0, abs=1e-10)


def test_prob_beats_mirror_images_far_apart() -> None:
    # Equal variances, one rate near 1 and one near 0: found by hypothesis.
    high, low = BetaPosterior(442_413, 1.133), BetaPosterior(1.133, 442_413)
    assert prob_beats(high, low) == 1.0
    assert prob_beats(low, high) == 0.0


def test_prob_beats_identical_posteriors_is_one_half() -> None:
    assert prob_beats(BetaPosterior(3e5, 7e5), BetaPosterior(3e5, 7e5)) == 0.5


# --- expected_loss ------------------------------------------------------------------------


def _dblquad_loss(chosen: BetaPosterior, other: BetaPosterior) -> float:
    """E[max(O − C, 0)] = ∫∫_{x > y} (x − y) f_O(x) f_C(y) dx dy, straight from the definition."""
    value, _ = integrate.dblquad(
        lambda x, y: (
            (x - y)
            * stats.beta.pdf(x, other.alpha, other.beta)
            * stats.beta.pdf(y, chosen.alpha, chosen.beta)
        ),
        0.0,
        1.0,
        lambda y: y,
        1.0,
        epsabs=1e-12,
        epsrel=1e-10,
    )
    return value


@pytest.mark.parametrize(
    ("chosen", "other"),
    [
        (BetaPosterior(3, 8), BetaPosterior(5, 6)),
        (BetaPosterior(5, 6), BetaPosterior(3, 8)),
        (BetaPosterior(1, 1), BetaPosterior(2, 2)),
        (BetaPosterior(13, 41), BetaPosterior(9, 45)),
    ],
)
def test_expected_loss_matches_double_integral(chosen: BetaPosterior, other: BetaPosterior) -> None:
    assert expected_loss(chosen, other) == pytest.approx(_dblquad_loss(chosen, other), abs=1e-9)


@pytest.mark.parametrize(
    ("chosen", "other", "seed"),
    [
        (BetaPosterior(101, 901), BetaPosterior(126, 876), 21),
        (BetaPosterior(126, 876), BetaPosterior(101, 901), 22),
        (BetaPosterior(100_001, 900_001), BetaPosterior(100_301, 899_701), 23),
        (BetaPosterior(1, 5001), BetaPosterior(1, 4001), 24),
    ],
)
def test_expected_loss_matches_monte_carlo(
    chosen: BetaPosterior, other: BetaPosterior, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    draws = 2_000_000
    shortfall = np.maximum(
        rng.beta(other.alpha, other.beta, draws) - rng.beta(chosen.alpha, chosen.beta, draws), 0.0
    )
    se = float(shortfall.std(ddof=1)) / math.sqrt(draws)
    assert abs(expected_loss(chosen, other) - float(shortfall.mean())) < MC_SIGMAS * se


@PROPERTY
@given(a=beta_posteriors, b=beta_posteriors)
def test_expected_losses_differ_by_the_difference_in_means(
    a: BetaPosterior, b: BetaPosterior
) -> None:
    # E[max(D, 0)] − E[max(−D, 0)] = E[D] for D = p_b − p_a.
    loss_a, loss_b = expected_loss(a, b), expected_loss(b, a)
    assert loss_a >= 0.0
    assert loss_b >= 0.0
    assert loss_a - loss_b == pytest.approx(b.mean - a.mean, abs=1e-10)


# --- normal posteriors --------------------------------------------------------------------


def test_normal_posterior_from_stats() -> None:
    values = np.random.default_rng(3).normal(5.0, 2.0, size=200)
    post = NormalPosterior.from_stats(MeanStats.from_values(values))
    assert post.mean == pytest.approx(values.mean(), rel=1e-12)
    assert post.variance == pytest.approx(values.var(ddof=1) / 200, rel=1e-12)
    lower, upper = post.interval(0.95)
    assert (lower + upper) / 2 == pytest.approx(post.mean, rel=1e-12)
    assert upper - lower == pytest.approx(2 * 1.959963984540054 * post.std, rel=1e-12)


def test_normal_posterior_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="^variance"):
        NormalPosterior(0.0, -1.0)
    with pytest.raises(ValueError, match="^mean"):
        NormalPosterior(math.nan, 1.0)
    with pytest.raises(ValueError, match="^stats"):
        NormalPosterior.from_stats(MeanStats.from_values([1.0]))


@PROPERTY
@given(t=normal_posteriors, c=normal_posteriors)
def test_prob_beats_normal_matches_numerical_integral(
    t: NormalPosterior, c: NormalPosterior
) -> None:
    # P(θ_t > θ_c) = ∫ φ_c(y) P(θ_t > y) dy, integrated over the control's density, with
    # break points where P(θ_t > y) drops so that quad sees a narrow treatment posterior.
    lo, hi = c.mean - 12 * c.std, c.mean + 12 * c.std
    breaks = [c.mean] + [t.mean + k * t.std for k in (-8, -2, 0, 2, 8)]
    reference, _ = integrate.quad(
        lambda y: stats.norm.pdf(y, c.mean, c.std) * stats.norm.sf(y, t.mean, t.std),
        lo,
        hi,
        points=sorted(p for p in breaks if lo < p < hi),
        epsabs=1e-13,
        limit=200,
    )
    assert prob_beats_normal(t, c) == pytest.approx(reference, abs=1e-9)
    assert prob_beats_normal(t, c) + prob_beats_normal(c, t) == pytest.approx(1.0, abs=1e-14)


@PROPERTY
@given(chosen=normal_posteriors, other=normal_posteriors)
def test_expected_loss_normal_matches_numerical_integral(
    chosen: NormalPosterior, other: NormalPosterior
) -> None:
    # E[max(D, 0)] = ∫_0^∞ P(D > t) dt for D = θ_o − θ_c ~ N(μ, σ²), integrated numerically
    # with break points around μ so that quad sees the drop of P(D > t) even when σ ≪ μ.
    mu, sigma = other.mean - chosen.mean, math.sqrt(other.variance + chosen.variance)
    top = max(mu, 0.0) + 40 * sigma
    reference, _ = integrate.quad(
        lambda t: float(special.ndtr((mu - t) / sigma)),
        0.0,
        top,
        points=[p for p in (mu + k * sigma for k in (-8, -2, 0, 2, 8)) if 0.0 < p < top] or None,
        epsabs=1e-13,
        epsrel=1e-12,
        limit=200,
    )
    scale = max(1.0, abs(mu))
    assert expected_loss_normal(chosen, other) == pytest.approx(reference, abs=1e-10 * scale)
    difference = expected_loss_normal(chosen, other) - expected_loss_normal(other, chosen)
    assert difference == pytest.approx(mu, abs=1e-10 * scale)


@pytest.mark.parametrize(
    ("chosen", "other"),
    [
        (NormalPosterior(10.3, 0.05), NormalPosterior(10.0, 0.04)),
        (NormalPosterior(0.0, 1.0), NormalPosterior(0.5, 0.25)),
    ],
)
def test_expected_loss_normal_matches_double_integral(
    chosen: NormalPosterior, other: NormalPosterior
) -> None:
    # ∫∫_{x > y} (x − y) φ_o(x) φ_c(y) dx dy, with no use of the normality of the difference.
    def density(x: float, post: NormalPosterior) -> float:
        return math.exp(-0.5 * ((x - post.mean) / post.std) ** 2) / (
            post.std * math.sqrt(2 * math.pi)
        )

    reach = 12 * max(chosen.std, other.std)
    reference, _ = integrate.dblquad(
        lambda x, y: (x - y) * density(x, other) * density(y, chosen),
        chosen.mean - reach,
        chosen.mean + reach,
        lambda y: y,
        lambda y: max(y, other.mean + reach),
        epsabs=1e-12,
        epsrel=1e-10,
    )
    assert expected_loss_normal(chosen, other) == pytest.approx(reference, abs=1e-9)


def test_normal_point_masses() -> None:
    low, high = NormalPosterior(1.0, 0.0), NormalPosterior(2.0, 0.0)
    assert prob_beats_normal(high, low) == 1.0
    assert prob_beats_normal(low, high) == 0.0
    assert prob_beats_normal(low, low) == 0.5
    assert expected_loss_normal(low, high) == 1.0
    assert expected_loss_normal(high, low) == 0.0


# --- prob_best ----------------------------------------------------------------------------


def test_prob_best_two_arms_matches_prob_beats() -> None:
    control, treatment = BetaPosterior(101, 901), BetaPosterior(120, 882)
    draws = 400_000
    probs = prob_best([control, treatment], np.random.default_rng(5), draws=draws)
    exact = prob_beats(treatment, control)
    assert sum(probs) == pytest.approx(1.0, abs=1e-12)
    assert abs(probs[1] - exact) < MC_SIGMAS * math.sqrt(exact * (1 - exact) / draws)


def test_prob_best_normal_two_arms_matches_prob_beats_normal() -> None:
    control, treatment = NormalPosterior(10.0, 0.04), NormalPosterior(10.3, 0.05)
    draws = 400_000
    probs = prob_best([control, treatment], np.random.default_rng(6), draws=draws)
    exact = prob_beats_normal(treatment, control)
    assert abs(probs[1] - exact) < MC_SIGMAS * math.sqrt(exact * (1 - exact) / draws)


def test_prob_best_many_arms_sums_to_one_and_is_reproducible() -> None:
    arms = [BetaPosterior(11 + 3 * i, 91 - 3 * i) for i in range(5)]
    first = prob_best(arms, np.random.default_rng(9), draws=50_000)
    again = prob_best(arms, np.random.default_rng(9), draws=50_000)
    assert first == again
    assert len(first) == 5
    assert math.fsum(first) == pytest.approx(1.0, abs=1e-12)
    assert list(first) == sorted(first)  # higher rates are likelier to be best
    # Five identical arms: each is best a fifth of the time.
    same = prob_best([NormalPosterior(0.0, 1.0)] * 5, np.random.default_rng(10), draws=100_000)
    for p in same:
        assert abs(p - 0.2) < MC_SIGMAS * math.sqrt(0.2 * 0.8 / 100_000)


def test_prob_best_rejects_bad_arguments() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="^posteriors"):
        prob_best([], rng)
    with pytest.raises(ValueError, match="^posteriors"):
        prob_best([BetaPosterior(1, 1), NormalPosterior(0, 1)], rng)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^draws"):
        prob_best([BetaPosterior(1, 1)], rng, draws=0)
    with pytest.raises(ValueError, match="^rng"):
        prob_best([BetaPosterior(1, 1)], 42)  # type: ignore[arg-type]


# --- comparisons --------------------------------------------------------------------------


def test_compare_proportions_bayes_assembles_the_exact_pieces() -> None:
    control, treatment = ProportionStats(1000, 100), ProportionStats(1000, 125)
    result = compare_proportions_bayes(control, treatment)
    post_c, post_t = BetaPosterior(101, 901), BetaPosterior(126, 876)
    assert result == BayesianComparison(
        chance_to_beat_control=prob_beats(post_t, post_c),
        expected_loss_treatment=expected_loss(post_t, post_c),
        expected_loss_control=expected_loss(post_c, post_t),
        reason=None,
    )
    # Reference: Miller's exact sum (rational arithmetic).
    exact = float(_miller_exact(101, 901, 126, 876))
    assert result.chance_to_beat_control == pytest.approx(exact, abs=1e-12)


@PROPERTY
@given(control=small_counts, treatment=small_counts)
def test_compare_proportions_bayes_label_swap(
    control: tuple[int, int], treatment: tuple[int, int]
) -> None:
    c, t = ProportionStats(*control), ProportionStats(*treatment)
    forward, backward = compare_proportions_bayes(c, t), compare_proportions_bayes(t, c)
    assert forward.chance_to_beat_control + backward.chance_to_beat_control == pytest.approx(
        1.0, abs=1e-10
    )
    assert forward.expected_loss_treatment == backward.expected_loss_control
    assert forward.expected_loss_control == backward.expected_loss_treatment


def test_compare_proportions_bayes_without_data_is_the_prior() -> None:
    result = compare_proportions_bayes(ProportionStats(0, 0), ProportionStats(0, 0))
    assert result.reason is None
    assert result.chance_to_beat_control == 0.5
    # Two independent uniforms: E[max(U1 − U2, 0)] = 1/6.
    assert result.expected_loss_treatment == pytest.approx(1 / 6, abs=1e-12)
    assert result.expected_loss_control == pytest.approx(1 / 6, abs=1e-12)


def test_compare_means_bayes_matches_normal_posteriors() -> None:
    control = MeanStats.from_moments(n=400, mean=10.0, std=4.0)
    treatment = MeanStats.from_moments(n=500, mean=10.3, std=5.0)
    result = compare_means_bayes(control, treatment)
    post_c, post_t = NormalPosterior(10.0, 16 / 400), NormalPosterior(10.3, 25 / 500)
    assert result.reason is None
    assert result.chance_to_beat_control == pytest.approx(prob_beats_normal(post_t, post_c))
    assert result.expected_loss_treatment == pytest.approx(expected_loss_normal(post_t, post_c))
    assert result.expected_loss_control == pytest.approx(expected_loss_normal(post_c, post_t))
    # Φ(0.3 / sqrt(0.04 + 0.05)) = Φ(1): scipy.stats.norm.cdf(1.0)
    assert result.chance_to_beat_control == pytest.approx(0.8413447460685429, abs=1e-14)


@pytest.mark.parametrize(
    ("control", "treatment", "reason"),
    [
        (MeanStats.from_values([1.0]), MeanStats.from_values([1.0, 2.0]), "insufficient_samples"),
        (MeanStats.from_values([1.0, 2.0]), MeanStats(0, 0.0, 0.0), "no_samples"),
        (MeanStats(0, 0.0, 0.0), MeanStats.from_values([1.0]), "no_samples"),
        (MeanStats.from_values([3.0, 3.0]), MeanStats.from_values([5.0] * 4), "zero_variance"),
    ],
)
def test_compare_means_bayes_degenerate_is_undefined(
    control: MeanStats, treatment: MeanStats, reason: BayesianReason
) -> None:
    assert compare_means_bayes(control, treatment) == BayesianComparison(None, None, None, reason)


def test_compare_means_bayes_one_constant_arm_is_not_degenerate() -> None:
    result = compare_means_bayes(
        MeanStats.from_values([0.0] * 50), MeanStats.from_values([0.0, 1.0] * 25)
    )
    assert result.reason is None
    assert result.chance_to_beat_control > 0.99
