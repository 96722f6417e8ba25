"""`abscope serve` turns Nagle's algorithm off on every connection (uvicorn#3149).

The symptom (about 40 ms per kept-alive request with several workers) is a timing, which tests
do not assert; these check the mechanism instead, on a real TCP connection.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from abscope.api.nodelay import NoDelayH11Protocol
from abscope.api.workers import ServeOptions


async def _app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - not called
    raise AssertionError("no request is made")


class _Transport:
    """The parts of an asyncio transport that the protocol reads."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self.sock
        if name in ("sockname", "peername"):
            return self.sock.getsockname() if name == "sockname" else self.sock.getpeername()
        return default

    def is_closing(self) -> bool:
        return False


@pytest.fixture
def accepted() -> Iterator[socket.socket]:
    """The server side of a real TCP connection, with Nagle's algorithm on."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server_side, _ = listener.accept()
        server_side.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        try:
            yield server_side
        finally:
            server_side.close()
            client.close()


def test_the_protocol_sets_tcp_nodelay_on_its_connection(accepted: socket.socket) -> None:
    config = uvicorn.Config(_app, lifespan="off", log_level="warning")
    config.load()
    loop = asyncio.new_event_loop()  # its own: whether the thread has one depends on test order
    try:
        protocol = NoDelayH11Protocol(
            config=config, server_state=ServerState(), app_state={}, _loop=loop
        )
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        protocol.connection_made(_Transport(accepted))  # type: ignore[arg-type]
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        protocol.timeout_keep_alive_task and protocol.timeout_keep_alive_task.cancel()
    finally:
        loop.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_every_way_of_serving_uses_the_protocol(workers: int) -> None:
    # One worker (uvicorn.run), our workers and uvicorn's (the fallback) are all configured
    # from these options.
    options = ServeOptions(workers=workers).uvicorn_options()
    assert options["http"] is NoDelayH11Protocol and options["factory"] is True
