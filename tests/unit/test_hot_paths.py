"""The hot paths' shortcuts give exactly what the models they skip would give.

``Event.trusted`` builds an event without validating it again; ``batch_json`` writes the
``/events`` answer from cached fragments instead of a model per event. Hypothesis draws
the inputs; the models are the reference.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from abscope.api.hot_paths import batch_json
from abscope.models import VALUE_EVENT_ID_SUFFIX, Event
from abscope.schemas import BatchResponse, BatchResult
from abscope.service import CheckedBatch, batch_result
from abscope.storage.base import EventResult

slugs = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)
event_ids = st.none() | st.from_regex(r"[A-Za-z0-9._:@/+=~-]{1,128}", fullmatch=True)


@given(
    experiment_id=slugs,
    phase=st.integers(0, 50),
    user_id=st.text(min_size=1, max_size=40),
    variant=slugs,
    kind=st.sampled_from(["exposure", "conversion", "value"]),
    value=st.floats(-1e12, 1e12, allow_nan=False),
    probability=st.floats(1e-9, 1.0),
    seconds=st.integers(0, 10**8),
    event_id=event_ids,
    suffixed=st.booleans(),
)
def test_a_trusted_event_equals_the_validated_one(
    experiment_id: str, phase: int, user_id: str, variant: str, kind: str, value: float,
    probability: float, seconds: int, event_id: str | None, suffixed: bool,
) -> None:  # fmt: skip
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    given_value = value if kind == "value" else None
    if event_id is not None and suffixed:  # a /log call's value event: the longest id
        event_id += VALUE_EVENT_ID_SUFFIX
    fields = {
        "experiment_id": experiment_id, "phase": phase, "user_id": user_id,
        "variant": variant, "kind": kind, "value": given_value, "probability": probability,
        "at": at, "event_id": event_id,
    }  # fmt: skip
    checked = Event.model_validate(fields)
    fast = Event.trusted(
        experiment_id, phase, user_id, variant, kind,  # type: ignore[arg-type]
        given_value, probability, at, event_id,
    )  # fmt: skip
    assert fast == checked
    assert fast.model_dump() == checked.model_dump()
    assert fast.model_dump_json() == checked.model_dump_json()
    assert fast.model_fields_set == set(Event.model_fields)


results = st.sampled_from(
    [
        EventResult("counted"),
        EventResult("counted", new_exposure=True),
        EventResult("counted", new_conversion=True),
        EventResult("counted", True, True),
        EventResult("duplicate"),
        EventResult("variant_mismatch"),
        EventResult("unavailable"),
    ]
)


@given(st.lists(results | st.text(min_size=1, max_size=80), min_size=1, max_size=60))
def test_the_batch_answer_is_the_models_json(outcomes: list[EventResult | str]) -> None:
    models = [
        BatchResult(status="rejected", error=o) if isinstance(o, str) else batch_result(o)
        for o in outcomes
    ]
    expected = BatchResponse(
        results=models,
        counted=sum(m.status == "counted" for m in models),
        duplicates=sum(m.status == "duplicate" for m in models),
        rejected=sum(m.status in ("rejected", "variant_mismatch") for m in models),
        unavailable=sum(m.status == "unavailable" for m in models),
    )
    assert batch_json(outcomes) == expected.model_dump_json().encode()


@given(st.lists(results | st.text(min_size=1, max_size=30), min_size=1, max_size=30))
def test_a_checked_batch_puts_each_outcome_in_its_place(
    outcomes: list[EventResult | str],
) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    slots = [i for i, o in enumerate(outcomes) if not isinstance(o, str)]
    events = [Event.exposure("e", 0, f"u{i}", "control", 1.0, at) for i in slots]
    rejected = {i: o for i, o in enumerate(outcomes) if isinstance(o, str)}
    batch = CheckedBatch(len(outcomes), events, slots, rejected)
    stored = [o for o in outcomes if not isinstance(o, str)]
    assert batch.outcomes(stored) == outcomes
    assert batch.response(stored).model_dump_json().encode() == batch_json(outcomes)
