"""The storage contract for quantile metrics (see abscope.storage.base): every backend adds a
request's ``quantile_increments`` to the counters of its (phase, metric, variant), counts
``users`` on a user's first request, exactly once per event id, and never for a refused
event.

The expected counters are not the stores' route to them: they are
``QuantileCounters.from_requests`` over the raw requests each arm really counted (the pure
module's own recomputation, users included), so any lost, doubled or misfiled increment
shows as a difference.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abscope.models import Event, MetricCounts
from abscope.stats.quantiles import QuantileConfig, QuantileCounters, request_increments
from abscope.storage.base import Store
from tests.contract.conftest import MakeStore
from tests.contract.test_metric_contract import record
from tests.contract.test_store_contract import event, new_id
from tests.fixtures.factories import experiment

CONFIG = QuantileConfig(replicates=8, salt="contract")
VARIANTS = ("control", "treatment")


def request(exp: str, user: str, variant: str, metric: str, value: float, **extra: object) -> Event:
    """One request of a quantile metric, with the increments the service would attach."""
    increments = request_increments(value, user, CONFIG, first_request=False)
    return event(
        exp, user, variant, "value", metric=metric, value=value,
        quantile_increments=increments, **extra,
    )  # fmt: skip


def expected(
    counted: dict[tuple[str, str], list[tuple[str, float]]],
) -> dict[str, dict[str, dict[str, int]]]:
    """The counters of the counted requests per (metric, variant), from the raw data."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for (metric, variant), requests in sorted(counted.items()):
        users = [u for u, _ in requests]
        values = [v for _, v in requests]
        counters = QuantileCounters.from_requests(values, users, CONFIG).to_counters()
        out.setdefault(metric, {})[variant] = counters
    return out


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    batch_size=st.sampled_from([1, 7, 500]),
    use_async=st.booleans(),
)
def test_random_request_streams_are_counted_exactly(
    store: Store, seed: int, batch_size: int, use_async: bool
) -> None:
    rng = random.Random(seed)
    exp = new_id()
    store.create_experiment(experiment(exp))
    events: list[Event] = []
    variant_of: dict[str, str] = {}
    counted: dict[tuple[str, str], list[tuple[str, float]]] = {}
    applied_ids: set[str] = set()
    for _ in range(rng.randint(1, 120)):
        user = f"u{rng.randint(0, 15)}"
        first_variant = variant_of.get(user)
        # Mostly the user's own variant; now and then the other one (refused).
        variant = first_variant or rng.choice(VARIANTS)
        if first_variant is not None and rng.random() < 0.1:
            variant = next(v for v in VARIANTS if v != first_variant)
        metric = rng.choice(["latency", "ttfb"])
        value = rng.choice([0.0, round(rng.lognormvariate(4.0, 1.0), 3)])
        event_id = f"e{rng.randint(0, 40)}" if rng.random() < 0.5 else None
        kind = rng.random()
        if kind < 0.15:
            e = event(exp, user, variant, "exposure", event_id=event_id)
        elif kind < 0.25:  # a mean metric's value in the same stream: no quantile counters
            e = event(exp, user, variant, "value", metric="spend", value=value, event_id=event_id)
        else:
            e = request(exp, user, variant, metric, value, event_id=event_id)
        events.append(e)
        duplicate = event_id is not None and event_id in applied_ids
        refused = first_variant is not None and first_variant != variant
        if duplicate or refused:
            continue
        if event_id is not None:
            applied_ids.add(event_id)
        variant_of[user] = variant
        if e.quantile_increments is not None:
            counted.setdefault((metric, variant), []).append((user, value))
    record(store, events, batch_size, use_async)
    assert store.get_quantile_counters(exp, 0) == expected(counted)
    assert store.get_quantile_counters(exp, 1) == {}


def test_a_retried_request_adds_nothing_and_a_refused_one_adds_nothing(store: Store) -> None:
    exp = new_id()
    store.create_experiment(experiment(exp))
    first = request(exp, "u1", "control", "latency", 120.0, event_id="r1")
    results = store.record_events(
        [
            first,
            first,  # the same event id in the same batch
            request(exp, "u1", "treatment", "latency", 80.0),  # variant mismatch
            request(exp, "u2", "treatment", "latency", 95.5),
        ]
    )
    assert [r.outcome for r in results] == ["counted", "duplicate", "variant_mismatch", "counted"]
    assert store.record_events([first])[0].outcome == "duplicate"  # a later retry
    assert store.get_quantile_counters(exp, 0) == expected(
        {("latency", "control"): [("u1", 120.0)], ("latency", "treatment"): [("u2", 95.5)]}
    )


def test_users_counts_each_users_first_request_of_each_metric(store: Store) -> None:
    exp = new_id()
    store.create_experiment(experiment(exp))
    values = [10.0, 20.0, 30.0]
    store.record_events([request(exp, "u1", "control", "latency", v) for v in values])
    store.record_events([request(exp, "u1", "control", "ttfb", 5.0)])
    store.record_events([request(exp, "u1", "control", "latency", 40.0)])
    counters = store.get_quantile_counters(exp, 0)
    assert counters["latency"]["control"]["users"] == 1
    assert counters["ttfb"]["control"]["users"] == 1
    assert sum(n for k, n in counters["latency"]["control"].items() if k.startswith("b:")) == 4


def test_a_request_also_counts_as_a_mean_metrics_value(store: Store) -> None:
    """The quantile metric's MetricCounts are those of a mean metric given the same values."""
    exp = new_id()
    store.create_experiment(experiment(exp))
    values = [(f"u{i % 3}", float(10 + i)) for i in range(9)]
    store.record_events([request(exp, u, "control", "latency", v) for u, v in values])
    store.record_events(
        [event(exp, u, "control", "value", metric="mean_twin", value=v) for u, v in values]
    )
    metric_counts = store.get_metric_counts(exp, 0)
    assert metric_counts["latency"] == metric_counts["mean_twin"]
    assert metric_counts["latency"]["control"] != MetricCounts()
    assert set(store.get_quantile_counters(exp, 0)) == {"latency"}


def test_events_without_increments_touch_no_quantile_counter(store: Store) -> None:
    exp = new_id()
    store.create_experiment(experiment(exp))
    store.record_events(
        [
            event(exp, "u1", "control", "exposure"),
            event(exp, "u1", "control", "value", metric="latency", value=12.0),
            event(exp, "u2", "treatment", "conversion"),
        ]
    )
    assert store.get_quantile_counters(exp, 0) == {}


def test_phases_are_kept_apart(store: Store) -> None:
    exp = new_id()
    store.create_experiment(experiment(exp))
    store.record_events([request(exp, "u1", "control", "latency", 50.0, phase=1)])
    assert store.get_quantile_counters(exp, 0) == {}
    assert store.get_quantile_counters(exp, 1) == expected({("latency", "control"): [("u1", 50.0)]})


def test_delete_removes_the_quantile_counters(make_store: MakeStore) -> None:
    store = make_store()
    exp = new_id()
    store.create_experiment(experiment(exp))
    store.record_events([request(exp, "u1", "control", "latency", 50.0, phase=p) for p in (0, 2)])
    store.delete_experiment(exp)
    store.create_experiment(experiment(exp))
    assert store.get_quantile_counters(exp, 0) == {}
    assert store.get_quantile_counters(exp, 2) == {}
    store.record_events([request(exp, "u1", "control", "latency", 70.0)])
    assert store.get_quantile_counters(exp, 0) == expected({("latency", "control"): [("u1", 70.0)]})
