"""``python -m benchmarks.calibration``: the larger seeded simulations behind issue 14's figures.

The test suite runs small versions of these (``tests/unit/test_sequential_srm.py``,
``tests/unit/test_adaptive_estimates.py``) and asserts on them; this module runs them at a size
whose Monte Carlo error is small enough to quote, and asserts nothing. It reuses the tests'
simulation helpers, so the two measure the same thing. A few minutes on one core.

1. Sequential SRM, A/A: the share of healthy experiments ever flagged over 30 daily looks,
   for the Dirichlet-multinomial test and for a daily chi-square test, at several traffics.
2. Sequential SRM, a 1% imbalance (50.5/49.5 against 50/50): detection rate by day 30 and
   median day of detection, by traffic and prior concentration.
3. Thompson sampling with known rates: bias, standard error and 95% coverage of each
   estimator of :mod:`abscope.stats.adaptive_estimates`.
"""

from __future__ import annotations

import math

import numpy as np
from tests.unit.test_adaptive_estimates import METHODS, calibrate, simulate_thompson
from tests.unit.test_sequential_srm import DAYS, chi_square_p, daily_looks

from abscope.stats.sequential_srm import DEFAULT_CONCENTRATION, log_bayes_factors

ALPHAS = (0.05, 0.01, 0.001)
TRAFFIC = (1_000, 5_000, 10_000, 20_000)


def srm_false_alarms(runs: int = 10_000) -> None:
    print(f"Sequential SRM, A/A, 50/50, {DAYS} daily looks, {runs:,} runs per traffic")
    print(f"{'users/day':>10} {'alpha':>6} {'sequential':>16} {'daily chi2':>16}")
    rng = np.random.default_rng(141)
    for daily in TRAFFIC:
        counts, total = daily_looks(rng, np.full(runs, daily), [0.5, 0.5])
        running = np.max(log_bayes_factors(counts, [0.5, 0.5], DEFAULT_CONCENTRATION), axis=1)
        chi_p = chi_square_p(counts, total, [0.5, 0.5])
        for alpha in ALPHAS:
            seq = float(np.mean(running >= math.log(1 / alpha)))
            chi = float(np.mean(np.any(chi_p < alpha, axis=1)))
            print(f"{daily:>10,} {alpha:>6} {_rate(seq, runs):>16} {_rate(chi, runs):>16}")


def srm_detection(runs: int = 2_000) -> None:
    print(f"\nSequential SRM, 50.5/49.5 against 50/50, {DAYS} daily looks, {runs:,} runs")
    print(f"{'c':>7} {'users/day':>10} {'alpha':>6} {'detected':>9} {'median day':>11}")
    for concentration in (DEFAULT_CONCENTRATION, 1_000.0, 10_000.0):
        rng = np.random.default_rng(142)
        for daily in TRAFFIC:
            counts, _ = daily_looks(rng, np.full(runs, daily), [0.505, 0.495])
            log_bf = log_bayes_factors(counts, [0.5, 0.5], concentration)
            for alpha in (0.05, 0.001):
                hit = log_bf >= math.log(1 / alpha)
                detected = np.any(hit, axis=1)
                day = np.where(detected, np.argmax(hit, axis=1) + 1, DAYS + 1)
                median = float(np.median(day))
                shown = f"{median:.0f}" if median <= DAYS else f"> {DAYS}"
                print(
                    f"{concentration:>7.0f} {daily:>10,} {alpha:>6} "
                    f"{np.mean(detected):>9.3f} {shown:>11}"
                )


def adaptive_estimates(runs: int = 2_000) -> None:
    print(f"\nThompson sampling (floor 0.01, allocation refreshed every 100 users), {runs:,} runs")
    print("per target (arm 0, arm 1, arm 1 - arm 0): bias (MC error), mean SE, 95% coverage")
    for rates in ((0.10, 0.12), (0.10, 0.10), (0.05, 0.10)):
        for users in (5_000, 20_000, 50_000):
            sim = simulate_thompson(rates, runs=runs, batches=users // 100, batch=100, seed=143)
            mean_rate = sum(rates) / 2
            result = calibrate(rates, sim, outcome_models=(mean_rate, mean_rate))
            share = float(np.mean(sim.pulls[:, 0]) / users)
            print(f"rates {rates}, {users:,} users, arm 0 got {share:.1%} of them")
            for method in METHODS:
                cells = [
                    f"{b:+.4f} ({m:.4f}) se {s:.4f} cov {c:.3f}"
                    for b, m, s, c in zip(
                        result.bias[method],
                        result.mc_error[method],
                        result.mean_se[method],
                        result.coverage[method],
                        strict=True,
                    )
                ]
                print(f"  {method:<17}" + " | ".join(cells))


def _rate(rate: float, runs: int) -> str:
    return f"{rate:.4f} ± {math.sqrt(max(rate * (1 - rate), 1 / runs) / runs):.4f}"


def main() -> None:
    srm_false_alarms()
    srm_detection()
    adaptive_estimates()


if __name__ == "__main__":
    main()
