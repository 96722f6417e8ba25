"""The storage contract for CUPED covariates (see abscope.storage.base): every backend keeps
the same :class:`CovariateCounts`, exactly and idempotently, whether a covariate comes with
an exposure or is backfilled before, between or after the user's outcomes.

Random streams are checked against sums computed at the end from raw per-user state (each
user's covariate, conversion and value total), a different route to the numbers than the
per-user updates the stores make: with integer values both are exact, so they must be equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abscope.models import CovariateCounts, Event
from abscope.storage.base import CovariateOutcome, EventResult, Store
from tests.contract.test_metric_contract import record
from tests.contract.test_store_contract import event, new_id
from tests.fixtures.factories import experiment


@dataclass
class CovariateReference:
    """Raw per-user state under the semantics of abscope.storage.base (no running sums)."""

    exposure: dict[tuple[int, str], str] = field(default_factory=dict)
    converted: set[tuple[int, str]] = field(default_factory=set)
    total: dict[tuple[int, str], float] = field(default_factory=dict)
    covariate: dict[tuple[int, str], float] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def apply(self, e: Event) -> EventResult:
        if e.event_id is not None and e.event_id in self.seen:
            return EventResult("duplicate")
        key = (e.phase, e.user_id)
        if key in self.exposure and self.exposure[key] != e.variant:
            return EventResult("variant_mismatch")
        stored = self.covariate.get(key)
        if e.covariate is not None and stored is not None and stored != e.covariate:
            return EventResult("covariate_mismatch")
        if e.event_id is not None:
            self.seen.add(e.event_id)
        new_exposure = key not in self.exposure
        self.exposure.setdefault(key, e.variant)
        if e.covariate is not None:
            self.covariate.setdefault(key, e.covariate)
        new_conversion = False
        if e.kind == "conversion" and key not in self.converted:
            self.converted.add(key)
            new_conversion = True
        elif e.kind == "value":
            assert e.value is not None
            self.total[key] = self.total.get(key, 0.0) + e.value
        return EventResult("counted", new_exposure, new_conversion)

    def backfill(self, phase: int, pairs: list[tuple[str, float]]) -> list[CovariateOutcome]:
        outcomes: list[CovariateOutcome] = []
        for user, value in pairs:
            key = (phase, user)
            if key not in self.exposure:
                outcomes.append("not_exposed")
            elif key in self.covariate:
                outcomes.append("unchanged" if self.covariate[key] == value else "conflict")
            else:
                self.covariate[key] = value
                outcomes.append("set")
        return outcomes

    def counts(self, phase: int) -> dict[str, CovariateCounts]:
        sums: dict[str, list[float]] = {}
        for (p, user), c in self.covariate.items():
            if p != phase:
                continue
            key = (p, user)
            y = 1 if key in self.converted else 0
            t = self.total.get(key, 0.0)
            row = sums.setdefault(self.exposure[key], [0, 0.0, 0.0, 0, 0.0, 0.0, 0.0])
            for index, term in enumerate((1, c, c * c, y, c * y, t, c * t)):
                row[index] += term
        names = list(CovariateCounts.model_fields)
        return {
            variant: CovariateCounts(**dict(zip(names, row, strict=True)))
            for variant, row in sorted(sums.items())
        }


steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("event"),
            st.sampled_from(["u1", "u2", "u3", "u4", "u5", "u6"]),
            st.sampled_from(["control", "treatment", "treatment"]),
            st.sampled_from(["exposure", "exposure", "conversion", "value"]),
            st.integers(min_value=-20, max_value=20),
            st.sampled_from([None, None, -3, 0, 2, 7]),
            st.sampled_from([None, None, "e1", "e2", "e3"]),
            st.sampled_from([0, 0, 1]),
        ),
        st.tuples(
            st.just("backfill"),
            st.lists(
                st.tuples(
                    st.sampled_from(["u1", "u2", "u3", "u4", "u5", "u6"]),
                    st.sampled_from([-3, 0, 2, 7, 11]),
                ),
                min_size=1,
                max_size=5,
            ),
            st.sampled_from([0, 0, 1]),
        ),
    ),
    max_size=30,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps, st.integers(min_value=1, max_value=30), st.booleans())
def test_random_covariate_streams_are_counted_exactly(
    store: Store, steps: list[tuple[object, ...]], batch_size: int, use_async: bool
) -> None:
    exp = new_id()
    reference = CovariateReference()
    pending: list[Event] = []

    def flush() -> None:
        expected = [reference.apply(e) for e in pending]
        assert record(store, pending, batch_size, use_async) == expected
        pending.clear()

    for step in steps:
        if step[0] == "event":
            _, user, variant, kind, value, covariate, event_id, phase = step
            extra: dict[str, object] = {"event_id": event_id, "phase": phase}
            if kind == "value":
                extra["value"] = float(value)  # type: ignore[arg-type]
            if kind == "exposure" and covariate is not None:
                extra["covariate"] = float(covariate)  # type: ignore[arg-type]
            pending.append(event(exp, str(user), str(variant), str(kind), **extra))
        else:
            flush()
            _, raw_pairs, phase = step
            pairs = [(user, float(value)) for user, value in raw_pairs]  # type: ignore[attr-defined]
            expected_outcomes = reference.backfill(int(phase), pairs)  # type: ignore[call-overload]
            assert store.record_covariates(exp, int(phase), pairs) == expected_outcomes  # type: ignore[call-overload]
    flush()
    for phase in (0, 1):
        assert store.get_covariate_counts(exp, phase) == reference.counts(phase)


# --- the rules, one at a time --------------------------------------------------------------


def test_a_covariate_after_outcomes_counts_them_once(store: Store) -> None:
    exp = new_id()
    store.record_events(
        [
            event(exp, "u1", "control", "value", value=4.0),
            event(exp, "u1", "control", "value", value=6.0),
            event(exp, "u2", "control", "conversion"),
        ]
    )
    assert store.record_covariates(exp, 0, [("u1", 2.0), ("u2", -1.5), ("u1", 2.0)]) == [
        "set",
        "set",
        "unchanged",
    ]
    assert store.record_covariates(exp, 0, [("u1", 2.0), ("u1", 3.0), ("u9", 1.0)]) == [
        "unchanged",
        "conflict",
        "not_exposed",
    ]
    store.record_events([event(exp, "u1", "control", "value", value=1.0)])
    assert store.get_covariate_counts(exp, 0) == {
        "control": CovariateCounts(
            samples=2,
            sum=0.5,
            sum_squares=6.25,
            conversions=1,
            conversion_cross_sum=-1.5,
            value_sum=11.0,
            value_cross_sum=22.0,
        )
    }


def test_an_exposure_with_another_covariate_is_refused_and_changes_nothing(store: Store) -> None:
    exp = new_id()
    store.create_experiment(experiment(exp))
    [first] = store.record_events([event(exp, "u1", "treatment", covariate=5.0)])
    assert first == EventResult("counted", new_exposure=True)
    before = store.get_covariate_counts(exp, 0)
    [refused, again] = store.record_events(
        [
            event(exp, "u1", "treatment", covariate=6.0, event_id="x1"),
            event(exp, "u1", "treatment", covariate=5.0),
        ]
    )
    assert refused.outcome == "covariate_mismatch" and again.outcome == "counted"
    assert store.get_covariate_counts(exp, 0) == before
    # the refused event's id was given back: the same id with a fitting event counts
    [retried] = store.record_events([event(exp, "u1", "treatment", event_id="x1")])
    assert retried.outcome == "counted"


def test_experiments_without_covariates_have_no_covariate_counts(store: Store) -> None:
    exp = new_id()
    store.record_events(
        [event(exp, "u1", "control"), event(exp, "u1", "control", "value", value=1.0)]
    )
    assert store.get_covariate_counts(exp, 0) == {}


def test_delete_removes_the_covariates(store: Store) -> None:
    exp = new_id()
    store.create_experiment(experiment(exp))
    store.record_events([event(exp, "u1", "control", covariate=1.0)])
    store.delete_experiment(exp)
    assert store.get_covariate_counts(exp, 0) == {}
    store.record_events([event(exp, "u1", "control")])
    assert store.record_covariates(exp, 0, [("u1", 2.0)]) == ["set"]
