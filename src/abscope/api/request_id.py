"""Each request's id: the client's ``X-Request-ID`` when it is sane, else a new one; set in
:data:`abscope.logs.request_id` while the request is served and echoed in the answer's
``X-Request-ID`` header.

A sane id is 1 to :data:`MAX_LENGTH` printable ASCII characters (space excluded at either
end, as a header's value cannot keep them); any other value is replaced, never echoed, so
a client cannot write what it likes into the service's logs. A new id is 32 hexadecimal
digits (128 random bits).
"""

from __future__ import annotations

import os
from typing import Final

from abscope.api.asgi import ASGIApp, Receive, Scope, Send, adding_headers
from abscope.logs import request_id

__all__ = ["HEADER", "MAX_LENGTH", "RequestId", "sane_request_id"]

HEADER: Final = b"x-request-id"
MAX_LENGTH: Final = 128


def sane_request_id(value: bytes) -> str | None:
    """``value`` as an id if it is one (see the module docstring), else ``None``."""
    if not 0 < len(value) <= MAX_LENGTH:
        return None
    if not all(0x21 <= byte <= 0x7E or byte == 0x20 for byte in value):
        return None
    if value[0] == 0x20 or value[-1] == 0x20:
        return None
    return value.decode("ascii")


class RequestId:
    """Sets :data:`abscope.logs.request_id` for each HTTP request and echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope["headers"]:
            if name == HEADER:
                given = sane_request_id(value)
                break
        current = given or os.urandom(16).hex()
        token = request_id.set(current)
        await self.app(scope, receive, adding_headers(send, ((HEADER, current.encode("ascii")),)))
        # Not reset when the app raised: uvicorn then logs the error in this context (the
        # request's own task, which ends there), so that its line carries the id too.
        request_id.reset(token)
