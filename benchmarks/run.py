"""Benchmarks of the pure core, reported as ratios against baselines measured in the same run.

The machines are shared and noisy, so absolute timings mean little; each figure is set
beside a baseline timed moments before or after it, and both are the best of several
repeats. Nothing here is asserted: the tests check correctness, this table tracks speed.

Run with ``make bench``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from abscope.bandits import (
    EpsilonGreedyConfig,
    FixedSplitConfig,
    ThompsonConfig,
    UCB1Config,
    select_arms,
    simulate,
)
from abscope.stats import ProportionStats, analyze_experiment
from abscope.stats.proportions import two_proportion_ztest

RUNS, HORIZON, RATES = 200, 10_000, (0.05, 0.10)


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Best wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def per_call(fn: Callable[[], object], calls: int) -> float:
    """Seconds per call over ``calls`` calls (best of 3)."""

    def loop() -> None:
        for _ in range(calls):
            fn()

    return best_of(loop) / calls


def reward_draw_baseline() -> None:
    """The floor any simulator pays: one Bernoulli reward per run and step, in a Python loop."""
    rng = np.random.default_rng(0)
    rates = np.asarray(RATES)
    arms = np.zeros(RUNS, dtype=np.intp)
    wins = np.zeros(RUNS)
    for _ in range(HORIZON):
        wins += rng.random(RUNS) < rates[arms]


def main() -> None:
    rows: list[tuple[str, str, str]] = []
    baseline = best_of(reward_draw_baseline)
    rows.append(("reward draws only (baseline)", f"{baseline:.3f} s", "1.00x"))
    for name, policy in (
        ("simulate fixed 50/50", FixedSplitConfig.uniform(2)),
        ("simulate epsilon-greedy", EpsilonGreedyConfig()),
        ("simulate UCB1", UCB1Config()),
        ("simulate Thompson", ThompsonConfig()),
    ):
        seconds = best_of(lambda p=policy: simulate(p, RATES, HORIZON, RUNS, seed=1))  # type: ignore[misc]
        rows.append((f"{name} ({RUNS} runs x {HORIZON:,} steps)", f"{seconds:.3f} s",
                     f"{seconds / baseline:.2f}x"))  # fmt: skip

    rng = np.random.default_rng(0)
    pulls, rewards = np.array([[1000.0, 1200.0]]), np.array([[50.0, 130.0]])
    choice = per_call(lambda: select_arms(ThompsonConfig(), pulls, rewards, rng), 5000)
    ztest = per_call(
        lambda: two_proportion_ztest(ProportionStats(10_000, 1000), ProportionStats(10_000, 1100)),
        5000,
    )
    analysis = per_call(
        lambda: analyze_experiment(
            {"a": ProportionStats(10_000, 1000), "b": ProportionStats(10_000, 1100)},
            [0.5, 0.5],
        ),
        50,
    )
    rows.append(("two-proportion z-test (baseline)", f"{ztest * 1e6:.1f} us", "1.00x"))
    rows.append(("Thompson choice from shared counts", f"{choice * 1e6:.1f} us",
                 f"{choice / ztest:.2f}x"))  # fmt: skip
    rows.append(("full 2-variant analysis", f"{analysis * 1e3:.2f} ms", f"{analysis / ztest:.0f}x"))

    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark'.ljust(width)}  {'time':>10}  {'vs baseline':>11}")
    for label, value, ratio in rows:
        print(f"{label.ljust(width)}  {value:>10}  {ratio:>11}")


if __name__ == "__main__":
    main()
