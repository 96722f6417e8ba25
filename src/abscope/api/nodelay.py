"""uvicorn's HTTP/1.1 protocol with TCP_NODELAY on every accepted connection.

With ``--workers`` above 1, uvicorn 0.54 serves from a socket whose accepted connections keep
Nagle's algorithm on (Kludex/uvicorn#3149): a response split over two writes then waits for
the client's delayed ACK, about 40 ms per request on a kept-alive connection. Setting
``TCP_NODELAY`` when a connection is made removes the wait. ``abscope serve`` uses this class.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["NoDelayH11Protocol"]


class NoDelayH11Protocol(H11Protocol):
    """:class:`H11Protocol` that turns Nagle's algorithm off for its connection."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[arg-type]
