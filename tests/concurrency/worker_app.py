"""The abscope app as uvicorn serves it, plus one response header naming the worker process.

``uvicorn tests.concurrency.worker_app:create_app --factory`` builds exactly the app of
``abscope.api.app:create_app --factory`` (settings from the ``ABSCOPE_*`` environment) and
wraps it in a pure ASGI layer that adds ``x-worker-pid`` to every HTTP response, so a test can
tell which worker answered a request. Nothing else changes.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from abscope.api.app import create_app as create_abscope_app

__all__ = ["PID_HEADER", "create_app"]

PID_HEADER = "x-worker-pid"

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


def create_app() -> ASGIApp:
    """abscope's app; every HTTP response also names the worker's pid."""
    app = create_abscope_app()
    header = (PID_HEADER.encode(), str(os.getpid()).encode())

    async def with_pid(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await app(scope, receive, send_with_pid)

    return with_pid
