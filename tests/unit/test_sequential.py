"""Always-valid inference: calibration under daily peeking, power, duality and the boundary.

The simulations are seeded and vectorised: daily conversion counts for thousands of A/A (or
A/B) experiments are drawn at once, and the naive fixed-horizon z-test is evaluated on whole
arrays. The sequential test is run through the public :func:`sequential_path`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy import optimize, stats

from abscope.stats.proportions import two_proportion_ztest
from abscope.stats.sequential import (
    DEFAULT_TUNING_N,
    SequentialReason,
    SequentialResult,
    sequential_path,
    sequential_test,
)
from abscope.stats.sufficient import ProportionStats

PROPERTY = settings(max_examples=200, deadline=None)
ALPHA = 0.05

EXPERIMENTS = 3000
LOOKS = 30  # one look a day for a month
USERS_PER_ARM_PER_DAY = 300
BASE_RATE = 0.10


# --- simulation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """Cumulative per-look data of many simulated experiments: arrays (experiments, looks)."""

    n_per_arm: NDArray[np.float64]  # (looks,)
    conversions_c: NDArray[np.int64]
    conversions_t: NDArray[np.int64]

    @property
    def rate_c(self) -> NDArray[np.float64]:
        return self.conversions_c / self.n_per_arm

    @property
    def rate_t(self) -> NDArray[np.float64]:
        return self.conversions_t / self.n_per_arm

    @property
    def difference(self) -> NDArray[np.float64]:
        return self.rate_t - self.rate_c

    @property
    def difference_variance(self) -> NDArray[np.float64]:
        """Unpooled variance of p̂_t − p̂_c."""
        n = self.n_per_arm
        return self.rate_t * (1 - self.rate_t) / n + self.rate_c * (1 - self.rate_c) / n

    @property
    def lift(self) -> NDArray[np.float64]:
        return self.rate_t / self.rate_c - 1

    @property
    def lift_variance(self) -> NDArray[np.float64]:
        """Delta method: Var(p̂_t / p̂_c) ≈ (p_t/p_c)² (Var p̂_t / p_t² + Var p̂_c / p_c²)."""
        n = self.n_per_arm
        ratio = self.rate_t / self.rate_c
        rel_t = (1 - self.rate_t) / (self.rate_t * n)
        rel_c = (1 - self.rate_c) / (self.rate_c * n)
        return ratio**2 * (rel_t + rel_c)


def _simulate(rate_c: float, rate_t: float, seed: int) -> Trial:
    rng = np.random.default_rng(seed)
    shape = (EXPERIMENTS, LOOKS)
    conversions_c = np.cumsum(rng.binomial(USERS_PER_ARM_PER_DAY, rate_c, shape), axis=1)
    conversions_t = np.cumsum(rng.binomial(USERS_PER_ARM_PER_DAY, rate_t, shape), axis=1)
    n = USERS_PER_ARM_PER_DAY * np.arange(1, LOOKS + 1, dtype=float)
    return Trial(n, conversions_c, conversions_t)


def _naive_p_values(trial: Trial) -> NDArray[np.float64]:
    """Fixed-horizon two-proportion z-test (pooled SE) at every look: (experiments, looks).

    The statistic of statsmodels.stats.proportion.proportions_ztest and of
    abscope.stats.proportions.two_proportion_ztest, vectorised.
    """
    n = trial.n_per_arm
    pooled = (trial.rate_c + trial.rate_t) / 2
    se = np.sqrt(pooled * (1 - pooled) * (2 / n))
    return np.asarray(2 * stats.norm.sf(np.abs(trial.difference) / se))


def _naive_rejects_at_any_look(trial: Trial) -> NDArray[np.bool_]:
    return np.asarray((_naive_p_values(trial) < ALPHA).any(axis=1))


def _sequential_paths(
    estimates: NDArray[np.float64], variances: NDArray[np.float64], n_total: NDArray[np.float64]
) -> list[tuple[SequentialResult, ...]]:
    ns = [int(n) for n in n_total]
    return [
        sequential_path(list(e), list(v), ns, alpha=ALPHA)
        for e, v in zip(estimates, variances, strict=True)
    ]


def _rejects(paths: list[tuple[SequentialResult, ...]]) -> NDArray[np.bool_]:
    return np.array([path[-1].significant for path in paths])


@pytest.fixture(scope="module")
def aa_trial() -> Trial:
    return _simulate(BASE_RATE, BASE_RATE, seed=20240601)


@pytest.fixture(scope="module")
def ab_trial() -> Trial:
    return _simulate(BASE_RATE, 0.12, seed=20240602)


# --- the acceptance test ------------------------------------------------------------------


def test_aa_daily_peeking_naive_inflates_sequential_controls(aa_trial: Trial) -> None:
    naive = _naive_rejects_at_any_look(aa_trial).mean()
    paths = _sequential_paths(
        aa_trial.difference, aa_trial.difference_variance, 2 * aa_trial.n_per_arm
    )
    sequential = _rejects(paths).mean()
    # Measured with this seed: naive 0.284, sequential 0.014.
    assert naive > 2 * ALPHA
    assert sequential <= ALPHA
    # The peeking is what inflates the naive test: read once, at the end, it is calibrated.
    once = float(np.mean(_naive_p_values(aa_trial)[:, -1] < ALPHA))
    assert abs(once - ALPHA) < 4 * math.sqrt(ALPHA * (1 - ALPHA) / EXPERIMENTS)


def test_vectorised_naive_test_is_the_house_z_test(aa_trial: Trial) -> None:
    p_values = _naive_p_values(aa_trial)
    for experiment, look in [(0, 0), (1, 14), (2, 29), (2999, 7)]:
        n = int(aa_trial.n_per_arm[look])
        control = ProportionStats(n, int(aa_trial.conversions_c[experiment, look]))
        treatment = ProportionStats(n, int(aa_trial.conversions_t[experiment, look]))
        expected = two_proportion_ztest(control, treatment).p_value
        assert p_values[experiment, look] == pytest.approx(expected, rel=1e-12)


def test_aa_daily_peeking_relative_lift(aa_trial: Trial) -> None:
    # Any asymptotically normal estimate works: here the lift with its delta-method variance
    # (measured with this seed: 0.025).
    paths = _sequential_paths(aa_trial.lift, aa_trial.lift_variance, 2 * aa_trial.n_per_arm)
    assert _rejects(paths).mean() <= ALPHA


def _log_ratio(trial: Trial) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """log(p̂_t / p̂_c) and its Katz variance 1/x_t − 1/n + 1/x_c − 1/n (the scale on which
    the analysis builds the relative confidence sequence)."""
    n = trial.n_per_arm
    variance = 1 / trial.conversions_t - 1 / n + 1 / trial.conversions_c - 1 / n
    return np.log(trial.rate_t / trial.rate_c), variance


def test_aa_daily_peeking_log_ratio(aa_trial: Trial) -> None:
    estimates, variances = _log_ratio(aa_trial)
    paths = _sequential_paths(estimates, variances, 2 * aa_trial.n_per_arm)
    # Measured with this seed: 0.013.
    assert _rejects(paths).mean() <= ALPHA


def test_ab_relative_sequence_on_the_log_scale_covers_the_true_lift(ab_trial: Trial) -> None:
    estimates, variances = _log_ratio(ab_trial)
    paths = _sequential_paths(estimates, variances, 2 * ab_trial.n_per_arm)
    true_log_ratio = math.log(0.12 / BASE_RATE)
    covered = [
        all(r.ci_lower <= true_log_ratio <= r.ci_upper for r in path)  # type: ignore[operator]
        for path in paths
    ]
    # Measured with this seed: 0.99. Mapped back by exp(.) - 1 the bounds stay above -100%.
    assert np.mean(covered) >= 1 - ALPHA
    assert all(math.expm1(r.ci_lower) > -1.0 for path in paths for r in path)  # type: ignore[arg-type]


def test_ab_sequential_detects_a_real_effect(ab_trial: Trial) -> None:
    paths = _sequential_paths(
        ab_trial.difference, ab_trial.difference_variance, 2 * ab_trial.n_per_arm
    )
    power = _rejects(paths).mean()
    assert power > 0.85  # measured 0.917 (fixed horizon read once, at day 30: 0.990)
    # Time-uniform coverage: the true difference lies in every look's interval at once.
    true_difference = 0.12 - BASE_RATE
    covered = [all(r.ci_lower <= true_difference <= r.ci_upper for r in path) for path in paths]
    assert np.mean(covered) >= 1 - ALPHA
    # Rejections happen early: the median first significant look is well before the last.
    first = [
        next(i for i, r in enumerate(path) if r.significant)
        for path in paths
        if path[-1].significant
    ]
    assert np.median(first) < LOOKS - 5


# --- closed forms -------------------------------------------------------------------------


def _rho_squared(alpha: float, tuning_n: int) -> float:
    # Howard et al. (2021): ρ² = (−2 log α + log(−2 log α + 1)) / N*.
    return (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning_n


def _log_mixture_ratio(theta0: float, estimate: float, variance: float, tau2: float) -> float:
    """log Λ(θ0) for Λ = sqrt(V/(V+τ²)) · exp(τ² (θ̂−θ0)² / (2V(V+τ²))), straight from the paper."""
    return 0.5 * math.log(variance / (variance + tau2)) + tau2 * (estimate - theta0) ** 2 / (
        2 * variance * (variance + tau2)
    )


estimates = st.floats(min_value=-10.0, max_value=10.0)
standard_errors = st.floats(min_value=1e-4, max_value=10.0)
sample_sizes = st.integers(min_value=1, max_value=10**8)
alphas = st.floats(min_value=1e-4, max_value=0.5)
tuning_ns = st.integers(min_value=1, max_value=10**7)


@PROPERTY
@given(estimates, standard_errors, sample_sizes, alphas, tuning_ns)
def test_interval_boundary_is_where_the_mixture_ratio_crosses_one_over_alpha(
    estimate: float, se: float, n: int, alpha: float, tuning_n: int
) -> None:
    variance = se * se
    tau2 = n * variance * _rho_squared(alpha, tuning_n)
    result = sequential_test(estimate, variance, n, alpha=alpha, tuning_n=tuning_n)

    def excess(distance: float) -> float:
        return _log_mixture_ratio(estimate + distance, estimate, variance, tau2) + math.log(alpha)

    bracket = se
    while excess(bracket) < 0:
        bracket *= 2
    root = optimize.brentq(excess, 0.0, bracket, xtol=1e-300, rtol=1e-14)
    assert result.ci_upper - estimate == pytest.approx(root, rel=1e-9)
    assert estimate - result.ci_lower == pytest.approx(root, rel=1e-9)
    # And the p-value is 1/Λ(0) from the same formula.
    expected_p = min(1.0, math.exp(-_log_mixture_ratio(0.0, estimate, variance, tau2)))
    assert result.p_value == pytest.approx(expected_p, rel=1e-9, abs=1e-300)


@PROPERTY
@given(estimates, standard_errors, sample_sizes, alphas, tuning_ns)
def test_p_value_and_interval_are_dual(
    estimate: float, se: float, n: int, alpha: float, tuning_n: int
) -> None:
    result = sequential_test(estimate, se * se, n, alpha=alpha, tuning_n=tuning_n)
    half_width = result.ci_upper - estimate
    assume(abs(abs(estimate) - half_width) > 1e-9 * half_width)  # not on the boundary itself
    excludes_zero = not (result.ci_lower <= 0.0 <= result.ci_upper)
    assert (result.p_value < alpha) == excludes_zero == result.significant
    assert 0.0 <= result.p_value <= 1.0
    assert result.ci_lower < estimate < result.ci_upper
    assert estimate - result.ci_lower == pytest.approx(result.ci_upper - estimate, rel=1e-12)


@PROPERTY
@given(standard_errors, sample_sizes, alphas, tuning_ns)
def test_interval_is_wider_than_fixed_horizon(
    se: float, n: int, alpha: float, tuning_n: int
) -> None:
    result = sequential_test(0.0, se * se, n, alpha=alpha, tuning_n=tuning_n)
    fixed = stats.norm.isf(alpha / 2) * se
    assert result.ci_upper > fixed


def test_width_shrinks_like_sqrt_log_n_over_n() -> None:
    sigma = 2.0  # per-observation standard deviation: V = σ²/n
    ns = np.unique(np.logspace(2, 12, 41).astype(int))
    half = np.array([sequential_test(0.0, sigma**2 / n, int(n)).ci_upper for n in ns])
    assert np.all(np.diff(half) < 0)
    # Exactly: h² n / σ² = 2 log(1/α) + log(1 + nρ²) + (2 log(1/α) + log(1 + nρ²)) / (nρ²),
    # so h ~ σ sqrt(log n / n): the normalised width stays bounded and tends to 1.
    normalised = half / (sigma * np.sqrt(np.log(ns) / ns))
    late = normalised[ns >= DEFAULT_TUNING_N]
    assert np.all((late > 0.9) & (late < 1.6))
    assert normalised[-1] == pytest.approx(1.0, abs=0.02)
    rho2 = _rho_squared(ALPHA, DEFAULT_TUNING_N)
    x = ns * rho2
    expected = 2 * math.log(1 / ALPHA) + np.log1p(x) + (2 * math.log(1 / ALPHA) + np.log1p(x)) / x
    np.testing.assert_allclose(half**2 * ns / sigma**2, expected, rtol=1e-12)


def test_tightest_near_tuning_n() -> None:
    # Relative to the fixed-horizon width, the sequence is tightest around n = N*.
    def ratio(n: int, tuning_n: int) -> float:
        se = 1 / math.sqrt(n)
        width = sequential_test(0.0, se * se, n, tuning_n=tuning_n).ci_upper
        return width / (stats.norm.isf(ALPHA / 2) * se)

    for tuning_n in (1000, 5000, 50_000):
        at_target = ratio(tuning_n, tuning_n)
        assert at_target < ratio(tuning_n // 10, tuning_n)
        assert at_target < ratio(tuning_n * 10, tuning_n)
        assert 1.5 < at_target < 1.6  # ~1.55× a fixed-horizon interval at α = 0.05


def test_reference_value() -> None:
    # Hand computation: ρ² = (5.99146 + log 6.99146) / 5000 = 1.58723e-3, x = nρ² = 19.0468,
    # z² = 9; p = sqrt(1 + x) exp(−z² x / (2(1 + x))) = 0.06226; half-width
    # 0.004 · sqrt(2 (1 + x) / x · (log 20 + ½ log(1 + x))) = 0.012304.
    result = sequential_test(0.012, 0.004**2, 12_000)
    assert result.p_value == pytest.approx(0.0622566, rel=1e-5)
    assert result.ci_upper - 0.012 == pytest.approx(0.0123038, rel=1e-5)
    assert result.significant is False
    assert (result.alpha, result.tuning_n, result.reason) == (0.05, 5000, None)


# --- degenerate data and arguments --------------------------------------------------------


@pytest.mark.parametrize(
    ("estimate", "variance", "n", "reason"),
    [(0.0, 0.0, 0, "no_samples"), (0.3, 0.01, 0, "no_samples"), (0.3, 0.0, 100, "zero_variance")],
)
def test_degenerate_looks_are_undefined(
    estimate: float, variance: float, n: int, reason: SequentialReason
) -> None:
    result = sequential_test(estimate, variance, n)
    assert result == SequentialResult(None, None, None, False, 0.05, 5000, reason)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"estimate": math.nan}, "estimate"),
        ({"variance": -1e-9}, "variance"),
        ({"n": 10.5}, "n"),
        ({"n": -1}, "n"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"tuning_n": 0}, "tuning_n"),
    ],
)
def test_invalid_arguments_name_themselves(kwargs: dict[str, float], name: str) -> None:
    arguments: dict[str, float] = {"estimate": 0.1, "variance": 0.01, "n": 100} | kwargs
    with pytest.raises(ValueError, match=f"^{name}"):
        sequential_test(**arguments)  # type: ignore[arg-type]


# --- paths --------------------------------------------------------------------------------


@PROPERTY
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=-1.0, max_value=1.0),
            st.floats(min_value=0.01, max_value=1.0),
            st.integers(min_value=0, max_value=500),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_path_is_monotone_and_nested(looks: list[tuple[float, float, int]]) -> None:
    # A random walk of estimates with shrinking standard errors over growing samples.
    ns = np.cumsum([1 + step for _, _, step in looks]).tolist()
    estimates = [e for e, _, _ in looks]
    variances = [(s / math.sqrt(n)) ** 2 for (_, s, _), n in zip(looks, ns, strict=True)]
    path = sequential_path(estimates, variances, ns)
    assert len(path) == len(looks)
    for before, after in zip(path, path[1:], strict=False):
        assert after.p_value <= before.p_value
        assert before.ci_lower <= after.ci_lower <= after.ci_upper <= before.ci_upper
    single = [sequential_test(e, v, n) for e, v, n in zip(estimates, variances, ns, strict=True)]
    for i, result in enumerate(path):
        assert result.p_value == min(r.p_value for r in single[: i + 1])
        assert result.significant == (result.p_value < ALPHA)
        if result.reason != "disjoint_looks":
            assert result.ci_lower == max(r.ci_lower for r in single[: i + 1])
            assert result.ci_upper == min(r.ci_upper for r in single[: i + 1])
            assert result.significant == (not result.ci_lower <= 0.0 <= result.ci_upper)


def test_path_with_disjoint_looks_keeps_the_overlap_and_says_so() -> None:
    path = sequential_path([0.0, 10.0, 0.03], [1e-4, 1e-4, 1e-4], [1000, 2000, 3000])
    first = sequential_test(0.0, 1e-4, 1000)
    third = sequential_test(0.03, 1e-4, 3000)
    assert first.ci_lower < third.ci_lower < first.ci_upper < third.ci_upper  # they overlap
    assert path[0].reason is None
    assert path[1].reason == "disjoint_looks"
    assert (path[1].ci_lower, path[1].ci_upper) == (first.ci_lower, first.ci_upper)
    assert path[1].significant
    assert path[2].reason == "disjoint_looks"  # sticky
    assert (path[2].ci_lower, path[2].ci_upper) == (
        max(first.ci_lower, third.ci_lower),
        min(first.ci_upper, third.ci_upper),
    )


def test_path_starts_with_empty_looks() -> None:
    path = sequential_path([0.0, 0.0, 0.05], [0.0, 0.0, 1e-4], [0, 0, 500])
    assert [r.reason for r in path] == ["no_samples", "no_samples", None]
    assert path[0].p_value is None and not path[0].significant
    assert (path[1].ci_lower, path[1].ci_upper) == (None, None)
    assert path[2] == sequential_test(0.05, 1e-4, 500)


def test_an_undefined_look_after_defined_ones_keeps_the_path() -> None:
    path = sequential_path([0.05, 0.0], [1e-4, 0.0], [500, 600])
    assert path[1].p_value == path[0].p_value and path[1].reason is None
    assert (path[1].ci_lower, path[1].ci_upper) == (path[0].ci_lower, path[0].ci_upper)


def test_empty_path() -> None:
    assert sequential_path([], [], []) == ()


@pytest.mark.parametrize(
    ("estimates", "variances", "ns", "name"),
    [
        ([0.1, 0.2], [0.01], [10, 20], "variances"),
        ([0.1, 0.2], [0.01, 0.01], [10], "ns"),
        ([0.1, 0.2], [0.01, 0.01], [20, 10], "ns"),
        ([0.1, 0.2], [0.01, -0.01], [10, 20], r"variances\[1\]"),
        ([0.1, math.inf], [0.01, 0.01], [10, 20], r"estimates\[1\]"),
        ([0.1, 0.2], [0.01, 0.01], [10, 20.5], r"ns\[1\]"),
    ],
)
def test_path_invalid_arguments_name_themselves(
    estimates: list[float], variances: list[float], ns: list[int], name: str
) -> None:
    with pytest.raises(ValueError, match=f"^{name}"):
        sequential_path(estimates, variances, ns)
