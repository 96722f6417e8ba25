"""Estimates from adaptive traffic: the weighted sums, reference checks and Thompson simulations.

The references are direct computations on per-user data (numpy over the users, the
estimator's defining formula), independent of the sums. The simulations run two-arm Thompson
sampling the way the service does: the allocation is recomputed from the shared counts once
per batch of users, with the exploration floor 0.01 of ``routing.policy_for``; within a batch
the users of one arm share one ``p``, so a batch adds ``k·f(p)`` to each sum. P(best) is
taken by the normal approximation to the Beta posteriors, as in ``test_adaptive_srm.py``: the
exact quadrature costs ~40 ms a row, and the estimators' validity needs only that users are
drawn with the logged probabilities, whatever rule set them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr

from abscope.bandits import ThompsonConfig, allocation_probabilities
from abscope.stats.adaptive_estimates import (
    AdaptiveMethod,
    WeightedSums,
    adaptive_difference,
    adaptive_mean,
)

Array = npt.NDArray[np.float64]
FLOOR = 0.01  # routing.policy_for
METHODS: tuple[AdaptiveMethod, ...] = ("naive", "horvitz_thompson", "hajek", "aipw", "stabilized")
WEIGHTED: tuple[AdaptiveMethod, ...] = METHODS[1:]


def thompson(pulls: Array, rewards: Array) -> Array:
    """Two-arm Thompson allocation with floor 0.01, P(best) by the normal approximation."""
    a, b = 1.0 + rewards, 1.0 + pulls - rewards
    mean = a / (a + b)
    var = a * b / ((a + b) ** 2 * (a + b + 1.0))
    second = ndtr((mean[:, 1] - mean[:, 0]) / np.sqrt(var[:, 0] + var[:, 1]))
    return FLOOR + (1.0 - 2.0 * FLOOR) * np.stack([1.0 - second, second], axis=1)


@dataclass(frozen=True)
class Runs:
    """Per run and arm (shape ``(runs, 2)``): users, conversions and the weighted sums."""

    pulls: Array
    conversions: Array
    h: Array  # Σ 1/p
    q: Array  # Σ 1/p²
    g: Array  # Σ 1/√p
    y: Array  # Σ y/p
    yq: Array  # Σ y/p²
    yg: Array  # Σ y/√p

    def sums(self, run: int, arm: int) -> WeightedSums:
        """The arm's :class:`WeightedSums` (0/1 outcomes, so ``y² = y``)."""
        conv = float(self.conversions[run, arm])
        y, yq = float(self.y[run, arm]), float(self.yq[run, arm])
        return WeightedSums(
            samples=int(self.pulls[run, arm]),
            value_sum=conv,
            value_square_sum=conv,
            inverse_probability_sum=float(self.h[run, arm]),
            inverse_probability_square_sum=float(self.q[run, arm]),
            inverse_sqrt_probability_sum=float(self.g[run, arm]),
            value_inverse_probability_sum=y,
            value_inverse_probability_square_sum=yq,
            value_inverse_sqrt_probability_sum=float(self.yg[run, arm]),
            square_inverse_probability_sum=y,
            square_inverse_probability_square_sum=yq,
        )


def simulate_thompson(
    rates: tuple[float, float], *, runs: int, batches: int, batch: int, seed: int
) -> Runs:
    """``runs`` Thompson experiments of ``batches × batch`` users on Bernoulli arms."""
    rng = np.random.default_rng(seed)
    true = np.asarray(rates)
    pulls, conversions = np.zeros((runs, 2)), np.zeros((runs, 2))
    h, q, g, y, yq, yg = (np.zeros((runs, 2)) for _ in range(6))
    for _ in range(batches):
        p = thompson(pulls, conversions)
        second = rng.binomial(batch, p[:, 1])
        k = np.stack([batch - second, second], axis=1).astype(np.float64)
        converted = rng.binomial(k.astype(np.int64), true).astype(np.float64)
        pulls += k
        conversions += converted
        h += k / p
        q += k / p**2
        g += k / np.sqrt(p)
        y += converted / p
        yq += converted / p**2
        yg += converted / np.sqrt(p)
    return Runs(pulls, conversions, h, q, g, y, yq, yg)


@dataclass(frozen=True)
class Calibration:
    """Per method and target (arm 0, arm 1, arm 1 − arm 0): bias, its MC error, mean SE,
    the estimates' standard deviation and the interval coverage."""

    bias: dict[str, Array]
    mc_error: dict[str, Array]
    mean_se: dict[str, Array]
    sd: dict[str, Array]
    coverage: dict[str, Array]


