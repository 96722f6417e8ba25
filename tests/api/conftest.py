"""Clients of the HTTP API: in process (``TestClient``) and a real uvicorn process.

In-process clients run the app with its lifespan (the store is closed afterwards) and return
a 500 response instead of raising, so a test can assert that no request ever gets one.

Redis is always a server the tests started: ``redis_url`` from ``tests.fixtures.redis_servers``
(a plugin of the root conftest), or a ``RedisServer`` of a test's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from abscope.api.app import create_app, open_store
from abscope.service import ExperimentService
from tests.api.helpers import MakeClient, MakeServer, TestClient, make_settings
from tests.fixtures.environment import no_abscope_environment  # noqa: F401 (autouse)
from tests.fixtures.uvicorn_server import ABSCOPE_APP, UvicornServer


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[MakeClient]:
    """``make_client(**settings)``: a started in-process client on a fresh SQLite file.

    ``clock=`` (a callable returning an aware datetime) replaces the service's clock, for
    tests that log events at chosen times (events may not predate their experiment).
    """
    with ExitStack() as stack:
        count = 0

        def make(clock: Callable[[], datetime] | None = None, **overrides: Any) -> TestClient:
            nonlocal count
            count += 1
            settings = make_settings(tmp_path / f"abscope-{count}.db", **overrides)
            service = None
            if clock is not None:
                service = ExperimentService(open_store(settings), settings, clock=clock)
            app = create_app(settings, service=service)
            client = TestClient(app, raise_server_exceptions=False)
            return stack.enter_context(client)

        yield make


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    """An in-process client with the default settings (no keys, SQLite)."""
    return make_client()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[MakeServer]:
    """``make_server(workers=..., **env)``: a started uvicorn process, stopped afterwards."""
    with ExitStack() as stack:
        count = 0

        def make(*, workers: int = 1, **env: str) -> UvicornServer:
            nonlocal count
            count += 1
            server = UvicornServer(
                ABSCOPE_APP,
                tmp_path / f"uvicorn-{count}.log",
                env=env,
                workers=workers,
                health_path="/health",
            )
            return stack.enter_context(server)

        yield make
