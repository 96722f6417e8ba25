"""The storage contract: every backend behaves the same (see abscope.storage.base).

Each test uses fresh experiment ids, so backends shared across tests never see each other's
data. Randomised event sequences are checked against `ReferenceModel`, a plain-Python
statement of the counting semantics.
"""

from __future__ import annotations

import itertools
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abscope.errors import Conflict, NotFound
from abscope.models import AuditEntry, Event, Status, VariantCounts
from abscope.storage.base import EventResult, Store
from tests.contract.conftest import MakeStore
from tests.fixtures.event_loop import run_async
from tests.fixtures.factories import T0, experiment

_ids = itertools.count()


def new_id() -> str:
    return f"exp-{next(_ids)}-{uuid.uuid4().hex[:8]}"


def event(exp: str, user: str, variant: str, kind: str = "exposure", **extra: object) -> Event:
    return Event.model_validate(
        {"experiment_id": exp, "user_id": user, "variant": variant, "kind": kind, "at": T0} | extra
    )


# --- experiments ---------------------------------------------------------------------------


def test_create_then_get_round_trips_every_field(store: Store) -> None:
    original = experiment(
        forced_variants={"qa-user": "treatment"},
        layer="ranking",
        sticky=True,
        traffic_percentage=12.5,
        audit=[AuditEntry(at=T0, action="create", changes={"traffic_percentage": 12.5})],
    )
    store.create_experiment(original)
    assert store.get_experiment(original.id) == original


def test_create_with_a_taken_id_is_a_conflict(store: Store) -> None:
    exp = experiment()
    store.create_experiment(exp)
    with pytest.raises(Conflict):
        store.create_experiment(exp.model_copy(update={"name": "another"}))
    assert store.get_experiment(exp.id).name == exp.name


def test_get_unknown_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.get_experiment(new_id())


def test_list_filters_by_status_and_orders_by_creation(store: Store) -> None:
    later = experiment(created_at=T0 + timedelta(hours=1))
    earlier = experiment(created_at=T0 - timedelta(hours=1))
    running = experiment(status=Status.RUNNING, created_at=T0 + timedelta(hours=2))
    for exp in (later, earlier, running):
        store.create_experiment(exp)
    ids = [e.id for e in store.list_experiments()]
    assert [i for i in ids if i in {later.id, earlier.id, running.id}] == [
        earlier.id,
        later.id,
        running.id,
    ]
    running_ids = {e.id for e in store.list_experiments(Status.RUNNING)}
    assert running.id in running_ids and later.id not in running_ids


def test_save_is_compare_and_set_on_the_version(store: Store) -> None:
    exp = experiment()
    store.create_experiment(exp)
    v1 = exp.model_copy(update={"version": 1, "status": Status.RUNNING})
    store.save_experiment(v1)
    assert store.get_experiment(exp.id).status == Status.RUNNING
    stale = exp.model_copy(update={"version": 1, "description": "lost update"})
    with pytest.raises(Conflict):
        store.save_experiment(stale)
    skipped = exp.model_copy(update={"version": 3})
    with pytest.raises(Conflict):
        store.save_experiment(skipped)
    assert store.get_experiment(exp.id) == v1


def test_save_unknown_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.save_experiment(experiment(version=1))


def test_delete_removes_the_experiment_and_its_data(store: Store) -> None:
    exp = experiment()
    store.create_experiment(exp)
    store.record_events(
        [event(exp.id, "u1", "control"), event(exp.id, "u1", "control", "conversion")]
    )
    store.assign_if_absent(exp.id, 0, "u1", "control")
    store.delete_experiment(exp.id)
    with pytest.raises(NotFound):
        store.get_experiment(exp.id)
    with pytest.raises(NotFound):
        store.delete_experiment(exp.id)
    # A new experiment under the same id starts from nothing.
    store.create_experiment(exp)
    assert store.get_counts(exp.id, 0) == {}
    assert store.get_assignment(exp.id, 0, "u1") is None
    assert store.get_exposure(exp.id, 0, "u1") is None
    assert store.get_timeseries(exp.id, 0) == []


# --- sticky assignments ----------------------------------------------------------------------


def test_first_assignment_wins(store: Store) -> None:
    exp = new_id()
    assert store.get_assignment(exp, 0, "u1") is None
    assert store.assign_if_absent(exp, 0, "u1", "treatment") == "treatment"
    assert store.assign_if_absent(exp, 0, "u1", "control") == "treatment"
    assert store.get_assignment(exp, 0, "u1") == "treatment"
    assert store.get_assignment(exp, 1, "u1") is None  # phases are separate
    assert store.assign_if_absent(exp, 1, "u1", "control") == "control"


# --- events ----------------------------------------------------------------------------------


