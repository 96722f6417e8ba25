"""Fixtures of the SDK tests: a real abscope server (``abscope serve``) on a SQLite file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

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
