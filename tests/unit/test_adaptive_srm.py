"""Adaptive SRM: the split tested against the logged assignment probabilities.

The simulations run bandit experiments the way the service does: the allocation is
recomputed from the shared counts once per batch (the service refreshes it about once a
second; a batch is the users of that second), with the exploration floor 0.01 of
``routing.policy_for``, and every exposure logs ``p`` = allocation × traffic share. Within a
batch the users are independent given the allocation, so a batch is one multinomial draw per
run, and ``H += n/p``, ``Q += n/p²``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import ndtr

from abscope.bandits import ThompsonConfig, UCB1Config, allocation_probabilities
from abscope.models import Status, VariantCounts
from abscope.reports import results_view
from abscope.stats import AnalysisOptions, ProportionStats, analyze_experiment
from abscope.stats.adaptive_srm import ADAPTIVE_NOTE, adaptive_sample_ratio_mismatch
from abscope.stats.srm import sample_ratio_mismatch
from tests.fixtures.factories import T0, experiment

Array = npt.NDArray[np.float64]
Policy = Callable[[Array, Array], Array]
FLOOR = 0.01  # routing.policy_for
THRESHOLD = 0.001


def thompson(pulls: Array, rewards: Array) -> Array:
    """Two-arm Thompson allocation with floor 0.01, P(best) by the normal approximation.

    The exact quadrature of ``allocation_probabilities`` costs ~40 ms a row, too slow for
    10^5 runs × 50 batches. The test's validity needs only that users are drawn with the
    logged probabilities, which holds for any allocation rule; this one moves traffic as
    Thompson does (checked against the exact values below).
    """
    a, b = 1.0 + rewards, 1.0 + pulls - rewards
    mean = a / (a + b)
    var = a * b / ((a + b) ** 2 * (a + b + 1.0))
    second = ndtr((mean[:, 1] - mean[:, 0]) / np.sqrt(var[:, 0] + var[:, 1]))
    return FLOOR + (1.0 - 2.0 * FLOOR) * np.stack([1.0 - second, second], axis=1)


def ucb1(pulls: Array, rewards: Array) -> Array:
    return allocation_probabilities(UCB1Config(floor=FLOOR), pulls, rewards)


def simulate(
    policy: Policy,
    rates: list[float],
    *,
    runs: int,
    batches: int,
    batch: int,
    seed: int,
    ramp: bool = False,
    drop: tuple[int, float] | None = None,
) -> tuple[Array, Array, Array]:
    """Per run and variant: users n, H = Σ 1/p and Q = Σ 1/p² after ``batches`` batches.

    ``ramp`` raises the traffic share from 10% to 100% over the run (users outside the
    experiment are not counted). ``drop = (arm, fraction)`` loses that fraction of the arm's
    exposures before they are counted, in the store and so in the policy's counts too.
    """
    rng = np.random.default_rng(seed)
    k = len(rates)
    true = np.asarray(rates)
    pulls, rewards = np.zeros((runs, k)), np.zeros((runs, k))
    h, q = np.zeros((runs, k)), np.zeros((runs, k))
    for t in range(batches):
        share = 0.1 + 0.9 * t / max(batches - 1, 1) if ramp else 1.0
        p = policy(pulls, rewards) * share
        outside = np.clip(1.0 - p.sum(axis=1, keepdims=True), 0.0, 1.0)
        counts = rng.multinomial(batch, np.concatenate([p, outside], axis=1))[:, :k]
        if drop is not None:
            arm, fraction = drop
            counts[:, arm] = rng.binomial(counts[:, arm], 1.0 - fraction)
        rewards += rng.binomial(counts, true)
        pulls += counts
        h += counts / p
        q += counts / p**2
    return pulls, h, q


def p_values(n: Array, h: Array, q: Array) -> Array:
    return np.array(
        [
            adaptive_sample_ratio_mismatch(
                [int(x) for x in n_row], h_row.tolist(), q_row.tolist()
            ).p_value
            for n_row, h_row, q_row in zip(n, h, q, strict=True)
        ]
    )


# --------------------------------------------------------------------------------------------
# the statistic
# --------------------------------------------------------------------------------------------


def test_fixed_split_agrees_with_the_chi_square_test() -> None:
    # A fixed 20/30/50 split at traffic share 0.4: every user has p = 0.4 w_i.
    weights = [0.2, 0.3, 0.5]
    for observed in ([2000, 3000, 5000], [2100, 2950, 4950], [1850, 3100, 5050]):
        p = [0.4 * w for w in weights]
        adaptive = adaptive_sample_ratio_mismatch(
            observed,
            [n / x for n, x in zip(observed, p, strict=True)],
            [n / x**2 for n, x in zip(observed, p, strict=True)],
        )
        # scipy.stats.chisquare(observed, sum(observed) * weights), via srm.py: the same test
        # asymptotically (variances partly from observed counts), within a few percent here.
        static = sample_ratio_mismatch(observed, weights)
        assert adaptive.df == static.df == 2
        assert adaptive.statistic == pytest.approx(static.statistic, rel=0.05, abs=1e-9)
        assert adaptive.expected == pytest.approx(static.expected, rel=0.002)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 5000), st.floats(1.0, 50.0), st.floats(1.0, 4.0)
        ),  # n, mean 1/p, spread
        min_size=2,
        max_size=5,
    )
)
def test_statistic_is_the_quadratic_form_of_the_contrasts(
    arms: list[tuple[int, float, float]],
) -> None:
    n = [a[0] for a in arms]
    h = [a[0] * a[1] for a in arms]
    q = [a[0] * a[1] ** 2 * a[2] for a in arms]  # Q ≥ H²/n ≥ H by Cauchy-Schwarz
    result = adaptive_sample_ratio_mismatch(n, h, q)
    # Independent check: W = Sᵀ C⁻¹ S for S_i = H_i − H_0, C = diag(V_1..) + V_0, with the
    # variances V_i = Q_i max(1, N/H_i) at the consensus N the result implies.
    consensus = result.expected[0] * h[0] / n[0]
    v = np.array([qi * max(1.0, consensus / hi) for hi, qi in zip(h, q, strict=True)])
    s = np.array(h[1:]) - h[0]
    cov = np.diag(v[1:]) + v[0]
    assert result.statistic == pytest.approx(float(s @ np.linalg.solve(cov, s)), rel=1e-6, abs=1e-9)
    assert result.p_value == pytest.approx(stats.chi2.sf(result.statistic, len(arms) - 1))
    # Relabelling the variants changes nothing.
    order = list(reversed(range(len(arms))))
    swapped = adaptive_sample_ratio_mismatch(
        [n[i] for i in order], [h[i] for i in order], [q[i] for i in order]
    )
    assert swapped.statistic == pytest.approx(result.statistic, rel=1e-9, abs=1e-9)


def test_undefined_results_carry_a_reason_and_no_mismatch() -> None:
    no_users = adaptive_sample_ratio_mismatch([0, 0], [0.0, 0.0], [0.0, 0.0])
    empty_arm = adaptive_sample_ratio_mismatch([40, 0], [80.0, 0.0], [160.0, 0.0])
    unrecorded = adaptive_sample_ratio_mismatch([40, 60], [80.0, 120.0], [0.0, 240.0])
    too_small = adaptive_sample_ratio_mismatch([40, 60], [30.0, 120.0], [60.0, 240.0])
    static_empty = sample_ratio_mismatch([0, 0], [0.5, 0.5])
    for result, reason in (
        (no_users, "no_samples"),
        (empty_arm, "empty_variant"),
        (unrecorded, "missing_probabilities"),
        (too_small, "missing_probabilities"),
    ):
        assert result.reason == reason
        assert not result.mismatch
        # The same undefined p-value as the static test's (srm.py owns that convention).
        assert result.p_value == static_empty.p_value


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (([10], [20.0], [40.0]), "observed"),
        (([10, 10], [20.0], [40.0, 40.0]), "inverse_probability_sums"),
        (([10, 10], [20.0, 20.0], [40.0]), "inverse_probability_square_sums"),
        (([10, -1], [20.0, 20.0], [40.0, 40.0]), "observed[1]"),
        (([10, 10], [20.0, float("nan")], [40.0, 40.0]), "inverse_probability_sums[1]"),
        (([10, 10], [20.0, 20.0], [-4.0, 40.0]), "inverse_probability_square_sums[0]"),
    ],
)
def test_invalid_arguments_name_themselves(
    args: tuple[list[int], list[float], list[float]], name: str
) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(name)):
        adaptive_sample_ratio_mismatch(*args)


def test_normal_thompson_allocation_tracks_the_exact_one() -> None:
    pulls = np.array([[10.0, 10.0], [200.0, 150.0], [3000.0, 400.0], [800.0, 820.0]])
    rewards = np.array([[2.0, 3.0], [20.0, 25.0], [300.0, 30.0], [90.0, 100.0]])
    exact = allocation_probabilities(ThompsonConfig(floor=FLOOR), pulls, rewards)
    assert np.abs(thompson(pulls, rewards) - exact).max() < 0.02


# --------------------------------------------------------------------------------------------
# calibration and power, by simulation
# --------------------------------------------------------------------------------------------

# (name, policy, true rates, ramp): A/A bandits wander; clear winners push the loser to the
# floor, where 1/p² has its heaviest tail.
SCENARIOS: list[tuple[str, Policy, list[float], bool]] = [
    ("thompson a/a", thompson, [0.10, 0.10], False),
    ("thompson winner", thompson, [0.10, 0.20], False),
    ("thompson big winner, ramped", thompson, [0.05, 0.30], True),
    ("ucb1 a/a", ucb1, [0.10, 0.10], False),
    ("ucb1 winner, ramped", ucb1, [0.10, 0.20], True),
    ("ucb1 three arms", ucb1, [0.05, 0.10, 0.30], False),
]
RUNS = 5_000


@pytest.mark.slow
def test_false_alarms_of_working_bandits_stay_within_the_threshold() -> None:
    """Per scenario, 5,000 experiments of 4,000 users re-allocated every 80 users.

    Pooled over the 30,000 the rate at 0.001 has SE 1.8e-4, so ``≤ 0.001`` is a real bound;
    per scenario, the rates at 0.05 (SE 0.003) and 0.01 (SE 0.0014) check calibration, and
    the naive Wald test (``V_i = Q_i``) fails the same bound, so the check has power.
    """
    alarms, naive_alarms, total = 0, 0, 0
    for i, (name, policy, rates, ramp) in enumerate(SCENARIOS):
        n, h, q = simulate(policy, rates, runs=RUNS, batches=50, batch=80, seed=100 + i, ramp=ramp)
        p = p_values(n, h, q)
        assert (p < 0.05).mean() <= 0.05 + 3 * 0.003, name
        assert (p < 0.01).mean() <= 0.01 + 3 * 0.0014, name
        assert (p < 0.05).mean() >= 0.025, name  # not uselessly conservative either
        alarms += int((p < THRESHOLD).sum())
        total += RUNS
        if len(rates) == 2:
            wald = (h[:, 0] - h[:, 1]) ** 2 / (q[:, 0] + q[:, 1])
            naive_alarms += int((stats.chi2.sf(wald, 1) < THRESHOLD).sum())
    assert alarms / total <= THRESHOLD
    assert naive_alarms / (total - RUNS) > 2 * THRESHOLD  # what the floor's heavy tail does


@pytest.mark.slow
def test_dropping_a_tenth_of_one_arms_exposures_is_detected() -> None:
    """10% of one arm's exposures lost, in Thompson experiments re-allocated every 1% of users.

    The power is what the starved arm allows: every comparison runs through each arm's
    estimate of the arrivals, and an arm held near the floor 0.01 estimates it from few
    users with weight ~100. Measured (300 runs each, detection at p < 0.001): A/A Thompson
    79% at 20,000 users and 99% at 100,000; Thompson with rates 0.10 vs 0.20 (the loser near
    the floor) 2-3% at 20,000 and about 40% at 100,000; UCB1 A/A 3% and 45%.
    """
    for arm in (0, 1):
        for users, least in ((20_000, 0.6), (100_000, 0.9)):
            n, h, q = simulate(
                thompson, [0.10, 0.10], runs=300, batches=100, batch=users // 100,
                seed=7 + arm, drop=(arm, 0.1),
            )  # fmt: skip
            detected = (p_values(n, h, q) < THRESHOLD).mean()
            assert detected >= least, (arm, users, detected)
    # A bandit with a clear winner: the loser sits at the floor and little can be detected.
    n, h, q = simulate(thompson, [0.10, 0.20], runs=300, batches=100, batch=1000, seed=9,
                       drop=(1, 0.1))  # fmt: skip
    assert 0.1 <= (p_values(n, h, q) < THRESHOLD).mean() <= 0.8


# --------------------------------------------------------------------------------------------
# the hook: analysis and results
# --------------------------------------------------------------------------------------------


def test_working_thompson_experiment_is_not_invalid() -> None:
    # The example: 787 / 2213 users, which the static 50/50 check calls p = 2e-149.
    n, h, q = simulate(thompson, [0.10, 0.14], runs=1, batches=30, batch=100, seed=3)
    variants = {
        "control": ProportionStats(int(n[0, 0]), int(0.10 * n[0, 0])),
        "treatment": ProportionStats(int(n[0, 1]), int(0.14 * n[0, 1])),
    }
    propensity = {"control": (h[0, 0], q[0, 0]), "treatment": (h[0, 1], q[0, 1])}
    static = analyze_experiment(variants, [0.5, 0.5], options=AnalysisOptions(prob_best_draws=10))
    adaptive = analyze_experiment(
        variants, [0.5, 0.5], options=AnalysisOptions(prob_best_draws=10), propensity=propensity
    )
    assert static.srm.mismatch and static.decision.verdict == "invalid"
    assert not adaptive.srm.mismatch and adaptive.decision.verdict != "invalid"
    with pytest.raises(ValueError, match="^propensity"):
        analyze_experiment(variants, [0.5, 0.5], propensity={"control": (1.0, 1.0)})


def test_results_of_a_bandit_experiment_use_the_adaptive_check_and_say_why() -> None:
    running = experiment(allocation="thompson", status=Status.RUNNING, started_at=T0)
    counts = {
        "control": VariantCounts(
            samples=787, conversions=70,
            inverse_probability_sum=2990.0, inverse_probability_square_sum=1.9e5,
        ),
        "treatment": VariantCounts(
            samples=2213, conversions=260,
            inverse_probability_sum=3010.0, inverse_probability_square_sum=4.4e3,
        ),
    }  # fmt: skip
    now = datetime(2026, 11, 25, tzinfo=UTC)
    view = results_view(running, 0, counts, now)
    assert view["srm_method"] == "adaptive"
    assert view["adaptive_allocation_note"] == ADAPTIVE_NOTE
    assert "biased" in ADAPTIVE_NOTE and "inverse" in ADAPTIVE_NOTE
    assert view["srm"]["mismatch"] is False
    assert view["decision"]["verdict"] != "invalid"
    fixed = results_view(running.model_copy(update={"allocation": "fixed"}), 0, counts, now)
    assert fixed["srm_method"] == "chi_square"
    assert fixed["adaptive_allocation_note"] is None
    assert fixed["srm"]["mismatch"] is True


def test_an_adaptive_mismatch_says_what_the_split_was_tested_against() -> None:
    running = experiment(allocation="thompson", status=Status.RUNNING, started_at=T0)
    counts = {  # the treatment's Σ1/p says half of its users were never logged
        "control": VariantCounts(samples=5000, conversions=400, inverse_probability_sum=1e4,
                                 inverse_probability_square_sum=2e4),
        "treatment": VariantCounts(samples=2500, conversions=200, inverse_probability_sum=5e3,
                                   inverse_probability_square_sum=1e4),
    }  # fmt: skip
    view = results_view(running, 0, counts, datetime(2026, 11, 25, tzinfo=UTC))
    assert view["srm"]["mismatch"] is True and view["decision"]["verdict"] == "invalid"
    assert "logged assignment probabilities" in view["decision"]["message"]