def test_exposures_count_unique_users(store: Store) -> None:
    exp = new_id()
    results = store.record_events(
        [event(exp, "u1", "control"), event(exp, "u1", "control"), event(exp, "u2", "treatment")]
    )
    assert results == [
        EventResult("counted", new_exposure=True),
        EventResult("counted"),
        EventResult("counted", new_exposure=True),
    ]
    counts = store.get_counts(exp, 0)
    assert counts["control"].samples == 1 and counts["treatment"].samples == 1
    assert store.get_exposure(exp, 0, "u1") == "control"


def test_a_conversion_counts_once_per_user(store: Store) -> None:
    exp = new_id()
    store.record_events([event(exp, "u1", "control")])
    results = store.record_events(
        [event(exp, "u1", "control", "conversion"), event(exp, "u1", "control", "conversion")]
    )
    assert results == [EventResult("counted", new_conversion=True), EventResult("counted")]
    assert store.get_counts(exp, 0)["control"] == VariantCounts(
        samples=1, conversions=1, inverse_probability_sum=1.0, inverse_probability_square_sum=1.0
    )


def test_a_conversion_without_exposure_registers_the_exposure(store: Store) -> None:
    exp = new_id()
    [result] = store.record_events([event(exp, "u9", "treatment", "conversion", probability=0.25)])
    assert result == EventResult("counted", new_exposure=True, new_conversion=True)
    counts = store.get_counts(exp, 0)["treatment"]
    assert (counts.samples, counts.conversions) == (1, 1)
    assert counts.inverse_probability_sum == pytest.approx(4.0)
    assert counts.inverse_probability_square_sum == pytest.approx(16.0)


def test_values_are_summed_per_user(store: Store) -> None:
    exp = new_id()
    store.record_events(
        [
            event(exp, "a", "control", "value", value=2.0),
            event(exp, "a", "control", "value", value=3.0),
            event(exp, "b", "control", "value", value=-1.5),
            event(exp, "c", "control"),
        ]
    )
    counts = store.get_counts(exp, 0)["control"]
    totals = [5.0, -1.5, 0.0]  # per-user totals: a = 2 + 3, b, and c exposed without value
    assert counts.samples == 3
    assert counts.value_sum == pytest.approx(sum(totals))
    assert counts.value_sum_squares == pytest.approx(sum(t * t for t in totals))


def test_an_event_for_another_variant_is_refused(store: Store) -> None:
    exp = new_id()
    store.record_events([event(exp, "u1", "control")])
    results = store.record_events(
        [
            event(exp, "u1", "treatment", "conversion", event_id="e1"),
            event(exp, "u1", "treatment", "value", value=3.0),
        ]
    )
    assert [r.outcome for r in results] == ["variant_mismatch", "variant_mismatch"]
    assert set(store.get_counts(exp, 0)) == {"control"}
    assert store.get_counts(exp, 0)["control"].conversions == 0
    # The refused event id was not consumed: the right variant can still use it.
    [ok] = store.record_events([event(exp, "u1", "control", "conversion", event_id="e1")])
    assert ok.outcome == "counted" and ok.new_conversion


def test_a_retried_event_id_is_counted_once(store: Store) -> None:
    exp = new_id()
    value = event(exp, "u1", "control", "value", value=4.0, event_id="retry-me")
    first = store.record_events([value])
    again = store.record_events([value, value])
    assert first[0].outcome == "counted"
    assert [r.outcome for r in again] == ["duplicate", "duplicate"]
    assert store.get_counts(exp, 0)["control"].value_sum == pytest.approx(4.0)


def test_event_ids_are_scoped_to_their_experiment(store: Store) -> None:
    one, two = new_id(), new_id()
    results = store.record_events(
        [event(one, "u1", "control", event_id="same"), event(two, "u1", "control", event_id="same")]
    )
    assert [r.outcome for r in results] == ["counted", "counted"]


def test_phases_never_mix(store: Store) -> None:
    exp = new_id()
    store.record_events([event(exp, "u1", "control", phase=0)])
    store.record_events(
        [
            event(exp, "u1", "treatment", phase=1),
            event(exp, "u1", "treatment", "conversion", phase=1),
        ]
    )
    assert store.get_counts(exp, 0)["control"].samples == 1
    assert "treatment" not in store.get_counts(exp, 0)
    assert store.get_counts(exp, 1)["treatment"].conversions == 1
    assert store.get_exposure(exp, 0, "u1") == "control"
    assert store.get_exposure(exp, 1, "u1") == "treatment"