def calibrate(
    rates: tuple[float, float], runs: Runs, *, outcome_models: tuple[float, float]
) -> Calibration:
    """Evaluate every method on every run against the known rates."""
    truth = np.array([rates[0], rates[1], rates[1] - rates[0]])
    n_runs = runs.pulls.shape[0]
    total = int(round(float(np.sum(runs.pulls[0]))))
    out: dict[str, dict[str, Array]] = {k: {} for k in ("bias", "mc", "se", "sd", "cov")}
    for method in METHODS:
        est, se, cov = (
            np.full((n_runs, 3), np.nan),
            np.full((n_runs, 3), np.nan),
            np.zeros((n_runs, 3)),
        )
        for r in range(n_runs):
            arms = (runs.sums(r, 0), runs.sums(r, 1))
            results = [
                adaptive_mean(arms[a], method, total=total, outcome_model=outcome_models[a])
                for a in (0, 1)
            ]
            results.append(
                adaptive_difference(
                    arms[1],
                    arms[0],
                    method,
                    total=total,
                    outcome_models=(outcome_models[1], outcome_models[0]),
                )
            )
            for j, result in enumerate(results):
                est[r, j] = math.nan if result.estimate is None else result.estimate
                se[r, j] = math.nan if result.std_error is None else result.std_error
                cov[r, j] = result.ci is not None and result.ci.contains(float(truth[j]))
        out["bias"][method] = np.mean(est, axis=0) - truth
        out["sd"][method] = np.std(est, axis=0, ddof=1)
        out["mc"][method] = out["sd"][method] / math.sqrt(n_runs)
        out["se"][method] = np.mean(se, axis=0)
        out["cov"][method] = np.mean(cov, axis=0)
    return Calibration(out["bias"], out["mc"], out["se"], out["sd"], out["cov"])


# --- reference checks on per-user data ---------------------------------------------------


@st.composite
def arm(draw: st.DrawFn, binary: bool = False) -> tuple[Array, Array]:
    n = draw(st.integers(2, 40))
    if binary:
        ys = draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n))
    else:
        ys = draw(st.lists(st.floats(-50, 50), min_size=n, max_size=n))
    ps = draw(st.lists(st.floats(0.01, 1.0), min_size=n, max_size=n))
    return np.asarray(ys), np.asarray(ps)


def _direct_mean(y: Array, p: Array, method: str, total: int, m: float) -> tuple[float, float]:
    """The estimator and its variance straight from the users, by the defining formulas."""
    if method == "naive":
        return float(np.mean(y)), float(np.var(y, ddof=1) / y.size)
    if method == "hajek":
        mu = float(np.sum(y / p) / np.sum(1 / p))
        return mu, float(np.sum(((y - mu) / p) ** 2) / np.sum(1 / p) ** 2)
    if method == "stabilized":
        w = 1 / np.sqrt(p)
        mu = float(np.sum(w * y) / np.sum(w))
        return mu, float(np.sum(w**2 * (y - mu) ** 2) / np.sum(w) ** 2)
    # AIPW (m = 0: HT): the score of every one of the N users, the absent ones scoring m.
    m = 0.0 if method == "horvitz_thompson" else m
    scores = np.concatenate([m + (y - m) / p, np.full(total - y.size, m)])
    return float(np.mean(scores)), float(np.var(scores, ddof=1) / total)


@settings(max_examples=80, deadline=None)
@given(arm(), st.integers(0, 100), st.floats(-10, 10), st.sampled_from(METHODS))
def test_each_estimate_matches_the_direct_computation_on_the_users(
    data: tuple[Array, Array], extra: int, m: float, method: AdaptiveMethod
) -> None:
    y, p = data
    total = y.size + extra
    expected, variance = _direct_mean(y, p, method, total, m)
    result = adaptive_mean(
        WeightedSums.from_users(y.tolist(), p.tolist()), method, total=total, outcome_model=m
    )
    assert result.estimate == pytest.approx(expected, rel=1e-9, abs=1e-9)
    scale = max(1.0, float(np.max(np.abs(y / p))))
    if result.reason == "zero_variance":
        assert math.sqrt(variance) <= 1e-6 * scale and result.ci is None
        return
    assert result.std_error == pytest.approx(math.sqrt(variance), rel=1e-6, abs=1e-9 * scale)
    assert result.ci is not None
    assert result.ci.lower == pytest.approx(expected - 1.959963984540054 * result.std_error)


