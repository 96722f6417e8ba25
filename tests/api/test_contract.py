"""The documented contract: the OpenAPI document describes every route fully, every 422
has one shape, booleans, integers and timestamps are not coerced, and a 405 names every
method of its path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from abscope.schemas import LogRequest
from tests.api.helpers import TestClient, assert_status, create, started

OPEN_ROUTES = {("get", "/health"), ("get", "/ready")}
"""Routes that need no key: every other documents 401 and 403."""

TEXT_ROUTES = {("get", "/metrics")}
"""Routes whose success is not JSON (Prometheus' text format), and that never answer 503 (a
scrape leaves out the figures the store cannot give)."""


def _operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    document = client.get("/openapi.json").json()
    return [
        (method, path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_operation_has_a_summary_a_description_and_typed_bodies(
    client: TestClient,
) -> None:
    operations = _operations(client)
    assert len(operations) >= 22
    for method, path, operation in operations:
        label = f"{method.upper()} {path}"
        assert operation.get("summary"), label
        assert operation.get("description"), label
        for status, response in operation["responses"].items():
            content = response.get("content", {}).get("application/json")
            if status in ("204", "304"):  # no content, and not modified
                assert content is None, label
                continue
            if status == "200" and (method, path) in TEXT_ROUTES:
                assert response["content"], label
                assert all(kind.startswith("text/plain") for kind in response["content"]), label
                continue
            assert content is not None, f"{label} {status}"
            schema = content["schema"]
            # Every answer is a named model, never a bare (untyped) object.
            assert "$ref" in schema, f"{label} {status}: {schema}"


def test_every_error_status_is_documented_with_its_body(client: TestClient) -> None:
    for method, path, operation in _operations(client):
        label = f"{method.upper()} {path}"
        responses = operation["responses"]
        if (method, path) not in OPEN_ROUTES:
            assert (
                {"401", "403", "503"} <= set(responses)
                or path in {"/calculate", "/charts/plan", "/charts/simulate"}
                or (method, path) in TEXT_ROUTES
            ), label
            assert {"401", "403"} <= set(responses), label
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= set(responses), label
        if "{experiment_id}" in path:
            assert "404" in responses, label
        for status, response in responses.items():
            if not status.startswith(("4", "5")):
                continue
            ref = response["content"]["application/json"]["schema"]["$ref"]
            expected = "ValidationErrorBody" if status == "422" else "ErrorBody"
            if path.endswith("/gate") and status == "412":
                expected = "GateResponse"  # a failed gate is a verdict, with its reasons
            assert ref == f"#/components/schemas/{expected}", f"{label} {status}"
            if status == "503":
                assert response["headers"]["Retry-After"]["required"] is True, label


def test_one_validation_error_schema(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    issue = schemas["ValidationIssue"]
    assert set(issue["required"]) == {"loc", "msg", "type"}


def test_an_invalid_value_found_by_the_service_has_a_type(client: TestClient) -> None:
    experiment = started(client)
    response = client.patch(
        f"/experiments/{experiment['id']}", json={"weights": {"control": 0.2, "treatment": 0.2}}
    )
    assert_status(response, 422)
    [issue] = response.json()["detail"]
    assert issue["loc"] == ["body", "weights"]
    assert issue["type"] == "value_error"
    assert "sum to 1" in issue["msg"]


@pytest.mark.parametrize("route", ["results", "timeseries", "charts"])
def test_a_phase_out_of_range_is_a_query_error(client: TestClient, route: str) -> None:
    experiment = started(client)
    response = client.get(f"/experiments/{experiment['id']}/{route}", params={"phase": 7})
    assert_status(response, 422)
    assert response.json()["detail"] == [
        {"loc": ["query", "phase"], "msg": "must be between 0 and 0", "type": "phase_out_of_range"}
    ]


@pytest.mark.parametrize(
    ("path", "body", "loc", "kind"),
    [
        ("/charts/simulate", {"true_rates": [0.1, 0.2], "horizon": 100, "seed": False}, ["seed"],
         "int_type"),
        ("/charts/simulate", {"true_rates": [0.1, 0.2], "horizon": 100.0}, ["horizon"],
         "int_type"),
        ("/calculate", {"baseline_rate": 0.1, "min_relative_lift": 0.1, "daily_traffic": 100,
                        "two_sided": "yes"}, ["two_sided"], "bool_type"),
        ("/route", {"user_id": "u", "expose": "true"}, ["expose"], "bool_type"),
        ("/route", {"user_id": "u", "expose": 0}, ["expose"], "bool_type"),
        ("/log", {"experiment_id": "e", "user_id": "u", "variant_name": "control",
                  "converted": 1}, ["converted"], "bool_type"),
        ("/log", {"experiment_id": "e", "user_id": "u", "variant_name": "control",
                  "timestamp": 0}, ["timestamp"], "value_error"),
        ("/events", {"events": [{"experiment_id": "e", "user_id": "u", "variant_name": "control",
                                 "kind": "exposure", "timestamp": 1.5e9}]},
         ["events", 0, "timestamp"], "value_error"),
        ("/experiments", {"name": "n", "control_model_id": "a", "treatment_model_id": "b",
                          "sticky": 1}, ["sticky"], "bool_type"),
        ("/experiments", {"name": "n", "control_model_id": "a", "treatment_model_id": "b",
                          "min_sample_size": "100"}, ["min_sample_size"], "int_type"),
        ("/experiments", {"name": "n", "variants": [
            {"name": "a", "model_id": "a", "weight": 0.5, "is_control": "true"},
            {"name": "b", "model_id": "b", "weight": 0.5}]}, ["variants", 0, "is_control"],
         "bool_type"),
    ],
)  # fmt: skip
def test_booleans_integers_and_timestamps_are_not_coerced(
    client: TestClient, path: str, body: dict[str, Any], loc: list[str | int], kind: str
) -> None:
    response = client.post(path, json=body)
    assert_status(response, 422)
    [issue] = response.json()["detail"]
    assert issue["loc"] == ["body", *loc]
    assert issue["type"] == kind


def test_a_timestamp_is_an_iso_8601_string() -> None:
    fields = {"experiment_id": "e", "user_id": "u", "variant_name": "control"}
    stamp = "2026-12-01T14:00:00Z"
    from_json = LogRequest.model_validate_json(json.dumps({**fields, "timestamp": stamp}))
    from_python = LogRequest.model_validate({**fields, "timestamp": stamp})
    assert from_json.timestamp == from_python.timestamp
    assert from_json.timestamp is not None and from_json.timestamp.isoformat() == (
        "2026-12-01T14:00:00+00:00"
    )


def test_an_iso_timestamp_is_logged(client: TestClient) -> None:
    experiment = started(client)
    user = "user-1"
    routed = client.post("/route", json={"user_id": user, "experiment_id": experiment["id"]})
    assert_status(routed, 200)
    response = client.post(
        "/log",
        json={"experiment_id": experiment["id"], "user_id": user, "converted": True,
              "variant_name": routed.json()["variant_name"],
              "timestamp": experiment["created_at"]},
    )  # fmt: skip
    assert_status(response, 200)
    assert response.json()["new_conversion"] is True


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/experiments", {"GET", "POST"}),
        ("HEAD", "/experiments", {"GET", "POST"}),
        ("PUT", "/experiments/some-id", {"GET", "PATCH", "DELETE"}),
        ("GET", "/route", {"POST"}),
        ("DELETE", "/experiments/some-id/start", {"POST"}),
    ],
)
def test_a_405_allows_every_method_of_the_path(
    client: TestClient, method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path)
    assert_status(response, 405)
    assert set(response.headers["allow"].split(", ")) == allowed
    if method != "HEAD":
        assert response.json() == {"detail": "Method Not Allowed"}


def test_an_experiment_list_is_typed(client: TestClient) -> None:
    first = create(client)
    listed = client.get("/experiments", params={"status": "draft"})
    assert_status(listed, 200)
    assert [e["id"] for e in listed.json()["experiments"]] == [first["id"]]