def test_a_batch_spanning_experiments_keeps_input_order(store: Store) -> None:
    a, b = new_id(), new_id()
    batch = [
        event(a, "u1", "control"),
        event(b, "u1", "treatment"),
        event(a, "u1", "treatment"),  # mismatch in a
        event(b, "u1", "treatment", "conversion"),
        event(a, "u1", "control", event_id="x"),
        event(a, "u2", "control", event_id="x"),  # duplicate id within the batch
    ]
    results = store.record_events(batch)
    assert [r.outcome for r in results] == [
        "counted",
        "counted",
        "variant_mismatch",
        "counted",
        "counted",
        "duplicate",
    ]
    assert store.get_counts(a, 0)["control"].samples == 1
    assert store.get_counts(b, 0)["treatment"].conversions == 1


def test_an_empty_batch_does_nothing(store: Store) -> None:
    assert store.record_events([]) == []


def test_hourly_buckets_hold_the_increments(store: Store) -> None:
    exp = new_id()
    h0 = T0.replace(minute=0)
    store.record_events(
        [
            event(exp, "u1", "control", at=h0 + timedelta(minutes=5)),
            event(exp, "u2", "control", at=h0 + timedelta(minutes=59, seconds=59)),
            event(exp, "u1", "control", "conversion", at=h0 + timedelta(hours=1, minutes=1)),
            event(exp, "u3", "treatment", "value", value=2.0, at=h0 + timedelta(hours=3)),
        ]
    )
    series = store.get_timeseries(exp, 0)
    assert [h.hour for h in series] == [h0, h0 + timedelta(hours=1), h0 + timedelta(hours=3)]
    assert all(h.hour.tzinfo is not None for h in series)
    assert series[0].variants["control"].samples == 2
    assert series[1].variants["control"] == VariantCounts(conversions=1)
    assert series[2].variants["treatment"].value_sum_squares == pytest.approx(4.0)


# --- randomised sequences against the reference model ----------------------------------------


@dataclass
class ReferenceModel:
    """The counting semantics of abscope.storage.base, stated plainly."""

    exposure: dict[tuple[int, str], str] = field(default_factory=dict)
    converted: set[tuple[int, str]] = field(default_factory=set)
    total: dict[tuple[int, str], float] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    counts: dict[tuple[int, str], dict[str, float]] = field(default_factory=dict)

    def apply(self, e: Event) -> EventResult:
        if e.event_id is not None and e.event_id in self.seen:
            return EventResult("duplicate")
        user = (e.phase, e.user_id)
        if user in self.exposure and self.exposure[user] != e.variant:
            return EventResult("variant_mismatch")
        row = self.counts.setdefault(
            (e.phase, e.variant),
            dict.fromkeys(["samples", "conversions", "sum", "squares", "ips", "ips2"], 0.0),
        )
        new_exposure = user not in self.exposure
        if new_exposure:
            self.exposure[user] = e.variant
            row["samples"] += 1
            row["ips"] += 1.0 / e.probability
            row["ips2"] += 1.0 / e.probability**2
        new_conversion = False
        if e.kind == "conversion" and user not in self.converted:
            self.converted.add(user)
            row["conversions"] += 1
            new_conversion = True
        if e.kind == "value":
            assert e.value is not None
            t = self.total.get(user, 0.0)
            row["sum"] += e.value
            row["squares"] += 2 * t * e.value + e.value**2
            self.total[user] = t + e.value
        if e.event_id is not None:
            self.seen.add(e.event_id)
        return EventResult("counted", new_exposure, new_conversion)


event_specs = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2", "u3", "u4"]),
        st.sampled_from(["control", "treatment"]),
        st.sampled_from(["exposure", "conversion", "value"]),
        st.integers(min_value=-50, max_value=50),
        st.sampled_from([None, "e1", "e2", "e3", "e4", "e5"]),
        st.sampled_from([0, 1]),
        st.sampled_from([1.0, 0.5, 0.2]),
    ),
    max_size=40,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(event_specs, st.integers(min_value=1, max_value=40))
def test_random_sequences_match_the_reference_model(
    store: Store, specs: list[tuple[str, str, str, int, str | None, int, float]], batch_size: int
) -> None:
    exp = new_id()
    model = ReferenceModel()
    events = [
        event(
            exp, user, variant, kind,
            value=float(value) / 4 if kind == "value" else None,
            event_id=event_id, phase=phase, probability=probability,
        )
        for user, variant, kind, value, event_id, phase, probability in specs
    ]  # fmt: skip
    results: list[EventResult] = []
    for start in range(0, len(events), batch_size):
        results.extend(store.record_events(events[start : start + batch_size]))
    assert results == [model.apply(e) for e in events]
    for phase in (0, 1):
        stored = store.get_counts(exp, phase)
        expected = {v: row for (p, v), row in model.counts.items() if p == phase}
        assert set(stored) == set(expected)
        for variant, row in expected.items():
            got = stored[variant]
            assert (got.samples, got.conversions) == (row["samples"], row["conversions"])
            assert got.value_sum == pytest.approx(row["sum"], abs=1e-9)
            assert got.value_sum_squares == pytest.approx(row["squares"], abs=1e-9)
            assert got.inverse_probability_sum == pytest.approx(row["ips"])
            assert got.inverse_probability_square_sum == pytest.approx(row["ips2"])
        hourly = store.get_timeseries(exp, phase)
        for variant, row in expected.items():
            assert (
                sum(h.variants[variant].samples for h in hourly if variant in h.variants)
                == (row["samples"])
            )
    for (phase, user), variant in model.exposure.items():
        assert store.get_exposure(exp, phase, user) == variant


