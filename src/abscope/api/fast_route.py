"""``POST /route`` answered below FastAPI's routing, when nothing about it is unusual.

``/route`` is the call a model server makes on every request, so its cost per call is the
service's throughput. FastAPI's request handling (routing, the request object, dependency
and body solving, the response classes) costs more than routing the user does. This ASGI
middleware answers a ``/route`` POST itself when the request is ordinary: a JSON body that
``RouteRequest`` accepts, an accepted key, a known experiment. It runs the same steps as
the FastAPI route in ``routes/traffic.py`` (the route stays there: it documents the API and
answers everything else), so the two answer alike, byte for byte. Anything else (a body
that fails validation, a missing key, an unknown experiment, a store error) is passed on to
FastAPI with the body replayed, which answers it as usual: errors are mapped in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from pydantic import ValidationError

from abscope.api.deps import ingest_key_accepted
from abscope.api.exposures import ExposureCommitter, route_body
from abscope.config import Settings
from abscope.errors import AbscopeError
from abscope.schemas import RouteRequest
from abscope.serving import Serving

__all__ = ["RouteFastPath"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON = b"application/json"


class RouteFastPath:
    """Answers ordinary ``POST /route`` requests; passes everything else to ``app``."""

    def __init__(
        self, app: ASGIApp, *, settings: Settings, serving: Serving, exposures: ExposureCommitter
    ) -> None:
        self.app = app
        self._settings = settings
        self._serving = serving
        self._exposures = exposures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/route":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        chunks = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        answer = await self._answer(headers, body)
        if answer is None:
            replayed = _replay([{"type": "http.request", "body": body}], receive)
            await self.app(scope, replayed, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(answer)).encode()),
                    (b"content-type", _JSON),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    async def _answer(self, headers: dict[bytes, bytes], body: bytes) -> bytes | None:
        """The answer, or ``None`` when FastAPI should answer the request instead."""
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type != _JSON:
            return None
        key = headers.get(b"x-api-key")
        if not ingest_key_accepted(self._settings, None if key is None else key.decode("latin-1")):
            return None
        try:
            request = RouteRequest.model_validate_json(body)
        except ValidationError:
            return None
        try:
            return await route_body(self._serving, self._exposures, request)
        except AbscopeError:  # not found, or no snapshot and no store: FastAPI says so
            return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` again, then the connection's own messages."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
