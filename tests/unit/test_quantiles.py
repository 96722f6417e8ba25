"""Quantile metrics: replicate weights, counters, estimators and seeded coverage simulations.

References are direct computations on the raw requests: the counters against a dictionary
built request by request, a replicate's quantile against the exact quantile of the resample
it stands for (the requests repeated by their user's weight), and the intervals against the
known quantiles of simulated lognormal latencies.

The simulation: each user ``u`` sends ``m_u ~ U{1..20}`` requests with log-latency
``log(200 ms) + log(lift) + a_u + e_{uj}``, a user effect ``a_u ~ N(0, 0.5²)`` shared by all
their requests and ``e_{uj} ~ N(0, 0.5²)``. As ``m_u`` is independent of ``a_u``, a request's
latency is lognormal with ``σ² = 0.5² + 0.5²``, so its ``q``-quantile is
``200 · lift · exp(z_q σ)`` exactly; the treatment multiplies every latency by ``lift``.
The counters are built with numpy (:func:`simulate_arm`), checked once against the
request-by-request path (:func:`test_the_simulated_counters_are_the_stores_counters`); the
in-suite runs draw the weights with ``rng.poisson`` (the hashed weights, which cost about
30 µs a user, are checked to be Poisson(1) and independent separately, and
``benchmarks/quantiles.py`` runs the large simulation with them, and gives the figures).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Literal

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from abscope.stats.quantiles import (
    DEFAULT_QUANTILES,
    MIN_USERS,
    POISSON_THRESHOLDS,
    QuantileConfig,
    QuantileCounters,
    _Arm,
    _compare,
    compare_quantiles,
    quantile_estimate,
    replicate_weights,
    request_increments,
)
from abscope.stats.results import Interval
from abscope.stats.sketch import LogSketch, bucket_index, gamma

Array = npt.NDArray[np.float64]
Cluster = Literal["user", "request"]
TARGETS = ("control", "treatment", "difference", "relative")


# --- the simulation -----------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """Lognormal latencies with a per-user effect (see the module docstring)."""

    users: int = 400
    max_requests: int = 20
    median: float = 200.0
    user_sd: float = 0.5
    request_sd: float = 0.5
    lift: float = 1.1

    def truth(self, q: float) -> dict[str, float]:
        """The known control and treatment quantiles, their difference and ratio − 1."""
        sigma = math.hypot(self.user_sd, self.request_sd)
        control = self.median * math.exp(float(stats.norm.ppf(q)) * sigma)
        treatment = control * self.lift
        return {
            "control": control,
            "treatment": treatment,
            "difference": treatment - control,
            "relative": self.lift - 1.0,
        }


def draw_requests(
    rng: np.random.Generator, scenario: Scenario, lift: float
) -> tuple[npt.NDArray[np.int64], Array]:
    """One arm's requests: the owner (0-based user) of each, and its latency."""
    per_user = rng.integers(1, scenario.max_requests + 1, size=scenario.users)
    owner = np.repeat(np.arange(scenario.users), per_user)
    effect = rng.normal(0.0, scenario.user_sd, size=scenario.users)[owner]
    noise = rng.normal(0.0, scenario.request_sd, size=owner.size)
    return owner, scenario.median * lift * np.exp(effect + noise)


def fine_indices(values: Array, accuracy: float) -> npt.NDArray[np.int64]:
    """:func:`bucket_index` of positive values, vectorised (same formula)."""
    return np.ceil(np.log(values) / math.log(gamma(accuracy))).astype(np.int64)


