"""Fixtures of the SDK tests: a real abscope server (``abscope serve``) on a SQLite file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.fixtures.environment import no_abscope_environment  # noqa: F401 (autouse)
from tests.fixtures.uvicorn_server import AbscopeServer

MakeServer = Callable[..., AbscopeServer]


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[MakeServer]:
    """``make_server(**env)``: a started ``abscope serve`` on ``tmp_path/abscope.db`` (unless
    ``env`` says otherwise), stopped afterwards."""
    with ExitStack() as stack:
        count = 0

        def make(*, workers: int = 1, **env: str) -> AbscopeServer:
            nonlocal count
            count += 1
            environment = {"ABSCOPE_DB_PATH": str(tmp_path / "abscope.db"), **env}
            server = AbscopeServer(
                tmp_path / f"server-{count}.log",
                env=environment,
                workers=workers,
                health_path="/health",
            )
            return stack.enter_context(server)

        yield make


@pytest.fixture
def server(make_server: MakeServer) -> AbscopeServer:
    return make_server()


def create_running(url: str, experiment_id: str, **body: object) -> dict[str, object]:
    """Create and start a two-model experiment through the API."""
    import httpx

    spec = {
        "id": experiment_id,
        "name": experiment_id,
        "control_model_id": "model-v1",
        "treatment_model_id": "model-v2",
        **body,
    }
    with httpx.Client(base_url=url, timeout=30) as http:
        created = http.post("/experiments", json=spec)
        assert created.status_code == 201, created.text
        started = http.post(f"/experiments/{experiment_id}/start")
        assert started.status_code == 200, started.text
        answer: dict[str, object] = started.json()
        return answer


def samples(url: str, experiment_id: str) -> dict[str, int]:
    """Users counted per variant, from the results endpoint."""
    import httpx

    with httpx.Client(base_url=url, timeout=30) as http:
        response = http.get(f"/experiments/{experiment_id}/results")
        assert response.status_code == 200, response.text
        return {v["name"]: v["n"] for v in response.json()["variants"]}
