"""The domain rules of quantile metrics and of the events that carry a request's counters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from abscope.errors import InvalidInput
from abscope.models import Event, Experiment, Metric, Variant
from abscope.service.event_metrics import quantile_increments
from abscope.stats.quantiles import QuantileConfig, request_increments

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _event(**fields: Any) -> Event:
    base = {"experiment_id": "x", "user_id": "u", "variant": "a", "kind": "value",
            "value": 3.0, "metric": "latency", "at": AT}  # fmt: skip
    return Event.model_validate(base | fields)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "conversion", "value": None}, "value event of a named quantile metric"),
        ({"metric": None}, "value event of a named quantile metric"),
        ({"quantile_increments": {"users": 1}}, "must not hold users"),
        ({"quantile_increments": {"b:1": 0}}, "in 1.."),
        ({"quantile_increments": {"b:1": 2**40}}, "in 1.."),
    ],
)
def test_increments_belong_to_a_named_value_event_and_are_small_positive_counts(
    fields: dict[str, Any], message: str
) -> None:
    fields.setdefault("quantile_increments", {"b:1": 1})
    with pytest.raises(ValidationError, match=message):
        _event(**fields)


def test_a_trusted_event_carries_the_increments_like_a_validated_one() -> None:
    increments = {"b:3": 1, "r0:1": 2}
    trusted = Event.trusted("x", 0, "u", "a", "value", 3.0, 1.0, AT, None, "latency", None,
                            None, increments)  # fmt: skip
    assert trusted == _event(quantile_increments=increments)


def test_the_service_computes_the_pure_increments_without_users() -> None:
    metric = Metric(name="latency", kind="quantile")
    got = quantile_increments(metric, "exp", 2, "alice", 250.0, "value")
    config = QuantileConfig(salt="exp|2")
    assert got == request_increments(250.0, "alice", config, first_request=False)
    assert "users" not in got and got["b:277"] == 1
    assert quantile_increments(Metric(name="spend", kind="mean"), "exp", 2, "a", 1.0, "v") is None
    with pytest.raises(InvalidInput) as refused:
        quantile_increments(metric, "exp", 2, "alice", -0.5, "events.3.value")
    assert refused.value.field == "events.3.value"


def test_an_experiment_may_declare_quantile_metrics_but_not_as_its_primary() -> None:
    variants = [Variant(name="a", model_id="m", weight=0.5),
                Variant(name="b", model_id="n", weight=0.5)]  # fmt: skip
    latency = Metric(name="latency", kind="quantile", role="guardrail", margin=0.2,
                     guard_quantile=0.99)  # fmt: skip
    experiment = Experiment(id="x", name="x", variants=variants, created_at=AT, updated_at=AT,
                            metrics=[latency])  # fmt: skip
    assert experiment.guardrails == [latency] and experiment.primary_metric.kind == "binary"
    assert latency.higher_is_better is False
    assert Metric(name="speed", kind="quantile", higher_is_better=True).higher_is_better
    round_trip = Experiment.model_validate_json(experiment.model_dump_json())
    assert round_trip == experiment
