"""Event batches with a result per event, retries counted once, hourly time series, the
duration planner, and the health checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from abscope.jsonable import to_jsonable
from abscope.stats.planner import plan_duration
from tests.api.helpers import (
    MakeClient,
    TestClient,
    assert_status,
    create,
    expect_422,
    route,
    started,
)


def _event(experiment_id: str, user: str, variant: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "experiment_id": experiment_id,
        "user_id": user,
        "variant_name": variant,
        "kind": kind,
        **extra,
    }


def _counts(client: TestClient, experiment_id: str) -> dict[str, tuple[int, int]]:
    results = client.get(f"/experiments/{experiment_id}/results").json()
    return {v["name"]: (v["n"], v["conversions"]) for v in results["variants"]}


def _users_by_variant(client: TestClient, experiment_id: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"control": [], "treatment": []}
    index = 0
    while min(len(users) for users in found.values()) < 3:
        user = f"user-{index}"
        found[route(client, user, experiment_id)["variant_name"]].append(user)
        index += 1
    return found


def test_a_batch_answers_each_event_and_retries_count_once(client: TestClient) -> None:
    experiment_id = started(client)["id"]
    draft = create(client, name="Draft")["id"]
    users = _users_by_variant(client, experiment_id)
    c0, c1, c2 = users["control"][:3]
    t0 = users["treatment"][0]
    batch = [
        _event(experiment_id, c0, "control", "exposure", event_id="e-0"),
        _event(experiment_id, c0, "control", "exposure", event_id="e-0"),  # a retry
        _event(experiment_id, c1, "control", "conversion", event_id="e-1"),
        _event(experiment_id, t0, "treatment", "value", value=4.5, event_id="e-2"),
        _event(experiment_id, c2, "treatment", "exposure", event_id="e-3"),  # wrong variant
        _event("no-such-experiment", c0, "control", "exposure", event_id="e-4"),
        _event(draft, c0, "control", "exposure", event_id="e-5"),
        _event(experiment_id, t0, "treatment", "value", event_id="e-6"),  # value missing
        _event(experiment_id, t0, "treatment", "exposure", value=1.0, event_id="e-7"),
    ]
    response = client.post("/events", json={"events": batch})
    assert_status(response, 200)
    answer = response.json()
    statuses = [(r["status"], r["new_exposure"], r["new_conversion"]) for r in answer["results"]]
    assert statuses == [
        ("counted", True, False),
        ("duplicate", False, False),
        ("counted", True, True),
        ("counted", True, False),
        ("rejected", False, False),
        ("rejected", False, False),
        ("rejected", False, False),
        ("rejected", False, False),
        ("rejected", False, False),
    ]
    errors = [r["error"] for r in answer["results"]]
    assert errors[:4] == [None] * 4
    assert c2 in errors[4] and "control" in errors[4]
    assert "no-such-experiment" in errors[5]
    assert "draft" in errors[6]
    assert "events.7.value" in errors[7]
    assert "events.8.value" in errors[8]
    assert (answer["counted"], answer["duplicates"], answer["rejected"]) == (3, 1, 5)
    assert _counts(client, experiment_id) == {"control": (2, 1), "treatment": (1, 0)}

    # The whole batch again: every event with a known id is a duplicate, nothing changes.
    again = client.post("/events", json={"events": batch[:4]}).json()
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 4
    assert (again["counted"], again["duplicates"], again["rejected"]) == (0, 4, 0)
    assert _counts(client, experiment_id) == {"control": (2, 1), "treatment": (1, 0)}

    # The same id through /log is the same event.
    body = {
        "experiment_id": experiment_id,
        "user_id": c1,
        "variant_name": "control",
        "converted": True,
        "event_id": "e-1",
    }
    assert client.post("/log", json=body).json()["status"] == "duplicate"
    retried = client.post("/log", json={**body, "user_id": c2, "event_id": "log-1"})
    assert retried.json() == {"status": "counted", "new_exposure": True, "new_conversion": True}
    assert client.post("/log", json={**body, "user_id": c2, "event_id": "log-1"}).json() == {
        "status": "duplicate",
        "new_exposure": False,
        "new_conversion": False,
    }
    assert _counts(client, experiment_id) == {"control": (3, 2), "treatment": (1, 0)}


def test_an_event_for_another_variant_than_the_first_exposure_is_a_mismatch(
    client: TestClient,
) -> None:
    # Bandit traffic is random per request, so the store decides: the first exposure wins.
    experiment_id = started(client, allocation="thompson")["id"]
    batch = [
        _event(experiment_id, "u1", "control", "exposure"),
        _event(experiment_id, "u1", "treatment", "conversion"),
        _event(experiment_id, "u1", "control", "conversion"),
    ]
    answer = client.post("/events", json={"events": batch}).json()
    assert [r["status"] for r in answer["results"]] == [
        "counted",
        "variant_mismatch",
        "counted",
    ]
    assert (answer["counted"], answer["duplicates"], answer["rejected"]) == (2, 0, 1)
    body = {"experiment_id": experiment_id, "user_id": "u1", "variant_name": "treatment"}
    response = client.post("/log", json=body)
    assert_status(response, 409)
    assert "u1" in response.json()["detail"] and "control" in response.json()["detail"]
    assert _counts(client, experiment_id) == {"control": (1, 1), "treatment": (0, 0)}


def test_the_time_series_is_hourly_and_cumulative_per_variant(make_client: MakeClient) -> None:
    now = [datetime(2026, 11, 20, 9, 0, tzinfo=UTC)]  # the experiment starts at 9:00
    client = make_client(clock=lambda: now[0])
    experiment_id = started(client)["id"]
    now[0] = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)  # the events arrive at 13:00
    users = _users_by_variant(client, experiment_id)
    c0, c1, c2 = users["control"][:3]
    t0, t1 = users["treatment"][:2]

    def at(hour: int, minute: int) -> str:
        return datetime(2026, 11, 20, hour, minute, tzinfo=UTC).isoformat()

    batch = [
        _event(experiment_id, c0, "control", "exposure", timestamp=at(9, 5)),
        _event(experiment_id, t0, "treatment", "exposure", timestamp=at(9, 59)),
        _event(experiment_id, c0, "control", "conversion", timestamp=at(10, 0)),
        _event(experiment_id, c1, "control", "conversion", timestamp=at(10, 30)),
        _event(experiment_id, t1, "treatment", "conversion", timestamp=at(12, 45)),
        _event(experiment_id, c2, "control", "exposure", timestamp=at(12, 50)),
    ]
    assert client.post("/events", json={"events": batch}).json()["counted"] == 6
    response = client.get(f"/experiments/{experiment_id}/timeseries")
    assert_status(response, 200)
    series = response.json()
    hours = [datetime.fromisoformat(h) for h in series["hours"]]
    assert hours == sorted(hours)
    assert all(h.minute == h.second == h.microsecond == 0 for h in hours)
    expected = {  # hour -> cumulative (samples, conversions) per variant
        9: {"control": (1, 0), "treatment": (1, 0)},
        10: {"control": (2, 2), "treatment": (1, 0)},
        12: {"control": (3, 2), "treatment": (2, 1)},
    }
    for hour, variants in expected.items():
        index = hours.index(datetime(2026, 11, 20, hour, tzinfo=UTC))
        for name, (samples, conversions) in variants.items():
            point = series["variants"][name]
            assert (point["samples"][index], point["conversions"][index]) == (samples, conversions)
            assert point["value"][index] == pytest.approx(conversions / samples)
            assert point["ci_lower"][index] <= point["value"][index] <= point["ci_upper"][index]
    assert set(series["lift"]) == {"treatment"}
    assert len(series["lift"]["treatment"]["lift"]) == len(hours)
    last = series["variants"]
    assert {n: (v["samples"][-1], v["conversions"][-1]) for n, v in last.items()} == (
        _counts(client, experiment_id)
    )


@pytest.mark.parametrize(
    "inputs",
    [
        {"baseline_rate": 0.1, "min_relative_lift": 0.05, "daily_traffic": 20_000},
        {
            "baseline_rate": 0.03,
            "min_relative_lift": -0.1,
            "daily_traffic": 5_000,
            "allocation": 0.5,
            "treatment_share": 0.3,
            "power": 0.9,
            "alpha": 0.01,
            "two_sided": False,
        },
    ],
)
def test_calculate_matches_the_planner(client: TestClient, inputs: dict[str, Any]) -> None:
    response = client.post("/calculate", json=inputs)
    assert_status(response, 200)
    answer = response.json()
    plan = to_jsonable(plan_duration(**inputs))
    assert {k: answer[k] for k in plan} == plan
    assert plan["control_samples"] > 0 and plan["days"] > 0
    assert answer["sensitivity"] and answer["power_grid"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"baseline_rate": 1.5}, "baseline_rate"),
        ({"baseline_rate": 0}, "baseline_rate"),
        ({"min_relative_lift": 0}, "min_relative_lift"),
        ({"baseline_rate": 0.9, "min_relative_lift": 0.5}, "min_relative_lift"),
        ({"daily_traffic": -1}, "daily_traffic"),
        ({"allocation": 0}, "allocation"),
        ({"treatment_share": 1}, "treatment_share"),
        ({"power": 0.01}, "power"),
        ({"alpha": 1}, "alpha"),
        ({"alpha": "five percent"}, "alpha"),
        ({"daily_traffic": None}, "daily_traffic"),
    ],
)
def test_calculate_names_the_bad_input(
    client: TestClient, change: dict[str, Any], field: str
) -> None:
    inputs = {"baseline_rate": 0.1, "min_relative_lift": 0.05, "daily_traffic": 20_000}
    inputs.update(change)
    expect_422(client.post("/calculate", json=inputs), field)


def test_health_and_ready(client: TestClient) -> None:
    health = client.get("/health")
    assert_status(health, 200)
    assert health.json() == {"status": "ok"}
    ready = client.get("/ready")
    assert_status(ready, 200)
    assert ready.json() == {"status": "ready"}
