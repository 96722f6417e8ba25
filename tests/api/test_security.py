"""API keys in process (X-API-Key: admin for configuration, ingest for traffic, read for
reads) and CORS. The full matrix, over every operation on a real server, is
``test_auth_matrix.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.helpers import MakeClient, TestClient, assert_status, seed_body

ADMIN = "admin-secret-1-0123456789"
INGEST = "ingest-secret-2-0123456789"
READ = "read-secret-3-0123456789"
ORIGIN = "https://planner.example"

Call = Callable[[TestClient, dict[str, str], str], httpx.Response]


def _admin_calls(experiment_id: str) -> dict[str, Call]:
    def post(path: str, body: Any = None) -> Call:
        return lambda client, headers, _: client.post(path, json=body, headers=headers)

    return {
        "create": post("/experiments", seed_body()),
        "patch": lambda client, headers, _: client.patch(
            f"/experiments/{experiment_id}", json={"name": "Renamed"}, headers=headers
        ),
        "start": post(f"/experiments/{experiment_id}/start"),
        "pause": post(f"/experiments/{experiment_id}/pause"),
        "resume": post(f"/experiments/{experiment_id}/resume"),
        "complete": post(f"/experiments/{experiment_id}/complete"),
        "stop": post(f"/experiments/{experiment_id}/stop"),
        "delete": lambda client, headers, _: client.delete(
            f"/experiments/{experiment_id}", headers=headers
        ),
    }


def _ingest_calls(experiment_id: str) -> dict[str, Call]:
    def post(path: str, body: Callable[[str], Any]) -> Call:
        return lambda client, headers, user: client.post(path, json=body(user), headers=headers)

    return {
        "route": post("/route", lambda user: {"user_id": user, "experiment_id": experiment_id}),
        "route all": post("/route", lambda user: {"user_id": user}),
        "log": post(
            "/log",
            lambda user: {
                "experiment_id": experiment_id,
                "user_id": user,
                "variant_name": "control",
                "converted": True,
            },
        ),
        "events": post(
            "/events",
            lambda user: {
                "events": [
                    {
                        "experiment_id": experiment_id,
                        "user_id": user,
                        "variant_name": "control",
                        "kind": "exposure",
                    }
                ]
            },
        ),
    }


def _key(value: str) -> dict[str, str]:
    return {"X-API-Key": value}


def _secured(make_client: MakeClient) -> tuple[TestClient, str]:
    client = make_client(admin_api_key=ADMIN, ingest_api_key=INGEST, read_api_key=READ)
    created = client.post("/experiments", json=seed_body(id="secured"), headers=_key(ADMIN))
    assert_status(created, 201)
    assert_status(client.post("/experiments/secured/start", headers=_key(ADMIN)), 200)
    return client, "secured"


@pytest.mark.parametrize("name", list(_admin_calls("x")))
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        (_key("wrong"), 401),
        (_key(ADMIN + " "), 401),
        (_key(ADMIN[:-1]), 401),
        (_key(""), 401),
        (_key(INGEST), 403),
        (_key(READ), 403),
    ],
)
def test_configuration_changes_need_the_admin_key(
    make_client: MakeClient, name: str, headers: dict[str, str], status: int
) -> None:
    client, experiment_id = _secured(make_client)
    before = client.get("/experiments", headers=_key(READ)).json()
    response = _admin_calls(experiment_id)[name](client, headers, "u1")
    assert_status(response, status)
    detail = response.json()["detail"]
    assert "X-API-Key" in detail and "admin" in detail
    assert all(secret not in response.text for secret in (ADMIN, INGEST, READ))
    assert client.get("/experiments", headers=_key(READ)).json() == before


def test_the_admin_key_allows_configuration_changes(make_client: MakeClient) -> None:
    client, experiment_id = _secured(make_client)
    calls = _admin_calls(experiment_id)
    for name in ["patch", "pause", "resume", "stop"]:
        assert_status(calls[name](client, _key(ADMIN), "u1"), 200)
    draft = calls["create"](client, _key(ADMIN), "u1")
    assert_status(draft, 201)
    deleted = client.delete(f"/experiments/{draft.json()['id']}", headers=_key(ADMIN))
    assert_status(deleted, 204)


@pytest.mark.parametrize("name", list(_ingest_calls("x")))
def test_traffic_needs_the_ingest_key_or_the_admin_key(make_client: MakeClient, name: str) -> None:
    client, experiment_id = _secured(make_client)
    call = _ingest_calls(experiment_id)[name]
    for headers, status in (({}, 401), (_key("wrong"), 401), (_key(""), 401), (_key(READ), 403)):
        response = call(client, headers, "u1")
        assert_status(response, status)
        assert "ingest" in response.json()["detail"]
    counts = client.get(f"/experiments/{experiment_id}/results", headers=_key(READ)).json()
    assert counts["control_samples"] + counts["treatment_samples"] == 0
    # The users are chosen in control, so the log and the event are accepted.
    users = _control_users(client, experiment_id)
    assert_status(call(client, _key(INGEST), users[0]), 200)
    assert_status(call(client, _key(ADMIN), users[1]), 200)


def _control_users(client: TestClient, experiment_id: str) -> list[str]:
    """Users the experiment puts in control (explain, with the read key when keys are set)."""
    users = []
    for user in (f"user-{i}" for i in range(50)):
        path = f"/experiments/{experiment_id}/explain"
        answer = client.get(path, params={"user_id": user}, headers=_key(READ))
        if answer.json()["variant_name"] == "control":
            users.append(user)
    return users


@pytest.mark.parametrize(
    "path",
    [
        "/experiments",
        "/experiments/secured",
        "/experiments/secured/results",
        "/experiments/secured/timeseries",
        "/experiments/secured/explain?user_id=u1",
        "/experiments/secured/charts",
    ],
)
def test_reads_need_the_read_key_or_the_admin_key(make_client: MakeClient, path: str) -> None:
    client, _ = _secured(make_client)
    for headers, status in (({}, 401), (_key("wrong"), 401), (_key(INGEST), 403)):
        response = client.get(path, headers=headers)
        assert_status(response, status)
        assert response.json()["detail"].startswith("a valid read key" if status == 401 else "this")
        assert "read" in response.json()["detail"]
    assert_status(client.get(path, headers=_key(READ)), 200)
    assert_status(client.get(path, headers=_key(ADMIN)), 200)


def test_pages_assets_and_probes_stay_open(make_client: MakeClient) -> None:
    client, _ = _secured(make_client)
    for path in ("/", "/new", "/planner", "/simulator", "/view/secured", "/health", "/ready",
                 "/static/app.js", "/assets/plotly.min.js"):  # fmt: skip
        assert_status(client.get(path), 200)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nope"), ("GET", "/experiments/secured/nope"), ("PUT", "/experiments/secured")],
)
def test_an_unknown_path_or_method_needs_the_admin_key(
    make_client: MakeClient, method: str, path: str
) -> None:
    client, _ = _secured(make_client)
    assert_status(client.request(method, path), 401)
    assert_status(client.request(method, path, headers=_key(READ)), 403)
    expected = 405 if method == "PUT" else 404
    assert_status(client.request(method, path, headers=_key(ADMIN)), expected)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/experiments", {"name": ""}),
        ("/experiments/secured", {"traffic_percentage": "lots"}),
        ("/route", {"user_id": 5}),
        ("/log", {"user_id": "u1"}),
        ("/events", {"events": "none"}),
        ("/charts/simulate", {"horizon": -1}),
    ],
)
def test_the_key_is_checked_before_the_body(
    make_client: MakeClient, path: str, body: dict[str, Any]
) -> None:
    client, _ = _secured(make_client)
    method = "PATCH" if path == "/experiments/secured" else "POST"
    bad = client.request(method, path, json=body)
    assert_status(bad, 401)
    invalid = client.request(
        method, path, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_status(invalid, 401)
    assert_status(client.request(method, path, json=body, headers=_key(ADMIN)), 422)


def test_only_an_admin_key_opens_everything_when_it_is_the_only_key(
    make_client: MakeClient,
) -> None:
    client = make_client(admin_api_key=ADMIN)
    assert_status(client.get("/experiments"), 401)
    assert_status(client.post("/route", json={"user_id": "u1"}), 401)
    assert_status(client.get("/experiments", headers=_key(ADMIN)), 200)
    assert_status(client.post("/route", json={"user_id": "u1"}, headers=_key(ADMIN)), 200)


def test_without_keys_everything_is_open(client: TestClient) -> None:
    experiment = client.post("/experiments", json=seed_body(id="open"))
    assert_status(experiment, 201)
    assert_status(client.post("/experiments/open/start"), 200)
    users = _control_users(client, "open")
    for index, call in enumerate(_ingest_calls("open").values()):
        assert_status(call(client, {}, users[index]), 200)
    for name in ["patch", "pause", "resume", "stop"]:
        assert_status(_admin_calls("open")[name](client, {}, "u1"), 200)
    # A key sent to a service without keys is ignored.
    assert_status(client.post("/experiments", json=seed_body(), headers=_key("anything")), 201)


def test_cors_answers_a_preflight_from_an_allowed_origin_only(make_client: MakeClient) -> None:
    client = make_client(cors_origins=[ORIGIN])
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-api-key",
    }
    allowed = client.options("/experiments", headers={"Origin": ORIGIN, **preflight})
    assert_status(allowed, 200)
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()

    other = client.options("/experiments", headers={"Origin": "https://evil.example", **preflight})
    assert other.status_code >= 400
    assert "access-control-allow-origin" not in other.headers

    simple = client.get("/health", headers={"Origin": ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    stranger = client.get("/health", headers={"Origin": "https://evil.example"})
    assert_status(stranger, 200)
    assert "access-control-allow-origin" not in stranger.headers


def test_without_cors_origins_no_cors_headers_are_sent(client: TestClient) -> None:
    response = client.get("/health", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/experiments", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers
