"""A draft changes, through PATCH, in every field the create form sets (each change audited);
once started, the draft-only fields are a 409 and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import MakeClient, TestClient

_DRAFT = {
    "id": "edit-me",
    "name": "Edit me",
    "variants": [
        {"name": "control", "model_id": "m1", "weight": 0.5},
        {"name": "treatment", "model_id": "m2", "weight": 0.5},
    ],
    "forced_variants": {"qa-1": "treatment"},
}
_THREE = [
    {"name": "control", "model_id": "m1", "weight": 1 / 3},
    {"name": "fast", "model_id": "m3", "weight": 1 / 3},
    {"name": "slow", "model_id": "m4", "weight": 1 - 2 / 3},
]
_GUARDRAIL = {
    "name": "latency_ms",
    "kind": "ratio",
    "role": "guardrail",
    "higher_is_better": False,
    "margin": 0.05,
    "action": "pause",
}
_FULL_EDIT: dict[str, Any] = {
    "name": "Edited",
    "description": "three arms now",
    "variants": _THREE,
    "traffic_percentage": 40.0,
    "metric_type": "continuous",
    "allocation": "thompson",
    "layer": "checkout",
    "sticky": True,
    "sequential": False,
    "confidence_level": 0.9,
    "min_sample_size": 500,
    "min_relative_lift": 0.05,
    "power": 0.85,
    "forced_variants": {"qa-1": "fast", "qa-2": "slow"},
    "metrics": [_GUARDRAIL],
}


def _create(client: TestClient) -> dict[str, Any]:
    response = client.post("/experiments", json=_DRAFT)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_draft_changes_in_every_field_of_the_form_with_one_audit_entry(
    client: TestClient,
) -> None:
    before = _create(client)
    response = client.patch("/experiments/edit-me", json=_FULL_EDIT)
    assert response.status_code == 200, response.text
    after = response.json()
    for field, value in _FULL_EDIT.items():
        if field in ("variants", "metrics"):
            continue
        assert after[field] == value, field
    assert [(v["name"], v["model_id"], v["weight"]) for v in after["variants"]] == [
        (v["name"], v["model_id"], v["weight"]) for v in _THREE
    ]
    assert [m["name"] for m in after["metrics"]] == ["latency_ms"]
    assert after["metrics"][0]["margin"] == 0.05
    assert (after["phase"], after["status"]) == (0, "draft")
    assert after["version"] == before["version"] + 1

    entry = after["audit"][-1]
    assert entry["action"] == "update"
    assert set(entry["changes"]) == set(_FULL_EDIT)
    assert entry["changes"]["allocation"] == {"from": "fixed", "to": "thompson"}
    assert entry["changes"]["layer"] == {"from": None, "to": "checkout"}
    assert [v["name"] for v in entry["changes"]["variants"]["from"]] == ["control", "treatment"]
    assert [v["name"] for v in entry["changes"]["variants"]["to"]] == ["control", "fast", "slow"]
    assert entry["changes"]["metrics"] == {"from": [], "to": [after["metrics"][0]]}
    assert client.get("/experiments/edit-me").json() == after

    # The same body again changes nothing: no new version, no audit entry.
    again = client.patch("/experiments/edit-me", json=_FULL_EDIT).json()
    assert (again["version"], len(again["audit"])) == (after["version"], len(after["audit"]))

    # An explicit null takes the draft out of its layer; an empty list removes the metrics.
    cleared = client.patch("/experiments/edit-me", json={"layer": None, "metrics": []}).json()
    assert (cleared["layer"], cleared["metrics"]) == (None, [])
    assert cleared["audit"][-1]["changes"]["layer"] == {"from": "checkout", "to": None}


def test_a_renamed_variant_still_forced_is_422_naming_forced_variants(
    client: TestClient,
) -> None:
    before = _create(client)
    response = client.patch("/experiments/edit-me", json={"variants": _THREE})
    assert response.status_code == 422
    (issue,) = response.json()["detail"]
    assert issue["loc"][-1] == "forced_variants"
    assert "treatment" in issue["msg"]
    assert client.get("/experiments/edit-me").json() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"variants": [{**v, "weight": 0.3} for v in _THREE]}, "variants"),
        ({"weights": {"control": 0.5, "treatment": 0.5}, "variants": _THREE}, "body"),
        ({"metric_type": "continuous", "metrics": [{**_GUARDRAIL, "role": "primary"}]}, "metrics"),
        ({"layer": "Not A Slug"}, "layer"),
        ({"sticky": "yes"}, "sticky"),
    ],
)
def test_bad_draft_edits_are_422_and_change_nothing(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    before = _create(client)
    response = client.patch("/experiments/edit-me", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"][0]["loc"]
    assert client.get("/experiments/edit-me").json() == before


@pytest.mark.parametrize(
    "body",
    [
        {"variants": _THREE},
        {"metric_type": "continuous"},
        {"allocation": "ucb1"},
        {"layer": None},
        {"sticky": True},
        {"sequential": False},
        {"metrics": []},
    ],
)
def test_draft_only_fields_are_409_once_started(client: TestClient, body: dict[str, Any]) -> None:
    _create(client)
    assert client.post("/experiments/edit-me/start").status_code == 200
    before = client.get("/experiments/edit-me").json()
    response = client.patch("/experiments/edit-me", json=body)
    assert response.status_code == 409
    assert next(iter(body)) in response.json()["detail"]
    assert "only in draft" in response.json()["detail"]
    assert client.get("/experiments/edit-me").json() == before
    # The running experiment's own changes are as before.
    ramp = client.patch("/experiments/edit-me", json={"traffic_percentage": 50})
    assert ramp.status_code == 200 and ramp.json()["traffic_percentage"] == 50


def test_unchanged_forced_variants_are_not_audited(client: TestClient) -> None:
    before = _create(client)
    same = client.patch("/experiments/edit-me", json={"forced_variants": {"qa-1": "treatment"}})
    assert same.status_code == 200
    assert (same.json()["version"], same.json()["audit"]) == (before["version"], before["audit"])


def test_the_edit_page_shell_is_open_and_its_changes_need_the_admin_key(
    make_client: MakeClient,
) -> None:
    admin, read = "admin-secret-edit-0123456789", "read-secret-edit-0123456789"
    client = make_client(admin_api_key=admin, read_api_key=read)
    assert client.post("/experiments", json=_DRAFT, headers={"X-API-Key": admin}).status_code == 201
    page = client.get("/edit/edit-me")  # the shell holds no data: open, as /view/{id} is
    assert page.status_code == 200
    assert '<script src="/static/new.js?v=' in page.text
    assert '<script src="/static/draft.js?v=' in page.text
    assert client.patch("/experiments/edit-me", json={"sticky": True}).status_code == 401
    refused = client.patch(
        "/experiments/edit-me", json={"sticky": True}, headers={"X-API-Key": read}
    )
    assert refused.status_code == 403
    assert client.delete("/experiments/edit-me", headers={"X-API-Key": read}).status_code == 403
    done = client.delete("/experiments/edit-me", headers={"X-API-Key": admin})
    assert done.status_code == 204
    assert client.get("/experiments/edit-me", headers={"X-API-Key": read}).status_code == 404
