"""The quantile guardrail: always-valid under repeated looks, and it catches a regression.

Seeded simulations (``tests/fixtures/quantile_guardrail_simulation.py``), small enough for
the suite; ``python -m benchmarks.quantile_guardrail`` runs them at a size worth quoting.
"""

from __future__ import annotations

import math

import numpy as np

from abscope.models import Metric
from abscope.quantile_reports import quantile_guardrail
from abscope.stats.guardrails import one_sided_boundary_z
from abscope.stats.quantiles import QuantileConfig, QuantileCounters, compare_quantiles
from tests.fixtures.quantile_guardrail_simulation import Watch, first_breach
from tests.unit.test_quantiles import Scenario

CONFIG = QuantileConfig()
TRAFFIC = Scenario(users=600, max_requests=8)


def test_at_the_margin_six_looks_false_alarm_at_most_alpha() -> None:
    # The treatment's p95 is exactly 10% higher, the margin: any breach is a false alarm.
    watch = Watch(Scenario(users=600, max_requests=8, lift=1.1), margin=0.1)
    rng = np.random.default_rng(20261201)
    runs = 30
    alarms = sum(first_breach(rng, watch, CONFIG) is not None for _ in range(runs))
    # Binomial(30, 0.05): P(X >= 6) = 0.016; a fixed-horizon test read at each look alarms
    # far more often (benchmarks/quantile_guardrail.py).
    assert alarms <= 5


def test_a_doubled_p95_is_caught_within_two_looks() -> None:
    watch = Watch(Scenario(users=200, max_requests=8, lift=2.0), margin=0.1)
    rng = np.random.default_rng(7)
    caught = [first_breach(rng, watch, CONFIG) for _ in range(5)]
    assert all(n is not None and n <= 200 for n in caught), caught


def test_the_verdict_is_the_mixture_boundary_on_the_log_ratio() -> None:
    """An independent recomputation of the breach rule from compare_quantiles' figures."""
    rng = np.random.default_rng(3)
    users = [f"u{i}" for i in range(300) for _ in range(4)]
    metric = Metric(name="latency", kind="quantile", role="guardrail", margin=0.1,
                    guard_quantile=0.95)  # fmt: skip
    for lift in (1.0, 1.25, 1.6):
        control = QuantileCounters.from_requests(rng.lognormal(5, 0.5, 1200), users, CONFIG)
        treated = lift * rng.lognormal(5, 0.5, 1200)
        treatment = QuantileCounters.from_requests(treated, [f"t{u}" for u in users], CONFIG)
        result = quantile_guardrail(metric, control, treatment, alpha=0.05, min_samples=100)
        relative = compare_quantiles(control, treatment, 0.95).relative
        assert relative.estimate is not None and relative.log_std_error is not None
        c = one_sided_boundary_z(600, alpha=0.05)
        lower = math.log1p(relative.estimate) - c * relative.log_std_error
        upper = math.log1p(relative.estimate) + c * relative.log_std_error
        assert result.estimate == relative.estimate
        assert result.interval is not None
        assert math.isclose(result.interval.lower, math.expm1(lower), rel_tol=1e-9)
        expected = (
            "breach" if lower > math.log(1.1) else "non_inferior" if upper < math.log(1.1)
            else "inconclusive"
        )  # fmt: skip
        assert result.verdict == expected


def test_too_few_users_or_requests_withhold_the_verdict() -> None:
    metric = Metric(name="latency", kind="quantile", role="guardrail", margin=0.1,
                    guard_quantile=0.99)  # fmt: skip
    empty = QuantileCounters.empty(CONFIG)
    assert quantile_guardrail(metric, empty, empty, alpha=0.05, min_samples=2).reason == (
        "too_little_data"
    )
    few = QuantileCounters.from_requests([10.0, 20.0, 30.0], ["a", "b", "c"], CONFIG)
    result = quantile_guardrail(metric, few, few, alpha=0.05, min_samples=2)
    assert (result.verdict, result.reason, result.interval) == (
        "inconclusive", "insufficient_samples", None,
    )  # fmt: skip