def counters_from_arrays(
    owner: npt.NDArray[np.int64],
    values: Array,
    weights: npt.NDArray[np.int64],
    config: QuantileConfig,
) -> QuantileCounters:
    """The counters of positive ``values``, request ``i`` weighted by ``weights[:, owner[i]]``.

    ``weights`` has one row per replicate and one column per cluster: per user for the
    bootstrap over users, per request (``owner = arange(n)``) for the naive one.
    """
    fine = fine_indices(values, config.accuracy)
    index, count = np.unique(fine, return_counts=True)
    sketch = LogSketch(config.accuracy, tuple(zip(index.tolist(), count.tolist(), strict=True)))
    columns, position = np.unique(-((-fine) // config.coarsening), return_inverse=True)
    # Requests per (cluster, coarse column), then each cell's count times its cluster's
    # weights added into its column: integer arithmetic, exact.
    width = columns.size
    cells, count = np.unique(owner * width + position, return_counts=True)
    b = weights.shape[0]
    contribution = weights[:, cells // width] * count
    flat = (cells % width)[None, :] + width * np.arange(b)[:, None]
    matrix = np.bincount(flat.ravel(), contribution.ravel(), b * width)
    matrix = np.rint(matrix).astype(np.int64).reshape(b, width)
    replicates = []
    for row in matrix:
        occupied = np.flatnonzero(row)
        pairs = zip(columns[occupied].tolist(), row[occupied].tolist(), strict=True)
        replicates.append(LogSketch(config.replicate_accuracy, tuple(pairs)))
    users = int(np.unique(owner).size)
    return QuantileCounters(config, users, sketch, tuple(replicates))


def simulate_arm(
    rng: np.random.Generator,
    scenario: Scenario,
    config: QuantileConfig,
    *,
    treatment: bool,
    cluster: Cluster = "user",
    hashed_ids: str | None = None,
) -> QuantileCounters:
    """One arm's counters. ``cluster="request"`` resamples requests (the naive bootstrap).

    With ``hashed_ids`` the weights are :func:`replicate_weights` of the user ids
    ``f"{hashed_ids}:{u}"`` (the store's weights); else Poisson(1) draws from ``rng``.
    """
    owner, values = draw_requests(rng, scenario, scenario.lift if treatment else 1.0)
    b = config.replicates
    if cluster == "request":
        weights = rng.poisson(1.0, size=(b, owner.size))
        counters = counters_from_arrays(np.arange(owner.size), values, weights, config)
        return replace(counters, users=scenario.users)
    if hashed_ids is not None:
        ids = [f"{hashed_ids}:{u}" for u in range(scenario.users)]
        weights = np.array([replicate_weights(u, config) for u in ids], dtype=np.int64).T
    else:
        weights = rng.poisson(1.0, size=(b, scenario.users))
    return counters_from_arrays(owner, values, weights, config)


@dataclass
class Coverage:
    """Per quantile, target and method, how many runs' intervals held the truth.

    The keys are ``(q, "control[woodruff]")`` and so on: the arms under each of
    ``woodruff``, ``normal`` and ``percentile``, the difference and relative difference
    under ``normal`` and ``percentile``. The defaults are ``[woodruff]`` for the arms and
    ``[normal]`` for the others.
    """

    runs: int = 0
    hits: dict[tuple[float, str], int] = field(default_factory=dict)
    undefined: int = 0

    def rate(self, q: float, target: str) -> float:
        return self.hits.get((q, target), 0) / self.runs

    def defaults(self, q: float) -> dict[str, float]:
        """The coverage of the default intervals at ``q``, by target."""
        labels = ("control[woodruff]", "treatment[woodruff]", "difference[normal]")
        return {label: self.rate(q, label) for label in (*labels, "relative[normal]")}

    def table(self) -> dict[str, dict[str, float]]:
        labels = sorted({label for _, label in self.hits})
        return {
            f"p{round(100 * q)}": {label: round(self.rate(q, label), 4) for label in labels}
            for q in sorted({q for q, _ in self.hits})
        }


def coverage(
    scenario: Scenario,
    config: QuantileConfig,
    *,
    runs: int,
    seed: int,
    cluster: Cluster = "user",
    hashed: bool = False,
    quantiles: Iterable[float] = DEFAULT_QUANTILES,
) -> Coverage:
    """Coverage of the 95% intervals over ``runs`` seeded experiments of ``scenario``."""
    rng = np.random.default_rng(seed)
    out = Coverage(runs=runs)
    qs = tuple(quantiles)
    truths = {q: scenario.truth(q) for q in qs}

    def count(q: float, label: str, interval: Interval | None, truth: float) -> None:
        if interval is None:
            out.undefined += 1
        elif interval.contains(truth):
            out.hits[(q, label)] = out.hits.get((q, label), 0) + 1

    for run in range(runs):
        ids = (f"{seed}:{run}:c", f"{seed}:{run}:t") if hashed else (None, None)
        arms = [
            _Arm(simulate_arm(rng, scenario, config, treatment=t, cluster=cluster, hashed_ids=i))
            for t, i in ((False, ids[0]), (True, ids[1]))
        ]
        for q in qs:
            truth = truths[q]
            # Each arm method once; the difference's two methods with two of them.
            for arm_method, method in (
                ("woodruff", "normal"),
                ("percentile", "percentile"),
                ("normal", None),
            ):
                result = _compare(*arms, q, 0.95, method or "normal", arm_method)
                count(q, f"control[{arm_method}]", result.control.ci, truth["control"])
                count(q, f"treatment[{arm_method}]", result.treatment.ci, truth["treatment"])
                if method is not None:
                    count(q, f"difference[{method}]", result.difference.ci, truth["difference"])
                    count(q, f"relative[{method}]", result.relative.ci, truth["relative"])
    return out


# --- replicate weights --------------------------------------------------------------------


def test_poisson_thresholds_are_the_exact_inverse_cdf() -> None:
    # e^{-1} as a rational to far beyond 2^-32 (its alternating series, 40 terms).
    inverse_e = sum(Fraction((-1) ** j, math.factorial(j)) for j in range(40))
    for k, threshold in enumerate(POISSON_THRESHOLDS):
        cdf = inverse_e * sum(Fraction(1, math.factorial(j)) for j in range(k + 1))
        assert abs(threshold - cdf * 2**32) <= Fraction(1, 2)
    tail = 1 - inverse_e * sum(Fraction(1, math.factorial(j)) for j in range(13))
    assert tail * 2**32 < 1  # weights above 12 cannot be told apart on 32 bits


@pytest.mark.parametrize("scheme", ["poisson", "double_or_nothing"])
def test_replicate_weights_have_mean_one_variance_one_and_no_correlation(scheme: str) -> None:
    config = QuantileConfig(replicates=100, scheme=scheme, salt="exp-7")  # type: ignore[arg-type]
    users = 4_000
    w = np.array([replicate_weights(f"user-{i}", config) for i in range(users)], dtype=float)
    n = w.size
    # Mean 1 and variance 1, each within 4 standard errors (fourth central moment: Poisson
    # 1 + 3 = 4, double-or-nothing 1, so Var(s²) ≈ (μ4 − 1)/n, plus the mean's (w̄ − 1)²).
    tolerance = 4 / math.sqrt(n)
    assert abs(w.mean() - 1.0) < tolerance
    mu4 = 4.0 if scheme == "poisson" else 1.0
    assert abs(w.var() - 1.0) < 4 * math.sqrt((mu4 - 1.0) / n) + tolerance**2
    # Distribution: Poisson(1) pmf (or {0, 2} each 1/2), by a chi-square goodness of fit.
    values, counts = np.unique(w, return_counts=True)
    if scheme == "poisson":
        support = np.arange(5)
        pmf = stats.poisson.pmf(support, 1.0)
        observed = np.array([np.sum(w == k) for k in support] + [np.sum(w >= 5)])
        expected = np.append(pmf, 1.0 - pmf.sum()) * n
    else:
        assert values.tolist() == [0.0, 2.0]
        observed, expected = counts, np.full(2, n / 2)
    assert stats.chisquare(observed, expected).pvalue > 1e-4
    # Independence: replicates of one user, and users, are uncorrelated (|r| < 4/√n).
    replicate_corr = np.corrcoef(w, rowvar=False)[np.triu_indices(100, 1)]
    assert np.max(np.abs(replicate_corr)) < 4.5 / math.sqrt(users)
    assert abs(np.corrcoef(w[:-1].ravel(), w[1:].ravel())[0, 1]) < 4 / math.sqrt(n)


def test_weights_depend_on_user_and_salt_not_on_the_request() -> None:
    config = QuantileConfig(replicates=40, salt="exp-1")
    a = request_increments(12.0, "alice", config, first_request=True)
    b = request_increments(900.0, "alice", config, first_request=False)
    weights = replicate_weights("alice", config)
    for increments in (a, b):
        replicate = {int(k[1:].split(":")[0]): v for k, v in increments.items() if k[0] == "r"}
        assert replicate == {i: w for i, w in enumerate(weights) if w}
    assert replicate_weights("alice", QuantileConfig(replicates=40, salt="exp-2")) != weights
    assert replicate_weights("bob", config) != weights
    # The first 40 replicates of B = 100 are those of B = 40: B can grow, never reshuffle.
    assert replicate_weights("alice", QuantileConfig(replicates=100, salt="exp-1"))[:40] == weights


# --- counters -----------------------------------------------------------------------------


def test_increments_are_the_documented_counters() -> None:
    config = QuantileConfig(replicates=8, coarsening=4, salt="s")
    inc = request_increments(250.0, "u1", config, first_request=True)
    fine = bucket_index(250.0)
    assert fine is not None
    expected = {"users": 1, f"b:{fine}": 1}
    expected |= {
        f"r{b}:{-(-fine // 4)}": w for b, w in enumerate(replicate_weights("u1", config)) if w
    }
    assert inc == expected
    zero = request_increments(-1.0, "u1", config, first_request=False)
    assert "users" not in zero and zero["b:z"] == 1
    assert all(k.endswith(":z") for k in zero)


def test_counters_merge_by_addition_and_round_trip() -> None:
    config = QuantileConfig(replicates=10, salt="s")
    rng = np.random.default_rng(5)
    values = rng.lognormal(5, 1, 300).tolist() + [0.0]
    users = [f"u{i % 37}" for i in range(301)]
    whole = QuantileCounters.from_requests(values, users, config)
    # Disjoint users in two shards: the sum of the shards' counters is the whole's.
    first = [i for i, u in enumerate(users) if int(u[1:]) < 20]
    rest = [i for i, u in enumerate(users) if int(u[1:]) >= 20]
    shards = [
        QuantileCounters.from_requests([values[i] for i in part], [users[i] for i in part], config)
        for part in (first, rest)
    ]
    assert shards[0] + shards[1] == whole
    assert whole.users == 37 and whole.requests == 301
    assert QuantileCounters.from_counters(whole.to_counters(), config) == whole
    assert QuantileCounters.empty(config) + whole == whole


def test_the_simulated_counters_are_the_stores_counters() -> None:
    config = QuantileConfig(replicates=20, salt="sim")
    rng = np.random.default_rng(11)
    scenario = Scenario(users=60)
    owner, values = draw_requests(rng, scenario, 1.0)
    ids = [f"sim:{u}" for u in owner]
    assert fine_indices(values, config.accuracy).tolist() == [bucket_index(v) for v in values]
    weights = np.array([replicate_weights(f"sim:{u}", config) for u in range(60)])
    built = counters_from_arrays(owner, values, weights.T, config)
    assert built == QuantileCounters.from_requests(values.tolist(), ids, config)


@pytest.mark.parametrize(
    ("counters", "message"),
    [({"x:1": 1}, "not a quantile counter"), ({"b:one": 1}, "integer"), ({"r99:1": 1}, "beyond")],
)
def test_unknown_counters_raise(counters: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QuantileCounters.from_counters(counters, QuantileConfig(replicates=4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"accuracy": 0.0}, "accuracy"),
        ({"replicates": 1}, "replicates"),
        ({"coarsening": 0}, "coarsening"),
        ({"scheme": "halves"}, "scheme"),
    ],
)
def test_invalid_config_raises_naming_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QuantileConfig(**kwargs)  # type: ignore[arg-type]


# --- estimators ---------------------------------------------------------------------------


def _replicate_exact(values: Array, weights: Array, q: float) -> float:
    """The ``q``-quantile of the resample: each request repeated by its weight."""
    return float(np.quantile(np.repeat(values, weights.astype(int)), q, method="lower"))


@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
@pytest.mark.parametrize("coarsening", [1, 4])
def test_replicate_quantiles_are_the_resamples_quantiles(q: float, coarsening: int) -> None:
    from abscope.stats.quantiles import _layout, _replicate_quantiles

    config = QuantileConfig(replicates=30, coarsening=coarsening, salt="r")
    rng = np.random.default_rng(3)
    owner, values = draw_requests(rng, Scenario(users=300), 1.0)
    weights = np.array([replicate_weights(f"r:{u}", config) for u in range(300)]).T
    counters = counters_from_arrays(owner, values, weights, config)
    draws = _replicate_quantiles(_layout(counters), q)
    exact = np.array([_replicate_exact(values, w[owner], q) for w in weights])
    # Within one coarse bucket of the resample's exact quantile (the interpolation stays
    # inside the bucket that holds the target rank, up to one request's rank).
    ratio = np.abs(np.log(draws / exact))
    assert np.all(ratio <= (coarsening + 1) * math.log(gamma(config.accuracy)))
    # and on average within less than one *fine* bucket, coarse counters or not: the shape
    # inside a coarse bucket read off the fine sketch is the resample's, to that precision.
    assert np.mean(ratio) < 0.75 * math.log(gamma(config.accuracy))


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.floats(min_value=1e-3, max_value=1e7), st.just(0.0)), min_size=1, max_size=200
    ),
    q=st.floats(min_value=0.001, max_value=0.999),
)
def test_the_estimate_is_in_the_bucket_of_the_exact_sample_quantile(
    values: list[float], q: float
) -> None:
    config = QuantileConfig(replicates=2)
    counters = QuantileCounters.from_requests(values, [str(i) for i in range(len(values))], config)
    estimate = quantile_estimate(counters, q).estimate
    exact = float(np.quantile(values, q, method="lower"))
    assert estimate is not None
    if exact == 0.0:
        assert estimate == 0.0
    else:
        assert abs(math.log(estimate / exact)) <= math.log(gamma(config.accuracy)) * (1 + 1e-9)


