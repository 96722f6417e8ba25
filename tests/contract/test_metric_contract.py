"""The storage contract for named metrics (see abscope.storage.base): every backend counts a
metric's events in the same :class:`MetricCounts`, exactly and idempotently.

Random streams are checked against sums computed directly from the raw per-user totals
(``MetricReference``), which is a different route to the numbers than the per-user update
the stores use: with integer values both are exact, so the comparison is equality.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abscope.models import Event, MetricCounts
from abscope.storage import keys
from abscope.storage.base import EventResult, Store
from tests.contract.conftest import MakeStore
from tests.contract.test_store_contract import event, new_id
from tests.fixtures.event_loop import run_async
from tests.fixtures.factories import T0, experiment

H0 = T0.replace(minute=0, second=0, microsecond=0)


def metric_event(
    exp: str, user: str, variant: str, metric: str, value: float | None = None, **extra: object
) -> Event:
    """A conversion of ``metric`` (no value) or a value event (``value``, maybe ``denominator``)."""
    kind = "conversion" if value is None else "value"
    return event(exp, user, variant, kind, metric=metric, value=value, **extra)


# --- the raw-data reference ----------------------------------------------------------------


@dataclass
class _User:
    converted: bool = False
    x: float = 0.0
    y: float = 0.0


@dataclass
class MetricReference:
    """Applies events with the semantics of abscope.storage.base, keeping raw per-user state
    (no running sums): the expected counts are summed from it at the end."""

    exposure: dict[tuple[int, str], str] = field(default_factory=dict)
    probability: dict[tuple[int, str], float] = field(default_factory=dict)
    converted: set[tuple[int, str]] = field(default_factory=set)
    total: dict[tuple[int, str], float] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    users: dict[tuple[int, str, str], _User] = field(default_factory=dict)
    hours: set[tuple[int, str, str, datetime]] = field(default_factory=set)

    def apply(self, e: Event) -> EventResult:
        if e.event_id is not None and e.event_id in self.seen:
            return EventResult("duplicate")
        key = (e.phase, e.user_id)
        if key in self.exposure and self.exposure[key] != e.variant:
            return EventResult("variant_mismatch")
        if e.event_id is not None:
            self.seen.add(e.event_id)
        new_exposure = key not in self.exposure
        if new_exposure:
            self.exposure[key] = e.variant
            self.probability[key] = e.probability
        new_conversion = False
        if e.metric is None:
            if e.kind == "conversion" and key not in self.converted:
                self.converted.add(key)
                new_conversion = True
            elif e.kind == "value":
                assert e.value is not None
                self.total[key] = self.total.get(key, 0.0) + e.value
            return EventResult("counted", new_exposure, new_conversion)
        user_key = (e.phase, e.metric, e.user_id)
        user = self.users.get(user_key)
        if e.kind == "conversion" and user is not None and user.converted:
            return EventResult("counted", new_exposure, False)
        user = self.users.setdefault(user_key, _User())
        if e.kind == "conversion":
            user.converted = new_conversion = True
        else:
            assert e.value is not None
            user.x += e.value
            user.y += e.denominator or 0.0
        self.hours.add((e.phase, e.metric, e.variant, e.at.replace(minute=0, second=0)))
        return EventResult("counted", new_exposure, new_conversion)

    def metric_counts(self, phase: int) -> dict[str, dict[str, MetricCounts]]:
        raw: dict[str, dict[str, list[_User]]] = {}
        for (p, metric, user_id), user in self.users.items():
            if p == phase:
                variant = self.exposure[phase, user_id]
                raw.setdefault(metric, {}).setdefault(variant, []).append(user)
        return {
            metric: {
                variant: MetricCounts(
                    conversions=sum(u.converted for u in users),
                    sum=sum(u.x for u in users),
                    sum_squares=sum(u.x * u.x for u in users),
                    denominator_sum=sum(u.y for u in users),
                    denominator_sum_squares=sum(u.y * u.y for u in users),
                    cross_sum=sum(u.x * u.y for u in users),
                )
                for variant, users in per_variant.items()
            }
            for metric, per_variant in raw.items()
        }

    def primary(self, phase: int) -> dict[str, tuple[int, int, float, float, float, float]]:
        """``variant -> (samples, conversions, Σt, Σt², Σ1/p, Σ1/p²)`` of the primary."""
        rows: dict[str, list[float]] = {}
        for (p, user_id), variant in self.exposure.items():
            if p != phase:
                continue
            row = rows.setdefault(variant, [0, 0, 0.0, 0.0, 0.0, 0.0])
            total = self.total.get((p, user_id), 0.0)
            weight = 1.0 / self.probability[p, user_id]
            for index, add in enumerate(
                [1, (p, user_id) in self.converted, total, total * total, weight, weight * weight]
            ):
                row[index] += add
        return {
            v: (int(r[0]), int(r[1]), r[2], r[3], r[4], r[5]) for v, r in rows.items()
        }  # fmt: skip


def summed(buckets: Sequence[MetricCounts]) -> MetricCounts:
    fields = MetricCounts.model_fields
    return MetricCounts(**{name: sum(getattr(b, name) for b in buckets) for name in fields})


def record(
    store: Store, events: list[Event], batch_size: int, use_async: bool
) -> list[EventResult]:
    batches = [events[i : i + batch_size] for i in range(0, len(events), batch_size)]
    if not use_async:
        return [r for batch in batches for r in store.record_events(batch)]

    async def write() -> list[EventResult]:
        try:
            return [r for batch in batches for r in await store.record_events_async(batch)]
        finally:
            await store.aclose()

    return run_async(write())


specs = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2", "u3", "u4", "u5"]),
        st.sampled_from(["control", "treatment", "treatment"]),
        st.sampled_from(["exposure", "conversion", "value"]),
        st.sampled_from([None, "clicks", "latency_ms", "latency_ms", "errors"]),
        st.integers(min_value=-20, max_value=20),
        st.sampled_from([None, 0, 1, 2, 5]),
        st.sampled_from([None, None, "e1", "e2", "e3", "e4"]),
        st.sampled_from([0, 0, 1]),
        st.sampled_from([1.0, 0.5, 0.25]),
        st.integers(min_value=0, max_value=2),
    ),
    max_size=40,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(specs, st.integers(min_value=1, max_value=40), st.booleans())
def test_random_metric_streams_are_counted_exactly(
    store: Store,
    specs: list[tuple[str, str, str, str | None, int, int | None, str | None, int, float, int]],
    batch_size: int,
    use_async: bool,
) -> None:
    exp = new_id()
    events: list[Event] = []
    for user, variant, kind, metric, value, denominator, event_id, phase, p, hour in specs:
        if kind == "exposure":
            metric = None
        extra: dict[str, object] = {
            "event_id": event_id,
            "phase": phase,
            "probability": p,
            "at": H0 + timedelta(hours=hour, minutes=7 * hour),
            "metric": metric,
        }
        if kind == "value":
            extra["value"] = float(value)
            if metric is not None and denominator is not None:
                extra["denominator"] = float(denominator)
        events.append(event(exp, user, variant, kind, **extra))
    reference = MetricReference()
    expected_results = [reference.apply(e) for e in events]
    assert record(store, events, batch_size, use_async) == expected_results
    for phase in (0, 1):
        counts = store.get_metric_counts(exp, phase)
        assert counts == reference.metric_counts(phase)
        series = store.get_metric_timeseries(exp, phase)
        assert [h.hour for h in series] == sorted({h.hour for h in series})
        expected_hours = {(m, v, at) for (p, m, v, at) in reference.hours if p == phase}
        assert {(m, v, h.hour) for h in series for m in h.metrics for v in h.metrics[m]} == (
            expected_hours
        )
        for metric, per_variant in counts.items():
            for variant, total in per_variant.items():
                buckets = [
                    h.metrics[metric][variant]
                    for h in series
                    if variant in h.metrics.get(metric, {})
                ]
                assert summed(buckets) == total
        primary = {
            variant: (
                c.samples, c.conversions, c.value_sum, c.value_sum_squares,
                c.inverse_probability_sum, c.inverse_probability_square_sum,
            )
            for variant, c in store.get_counts(exp, phase).items()
        }  # fmt: skip
        assert primary == reference.primary(phase)


# --- the rules, one at a time --------------------------------------------------------------


def test_a_conversion_counts_once_per_user_and_metric(store: Store) -> None:
    exp = new_id()
    results = store.record_events(
        [
            metric_event(exp, "u1", "control", "clicks"),
            metric_event(exp, "u1", "control", "clicks"),
            metric_event(exp, "u1", "control", "signups"),
            metric_event(exp, "u2", "control", "clicks"),
        ]
    )
    assert results == [
        EventResult("counted", new_exposure=True, new_conversion=True),
        EventResult("counted"),
        EventResult("counted", new_conversion=True),
        EventResult("counted", new_exposure=True, new_conversion=True),
    ]
    [again] = store.record_events([metric_event(exp, "u2", "control", "clicks")])
    assert again == EventResult("counted")
    assert store.get_metric_counts(exp, 0) == {
        "clicks": {"control": MetricCounts(conversions=2)},
        "signups": {"control": MetricCounts(conversions=1)},
    }
    assert store.get_counts(exp, 0)["control"].conversions == 0  # the primary's are apart


def test_a_metric_event_registers_the_exposure_once(store: Store) -> None:
    exp = new_id()
    first = store.record_events(
        [metric_event(exp, "u1", "treatment", "latency_ms", 120.0, probability=0.25)]
    )
    later = store.record_events(
        [
            metric_event(exp, "u1", "treatment", "latency_ms", 80.0, probability=0.25),
            metric_event(exp, "u1", "treatment", "errors", probability=0.25),
            event(exp, "u1", "treatment", probability=0.25),
        ]
    )
    assert first == [EventResult("counted", new_exposure=True)]
    assert later == [
        EventResult("counted"),
        EventResult("counted", new_conversion=True),
        EventResult("counted"),
    ]
    counts = store.get_counts(exp, 0)["treatment"]
    assert (counts.samples, counts.conversions, counts.value_sum) == (1, 0, 0.0)
    assert (counts.inverse_probability_sum, counts.inverse_probability_square_sum) == (4.0, 16.0)
    assert store.get_exposure(exp, 0, "u1") == "treatment"


def test_ratio_sums_come_from_the_per_user_totals(store: Store) -> None:
    exp = new_id()
    increments = {  # user -> (numerator, denominator) increments, one event each
        "a": [(2.0, 1.0), (3.0, 1.0), (-1.0, 0.0)],
        "b": [(1.0, 4.0)],
        "c": [(7.5, 2.0), (0.25, 3.0)],
    }
    store.record_events(
        [
            metric_event(exp, user, "control", "latency_ms", dx, denominator=dy)
            for user, steps in increments.items()
            for dx, dy in steps
        ]
    )
    totals = [(sum(dx for dx, _ in s), sum(dy for _, dy in s)) for s in increments.values()]
    assert store.get_metric_counts(exp, 0) == {
        "latency_ms": {
            "control": MetricCounts(
                sum=sum(x for x, _ in totals),
                sum_squares=sum(x * x for x, _ in totals),
                denominator_sum=sum(y for _, y in totals),
                denominator_sum_squares=sum(y * y for _, y in totals),
                cross_sum=sum(x * y for x, y in totals),
            )
        }
    }


def test_a_mean_metric_without_denominators_keeps_them_zero(store: Store) -> None:
    exp = new_id()
    store.record_events(
        [
            metric_event(exp, "u1", "control", "revenue", 10.0),
            metric_event(exp, "u1", "control", "revenue", 5.0),
            metric_event(exp, "u2", "control", "revenue", 1.0),
            event(exp, "u1", "control", "value", value=100.0),  # the primary's value
        ]
    )
    assert store.get_metric_counts(exp, 0) == {
        "revenue": {"control": MetricCounts(sum=16.0, sum_squares=15.0**2 + 1.0)}
    }
    primary = store.get_counts(exp, 0)["control"]
    assert (primary.samples, primary.value_sum, primary.value_sum_squares) == (2, 100.0, 1e4)


def test_a_variant_mismatch_changes_nothing(store: Store) -> None:
    exp = new_id()
    store.record_events([metric_event(exp, "u1", "control", "latency_ms", 3.0, denominator=1.0)])
    before = (store.get_metric_counts(exp, 0), store.get_metric_timeseries(exp, 0))
    refused = store.record_events(
        [
            metric_event(exp, "u1", "treatment", "latency_ms", 9.0, event_id="m1"),
            metric_event(exp, "u1", "treatment", "errors", event_id="m2"),
        ]
    )
    assert [r.outcome for r in refused] == ["variant_mismatch", "variant_mismatch"]
    assert (store.get_metric_counts(exp, 0), store.get_metric_timeseries(exp, 0)) == before
    assert set(store.get_counts(exp, 0)) == {"control"}
    # The refused ids were not consumed.
    [ok] = store.record_events([metric_event(exp, "u1", "control", "errors", event_id="m2")])
    assert ok == EventResult("counted", new_conversion=True)


def test_a_retried_metric_event_is_counted_once(store: Store) -> None:
    exp = new_id()
    retried = metric_event(exp, "u1", "control", "latency_ms", 4.0, denominator=2.0, event_id="r")
    assert [r.outcome for r in store.record_events([retried, retried])] == [
        "counted",
        "duplicate",
    ]
    assert [r.outcome for r in store.record_events([retried])] == ["duplicate"]
    assert store.get_metric_counts(exp, 0)["latency_ms"]["control"] == MetricCounts(
        sum=4.0, sum_squares=16.0, denominator_sum=2.0, denominator_sum_squares=4.0, cross_sum=8.0
    )


def test_phases_keep_metrics_apart(store: Store) -> None:
    exp = new_id()
    store.record_events(
        [
            metric_event(exp, "u1", "control", "latency_ms", 2.0, phase=0),
            metric_event(exp, "u1", "treatment", "latency_ms", 5.0, phase=1),
            metric_event(exp, "u1", "treatment", "errors", phase=1),
        ]
    )
    assert store.get_metric_counts(exp, 0) == {
        "latency_ms": {"control": MetricCounts(sum=2.0, sum_squares=4.0)}
    }
    assert store.get_metric_counts(exp, 1) == {
        "errors": {"treatment": MetricCounts(conversions=1)},
        "latency_ms": {"treatment": MetricCounts(sum=5.0, sum_squares=25.0)},
    }
    assert store.get_metric_counts(exp, 2) == {}
    assert store.get_metric_timeseries(exp, 2) == []


def test_hourly_buckets_hold_the_metric_increments(store: Store) -> None:
    exp = new_id()
    store.record_events(
        [
            metric_event(exp, "u1", "control", "latency_ms", 2.0, at=H0 + timedelta(minutes=5)),
            metric_event(exp, "u1", "control", "latency_ms", 3.0, at=H0 + timedelta(hours=2)),
            metric_event(exp, "u2", "treatment", "errors", at=H0 + timedelta(minutes=59)),
        ]
    )
    series = store.get_metric_timeseries(exp, 0)
    assert [h.hour for h in series] == [H0, H0 + timedelta(hours=2)]
    assert all(h.hour.tzinfo is not None for h in series)
    assert series[0].metrics == {
        "errors": {"treatment": MetricCounts(conversions=1)},
        "latency_ms": {"control": MetricCounts(sum=2.0, sum_squares=4.0)},
    }
    # The user's total went 2 -> 5: the second hour holds 3 and 2·2·3 + 3² = 21.
    assert series[1].metrics == {"latency_ms": {"control": MetricCounts(sum=3.0, sum_squares=21.0)}}
    total = store.get_metric_counts(exp, 0)["latency_ms"]["control"]
    assert summed([h.metrics["latency_ms"]["control"] for h in series]) == total


def test_delete_removes_the_metric_data(store: Store) -> None:
    exp = experiment()
    store.create_experiment(exp)
    store.record_events(
        [
            metric_event(exp.id, "u1", "control", "latency_ms", 2.0, denominator=1.0),
            metric_event(exp.id, "u1", "control", "errors"),
            metric_event(exp.id, "u2", "treatment", "errors", phase=1),
        ]
    )
    store.delete_experiment(exp.id)
    store.create_experiment(exp)
    for phase in (0, 1):
        assert store.get_metric_counts(exp.id, phase) == {}
        assert store.get_metric_timeseries(exp.id, phase) == []
    # The per-user state went too: the user converts afresh.
    [again] = store.record_events([metric_event(exp.id, "u1", "control", "errors")])
    assert again == EventResult("counted", new_exposure=True, new_conversion=True)


def _experiments_on_several_nodes(make_store: MakeStore, store: Store, count: int) -> list[str]:
    """``count`` fresh ids; on a cluster, ids whose keys live on more than one node."""
    while True:
        ids = [new_id() for _ in range(count)]
        if make_store.backend != "redis-cluster":  # type: ignore[attr-defined]
            return ids
        client = store.client  # type: ignore[attr-defined]
        nodes = {client.get_node_from_key(keys.metric_counts(i, 0)).name for i in ids}
        if len(nodes) > 1:
            return ids


def test_a_batch_spanning_experiments_counts_each_metric_in_its_own(
    make_store: MakeStore,
) -> None:
    store = make_store()
    ids = _experiments_on_several_nodes(make_store, store, 4)
    batch = [
        e
        for n, exp in enumerate(ids)
        for e in (
            event(exp, "u1", "control"),
            metric_event(exp, "u1", "control", "latency_ms", float(n + 1), denominator=1.0),
            metric_event(exp, "u1", "control", "errors", event_id="same-id"),
            metric_event(exp, "u1", "control", "errors", event_id="same-id"),
        )
    ]
    results = store.record_events(batch)
    assert [r.outcome for r in results] == ["counted", "counted", "counted", "duplicate"] * 4
    for n, exp in enumerate(ids):
        x = float(n + 1)
        assert store.get_metric_counts(exp, 0) == {
            "errors": {"control": MetricCounts(conversions=1)},
            "latency_ms": {
                "control": MetricCounts(
                    sum=x,
                    sum_squares=x * x,
                    denominator_sum=1.0,
                    denominator_sum_squares=1.0,
                    cross_sum=x,
                )  # fmt: skip
            },
        }
        assert store.get_counts(exp, 0)["control"].samples == 1


def test_the_async_write_counts_metrics_as_the_sync_one(make_store: MakeStore) -> None:
    sync_store, async_store = make_store(), make_store()
    a, b = new_id(), new_id()
    batch = [
        metric_event(a, "u1", "control", "latency_ms", 5.0, denominator=2.0, event_id="x"),
        metric_event(b, "u1", "treatment", "errors", phase=1),
        metric_event(a, "u1", "treatment", "errors"),  # mismatch
        metric_event(a, "u1", "control", "latency_ms", 5.0, denominator=2.0, event_id="x"),
        metric_event(a, "u2", "control", "latency_ms", -1.0),
    ]
    renamed = [e.model_copy(update={"experiment_id": "async-" + e.experiment_id}) for e in batch]

    async def write() -> list[EventResult]:
        try:
            return await async_store.record_events_async(renamed)
        finally:
            await async_store.aclose()

    assert run_async(write()) == sync_store.record_events(batch)
    for exp in (a, b):
        for phase in (0, 1):
            copy = "async-" + exp
            assert async_store.get_metric_counts(copy, phase) == sync_store.get_metric_counts(
                exp, phase
            )
            assert async_store.get_metric_timeseries(
                copy, phase
            ) == sync_store.get_metric_timeseries(exp, phase)
