"""``python -m benchmarks.quantiles``: the large seeded simulations behind the quantile figures.

The test suite runs small versions (``tests/unit/test_quantiles.py``) and asserts on them; this
module runs them at a size whose Monte Carlo error is small enough to quote (±1.0 point at
500 runs, ±0.7 at 1,000, for a 95% rate), and asserts nothing. It reuses the tests'
simulation helpers, so the two measure the same thing: lognormal latencies with a per-user
effect (ICC 0.5 on the log scale), 1-20 requests per user, 400 users per arm, treatment 10%
slower at every quantile, 95% intervals. Several minutes on one core.

1. The defaults (1% sketch, B = 100 Poisson(1) replicates, coarse replicates k = 4) with the
   store's hashed weights (:func:`abscope.stats.quantiles.replicate_weights`), 4,000 runs.
2. An A/A test (no difference), 500 runs.
3. The naive bootstrap over requests, which ignores the clustering, 500 runs.
4. Replicates at the fine accuracy (k = 1), and B = 50, 500 runs each: what the coarse
   replicates and the number of replicates cost in coverage.
5. 1,500 users per arm, 400 runs: where the standard error of a difference nears the
   sketch's accuracy.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

from tests.unit.test_quantiles import Coverage, Scenario, coverage

from abscope.stats.quantiles import DEFAULT_QUANTILES, QuantileConfig


def show(title: str, result: Coverage, seconds: float) -> None:
    mc = math.sqrt(0.95 * 0.05 / result.runs)
    print(f"\n{title}: {result.runs:,} runs, ±{mc:.3f} Monte Carlo error, {seconds:.0f} s")
    table = result.table()
    labels = sorted({label for row in table.values() for label in row})
    print(f"{'':<22}" + "".join(f"{f'p{round(100 * q)}':>8}" for q in DEFAULT_QUANTILES))
    for label in labels:
        cells = "".join(
            f"{table[f'p{round(100 * q)}'].get(label, 0):>8.3f}" for q in DEFAULT_QUANTILES
        )
        print(f"{label:<22}{cells}")
    if result.undefined:
        print(f"(undefined intervals: {result.undefined})")


def run(title: str, runs: int, seed: int, **kwargs: object) -> None:
    scenario = kwargs.pop("scenario", Scenario())
    config = kwargs.pop("config", QuantileConfig())
    start = time.process_time()
    result = coverage(scenario, config, runs=runs, seed=seed, **kwargs)  # type: ignore[arg-type]
    show(title, result, time.process_time() - start)


def main() -> None:
    base = Scenario()
    print(
        f"Quantile intervals: {base.users} users per arm, 1-{base.max_requests} requests each,"
        f" log-sd {base.user_sd} (user) and {base.request_sd} (request), lift {base.lift}"
    )
    run("1. defaults, hashed weights", 4_000, 778, hashed=True)
    run("2. A/A", 500, 152, scenario=replace(base, lift=1.0))
    run("3. naive bootstrap over requests", 500, 153, cluster="request")
    run(
        "4a. replicates at the fine accuracy (k = 1)", 500, 154, config=QuantileConfig(coarsening=1)
    )
    run("4b. B = 50 replicates", 500, 155, config=QuantileConfig(replicates=50))
    run("5. 1,500 users per arm", 400, 161, scenario=replace(base, users=1_500))


if __name__ == "__main__":
    main()
