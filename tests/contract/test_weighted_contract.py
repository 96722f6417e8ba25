"""The storage contract for probability-weighted sums (see abscope.storage.base): every
backend keeps the same :class:`WeightedCounts`, exactly and idempotently, each user weighted
by the probability of the exposure that registered them.

Random streams are checked against :meth:`WeightedSums.from_users` over raw per-user state
kept by a reference (each user's variant, exposure probability, conversion and value
total), a different route to the numbers than the per-user updates the stores make. The
events after a user's exposure carry other probabilities than it, so a store that weighted
an outcome by its own event's ``p`` would fail.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abscope.adaptive_reports import weighted_sums
from abscope.errors import StorageUnavailable
from abscope.models import Event, WeightedCounts
from abscope.stats.adaptive_estimates import WeightedSums
from abscope.storage import keys
from abscope.storage.base import EventResult, Store
from tests.contract.conftest import MakeStore
from tests.contract.test_metric_contract import record
from tests.contract.test_store_contract import event, new_id
from tests.fixtures.factories import experiment

PROBABILITIES = [0.05, 0.2, 0.25, 0.5, 0.8, 1.0]


@dataclass
class WeightedReference:
    """Raw per-user state under the semantics of abscope.storage.base (no running sums)."""

    exposure: dict[tuple[int, str], tuple[str, float]] = field(default_factory=dict)
    converted: set[tuple[int, str]] = field(default_factory=set)
    total: dict[tuple[int, str], float] = field(default_factory=dict)
    metric_converted: set[tuple[int, str, str]] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)

    def apply(self, e: Event) -> EventResult:
        if e.event_id is not None and e.event_id in self.seen:
            return EventResult("duplicate")
        key = (e.phase, e.user_id)
        if key in self.exposure and self.exposure[key][0] != e.variant:
            return EventResult("variant_mismatch")
        if e.event_id is not None:
            self.seen.add(e.event_id)
        new_exposure = key not in self.exposure
        self.exposure.setdefault(key, (e.variant, e.probability))
        new_conversion = False
        if e.metric is not None:  # a named metric: nothing for the primary's sums
            metric_key = (e.phase, e.user_id, e.metric)
            if e.kind == "conversion" and metric_key not in self.metric_converted:
                self.metric_converted.add(metric_key)
                new_conversion = True
        elif e.kind == "conversion" and key not in self.converted:
            self.converted.add(key)
            new_conversion = True
        elif e.kind == "value":
            assert e.value is not None
            self.total[key] = self.total.get(key, 0.0) + e.value
        return EventResult("counted", new_exposure, new_conversion)

    def sums(self, phase: int, outcome: str) -> dict[str, WeightedSums]:
        users: dict[str, tuple[list[float], list[float]]] = {}
        for (p, user), (variant, probability) in self.exposure.items():
            if p != phase:
                continue
            key = (p, user)
            y = (
                float(key in self.converted)
                if outcome == "conversion"
                else self.total.get(key, 0.0)
            )
            values, probabilities = users.setdefault(variant, ([], []))
            values.append(y)
            probabilities.append(probability)
        return {v: WeightedSums.from_users(*users[v]) for v in sorted(users)}


def stored_sums(store: Store, exp: str, phase: int, outcome: Any) -> dict[str, WeightedSums]:
    counts = store.get_counts(exp, phase)
    weighted = store.get_weighted_counts(exp, phase)
    assert sorted(weighted) == sorted(counts)
    for variant, row in weighted.items():  # every user's p is known to the store
        assert row.samples == counts[variant].samples
    return {v: weighted_sums(counts[v], weighted[v], outcome) for v in sorted(counts)}


def assert_sums_equal(got: dict[str, WeightedSums], expected: dict[str, WeightedSums]) -> None:
    assert sorted(got) == sorted(expected)
    for variant, want in expected.items():
        have = got[variant]
        assert have.samples == want.samples
        for name in WeightedSums.__dataclass_fields__:
            assert math.isclose(
                getattr(have, name), getattr(want, name), rel_tol=1e-9, abs_tol=1e-9
            ), (variant, name, getattr(have, name), getattr(want, name))


steps = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2", "u3", "u4", "u5", "u6"]),
        st.sampled_from(["control", "treatment", "treatment"]),
        st.sampled_from(["exposure", "conversion", "conversion", "value", "value"]),
        st.integers(min_value=-20, max_value=20),
        st.sampled_from(PROBABILITIES),
        st.sampled_from([None, None, "e1", "e2", "e3", "e4"]),
        st.sampled_from([0, 0, 1]),
        st.sampled_from([None, None, None, "latency"]),
    ),
    max_size=30,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps, st.integers(min_value=1, max_value=30), st.booleans())
def test_random_streams_are_weighted_by_each_users_exposure_probability(
    store: Store, steps: list[tuple[Any, ...]], batch_size: int, use_async: bool
) -> None:
    exp = new_id()
    reference = WeightedReference()
    events = []
    for user, variant, kind, value, probability, event_id, phase, metric in steps:
        extra: dict[str, object] = {
            "event_id": event_id,
            "phase": phase,
            "probability": probability,
            "metric": metric if kind != "exposure" else None,
        }
        if kind == "value":
            extra["value"] = float(value)
        events.append(event(exp, user, variant, kind, **extra))
    expected = [reference.apply(e) for e in events]
    assert record(store, events, batch_size, use_async) == expected
    # a retry of the events with ids: the counted ones are duplicates now
    retried = [e for e in events if e.event_id is not None]
    assert store.record_events(retried) == [reference.apply(e) for e in retried]
    for phase in (0, 1):
        for outcome in ("conversion", "value"):
            assert_sums_equal(
                stored_sums(store, exp, phase, outcome), reference.sums(phase, outcome)
            )


# --- the rules, one at a time --------------------------------------------------------------


def test_outcomes_are_weighted_by_the_exposures_probability(store: Store) -> None:
    exp = new_id()
    store.record_events(
        [
            event(exp, "u1", "control", probability=0.25),
            event(exp, "u1", "control", "value", value=3.0, probability=1.0),
            event(exp, "u1", "control", "value", value=1.0, probability=0.5),
            event(exp, "u1", "control", "conversion", probability=1.0),
            event(exp, "u1", "control", "conversion", probability=1.0),  # once per user
            event(exp, "u2", "control", "conversion", probability=0.5),  # registers u2
        ]
    )
    assert store.get_weighted_counts(exp, 0) == {
        "control": WeightedCounts(
            samples=2,
            inverse_sqrt_probability_sum=2.0 + 1 / math.sqrt(0.5),
            conversion_inverse_probability_sum=4.0 + 2.0,
            conversion_inverse_probability_square_sum=16.0 + 4.0,
            conversion_inverse_sqrt_probability_sum=2.0 + 1 / math.sqrt(0.5),
            value_inverse_probability_sum=16.0,  # total 4, weight 4
            value_inverse_probability_square_sum=64.0,
            value_inverse_sqrt_probability_sum=8.0,
            square_inverse_probability_sum=64.0,  # 4² · 4, by 9·4 + (2·3·1 + 1)·4
            square_inverse_probability_square_sum=256.0,
        )
    }


def test_a_replayed_batch_is_counted_once(store: Store) -> None:
    exp = new_id()
    batch = [
        event(exp, "u1", "treatment", probability=0.2, event_id="a"),
        event(exp, "u1", "treatment", "value", value=5.0, probability=0.2, event_id="b"),
        event(exp, "u2", "control", "conversion", probability=0.8, event_id="c"),
    ]
    store.record_events(batch)
    before = store.get_weighted_counts(exp, 0)
    assert [r.outcome for r in store.record_events(batch)] == ["duplicate"] * 3
    assert store.get_weighted_counts(exp, 0) == before


def test_a_refused_event_adds_nothing(store: Store) -> None:
    exp = new_id()
    store.record_events([event(exp, "u1", "control", probability=0.5)])
    before = store.get_weighted_counts(exp, 0)
    [refused] = store.record_events([event(exp, "u1", "treatment", "value", value=9.0)])
    assert refused.outcome == "variant_mismatch"
    assert store.get_weighted_counts(exp, 0) == before


def _fail_after_the_weighted_write(store: Store, make_store: MakeStore, exp: str) -> type:
    """Make the next batch of ``exp`` fail; return the error it raises."""
    backend: str = make_store.backend  # type: ignore[attr-defined]
    if backend.startswith("sqlite"):
        inner = getattr(store, "inner", store)
        conn = sqlite3.connect(inner.path)  # type: ignore[attr-defined]
        with conn:  # the hourly rows are written after the weighted ones
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON hourly BEGIN"
                " SELECT RAISE(ABORT, 'refused'); END"
            )
        conn.close()
        return sqlite3.IntegrityError
    client = store._client  # type: ignore[attr-defined]
    client.set(keys.exposures(exp, 0), "not a hash")
    return StorageUnavailable


def test_a_failed_batch_adds_nothing(store: Store, make_store: MakeStore) -> None:
    exp = new_id()
    store.record_events([event(exp, "u1", "control", probability=0.5)])
    before = (store.get_counts(exp, 0), store.get_weighted_counts(exp, 0))
    error = _fail_after_the_weighted_write(store, make_store, exp)
    with pytest.raises(error):
        store.record_events(
            [
                event(exp, "u1", "control", "conversion", probability=0.5),
                event(exp, "u2", "treatment", "value", value=2.0, probability=0.1),
            ]
        )
    if make_store.backend.startswith("sqlite"):  # type: ignore[attr-defined]
        assert (store.get_counts(exp, 0), store.get_weighted_counts(exp, 0)) == before
    else:  # the broken key fails the script at its first read, before any write
        assert store.get_weighted_counts(exp, 0) == before[1]


def test_delete_removes_the_weighted_counts(store: Store) -> None:
    exp = new_id()
    store.create_experiment(experiment(exp))
    store.record_events(
        [
            event(exp, "u1", "control", probability=0.5),
            event(exp, "u1", "control", "conversion", probability=0.5),
        ]
    )
    assert store.get_weighted_counts(exp, 0)["control"].samples == 1
    store.delete_experiment(exp)
    assert store.get_weighted_counts(exp, 0) == {}
    # a user re-exposed after the delete is weighted by the new exposure's p
    store.record_events(
        [
            event(exp, "u1", "control", probability=0.25),
            event(exp, "u1", "control", "conversion", probability=0.5),
        ]
    )
    row = store.get_weighted_counts(exp, 0)["control"]
    assert (row.samples, row.conversion_inverse_probability_sum) == (1, 4.0)
