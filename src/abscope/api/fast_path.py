"""``POST /route``, ``/log`` and ``/events`` answered below FastAPI's routing, when nothing
about them is unusual.

``/route`` is the call a model server makes on every request, ``/log`` the call that follows
each outcome and ``/events`` the batch of them, so their cost per call is the service's
throughput. FastAPI's request
handling (routing, the request object, dependency and body solving, the response classes)
costs more than routing the user or checking an event does. This ASGI middleware answers
those POSTs itself when the request is ordinary: a JSON body that the route's schema
accepts (the key was checked before, by :mod:`abscope.api.auth`). It runs the same function
as the FastAPI route in ``routes/traffic.py`` (:mod:`abscope.api.hot_paths`; the routes
stay there: they document the API and answer everything else), so the two answer alike,
byte for byte.

A body that fails validation is passed on to FastAPI with the body
replayed, which answers it as usual. abscope's own errors (an unknown experiment, a
conflict, the store down) are answered here with :func:`abscope.api.errors.error_response`,
the function FastAPI's handlers use: once a write was attempted, the request must not run
a second time.
"""

from __future__ import annotations

from pydantic import ValidationError

from abscope.api.asgi import ASGIApp, Message, Receive, Scope, Send
from abscope.api.errors import error_response
from abscope.api.group_commit import GroupCommit
from abscope.api.hot_paths import events_body, log_body, route_body
from abscope.api.metrics import Metrics
from abscope.errors import AbscopeError
from abscope.schemas import BatchRequest, LogRequest, RouteRequest
from abscope.service import Traffic
from abscope.storage.base import EventResult

__all__ = ["FastPath"]


_JSON = b"application/json"
PATHS = frozenset({"/route", "/log", "/events"})


class FastPath:
    """Answers ordinary ``POST /route``, ``/log`` and ``/events`` requests; passes the rest on."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        traffic: Traffic,
        exposures: GroupCommit[str | None],
        events: GroupCommit[EventResult],
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self._traffic = traffic
        self._serving = traffic.serving
        self._exposures = exposures
        self._events = events
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in PATHS:
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
        try:
            answer = await self._answer(scope["path"], headers, body)
        except AbscopeError as error:
            await error_response(error)(scope, receive, send)
            return
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

    async def _answer(self, path: str, headers: dict[bytes, bytes], body: bytes) -> bytes | None:
        """The answer, or ``None`` when FastAPI should answer the request instead."""
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type != _JSON:
            return None
        try:
            if path == "/route":
                route = RouteRequest.model_validate_json(body)
            elif path == "/log":
                log = LogRequest.model_validate_json(body)
            else:
                batch = BatchRequest.model_validate_json(body)
        except ValidationError:
            return None
        if path == "/route":
            return await route_body(self._serving, self._exposures, route)
        if path == "/log":
            return await log_body(self._traffic, self._events, log, self._metrics)
        return await events_body(self._traffic, batch, self._metrics)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` again, then the connection's own messages."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
