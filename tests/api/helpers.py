"""Request bodies and small assertions shared by the API tests."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from abscope.config import Settings
from tests.fixtures.uvicorn_server import UvicornServer

with warnings.catch_warnings():
    # starlette 1.10 warns, on import, that its test client prefers httpx2 over httpx; the
    # project pins httpx, and the warning says nothing about abscope.
    warnings.filterwarnings(
        "ignore", message=r"Using `httpx` with `starlette.testclient`", category=Warning
    )
    from fastapi.testclient import TestClient

__all__ = [
    "HttpClient",
    "MakeClient",
    "MakeServer",
    "backend_env",
    "TestClient",
    "assert_status",
    "create",
    "error_fields",
    "expect_422",
    "make_settings",
    "route",
    "seed_body",
    "started",
]


MakeClient = Callable[..., TestClient]
"""``make_client(**settings)``: a started in-process client (the ``make_client`` fixture)."""
MakeServer = Callable[..., UvicornServer]
"""``make_server(workers=1, **env)``: a started uvicorn process (the ``make_server`` fixture)."""


class HttpClient(Protocol):
    """What the tests use of ``httpx.Client`` and ``TestClient`` alike."""

    def get(self, url: str, **kwargs: Any) -> httpx.Response: ...
    def post(self, url: str, **kwargs: Any) -> httpx.Response: ...
    def patch(self, url: str, **kwargs: Any) -> httpx.Response: ...
    def delete(self, url: str, **kwargs: Any) -> httpx.Response: ...


def backend_env(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """The server's ``ABSCOPE_*`` environment for ``backend``: a SQLite file in ``tmp_path``,
    or the test session's own redis-server (``"redis"``)."""
    if backend == "sqlite":
        return {"ABSCOPE_DB_PATH": str(tmp_path / "abscope.db")}
    return {"ABSCOPE_REDIS_URL": request.getfixturevalue("redis_url")}


def make_settings(db_path: Path, **overrides: Any) -> Settings:
    """Settings from the test alone: SQLite at ``db_path`` unless ``overrides`` say more."""
    return Settings(**{"db_path": db_path, "redis_url": None, **overrides})


def seed_body(**overrides: Any) -> dict[str, Any]:
    """The seed's create body: two models, a traffic percentage and the control's weight."""
    body: dict[str, Any] = {
        "name": "Ranking model v2",
        "description": "Does ranker v2 lift the click-through rate?",
        "control_model_id": "ranker-v1",
        "treatment_model_id": "ranker-v2",
        "traffic_percentage": 100,
        "control_weight": 0.5,
    }
    body.update(overrides)
    return body


def assert_status(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url.path}: expected {status}, got "
        f"{response.status_code}: {response.text[:1000]}"
    )


def create(client: HttpClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/experiments", json=seed_body(**overrides))
    assert_status(response, 201)
    experiment: dict[str, Any] = response.json()
    return experiment


def started(client: HttpClient, **overrides: Any) -> dict[str, Any]:
    experiment = create(client, **overrides)
    response = client.post(f"/experiments/{experiment['id']}/start")
    assert_status(response, 200)
    running: dict[str, Any] = response.json()
    assert running["status"] == "running"
    return running


def route(
    client: HttpClient, user_id: str, experiment_id: str | None = None, *, expose: bool = False
) -> dict[str, Any]:
    """POST /route. Decision only by default (``expose: false``), so tests of logging
    decide for themselves what is counted; pass ``expose=True`` to record the exposure."""
    body: dict[str, Any] = {"user_id": user_id, "expose": expose}
    if experiment_id is not None:
        body["experiment_id"] = experiment_id
    response = client.post("/route", json=body)
    assert_status(response, 200)
    answer: dict[str, Any] = response.json()
    return answer


def error_fields(response: httpx.Response) -> list[str]:
    """The dotted fields a 422 names, without the leading ``body``/``query``."""
    detail = response.json()["detail"]
    assert isinstance(detail, list), f"a 422 names its fields in a list: {detail!r}"
    return [".".join(str(part) for part in error["loc"][1:]) for error in detail]


def expect_422(response: httpx.Response, field: str) -> None:
    """422 whose first error names ``field`` (or a sub-field of it)."""
    assert_status(response, 422)
    fields = error_fields(response)
    assert fields and (fields[0] == field or fields[0].startswith(f"{field}.")), (
        f"expected the 422 to name {field!r}, it names {fields!r}: {response.text[:500]}"
    )
