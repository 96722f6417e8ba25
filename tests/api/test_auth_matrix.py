"""The auth matrix, generated: every operation of the OpenAPI document, called on a real
uvicorn server (SQLite, all three keys set) with no key, a wrong key and each role's key,
against the role that :data:`abscope.api.auth.ROUTES` gives it.

A route without a row in the table fails here: every OpenAPI operation and every route of
the app that is not open must have one, and every row must name a route the app has.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from abscope.api.app import create_app
from abscope.api.auth import (
    BASIC_SCHEME,
    BEARER_SCHEME,
    ROUTES,
    SCHEME,
    Role,
    RouteTable,
    is_open,
)
from tests.api.helpers import assert_status, make_settings, seed_body
from tests.fixtures.uvicorn_server import ABSCOPE_APP, UvicornServer

KEYS: dict[Role, str] = {
    "admin": "matrix-admin-key-7f3a9c",
    "ingest": "matrix-ingest-key-2b8d41",
    "read": "matrix-read-key-c05e6f",
}
ENV = {
    "ABSCOPE_ADMIN_API_KEY": KEYS["admin"],
    "ABSCOPE_INGEST_API_KEY": KEYS["ingest"],
    "ABSCOPE_READ_API_KEY": KEYS["read"],
}
EXPERIMENT = "matrix"
CREDENTIALS: dict[str, str | None] = {
    "no key": None,
    "wrong key": "matrix-wrong-key-000000",
    "read key": KEYS["read"],
    "ingest key": KEYS["ingest"],
    "admin key": KEYS["admin"],
    "wrong bearer": "matrix-wrong-key-000000",
    "read bearer": KEYS["read"],
    "ingest bearer": KEYS["ingest"],
    "admin bearer": KEYS["admin"],
    "wrong basic": "matrix-wrong-key-000000",
    "read basic": KEYS["read"],
    "ingest basic": KEYS["ingest"],
    "admin basic": KEYS["admin"],
}
"""Each credential's key: in X-API-Key, or (a "bearer") in ``Authorization: Bearer``, or
(a "basic") as the password of ``Authorization: Basic``."""


def _headers(credential: str) -> dict[str, str]:
    key = CREDENTIALS[credential]
    if key is None:
        return {}
    if credential.endswith("bearer"):
        return {"Authorization": f"Bearer {key}"}
    if credential.endswith("basic"):
        return {"Authorization": "Basic " + base64.b64encode(f"flagger:{key}".encode()).decode()}
    return {"X-API-Key": key}


# Bodies that the route accepts, so that an authorised call reaches the handler; any other
# operation gets ``{}`` (a 422 past the key check is as good a proof that the key passed).
_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/route"): {"user_id": "matrix-user", "experiment_id": EXPERIMENT},
    ("POST", "/log"): {
        "user_id": "matrix-user",
        "experiment_id": EXPERIMENT,
        "variant_name": "control",
        "converted": True,
    },  # fmt: skip
    ("POST", "/events"): {
        "events": [
            {
                "experiment_id": EXPERIMENT,
                "user_id": "matrix-user",
                "variant_name": "control",
                "kind": "exposure",
            }
        ]
    },  # fmt: skip
    ("POST", "/experiments"): seed_body(),
    ("PATCH", "/experiments/{experiment_id}"): {"name": "Matrix renamed"},
    ("POST", "/calculate"): {"baseline_rate": 0.1, "min_relative_lift": 0.1, "daily_traffic": 1e4},
    ("POST", "/charts/plan"): {
        "baseline_rate": 0.1,
        "min_relative_lift": 0.1,
        "daily_traffic": 1e4,
    },  # fmt: skip
    ("POST", "/charts/simulate"): {"true_rates": [0.1, 0.2], "horizon": 100, "runs": 2},
}


def _app_schema_and_routes(tmp_path: Path) -> tuple[dict[str, Any], list[Any]]:
    app = create_app(make_settings(tmp_path / "schema.db"))
    try:
        return app.openapi(), list(app.routes)
    finally:
        app.state.service.store.close()


@pytest.fixture(scope="module")
def schema_and_routes(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[Any]]:
    return _app_schema_and_routes(tmp_path_factory.mktemp("matrix-schema"))


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    methods = {"get", "post", "put", "patch", "delete", "head", "options"}
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in methods
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UvicornServer]:
    directory = tmp_path_factory.mktemp("matrix-server")
    server = UvicornServer(
        ABSCOPE_APP,
        directory / "uvicorn.log",
        env={"ABSCOPE_DB_PATH": str(directory / "abscope.db"), **ENV},
        health_path="/health",
    )
    server.start()
    try:
        with server.client() as api:
            api.headers["X-API-Key"] = KEYS["admin"]
            assert_status(api.post("/experiments", json=seed_body(id=EXPERIMENT)), 201)
            assert_status(api.post(f"/experiments/{EXPERIMENT}/start"), 200)
        yield server
    finally:
        server.stop()


def _request(method: str, path: str, operation: dict[str, Any]) -> dict[str, Any]:
    """URL, query and body of a call of ``operation``: path parameters are the real
    experiment's id, required query parameters a plausible value."""
    url = path
    params: dict[str, Any] = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            url = url.replace("{" + parameter["name"] + "}", EXPERIMENT)
        elif parameter["in"] == "query" and parameter.get("required"):
            kind = parameter.get("schema", {}).get("type")
            params[parameter["name"]] = 1 if kind == "integer" else "matrix-user"
    request: dict[str, Any] = {"url": url, "params": params}
    if "requestBody" in operation or method in ("POST", "PATCH", "PUT"):
        request["json"] = _BODIES.get((method, path), {})
    return request


