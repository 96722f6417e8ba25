"""The SDK's pure parts: the hand-written event JSON, the bounded queue, the batch verdicts
and the argument checks of ``track``."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abscope.client._events import (
    ClientStats,
    EventQueue,
    exposure_id,
    judge_batch,
    outcome_event,
    wire,
)
from abscope.schemas import BatchRequest

users = st.text(min_size=1, max_size=256).filter(
    lambda u: u.encode("utf-8", "ignore") == u.encode("utf-8", "surrogatepass")
)


@settings(max_examples=300, deadline=None)
@given(user=users, phase=st.integers(0, 10_000), at=st.floats(1.7e9, 2.5e9))
def test_exposure_json_is_what_the_server_parses(user: str, phase: int, at: float) -> None:
    body = wire([(("exp-1", phase, "treatment"), user, at)])
    request = BatchRequest.model_validate_json(body)  # the server's own schema
    event = request.events[0]
    assert (event.user_id, event.variant_name, event.kind) == (user, "treatment", "exposure")
    assert event.event_id == exposure_id("exp-1", phase, user)
    assert event.timestamp is not None and abs(event.timestamp.timestamp() - at) < 0.001
    assert json.loads(body)["events"][0]["user_id"] == user


@given(a=users, b=users, phase=st.integers(0, 5))
def test_exposure_ids_are_distinct_per_user_and_phase(a: str, b: str, phase: int) -> None:
    assert (exposure_id("e", phase, a) == exposure_id("e", phase, b)) == (a == b)
    assert exposure_id("e", phase, a) != exposure_id("e", phase + 1, a)


def test_outcome_events_are_checked_before_they_are_queued() -> None:
    good = outcome_event("exp", "u", "control", converted=True, value=None, event_id="o-1", at=2e9)
    event = BatchRequest.model_validate_json(b'{"events":[' + good + b"]}").events[0]
    assert (event.kind, event.event_id) == ("conversion", "o-1")
    value = outcome_event("exp", "u", "control", converted=False, value=2.5, event_id=None, at=2e9)
    assert BatchRequest.model_validate_json(b'{"events":[' + value + b"]}").events[0].value == 2.5
    for bad, field in (
        ({"experiment_id": "Bad Id"}, "experiment_id"),
        ({"variant_name": ""}, "variant_name"),
        ({"user_id": ""}, "user_id"),
        ({"event_id": "has space"}, "event_id"),
        ({"value": float("nan"), "converted": False}, "value"),
        ({"value": 1e13, "converted": False}, "value"),
        ({"value": True, "converted": False}, "value"),
        ({"converted": False}, "nothing to log"),
    ):
        arguments = {"experiment_id": "exp", "user_id": "u", "variant_name": "control",
                     "converted": True, "value": None, "event_id": None, **bad}  # fmt: skip
        with pytest.raises(ValueError, match=field):
            outcome_event(**arguments, at=2e9)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    user=users,
    metric=st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,63}\Z"),
    value=st.floats(-1e12, 1e12),
    denominator=st.none() | st.floats(-1e12, 1e12) | st.integers(-(10**12), 10**12),
)
def test_metric_events_are_what_the_server_parses(
    user: str, metric: str, value: float, denominator: float | None
) -> None:
    body = outcome_event(
        "exp", user, "treatment", converted=False, value=value, event_id=None, at=2e9,
        metric=metric, denominator=denominator,
    )  # fmt: skip
    event = BatchRequest.model_validate_json(b'{"events":[' + body + b"]}").events[0]
    assert (event.user_id, event.kind, event.value) == (user, "value", value)
    assert (event.metric, event.denominator) == (metric, denominator)
    conversion = outcome_event(
        "exp", user, "treatment", converted=True, value=None, event_id="c-1", at=2e9,
        metric=metric,
    )  # fmt: skip
    event = BatchRequest.model_validate_json(b'{"events":[' + conversion + b"]}").events[0]
    assert (event.kind, event.metric, event.denominator) == ("conversion", metric, None)


def test_metric_fields_are_checked_before_they_are_queued() -> None:
    for bad, message in (
        ({"metric": "Latency MS"}, "metric must be a slug"),
        ({"metric": 3}, "metric must be a slug"),
        ({"metric": "latency", "denominator": float("inf")}, "denominator must be finite"),
        ({"metric": "latency", "denominator": -2e12}, "denominator must be finite"),
        ({"metric": "latency", "denominator": True}, "denominator must be a number"),
        ({"metric": "latency", "denominator": "1"}, "denominator must be a number"),
        ({"denominator": 1.0}, "give value= and metric="),
        ({"metric": "latency", "denominator": 1.0, "value": None, "converted": True},
         "give value= and metric="),
    ):  # fmt: skip
        arguments = {"experiment_id": "exp", "user_id": "u", "variant_name": "control",
                     "converted": False, "value": 2.0, "event_id": None, **bad}  # fmt: skip
        with pytest.raises(ValueError, match=message):
            outcome_event(**arguments, at=2e9)  # type: ignore[arg-type]


def test_a_full_queue_drops_the_oldest_and_put_back_keeps_order() -> None:
    stats = ClientStats()
    queue = EventQueue(3, stats)
    seen = queue.seen(("e", 0))
    for user in "abcde":
        queue.expose(seen, ("e", 0, "v"), user)
    assert stats.dropped == 2 and [item[1] for item in queue.take(10)] == ["c", "d", "e"]  # type: ignore[index]
    queue.put(b"x")
    taken = queue.take(1)
    queue.put(b"y")
    queue.put_back(taken)
    assert queue.take(10) == [b"x", b"y"] and queue.queued == 7  # 5 exposures, x and y


def test_batch_verdicts() -> None:
    events: list = [b"1", b"2", b"3"]
    stats = ClientStats()
    assert judge_batch(events, None, None, stats).action == "retry"
    assert judge_batch(events, 503, {"detail": "x"}, stats).action == "retry"
    assert judge_batch(events, 429, None, stats).action == "retry"
    smaller = judge_batch(events, 413, None, stats)
    assert smaller.smaller and smaller.again == tuple(events)
    refused = judge_batch(events, 401, {"detail": "a key is needed"}, stats)
    assert refused.action == "refused" and stats.failed == 3
    body = {
        "results": [{"status": "counted"}, {"status": "unavailable"}, {"status": "duplicate"}],
        "counted": 1, "duplicates": 1, "rejected": 0, "unavailable": 1,
    }  # fmt: skip
    partial = judge_batch(events, 200, body, stats)
    assert partial.again == (b"2",) and (stats.counted, stats.duplicates, stats.sent) == (1, 1, 2)
    short = judge_batch(events, 200, {"results": [], "counted": 0, "duplicates": 0}, stats)
    assert short.action == "retry"


@pytest.mark.parametrize("user", ["user-1\n", "a\n"])
def test_a_user_id_ending_in_a_newline_is_escaped_not_written_raw(user: str) -> None:
    # Python's "$" matches before a final newline: the plain-id check must not let one
    # through raw (hypothesis found "\n"-ended ids breaking the batch's JSON).
    body = wire([(("exp-1", 0, "treatment"), user, 2e9)])
    assert BatchRequest.model_validate_json(body).events[0].user_id == user


def test_an_experiment_or_metric_ending_in_a_newline_is_refused_before_queueing() -> None:
    for bad in ({"experiment_id": "exp\n"}, {"metric": "latency\n", "value": 1.0}):
        fields = {"experiment_id": "exp", "converted": True, "value": None} | bad
        if "metric" in bad:
            fields["converted"] = False
        with pytest.raises(ValueError):
            outcome_event(
                fields.pop("experiment_id"), "u", "control", event_id=None, at=2e9, **fields
            )