def test_degenerate_inputs_give_reasons_not_numbers() -> None:
    config = QuantileConfig(replicates=20, salt="d")
    empty = QuantileCounters.empty(config)
    assert quantile_estimate(empty, 0.5).reason == "no_samples"
    assert quantile_estimate(empty, 0.5).estimate is None
    few = QuantileCounters.from_requests([10.0, 20.0, 30.0], ["a", "b", "c"], config)
    estimate = quantile_estimate(few, 0.5)
    assert estimate.reason == "insufficient_samples" and estimate.ci is None
    assert estimate.estimate == pytest.approx(20.0, rel=0.01)
    # 100 users but 100 requests: too few for p99's tail (needs 500), enough for p50.
    hundred = QuantileCounters.from_requests(
        np.random.default_rng(1).lognormal(3, 1, 100), [f"u{i}" for i in range(100)], config
    )
    assert quantile_estimate(hundred, 0.99).reason == "insufficient_samples"
    assert quantile_estimate(hundred, 0.5).reason is None
    same = QuantileCounters.from_requests([42.0] * 200, [f"u{i}" for i in range(200)], config)
    flat = quantile_estimate(same, 0.5)
    assert (flat.std_error, flat.ci, flat.reason) == (0.0, None, "zero_variance")
    zeros = QuantileCounters.from_requests([0.0] * 200, [f"u{i}" for i in range(200)], config)
    comparison = compare_quantiles(zeros, hundred, 0.5)
    assert comparison.relative.estimate is None and comparison.relative.reason == "zero_baseline"
    assert compare_quantiles(hundred, empty, 0.5).difference.reason == "no_samples"
    partial = compare_quantiles(hundred, few, 0.5)
    assert partial.difference.estimate is not None and partial.difference.ci is None
    assert partial.difference.reason == "insufficient_samples"
    assert MIN_USERS > 3


