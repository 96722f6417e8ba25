"""Routing through the API: the list filter, routing without an experiment id, ramps that only
add users, sticky users, mutually exclusive experiments of a layer, forced variants, and
the explanation of a decision."""

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

USERS = [f"user-{i:05d}" for i in range(2_000)]


def _explain(client: TestClient, experiment_id: str, user_id: str) -> dict[str, Any]:
    response = client.get(f"/experiments/{experiment_id}/explain", params={"user_id": user_id})
    assert_status(response, 200)
    explanation: dict[str, Any] = response.json()
    return explanation


def _variants_of(client: TestClient, experiment_id: str, users: list[str]) -> dict[str, str]:
    """Each user's variant in the experiment; users outside its traffic are left out (they
    are served the control, outside the experiment)."""
    out = {}
    for user in users:
        answer = route(client, user, experiment_id)
        if not answer["in_experiment"]:
            assert answer["reason"] == "not_in_traffic"
            assert (answer["experiment_id"], answer["variant_name"]) == (experiment_id, "control")
            assert answer["exposure_status"] == "not_in_experiment"
        else:
            assert answer["experiment_id"] == experiment_id
            out[user] = answer["variant_name"]
    return out


def test_the_list_filters_by_status(client: TestClient) -> None:
    ids = {}
    for state, steps in {
        "draft": [],
        "running": ["start"],
        "paused": ["start", "pause"],
        "completed": ["start", "complete"],
        "stopped": ["start", "stop"],
    }.items():
        ids[state] = create(client, name=f"In {state}")["id"]
        for step in steps:
            assert_status(client.post(f"/experiments/{ids[state]}/{step}"), 200)
    everything = client.get("/experiments").json()["experiments"]
    assert [e["id"] for e in everything] == list(ids.values())  # oldest first
    for state, experiment_id in ids.items():
        listed = client.get("/experiments", params={"status": state}).json()["experiments"]
        assert [(e["id"], e["status"]) for e in listed] == [(experiment_id, state)]
    expect_422(client.get("/experiments", params={"status": "archived"}), "status")


def test_routing_without_an_experiment_id_gives_every_assignment(client: TestClient) -> None:
    assert route(client, "nobody-yet") == {
        "experiment_id": None,
        "variant_name": None,
        "model_id": None,
        "in_experiment": False,
        "reason": None,
        "exposure_recorded": False,
        "exposure_status": "not_in_experiment",
        "assignments": [],
    }
    half = started(client, name="Half", traffic_percentage=50)["id"]
    everyone = started(client, name="Everyone")["id"]
    create(client, name="Draft")
    paused = started(client, name="Paused")["id"]
    assert_status(client.post(f"/experiments/{paused}/pause"), 200)
    some = started(client, name="Some", traffic_percentage=30)["id"]

    firsts = set()
    for user in USERS[:150]:
        answer = route(client, user)
        alone = {e: route(client, user, e) for e in (half, everyone, some)}
        expected = [  # the running experiments the user is in, oldest first
            {k: v for k, v in a.items() if k != "assignments"}
            for a in alone.values()
            if a["in_experiment"]
        ]
        assert answer["assignments"] == expected
        # The seed's fields: the oldest running experiment the user is in (documented).
        first = expected[0]
        assert (answer["experiment_id"], answer["variant_name"], answer["model_id"]) == (
            first["experiment_id"],
            first["variant_name"],
            first["model_id"],
        )
        firsts.add(first["experiment_id"])
    assert firsts == {half, everyone}


def test_a_ramp_only_adds_users(client: TestClient) -> None:
    experiment_id = started(client, traffic_percentage=10)["id"]
    before = _variants_of(client, experiment_id, USERS)
    assert 150 < len(before) < 250, f"10% of {len(USERS)} users gave {len(before)}"
    ramped = client.patch(f"/experiments/{experiment_id}", json={"traffic_percentage": 50})
    assert_status(ramped, 200)
    # A change through this process is seen at once (no wait for config_refresh_seconds).
    after = _variants_of(client, experiment_id, list(before))
    moved = {u: (v, after.get(u)) for u, v in before.items() if after.get(u) != v}
    assert moved == {}, f"users moved or dropped by the ramp: {list(moved.items())[:5]}"
    sample = _variants_of(client, experiment_id, USERS[:400])
    assert 160 < len(sample) < 240, f"50% of 400 users gave {len(sample)}"


def test_a_sticky_experiment_keeps_its_users_after_a_weight_change_and_a_ramp_down(
    client: TestClient,
) -> None:
    experiment_id = started(client, sticky=True)["id"]
    users = USERS[:200]
    before = _variants_of(client, experiment_id, users)
    assert len(before) == len(users)
    assert 60 < sum(v == "control" for v in before.values()) < 140

    weights = {"control": 0.9, "treatment": 0.1}
    patched = client.patch(f"/experiments/{experiment_id}", json={"weights": weights})
    assert_status(patched, 200)
    assert patched.json()["phase"] == 1
    assert _variants_of(client, experiment_id, users) == before
    assert _explain(client, experiment_id, users[0])["reason"] == "sticky"
    newcomers = _variants_of(client, experiment_id, USERS[200:400])
    assert sum(v == "control" for v in newcomers.values()) > 160  # 90% of 200, roughly

    down = client.patch(f"/experiments/{experiment_id}", json={"traffic_percentage": 10})
    assert_status(down, 200)
    assert _variants_of(client, experiment_id, users) == before

    # A sticky user's events must name the stored variant.
    user = users[0]
    wrong = "treatment" if before[user] == "control" else "control"
    body = {"experiment_id": experiment_id, "user_id": user, "variant_name": wrong}
    assert_status(client.post("/log", json=body), 409)
    assert_status(client.post("/log", json={**body, "variant_name": before[user]}), 200)