@settings(max_examples=60, deadline=None)
@given(arm(), arm(), st.integers(0, 50), st.sampled_from(WEIGHTED))
def test_the_difference_matches_the_direct_score_computation(
    a: tuple[Array, Array], b: tuple[Array, Array], extra: int, method: AdaptiveMethod
) -> None:
    (yt, pt), (yc, pc) = a, b
    total = yt.size + yc.size + extra
    mt, mc = 1.5, -0.5
    result = adaptive_difference(
        WeightedSums.from_users(yt.tolist(), pt.tolist()),
        WeightedSums.from_users(yc.tolist(), pc.tolist()),
        method,
        total=total,
        outcome_models=(mt, mc),
    )
    if method in ("hajek", "stabilized"):
        et, vt = _direct_mean(yt, pt, method, 0, 0)
        ec, vc = _direct_mean(yc, pc, method, 0, 0)
        expected, variance = et - ec, vt + vc
    else:
        mt, mc = (0.0, 0.0) if method == "horvitz_thompson" else (mt, mc)
        # Every user's score for treatment minus its score for control.
        d = np.concatenate(
            [
                mt + (yt - mt) / pt - mc,
                mt - (mc + (yc - mc) / pc),
                np.full(extra, mt - mc),
            ]
        )
        expected, variance = float(np.mean(d)), float(np.var(d, ddof=1) / total)
    assert result.estimate == pytest.approx(expected, rel=1e-9, abs=1e-9)
    if result.std_error is not None:
        scale = max(1.0, float(np.max(np.abs(np.concatenate([yt / pt, yc / pc])))))
        assert result.std_error == pytest.approx(math.sqrt(variance), rel=1e-6, abs=1e-9 * scale)


@settings(max_examples=60, deadline=None)
@given(arm(), arm(), st.sampled_from(METHODS))
def test_swapping_the_arms_negates_the_difference(
    a: tuple[Array, Array], b: tuple[Array, Array], method: AdaptiveMethod
) -> None:
    t, c = (WeightedSums.from_users(y.tolist(), p.tolist()) for y, p in (a, b))
    total = t.samples + c.samples + 7
    forward = adaptive_difference(t, c, method, total=total, outcome_models=(0.3, 0.2))
    backward = adaptive_difference(c, t, method, total=total, outcome_models=(0.2, 0.3))
    assert forward.estimate is not None and backward.estimate is not None
    assert forward.estimate == pytest.approx(-backward.estimate, rel=1e-9, abs=1e-9)
    assert (forward.std_error is None) == (backward.std_error is None)
    if forward.std_error is not None and backward.std_error is not None:
        assert forward.std_error == pytest.approx(backward.std_error, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(arm(), st.floats(0.05, 1.0), st.sampled_from(["hajek", "stabilized", "naive"]))
def test_normalised_estimates_ignore_a_common_scale_of_the_probabilities(
    data: tuple[Array, Array], share: float, method: AdaptiveMethod
) -> None:
    """A traffic share ``s`` multiplies every logged ``p``; the normalised estimates, their
    standard errors and intervals do not change."""
    y, p = data
    plain = adaptive_mean(WeightedSums.from_users(y.tolist(), p.tolist()), method)
    shared = adaptive_mean(WeightedSums.from_users(y.tolist(), (share * p).tolist()), method)
    assert shared.estimate == pytest.approx(plain.estimate, rel=1e-9, abs=1e-9)
    if plain.std_error is not None and shared.std_error is not None:
        assert shared.std_error == pytest.approx(plain.std_error, rel=1e-6, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(arm(), arm())
def test_sums_of_disjoint_users_add(a: tuple[Array, Array], b: tuple[Array, Array]) -> None:
    both = WeightedSums.from_users(np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]))
    added = WeightedSums.from_users(a[0], a[1]) + WeightedSums.from_users(b[0], b[1])
    for field in fields(WeightedSums):
        assert getattr(added, field.name) == pytest.approx(
            getattr(both, field.name), rel=1e-12, abs=1e-9
        )


def test_hajek_is_aipw_with_its_own_mean_as_the_outcome_model() -> None:
    rng = np.random.default_rng(5)
    y, p = rng.binomial(1, 0.3, 200).astype(float), rng.uniform(0.05, 0.9, 200)
    s = WeightedSums.from_users(y.tolist(), p.tolist())
    hajek = adaptive_mean(s, "hajek")
    assert hajek.estimate is not None
    aipw = adaptive_mean(s, "aipw", total=400, outcome_model=hajek.estimate)
    assert aipw.estimate == pytest.approx(hajek.estimate, rel=1e-12)