def test_large_values_keep_their_precision(store: Store) -> None:
    """Per-user totals near 1e6 with small increments: sums of squares stay exact enough."""
    exp = new_id()
    events = [event(exp, f"u{i}", "control", "value", value=1e6 + i * 0.25) for i in range(200)]
    events += [event(exp, f"u{i}", "control", "value", value=0.5) for i in range(200)]
    store.record_events(events)
    counts = store.get_counts(exp, 0)["control"]
    totals = [1e6 + i * 0.25 + 0.5 for i in range(200)]
    assert counts.value_sum == pytest.approx(math.fsum(totals), rel=1e-12)
    assert counts.value_sum_squares == pytest.approx(math.fsum(t * t for t in totals), rel=1e-12)


# --- the event-id window -------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_event_ids_are_remembered_for_the_window_and_users_forever(make_store: MakeStore) -> None:
    clock = FakeClock()
    store = make_store(event_id_window=timedelta(hours=7), clock=clock)
    exp = new_id()
    value = {"value": 2.0}
    first = store.record_events(
        [
            event(exp, "u1", "control", "conversion", event_id="c1"),
            event(exp, "u1", "control", "value", event_id="v1", **value),
        ]
    )
    assert [r.outcome for r in first] == ["counted", "counted"]
    clock.now = T0 + timedelta(hours=6, minutes=59)  # inside the window: duplicates
    again = store.record_events(
        [
            event(exp, "u1", "control", "conversion", event_id="c1"),
            event(exp, "u1", "control", "value", event_id="v1", **value),
        ]
    )
    assert [r.outcome for r in again] == ["duplicate", "duplicate"]
    # Well past the window (a backend may keep ids up to a third longer), the ids are
    # forgotten: the value is added again, but the user is still one sample and one
    # conversion.
    clock.now = T0 + timedelta(hours=9, minutes=30)
    late = store.record_events(
        [
            event(exp, "u1", "control", "conversion", event_id="c1"),
            event(exp, "u1", "control", "value", event_id="v1", **value),
        ]
    )
    assert late == [EventResult("counted"), EventResult("counted")]
    counts = store.get_counts(exp, 0)["control"]
    assert (counts.samples, counts.conversions, counts.value_sum) == (1, 1, 4.0)
    # Seen again, an id is remembered for a new window.
    clock.now += timedelta(hours=1)
    [repeat] = store.record_events([event(exp, "u1", "control", "value", event_id="v1", **value)])
    assert repeat.outcome == "duplicate"


def test_a_store_refuses_a_window_under_a_second(make_store: MakeStore) -> None:
    with pytest.raises(ValueError, match="event_id_window"):
        make_store(event_id_window=timedelta(milliseconds=10))


def test_the_async_write_gives_what_the_sync_one_gives(make_store: MakeStore) -> None:
    """record_events_async (routing's exposures) follows the same contract as record_events:
    the same results, in order, over experiments and phases, with duplicates and mismatches."""
    sync_store, async_store = make_store(), make_store()
    a, b, c, d = new_id(), new_id(), new_id(), new_id()
    batches = [
        [event(a, "u1", "control"), event(b, "u1", "treatment", phase=1)],
        [event(a, "u1", "treatment"), event(a, "u2", "control", "conversion", event_id="x1"),
         event(b, "u2", "control", "value", value=1.5)],
        [event(a, "u2", "control", "conversion", event_id="x1"),
         event(b, "u1", "treatment", phase=1)],
    ]  # fmt: skip

    async def write_all() -> list[list[EventResult]]:
        results = []
        for batch in batches:
            renamed = [e.model_copy(update={"experiment_id": {a: c, b: d}[e.experiment_id]})
                       for e in batch]  # fmt: skip
            results.append(await async_store.record_events_async(renamed))
        await async_store.aclose()
        return results

    expected = [sync_store.record_events(batch) for batch in batches]
    assert run_async(write_all()) == expected
    for sync_id, async_id in ((a, c), (b, d)):
        for phase in (0, 1):
            assert async_store.get_counts(async_id, phase) == sync_store.get_counts(sync_id, phase)