def test_two_experiments_of_a_layer_never_share_a_user(client: TestClient) -> None:
    first = started(client, name="Ranker", layer="homepage", traffic_percentage=30)
    second = started(client, name="Banner", layer="homepage", traffic_percentage=40)
    outside = started(client, name="Elsewhere")["id"]
    members: dict[str, set[str]] = {first["id"]: set(), second["id"]: set()}
    for user in USERS:
        answer = route(client, user)
        ids = [a["experiment_id"] for a in answer["assignments"]]
        assert outside in ids  # a layer does not limit experiments outside it
        layered = [i for i in ids if i in members]
        assert len(layered) <= 1, f"{user} is in {layered}"
        for experiment_id in layered:
            members[experiment_id].add(user)
    assert 500 < len(members[first["id"]]) < 700
    assert 700 < len(members[second["id"]]) < 900

    user = next(iter(members[first["id"]]))
    mine = _explain(client, first["id"], user)
    theirs = _explain(client, second["id"], user)
    assert mine["layer"] == theirs["layer"] == "homepage"
    assert mine["layer_bucket"] == theirs["layer_bucket"]
    assert any(low <= mine["layer_bucket"] < high for low, high in mine["layer_intervals"])
    assert (mine["reason"], theirs["reason"]) == ("hash", "not_in_layer_slice")
    width = sum(high - low for low, high in theirs["layer_intervals"])
    assert width == pytest.approx(0.40)

    # The layer is full beyond 100%: a third experiment cannot start.
    third = create(client, name="Too much", layer="homepage", traffic_percentage=40)["id"]
    response = client.post(f"/experiments/{third}/start")
    assert_status(response, 409)
    assert "homepage" in response.json()["detail"]
    assert client.get(f"/experiments/{third}").json()["status"] == "draft"


def test_forced_variants_win(client: TestClient) -> None:
    forced = {"qa-treatment": "treatment", "qa-control": "control"}
    experiment_id = started(client, traffic_percentage=1, forced_variants=forced)["id"]
    for user, variant in forced.items():
        assert route(client, user, experiment_id)["variant_name"] == variant
        explanation = _explain(client, experiment_id, user)
        assert (explanation["reason"], explanation["forced"]) == ("forced", True)
    response = client.patch(
        f"/experiments/{experiment_id}", json={"forced_variants": {"qa-treatment": "control"}}
    )
    assert_status(response, 200)
    assert route(client, "qa-treatment", experiment_id)["variant_name"] == "control"
    assert _explain(client, experiment_id, "qa-control")["forced"] is False


def test_explain_shows_buckets_ranges_and_the_reason(client: TestClient) -> None:
    variants = [
        {"name": "v1", "model_id": "model-1", "weight": 0.2, "is_control": True},
        {"name": "v2", "model_id": "model-2", "weight": 0.3},
        {"name": "v3", "model_id": "model-3", "weight": 0.5},
    ]
    response = client.post(
        "/experiments",
        json={"name": "Three models", "variants": variants, "traffic_percentage": 60},
    )
    assert_status(response, 201)
    experiment_id = response.json()["id"]
    assert_status(client.post(f"/experiments/{experiment_id}/start"), 200)
    models = {v["name"]: v["model_id"] for v in variants}
    weights = {v["name"]: v["weight"] for v in variants}
    reasons = set()
    for user in USERS[:200]:
        explanation = _explain(client, experiment_id, user)
        answer = route(client, user, experiment_id)
        assert explanation["user_id"] == user
        assert explanation["layer"] is None
        reasons.add(explanation["reason"])
        if explanation["gate_bucket"] < 0.6:
            assert explanation["ranges"] == {
                "v1": [0.0, 0.2],
                "v2": [0.2, 0.5],
                "v3": [0.5, 1.0],
            }
            variant = explanation["variant_name"]
            low, high = explanation["ranges"][variant]
            assert low <= explanation["variant_bucket"] < high
            assert explanation["reason"] == "hash"
            assert explanation["probability"] == pytest.approx(weights[variant] * 0.6)
            assert (answer["variant_name"], answer["model_id"]) == (variant, models[variant])
        else:
            assert explanation["variant_name"] is None
            assert explanation["reason"] == "not_in_traffic"
            # Served the control, outside the experiment.
            assert (answer["variant_name"], answer["in_experiment"]) == ("v1", False)
            assert answer["reason"] == "not_in_traffic"
    assert reasons == {"hash", "not_in_traffic"}
    expect_422(
        client.get(f"/experiments/{experiment_id}/explain", params={"user_id": "u" * 257}),
        "user_id",
    )
    expect_422(client.get(f"/experiments/{experiment_id}/explain"), "user_id")