def test_comparison_is_antisymmetric_under_label_swap() -> None:
    config = QuantileConfig(replicates=50, salt="swap")
    rng = np.random.default_rng(8)
    c = simulate_arm(rng, Scenario(users=200), config, treatment=False)
    t = simulate_arm(rng, Scenario(users=200), config, treatment=True)
    forward, backward = compare_quantiles(c, t, 0.95), compare_quantiles(t, c, 0.95)
    assert forward.difference.ci is not None and backward.difference.ci is not None
    assert forward.difference.estimate == pytest.approx(-backward.difference.estimate)
    assert forward.difference.ci.lower == pytest.approx(-backward.difference.ci.upper)
    assert forward.relative.log_std_error == pytest.approx(backward.relative.log_std_error)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"q": 0.0}, "q"),
        ({"q": 1.0}, "q"),
        ({"confidence": 1.5}, "confidence"),
        ({"method": "bca"}, "method"),
    ],
)
def test_invalid_estimator_arguments_raise(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"q": 0.5} | kwargs
    with pytest.raises(ValueError, match=message):
        quantile_estimate(QuantileCounters.empty(), **arguments)  # type: ignore[arg-type]


def test_arms_must_share_a_config() -> None:
    with pytest.raises(ValueError, match="config"):
        compare_quantiles(
            QuantileCounters.empty(QuantileConfig(salt="a")),
            QuantileCounters.empty(QuantileConfig(salt="b")),
            0.5,
        )


