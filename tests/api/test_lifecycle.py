"""The lifecycle (start, pause, resume, complete with a winner, stop, delete) and PATCH:
ramps recorded in the audit trail, weights changed in place in draft and by a new phase
afterwards, with earlier phases readable and never mixed in."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import (
    TestClient,
    assert_status,
    create,
    expect_422,
    route,
    started,
)

JSON = {"content-type": "application/json"}


def _post(client: TestClient, experiment_id: str, action: str, **kwargs: Any) -> dict[str, Any]:
    response = client.post(f"/experiments/{experiment_id}/{action}", **kwargs)
    assert_status(response, 200)
    experiment: dict[str, Any] = response.json()
    return experiment


def _log_users(client: TestClient, experiment_id: str, users: list[str]) -> dict[str, str]:
    """Route and log each user (converting every third); their variants."""
    variants = {}
    for index, user in enumerate(users):
        variant = route(client, user, experiment_id)["variant_name"]
        body = {
            "experiment_id": experiment_id,
            "user_id": user,
            "variant_name": variant,
            "converted": index % 3 == 0,
        }
        assert_status(client.post("/log", json=body), 200)
        variants[user] = variant
    return variants


def _tally(variants: dict[str, str], users: list[str]) -> dict[str, tuple[int, int]]:
    """(samples, conversions) per variant, as ``_log_users`` logged them."""
    tally = {"control": [0, 0], "treatment": [0, 0]}
    for index, user in enumerate(users):
        tally[variants[user]][0] += 1
        tally[variants[user]][1] += index % 3 == 0
    return {name: (n, x) for name, (n, x) in tally.items()}


def _counts(results: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {v["name"]: (v["n"], v["conversions"]) for v in results["variants"]}


def test_pause_resume_and_complete_with_a_winner(client: TestClient) -> None:
    experiment = create(client)
    experiment_id = experiment["id"]
    assert experiment["started_at"] is None
    running = _post(client, experiment_id, "start")
    assert running["started_at"] is not None and running["ended_at"] is None
    assert _post(client, experiment_id, "pause")["status"] == "paused"
    assert _post(client, experiment_id, "resume")["status"] == "running"

    for winner, field in [("nope", "winner"), ("Not A Slug", "winner")]:
        response = client.post(f"/experiments/{experiment_id}/complete", json={"winner": winner})
        expect_422(response, field)
        assert client.get(f"/experiments/{experiment_id}").json()["status"] == "running"

    done = _post(client, experiment_id, "complete", json={"winner": "treatment"})
    assert (done["status"], done["winner"]) == ("completed", "treatment")
    assert done["ended_at"] is not None
    trail = [(entry["action"], entry["changes"].get("status")) for entry in done["audit"]]
    assert trail == [
        ("create", None),
        ("start", {"from": "draft", "to": "running"}),
        ("pause", {"from": "running", "to": "paused"}),
        ("resume", {"from": "paused", "to": "running"}),
        ("complete", {"from": "running", "to": "completed"}),
    ]
    assert done["audit"][-1]["changes"]["winner"] == "treatment"
    assert done["version"] == 4


def test_complete_without_a_winner_and_stop(client: TestClient) -> None:
    first = started(client)["id"]
    paused = _post(client, first, "pause")["id"]
    done = _post(client, paused, "complete")
    assert (done["status"], done["winner"]) == ("completed", None)
    second = started(client)["id"]
    stopped = _post(client, second, "stop")
    assert stopped["status"] == "stopped" and stopped["ended_at"] is not None


def test_only_drafts_can_be_deleted(client: TestClient) -> None:
    draft = create(client)["id"]
    running = started(client)["id"]
    response = client.delete(f"/experiments/{running}")
    assert_status(response, 409)
    assert "draft" in response.json()["detail"]
    assert client.get(f"/experiments/{running}").json()["status"] == "running"

    response = client.delete(f"/experiments/{draft}")
    assert_status(response, 204)
    assert response.content == b""
    assert_status(client.get(f"/experiments/{draft}"), 404)
    assert_status(client.delete(f"/experiments/{draft}"), 404)
    assert [e["id"] for e in client.get("/experiments").json()["experiments"]] == [running]


@pytest.mark.parametrize("state", ["completed", "stopped"])
def test_an_ended_experiment_cannot_be_patched(client: TestClient, state: str) -> None:
    experiment_id = started(client)["id"]
    _post(client, experiment_id, "complete" if state == "completed" else "stop")
    response = client.patch(f"/experiments/{experiment_id}", json={"traffic_percentage": 50})
    assert_status(response, 409)
    assert state in response.json()["detail"]


def test_a_ramp_is_recorded_in_the_audit_trail(client: TestClient) -> None:
    experiment_id = started(client, traffic_percentage=10)["id"]
    response = client.patch(f"/experiments/{experiment_id}", json={"traffic_percentage": 50})
    assert_status(response, 200)
    ramped = response.json()
    assert ramped["traffic_percentage"] == 50
    assert ramped["phase"] == 0  # a ramp only adds users: no new phase
    last = ramped["audit"][-1]
    assert last["action"] == "update"
    assert last["changes"] == {"traffic_percentage": {"from": 10.0, "to": 50.0}}
    assert client.get(f"/experiments/{experiment_id}").json() == ramped
    # The same value again changes nothing, not even the version.
    again = client.patch(f"/experiments/{experiment_id}", json={"traffic_percentage": 50})
    assert again.json()["version"] == ramped["version"]


def test_patching_weights_in_draft_changes_them_in_place(client: TestClient) -> None:
    experiment = create(client)
    response = client.patch(
        f"/experiments/{experiment['id']}", json={"weights": {"control": 0.8, "treatment": 0.2}}
    )
    assert_status(response, 200)
    patched = response.json()
    assert [(v["name"], v["weight"]) for v in patched["variants"]] == [
        ("control", 0.8),
        ("treatment", 0.2),
    ]
    assert patched["phase"] == 0
    assert patched["version"] == experiment["version"] + 1
    assert patched["audit"][-1]["changes"] == {
        "weights": {
            "from": {"control": 0.5, "treatment": 0.5},
            "to": {"control": 0.8, "treatment": 0.2},
        }
    }
    explained = client.get(
        f"/experiments/{experiment['id']}/explain", params={"user_id": "u1"}
    ).json()
    assert explained["ranges"] == {"control": [0.0, 0.8], "treatment": [0.8, 1.0]}


@pytest.mark.parametrize(
    "weights",
    [
        {"control": 0.7, "treatment": 0.7},
        {"control": 1.0},
        {"control": 0.5, "treatment": 0.25, "ghost": 0.25},
    ],
)
def test_patching_invalid_weights_is_422_and_changes_nothing(
    client: TestClient, weights: dict[str, float]
) -> None:
    experiment = create(client)
    response = client.patch(f"/experiments/{experiment['id']}", json={"weights": weights})
    assert_status(response, 422)
    assert client.get(f"/experiments/{experiment['id']}").json() == experiment


def test_patched_weights_not_summing_to_one_name_the_weights_field(client: TestClient) -> None:
    experiment = create(client)
    weights = {"control": 0.7, "treatment": 0.7}
    expect_422(client.patch(f"/experiments/{experiment['id']}", json={"weights": weights}),
               "weights")  # fmt: skip


@pytest.mark.parametrize(
    "weights", [{"control": 1.5, "treatment": -0.5}, {"control": 0.0, "treatment": 1.0}]
)
def test_patching_a_weight_outside_zero_one_is_422_and_changes_nothing(
    client: TestClient, weights: dict[str, float]
) -> None:
    experiment = create(client)
    other = started(client)["id"]
    response = client.patch(f"/experiments/{experiment['id']}", json={"weights": weights})
    try:
        expect_422(response, "weights")
    finally:
        assert_status(client.post("/route", json={"user_id": "u1", "experiment_id": other}), 200)
        assert client.get(f"/experiments/{experiment['id']}").json() == experiment


def test_patching_a_nan_weight_is_422_and_changes_nothing(client: TestClient) -> None:
    experiment = create(client)
    other = started(client)["id"]
    body = '{"weights": {"control": NaN, "treatment": NaN}}'
    response = client.patch(f"/experiments/{experiment['id']}", content=body, headers=JSON)
    try:
        assert_status(response, 422)
    finally:
        assert_status(client.post("/route", json={"user_id": "u1", "experiment_id": other}), 200)
        assert client.get(f"/experiments/{experiment['id']}").json() == experiment


def test_patching_weights_while_running_opens_a_new_phase(client: TestClient) -> None:
    experiment_id = started(client)["id"]
    before = [f"early-{i}" for i in range(120)]
    early = _log_users(client, experiment_id, before)
    phase0 = client.get(f"/experiments/{experiment_id}/results").json()
    assert phase0["phase"] == 0
    assert _counts(phase0) == _tally(early, before)

    response = client.patch(
        f"/experiments/{experiment_id}", json={"weights": {"control": 0.7, "treatment": 0.3}}
    )
    assert_status(response, 200)
    patched = response.json()
    assert patched["phase"] == 1
    assert patched["audit"][-1]["changes"]["phase"] == {"from": 0, "to": 1}

    # The new phase starts empty; the old one is still readable, unchanged.
    fresh = client.get(f"/experiments/{experiment_id}/results").json()
    assert fresh["phase"] == 1
    assert _counts(fresh) == {"control": (0, 0), "treatment": (0, 0)}

    after = [f"late-{i}" for i in range(120)]
    late = _log_users(client, experiment_id, after)
    current = client.get(f"/experiments/{experiment_id}/results").json()
    assert _counts(current) == _tally(late, after)
    old = client.get(f"/experiments/{experiment_id}/results", params={"phase": 0})
    assert_status(old, 200)
    assert old.json()["phase"] == 0
    assert _counts(old.json()) == _counts(phase0)
    explicit = client.get(f"/experiments/{experiment_id}/results", params={"phase": 1}).json()
    assert _counts(explicit) == _counts(current)
    series = client.get(f"/experiments/{experiment_id}/timeseries", params={"phase": 0}).json()
    assert {name: v["samples"][-1] for name, v in series["variants"].items()} == {
        name: n for name, (n, _) in _counts(phase0).items()
    }

    for phase in (2, -1):
        response = client.get(f"/experiments/{experiment_id}/results", params={"phase": phase})
        expect_422(response, "phase")
    response = client.get(f"/experiments/{experiment_id}/results", params={"phase": "first"})
    expect_422(response, "phase")


def test_a_user_logged_in_phase_zero_is_new_in_phase_one(client: TestClient) -> None:
    experiment_id = started(client)["id"]
    user = "returning-user"
    variant = route(client, user, experiment_id)["variant_name"]
    body = {"experiment_id": experiment_id, "user_id": user, "variant_name": variant}
    assert client.post("/log", json=body).json()["new_exposure"] is True
    weights = {"control": 0.6, "treatment": 0.4}
    assert_status(client.patch(f"/experiments/{experiment_id}", json={"weights": weights}), 200)
    body["variant_name"] = route(client, user, experiment_id)["variant_name"]
    answer = client.post("/log", json=body).json()
    assert answer["new_exposure"] is True  # phases never mix