def test_degenerate_sums_carry_a_reason() -> None:
    empty = adaptive_mean(WeightedSums(), "hajek")
    assert empty.reason == "no_samples" and empty.estimate is None
    one = adaptive_mean(WeightedSums.from_users([1.0], [0.5]), "hajek")
    assert one.reason == "insufficient_samples" and one.estimate == 1.0 and one.std_error is None
    constant = adaptive_mean(WeightedSums.from_users([1.0, 1.0], [1.0, 1.0]), "stabilized")
    assert constant.reason == "zero_variance" and constant.std_error == 0.0 and constant.ci is None
    unlogged = WeightedSums(samples=10, inverse_probability_sum=3.0)  # exposures without p
    for method in WEIGHTED:
        assert adaptive_mean(unlogged, method, total=20).reason == "missing_probabilities"
    lone = adaptive_mean(WeightedSums.from_users([1.0], [1.0]), "horvitz_thompson", total=1)
    assert lone.reason == "insufficient_samples" and lone.estimate == 1.0


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: adaptive_mean(WeightedSums(), "ipw"), "method"),  # type: ignore[arg-type]
        (lambda: adaptive_mean(WeightedSums(), "aipw"), "total"),
        (lambda: adaptive_mean(WeightedSums(samples=3), "aipw", total=2), "total"),
        (lambda: adaptive_mean(WeightedSums(), "hajek", confidence_level=1.0), "confidence_level"),
        (lambda: WeightedSums(samples=-1), "samples"),
        (lambda: WeightedSums(inverse_probability_sum=-1.0), "inverse_probability_sum"),
        (lambda: WeightedSums(value_sum=math.nan), "value_sum"),
        (lambda: WeightedSums.from_users([1.0], [0.0]), "probabilities[0]"),
        (lambda: WeightedSums.from_users([1.0], []), "probabilities"),
    ],
)
def test_invalid_arguments_name_themselves(call: object, name: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(name)}"):
        call()  # type: ignore[operator]


def test_normal_thompson_allocation_tracks_the_exact_one() -> None:
    pulls = np.array([[40.0, 60.0], [500.0, 2000.0], [3000.0, 3100.0]])
    rewards = np.array([[4.0, 9.0], [50.0, 240.0], [300.0, 320.0]])
    exact = allocation_probabilities(ThompsonConfig(floor=FLOOR), pulls, rewards)
    assert np.max(np.abs(thompson(pulls, rewards) - exact)) < 0.02


# --- the simulation with known truth -----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("rates", [(0.10, 0.12), (0.10, 0.10)])
def test_thompson_traffic_biases_the_naive_mean_but_not_the_weighted_ones(
    rates: tuple[float, float],
) -> None:
    """1,000 Thompson experiments of 20,000 users (allocation refreshed every 100 users).

    The naive mean is biased down (for the starved arm at 10% against 12%; for both arms of
    an A/A test). The inverse-probability estimates are unbiased: bias within 3 MC errors and
    within their standard error. The square-root-weighted intervals cover within 2 points of
    95% in both cases; its bias is within a third of its standard error. The plain
    (Horvitz-Thompson, Hájek, AIPW) intervals cover within 2 points when one arm is clearly
    better; in the A/A case, whose allocation never settles, they are conservative (about
    96-97% in ``benchmarks/calibration.py``), so only the square-root weights are held to
    nominal there.
    """
    runs = simulate_thompson(rates, runs=1000, batches=200, batch=100, seed=20261201)
    model = sum(rates) / 2
    result = calibrate(rates, runs, outcome_models=(model, model))
    naive = result.bias["naive"]
    assert naive[0] < -5.0 * result.mc_error["naive"][0]
    if rates[0] == rates[1]:
        assert naive[1] < -5.0 * result.mc_error["naive"][1]
    for method in ("horvitz_thompson", "hajek", "aipw"):
        bias, mc, se = result.bias[method], result.mc_error[method], result.mean_se[method]
        assert np.all(np.abs(bias) <= 3.0 * mc), (method, bias, mc)
        assert np.all(np.abs(bias) <= se), method
        if rates[0] != rates[1]:
            assert np.all(np.abs(result.coverage[method] - 0.95) <= 0.02), (method, result)
        else:
            assert np.all(result.coverage[method] >= 0.93), (method, result)
    stabilized = result.bias["stabilized"]
    assert np.all(np.abs(stabilized) <= result.mean_se["stabilized"] / 3.0)
    assert np.all(np.abs(result.coverage["stabilized"] - 0.95) <= 0.02), result.coverage