# --- coverage -----------------------------------------------------------------------------

SUITE_RUNS = 120  # about 3 s of CPU; benchmarks/quantiles.py runs 1,000 and more


@pytest.mark.slow
def test_bootstrap_over_users_covers_at_nominal_level() -> None:
    result = coverage(Scenario(users=300), QuantileConfig(), runs=SUITE_RUNS, seed=141)
    assert result.undefined == 0
    rates = [rate for q in DEFAULT_QUANTILES for rate in result.defaults(q).values()]
    # Each interval within 2 points plus 3 Monte Carlo errors (±6 points at 120 runs), and
    # the 12 together (correlated, so their error is about that of one) within 2 points plus 2.
    mc = math.sqrt(0.95 * 0.05 / SUITE_RUNS)
    assert all(abs(rate - 0.95) <= 0.02 + 3 * mc for rate in rates), result.table()
    assert abs(float(np.mean(rates)) - 0.95) <= 0.02 + 2 * mc, result.table()


@pytest.mark.slow
def test_a_per_request_bootstrap_under_covers_with_clustering() -> None:
    # benchmarks/quantiles.py, 500 runs: 59-64% at p50, 67-69% at p95, 75-79% at p99.
    config = QuantileConfig(replicates=50)
    runs = 60
    result = coverage(Scenario(users=300), config, runs=runs, seed=142, cluster="request")
    mc = math.sqrt(0.95 * 0.05 / runs)
    for q in DEFAULT_QUANTILES:
        rates = [rate for target, rate in result.defaults(q).items() if "relative" not in target]
        # Far below what the bootstrap over users reaches (each at least 0.95 − 0.02 − 3 mc).
        assert float(np.mean(rates)) < 0.93 - 3 * mc, (q, result.table())
    pooled = np.mean([rate for q in DEFAULT_QUANTILES for rate in result.defaults(q).values()])
    assert pooled < 0.8, result.table()
