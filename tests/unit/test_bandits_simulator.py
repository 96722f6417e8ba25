"""Bandit simulator: validation, bookkeeping against known expectations, seeded acceptance."""

from __future__ import annotations

import numpy as np
import pytest

from abscope.bandits import (
    EpsilonGreedyConfig,
    FixedSplitConfig,
    PolicyConfig,
    SimulationResult,
    ThompsonConfig,
    UCB1Config,
    simulate,
)

RATES = (0.05, 0.10)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"true_rates": [0.05, 1.2]}, r"true_rates\[1\]"),
        ({"true_rates": [-0.1, 0.2]}, r"true_rates\[0\]"),
        ({"true_rates": []}, "true_rates"),
        ({"true_rates": [[0.1, 0.2]]}, "true_rates"),
        ({"true_rates": "ab"}, "true_rates"),
        ({"horizon": 0}, "horizon"),
        ({"horizon": 2.5}, "horizon"),
        ({"runs": 1}, "runs"),
        ({"seed": -1}, "seed"),
        ({"policy": FixedSplitConfig((0.2, 0.3, 0.5))}, "true_rates"),  # 3 weights, 2 arms
        ({"policy": UCB1Config(floor=0.6)}, "floor"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, name: str) -> None:
    arguments = {"policy": UCB1Config(), "true_rates": RATES, "horizon": 10, "runs": 2, "seed": 0}
    with pytest.raises(ValueError, match=rf"^{name}"):
        simulate(**{**arguments, **kwargs})


def test_shapes_and_read_only_arrays() -> None:
    result = simulate(ThompsonConfig(), [0.1, 0.2, 0.3], horizon=50, runs=7, seed=3)
    assert isinstance(result, SimulationResult)
    assert result.mean_cumulative_regret.shape == (50,)
    assert result.final_regret.shape == (7,)
    assert result.allocation.shape == (50, 3)
    np.testing.assert_allclose(result.allocation.sum(axis=1), 1.0)
    with pytest.raises(ValueError):
        result.mean_cumulative_regret[0] = 0.0
    assert result.true_rates == (0.1, 0.2, 0.3)
    assert (result.horizon, result.runs, result.seed) == (50, 7, 3)


@pytest.mark.parametrize("policy", [ThompsonConfig(floor=0.1), EpsilonGreedyConfig(0.2)])
def test_same_seed_same_result(policy: PolicyConfig) -> None:
    first = simulate(policy, RATES, horizon=300, runs=20, seed=11)
    second = simulate(policy, RATES, horizon=300, runs=20, seed=11)
    other = simulate(policy, RATES, horizon=300, runs=20, seed=12)
    np.testing.assert_array_equal(first.final_regret, second.final_regret)
    np.testing.assert_array_equal(first.allocation, second.allocation)
    assert not np.array_equal(first.final_regret, other.final_regret)


def test_the_two_regret_tallies_agree() -> None:
    # The curve is built from per-step arm counts, the final regrets from per-run sums.
    result = simulate(UCB1Config(), [0.2, 0.5, 0.45], horizon=400, runs=30, seed=4)
    assert result.mean_cumulative_regret[-1] == pytest.approx(result.final_regret_mean)
    assert result.final_regret_se == pytest.approx(
        np.std(result.final_regret, ddof=1) / np.sqrt(30)
    )


@pytest.mark.parametrize("policy", [EpsilonGreedyConfig(epsilon=1.0), FixedSplitConfig.uniform(2)])
def test_uniform_allocation_has_the_expected_linear_regret(policy: PolicyConfig) -> None:
    # Choosing at random: E[R_T] = T * 0.5 * (0.10 - 0.05) = 0.025 T.
    result = simulate(policy, RATES, horizon=800, runs=100, seed=5)
    assert abs(result.final_regret_mean - 0.025 * 800) < 4 * result.final_regret_se
    t = np.arange(1, 801)
    np.testing.assert_allclose(result.mean_cumulative_regret[99:], 0.025 * t[99:], rtol=0.05)
    np.testing.assert_allclose(result.allocation[99:], 0.5, atol=0.03)


def test_equal_best_arms_cost_nothing() -> None:
    # Only the 0.1 arm is suboptimal (gap 0.2); the two 0.3 arms are both optimal.
    result = simulate(FixedSplitConfig((0.25, 0.25, 0.5)), [0.3, 0.1, 0.3], 500, 40, seed=6)
    assert abs(result.final_regret_mean - 500 * 0.25 * 0.2) < 4 * result.final_regret_se
    single = simulate(ThompsonConfig(), [0.4], horizon=50, runs=3, seed=0)
    assert single.final_regret.tolist() == [0.0, 0.0, 0.0]


@pytest.fixture(scope="module")
def acceptance() -> dict[str, SimulationResult]:
    """The issue's comparison: 200 runs of 10,000 requests on rates 0.05 and 0.10."""
    policies: dict[str, PolicyConfig] = {
        "thompson": ThompsonConfig(),
        "ucb1": UCB1Config(),
        "uniform": FixedSplitConfig((0.5, 0.5)),
    }
    return {
        name: simulate(policy, RATES, horizon=10_000, runs=200, seed=20240601)
        for name, policy in policies.items()
    }


@pytest.mark.slow
def test_thompson_beats_ucb1_beats_uniform(acceptance: dict[str, SimulationResult]) -> None:
    thompson, ucb1, uniform = acceptance["thompson"], acceptance["ucb1"], acceptance["uniform"]

    def separated(better: SimulationResult, worse: SimulationResult) -> bool:
        gap = worse.final_regret_mean - better.final_regret_mean
        return bool(gap > 4 * np.hypot(better.final_regret_se, worse.final_regret_se))

    assert separated(thompson, ucb1)
    assert separated(ucb1, uniform)
    # The uniform split pays 0.025 per request: 250 after 10,000.
    assert abs(uniform.final_regret_mean - 250.0) < 4 * uniform.final_regret_se


@pytest.mark.slow
def test_regret_curves_never_decrease(acceptance: dict[str, SimulationResult]) -> None:
    for result in acceptance.values():
        assert np.all(np.diff(result.mean_cumulative_regret) >= 0)
        assert result.mean_cumulative_regret[0] > 0  # the first pull is a coin flip


@pytest.mark.slow
def test_thompson_allocation_moves_to_the_better_arm(
    acceptance: dict[str, SimulationResult],
) -> None:
    share = acceptance["thompson"].allocation[:, 1]
    assert share[9] == pytest.approx(0.5, abs=0.1)  # little evidence after 10 requests
    assert share[99] < share[999] < share[-1]
    assert share[-1] > 0.9
    assert acceptance["uniform"].allocation[-1, 1] == pytest.approx(0.5, abs=0.01)