def _expected(needed: Role | None, credential: str) -> str:
    """``"401"``, ``"403"`` or ``"passes"`` (any status but those two, and no 5xx)."""
    if needed is None:
        return "passes"
    key = CREDENTIALS[credential]
    held = next((role for role, value in KEYS.items() if value == key), None)
    if held is None:
        return "401"
    return "passes" if held in (needed, "admin") else "403"


def test_the_openapi_document_gives_each_operation_its_key_and_role(
    schema_and_routes: tuple[dict[str, Any], list[Any]],
) -> None:
    schema, _ = schema_and_routes
    scheme = schema["components"]["securitySchemes"][SCHEME]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")
    bearer = schema["components"]["securitySchemes"][BEARER_SCHEME]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    basic = schema["components"]["securitySchemes"][BASIC_SCHEME]
    assert (basic["type"], basic["scheme"]) == ("http", "basic")
    for method, path, operation in _operations(schema):
        if is_open(path):
            assert "security" not in operation, f"{method} {path} is open"
            continue
        # Either header: X-API-Key, or Authorization: Bearer (or Basic) with the same key.
        assert operation["security"] == [{SCHEME: []}, {BEARER_SCHEME: []}, {BASIC_SCHEME: []}], (
            f"{method} {path}"
        )
        assert operation["x-abscope-role"] == ROUTES[(method, path)]
        assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"


def test_the_table_gives_each_role_its_routes() -> None:
    ingest = {(method, path) for (method, path), role in ROUTES.items() if role == "ingest"}
    sdk = {("GET", "/sdk/config")}  # the SDK's routing configuration: the key that routes
    backfill = {("POST", "/experiments/{experiment_id}/covariates")}  # CUPED's covariates
    assert ingest == {("POST", "/route"), ("POST", "/log"), ("POST", "/events")} | sdk | backfill
    reads = {(method, path) for (method, path), role in ROUTES.items() if role == "read"}
    gets = {(method, path) for method, path in ROUTES if method == "GET"}
    planner = {("POST", "/calculate"), ("POST", "/charts/plan"), ("POST", "/charts/simulate")}
    webhook = {("POST", "/experiments/{experiment_id}/gate")}  # Flagger POSTs to its hooks
    assert reads == (gets - sdk) | planner | webhook
    admin = {(m, p) for (m, p), role in ROUTES.items() if role == "admin"}
    assert admin == set(ROUTES) - reads - ingest
    assert all(path.startswith("/experiments") for _, path in admin)


