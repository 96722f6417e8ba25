"""``AsyncClient`` never blocks the event loop, and does what ``Client`` does.

The loop's freedom is measured by a ticker task that counts its wake-ups (every 10 ms)
while the client waits on a server that takes a second per answer: a blocked loop counts
none. The thresholds are a tenth of what a free loop counts, so a busy machine passes
and a blocking call (which would count 0) fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from abscope.client import AsyncClient
from tests.client.conftest import MakeServer, create_running, samples
from tests.client.slow_app import SLOW_SECONDS
from tests.fixtures.event_loop import run_async
from tests.fixtures.uvicorn_server import UvicornServer

T = TypeVar("T")
MIN_TICKS = int(SLOW_SECONDS / 0.01 / 10)


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[UvicornServer]:
    with UvicornServer(
        "tests.client.slow_app:app", tmp_path / "slow.log", factory=False, health_path="/health"
    ) as server:
        yield server


async def _ticking(work: Awaitable[T]) -> tuple[T, int]:
    """``work``'s result, and how often a 10 ms ticker ran meanwhile."""
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        result = await work
    finally:
        done = True
        await task
    return result, ticks


def test_the_loop_runs_while_the_client_waits_on_a_slow_server(
    slow_server: UvicornServer,
) -> None:
    async def scenario() -> dict[str, Any]:
        client = AsyncClient(slow_server.url, timeout=10, flush_interval=0.05)
        _, start_ticks = await _ticking(client.start())  # the first config: one slow answer
        local = client.route_locally("alice", "hashed")
        remote, route_ticks = await _ticking(client.route("bob", "sticky"))
        client.track("hashed", "alice", "treatment", converted=True)
        _, flush_ticks = await _ticking(client.flush(timeout=10))
        _, close_ticks = await _ticking(client.aclose())
        return {
            "ticks": (start_ticks, route_ticks, flush_ticks),
            "close_ticks": close_ticks,
            "local": local,
            "remote": remote,
            "stats": client.stats,
        }

    outcome = run_async(scenario())
    assert all(t >= MIN_TICKS for t in outcome["ticks"]), outcome["ticks"]
    assert outcome["local"] is not None and outcome["local"].source == "local"
    assert (outcome["remote"].source, outcome["remote"].variant_name) == ("server", "treatment")
    stats = outcome["stats"]
    assert stats.sent == 2 and stats.counted == 2 and stats.lost == 0  # exposure + conversion


def test_a_timeout_is_a_fallback_and_the_loop_keeps_running(slow_server: UvicornServer) -> None:
    async def scenario() -> Any:
        async with AsyncClient(slow_server.url, timeout=0.2) as client:  # < the server's 1 s
            assert client.stats.config_errors == 1  # the first config timed out too
            return await _ticking(client.route("carol", "sticky", default="control"))

    decision, ticks = run_async(scenario())
    assert decision.fallback and decision.variant_name == "control"
    assert "timed out" in (decision.error or "")
    assert ticks >= 5


def test_async_exposures_are_counted_by_a_real_server(make_server: MakeServer) -> None:
    server = make_server()
    create_running(server.url, "async-exp")

    async def scenario() -> list[Any]:
        async with AsyncClient(server.url) as client:
            return [await client.route(f"user-{i}", "async-exp") for i in range(400)]

    decisions = run_async(scenario())
    counted = samples(server.url, "async-exp")
    assert sum(counted.values()) == 400
    served: dict[str, int] = {}
    for decision in decisions:
        served[decision.variant_name] = served.get(decision.variant_name, 0) + 1
    assert counted == served
