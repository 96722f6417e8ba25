"""``python -m benchmarks.quantile_guardrail``: the quantile guardrail under repeated looks.

The simulations of ``tests/unit/test_quantile_guardrail.py`` at a size worth quoting
(``tests/fixtures/quantile_guardrail_simulation.py``): lognormal latencies with a per-user
effect (log-sd 0.5 per user and 0.5 per request), 1-8 requests per user, a p95 guardrail
with a 10% margin at alpha 0.05, looked at after every 100 users per arm, as the monitor
would. It asserts nothing.

1. A/A (no difference), 600 users per arm, 6 looks, 500 runs: the false-alarm rate.
2. The treatment's p95 exactly 10% higher (at the margin): the worst case of a false
   alarm, 500 runs, with the always-valid test and, for contrast, a fixed-horizon
   one-sided test at the same level read at every look.
3. A real regression: p95 +20%, up to 3,000 users per arm (30 looks), 200 runs: how
   often and how soon it is caught.
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
from tests.fixtures.quantile_guardrail_simulation import Watch, first_breach
from tests.unit.test_quantiles import Scenario, counters_from_arrays, draw_requests

from abscope.stats.quantiles import QuantileConfig, compare_quantiles

CONFIG = QuantileConfig()


def naive_first_breach(rng: np.random.Generator, watch: Watch) -> int | None:
    """The first look at which a fixed-horizon one-sided z-test (1.645) on the log ratio
    claims a breach: what repeated looks at a bootstrap interval would do."""
    scenario = watch.scenario
    control = draw_requests(rng, scenario, 1.0)
    treatment = draw_requests(rng, scenario, scenario.lift)
    weights = [rng.poisson(1.0, size=(CONFIG.replicates, scenario.users)) for _ in range(2)]
    for n in range(watch.step, scenario.users + 1, watch.step):
        arms = []
        for (owner, values), w in zip((control, treatment), weights, strict=True):
            k = int(np.searchsorted(owner, n))
            arms.append(counters_from_arrays(owner[:k], values[:k], w[:, :n], CONFIG))
        relative = compare_quantiles(arms[0], arms[1], watch.guard_quantile).relative
        if relative.estimate is None or relative.log_std_error is None:
            continue
        lower = math.log1p(relative.estimate) - 1.645 * relative.log_std_error
        if lower > math.log1p(watch.margin):
            return n
    return None


def rate(outcomes: list[int | None]) -> str:
    hits = sum(o is not None for o in outcomes)
    p = hits / len(outcomes)
    return (
        f"{hits}/{len(outcomes)} = {p:.3f} (±{1.96 * math.sqrt(p * (1 - p) / len(outcomes)):.3f})"
    )


def main() -> None:
    start = time.process_time()
    rng = np.random.default_rng(2026)
    aa = Watch(Scenario(users=600, max_requests=8, lift=1.0))
    print("1. A/A, 6 looks:", rate([first_breach(rng, aa, CONFIG) for _ in range(500)]))
    edge = Watch(Scenario(users=600, max_requests=8, lift=1.1))
    print("2. at the margin, 6 looks, always-valid:",
          rate([first_breach(rng, edge, CONFIG) for _ in range(500)]))  # fmt: skip
    print("   the same, fixed-horizon test at every look:",
          rate([naive_first_breach(rng, edge) for _ in range(500)]))  # fmt: skip
    regression = Watch(Scenario(users=3000, max_requests=8, lift=1.2))
    caught = [first_breach(rng, regression, CONFIG) for _ in range(200)]
    found = sorted(n for n in caught if n is not None)
    print("3. p95 +20%, up to 3,000 users per arm:", rate(caught))
    if found:
        quartiles = statistics.quantiles(found, n=4)
        print(f"   users per arm at the breach: median {statistics.median(found):,.0f},"
              f" quartiles {quartiles[0]:,.0f}-{quartiles[2]:,.0f}")  # fmt: skip
    print(f"({time.process_time() - start:.0f} s)")


if __name__ == "__main__":
    main()
