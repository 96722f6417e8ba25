"""Count every HTTP request by its route's template, method and status, with its duration
(:class:`abscope.api.metrics.Metrics`): one ASGI middleware, outside every other, so that
the fast path's answers (:mod:`abscope.api.fast_path`), the keys' 401 and 403 and the body
limit's 413 are counted as the app's own are.

The template is found from the path alone (:class:`RouteTemplates`), so it is known even
for a request that never reaches the app's routing: a dict lookup for a path without
parameters, else one compiled pattern of the templated routes, else a mount's prefix,
else ``unmatched``. The raw path is never a label value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from time import perf_counter
from typing import Final

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Mount

from abscope.api.asgi import ASGIApp, Message, Receive, Scope, Send
from abscope.api.metrics import Metrics

__all__ = ["METHODS", "UNMATCHED", "RequestMetrics", "RouteTemplates"]

UNMATCHED: Final = "unmatched"
"""The ``route`` label of a path that no route or mount of the app matches."""

METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods that are their own label value; any other is ``other``."""

_PARAMETER = re.compile(r"\{([^}:]+)(?::([^}]+))?\}")


def _pattern(template: str) -> str:
    parts, end = [], 0
    for match in _PARAMETER.finditer(template):
        parts.append(re.escape(template[end : match.start()]))
        parts.append(".*" if match.group(2) == "path" else "[^/]+")
        end = match.end()
    parts.append(re.escape(template[end:]))
    return "".join(parts)


class RouteTemplates:
    """``path -> template`` for the routes and mounts of an app (its included routers'
    routes too, with their prefixes)."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._exact: dict[str, str] = {}
        templated: list[str] = []
        self._mounts: list[tuple[str, str]] = []
        for route in iter_route_contexts(list(routes)):
            path = route.path
            if not isinstance(path, str):
                continue
            if isinstance(route.original_route, Mount):
                self._mounts.append((path.rstrip("/") + "/", path.rstrip("/") + "/{path}"))
            elif "{" in path:
                if path not in templated:
                    templated.append(path)
            else:
                self._exact.setdefault(path, path)
        # Each alternative ends in an empty group of its own, whose name gives the template.
        self._templates = templated
        self._templated = re.compile(
            "|".join(f"{_pattern(t)}(?P<t{i}>)" for i, t in enumerate(templated)) or r"(?!)"
        )

    def template(self, path: str) -> str:
        """The template of the route that serves ``path``, or :data:`UNMATCHED`."""
        exact = self._exact.get(path)
        if exact is not None:
            return exact
        match = self._templated.fullmatch(path)
        if match is not None and match.lastgroup is not None:
            return self._templates[int(match.lastgroup[1:])]
        for prefix, template in self._mounts:
            if path.startswith(prefix):
                return template
        return UNMATCHED


class RequestMetrics:
    """Counts each HTTP request of ``app`` in ``metrics`` once its answer is sent (a 500
    when the app raised before answering). ``routes`` is read on the first request, once
    the app has every route."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self._metrics = metrics
        self._routes = routes
        self._templates: RouteTemplates | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            templates = self._templates
            if templates is None:
                templates = self._templates = RouteTemplates(self._routes)
            method = scope["method"]
            self._metrics.request(
                templates.template(scope["path"]),
                method if method in METHODS else "other",
                status,
                perf_counter() - started,
            )
