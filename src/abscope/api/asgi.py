"""The ASGI types that abscope's own middlewares are written against, and the one helper
they share: adding headers to an answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send", "adding_headers"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def adding_headers(send: Send, headers: Sequence[tuple[bytes, bytes]]) -> Send:
    """``send``, with ``headers`` added to the start of the answer.

    The start's header list is replaced by a new one, never extended: that list may be a
    response object's own (Starlette sends ``response.raw_headers``), kept and sent again.
    """

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *headers]
        await send(message)

    return send_with_headers