def test_every_operation_and_route_has_a_role(
    schema_and_routes: tuple[dict[str, Any], list[Any]],
) -> None:
    schema, routes = schema_and_routes
    missing = [
        f"{method} {path}"
        for method, path, _ in _operations(schema)
        if not is_open(path) and (method, path) not in ROUTES
    ]
    declared: set[tuple[str, str]] = set()
    for route in iter_route_contexts(routes):  # the included routers' routes, flattened
        if isinstance(route.original_route, Mount):
            assert is_open(route.path + "/"), f"mount {route.path} is neither open nor in ROUTES"
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            declared.add((method, route.path))
            if not is_open(route.path) and (method, route.path) not in ROUTES:
                missing.append(f"{method} {route.path}")
    assert missing == [], f"routes without a role in abscope.api.auth.ROUTES: {missing}"
    stale = sorted(f"{method} {path}" for method, path in ROUTES if (method, path) not in declared)
    assert stale == [], f"rows of ROUTES that name no route of the app: {stale}"


def test_the_matrix(
    server: UvicornServer, schema_and_routes: tuple[dict[str, Any], list[Any]]
) -> None:
    schema, _ = schema_and_routes
    operations = _operations(schema)
    assert len(operations) >= len(ROUTES)  # the open ones (health, ready) besides
    wrong: list[str] = []
    cells = 0
    # Reads and traffic first, changes last, and stop and complete after the others: they
    # change what later calls find (the matrix checks keys, and a 404 or 409 past the check
    # proves as much as a 200).
    rank = {None: 0, "read": 0, "ingest": 1, "admin": 2}
    operations.sort(
        key=lambda op: (
            rank[None if is_open(op[1]) else ROUTES[(op[0], op[1])]],
            op[0] == "DELETE" or op[1].endswith(("/stop", "/complete")),
            op[1],
        )
    )
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        for method, path, operation in operations:
            needed = None if is_open(path) else ROUTES[(method, path)]
            for credential in CREDENTIALS:
                response = client.request(
                    method, headers=_headers(credential), **_request(method, path, operation)
                )
                cells += 1
                expected = _expected(needed, credential)
                got = str(response.status_code)
                ok = (
                    got == expected
                    if expected != "passes"
                    else got not in ("401", "403") and response.status_code < 500
                )
                if expected in ("401", "403"):
                    detail = response.json().get("detail", "")
                    ok = ok and needed is not None and needed in detail
                    ok = ok and not any(value in response.text for value in KEYS.values())
                if not ok:
                    wrong.append(
                        f"{method} {path} with {credential}: expected {expected}, got {got}"
                        f" {response.text[:200]}"
                    )
    assert wrong == [], "\n".join(wrong)
    assert cells == len(operations) * len(CREDENTIALS)


@pytest.mark.parametrize(("method", "path"), [("GET", "/nope"), ("POST", "/experiments/x/y")])
def test_an_unknown_path_on_the_real_server_needs_the_admin_key(
    server: UvicornServer, method: str, path: str
) -> None:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        assert_status(client.request(method, path), 401)
        assert_status(client.request(method, path, headers={"X-API-Key": KEYS["read"]}), 403)
        assert_status(client.request(method, path, headers={"X-API-Key": KEYS["admin"]}), 404)


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("POST", "/route", "ingest"),
        ("HEAD", "/experiments", "read"),
        ("GET", "/experiments/abc/results", "read"),
        ("PATCH", "/experiments/abc", "admin"),
        ("GET", "/experiments//results", "admin"),  # a parameter is never empty
        ("GET", "/experiments/a/b/results", "admin"),  # nor two segments
        ("GET", "/experiments/abc/resultsx", "admin"),
        ("GET", "/experiments/", "admin"),
        ("PUT", "/route", "admin"),
        ("GET", "/view/abc", None),
        ("GET", "/static/app.js", None),
        ("GET", "/health", None),
    ],
)
def test_the_table_matches_exact_and_templated_paths(
    method: str, path: str, role: Role | None
) -> None:
    assert RouteTable(ROUTES).role(method, path) == role
