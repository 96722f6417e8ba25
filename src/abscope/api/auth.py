"""Which API key opens which route: one table, checked by one ASGI middleware before the
fast path, FastAPI or the body parser sees the request.

Three roles, each with its key in ``X-API-Key``, or in ``Authorization: Bearer <key>``
(the same key; Prometheus' ``authorization`` scrape option sends that), or as the password
of ``Authorization: Basic`` (any user name: Flagger's webhooks send no headers of their own,
but Go's HTTP client sends a URL's user info, ``http://flagger:<key>@host/...``, as Basic);
when a request has ``X-API-Key`` and ``Authorization``, ``X-API-Key`` is the one checked:

======  ========================  ==========================================================
role    key                       routes
======  ========================  ==========================================================
admin   ``ABSCOPE_ADMIN_API_KEY``   every route
ingest  ``ABSCOPE_INGEST_API_KEY``  ``POST /route``, ``/log``, ``/events``,
                                  ``/experiments/{id}/covariates``; ``GET /sdk/config``
read    ``ABSCOPE_READ_API_KEY``    every ``GET`` of experiments, results, gate, timeseries,
                                  explain, charts, ``/summary`` (the list's data) and
                                  ``/metrics``; ``POST /calculate``, ``/charts/plan`` and
                                  ``/charts/simulate`` (the planner's and simulator's
                                  data), ``POST /experiments/{id}/gate`` (the gate as a
                                  Flagger webhook)
======  ========================  ==========================================================

With no key set, every route is open: the app logs a warning when it is built, and
``abscope serve`` refuses a non-loopback address unless ``--allow-no-keys`` is given. With
any key set:

* open to anyone: :data:`OPEN_PATHS` (health, ready, the pages' HTML shells, the API docs
  and their schema) and whatever starts with :data:`OPEN_PREFIXES` (static assets, Plotly.js,
  the experiment pages ``/view/{id}`` and the edit forms ``/edit/{id}``);
* a route of :data:`ROUTES` needs a key of its role or the admin key: without a key, or
  with one that is none of the three, 401; with another role's key, 403. The body names the
  role needed and never the key;
* anything else (a path the app does not have, a method a path does not take) needs the
  admin key: 401 or 403 as above, and with the admin key the app's own 404 or 405. So a
  route added without a row in :data:`ROUTES` is admin-only, never open, and no one without
  the admin key learns which paths exist. (``tests/api/test_auth_matrix.py`` fails when an
  operation has no row.)

The check is a dict lookup of ``(method, path)`` (``HEAD`` as ``GET``), or for templated
paths one compiled pattern per method, then a constant-time comparison of the header with
each configured key.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

from abscope import web
from abscope.api.asgi import ASGIApp, Receive, Scope, Send
from abscope.config import Settings

__all__ = [
    "OPEN_PATHS",
    "OPEN_PREFIXES",
    "ROUTES",
    "BASIC_SCHEME",
    "BEARER_SCHEME",
    "SCHEME",
    "Auth",
    "Role",
    "RouteTable",
    "document",
    "is_open",
]


Role = Literal["admin", "ingest", "read"]

ROUTES: Final[Mapping[tuple[str, str], Role]] = {
    ("POST", "/route"): "ingest",
    ("POST", "/log"): "ingest",
    ("POST", "/events"): "ingest",
    ("POST", "/experiments/{experiment_id}/covariates"): "ingest",
    ("GET", "/sdk/config"): "ingest",
    ("GET", "/experiments"): "read",
    ("GET", "/summary"): "read",
    ("GET", "/experiments/{experiment_id}"): "read",
    ("GET", "/experiments/{experiment_id}/results"): "read",
    ("GET", "/experiments/{experiment_id}/gate"): "read",
    ("POST", "/experiments/{experiment_id}/gate"): "read",
    ("GET", "/experiments/{experiment_id}/timeseries"): "read",
    ("GET", "/experiments/{experiment_id}/explain"): "read",
    ("GET", "/experiments/{experiment_id}/charts"): "read",
    ("POST", "/calculate"): "read",
    ("POST", "/charts/plan"): "read",
    ("POST", "/charts/simulate"): "read",
    ("GET", "/metrics"): "read",
    ("POST", "/experiments"): "admin",
    ("PATCH", "/experiments/{experiment_id}"): "admin",
    ("POST", "/experiments/{experiment_id}/metrics"): "admin",
    ("DELETE", "/experiments/{experiment_id}"): "admin",
    ("POST", "/experiments/{experiment_id}/start"): "admin",
    ("POST", "/experiments/{experiment_id}/pause"): "admin",
    ("POST", "/experiments/{experiment_id}/resume"): "admin",
    ("POST", "/experiments/{experiment_id}/complete"): "admin",
    ("POST", "/experiments/{experiment_id}/stop"): "admin",
}
"""The role each operation needs, by method and path template (as the route declares it)."""

OPEN_PATHS: Final = frozenset({"/health", "/ready", "/docs", "/openapi.json", *web.PAGES})
"""Paths that need no key: probes, page shells and the API's documentation (no data)."""

OPEN_PREFIXES: Final = ("/static/", "/assets/", "/view/", "/edit/", "/docs/assets/")
"""Path prefixes that need no key: assets (the docs' too) and the shells of the experiment
page and of the draft's edit form."""

SCHEME: Final = "ApiKey"
"""The name of the key's security scheme in the OpenAPI document."""

BEARER_SCHEME: Final = "Bearer"
"""The name of the same keys' ``Authorization: Bearer`` scheme in the OpenAPI document."""

BASIC_SCHEME: Final = "Basic"
"""The name of the same keys' ``Authorization: Basic`` scheme (the key as the password)."""

_PARAMETER = re.compile(r"\{[^}/]+\}")
_BEARER = b"bearer "
_BASIC = b"basic "


def is_open(path: str) -> bool:
    """Whether ``path`` is served to anyone, keys or not."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


class RouteTable:
    """``(method, path) -> role`` of :data:`ROUTES`: exact paths in a dict, templated paths
    by one compiled pattern per method (a parameter is one non-empty segment, as in the
    app's routing); ``None`` for an open path, ``"admin"`` for anything not in the table."""

    def __init__(self, routes: Mapping[tuple[str, str], Role]) -> None:
        self._exact: dict[tuple[str, str], Role] = {}
        templated: dict[str, list[tuple[str, Role]]] = {}
        for (method, path), role in routes.items():
            if "{" in path:
                templated.setdefault(method, []).append((path, role))
            else:
                self._exact[(method, path)] = role
        self._patterns: dict[str, tuple[re.Pattern[str], list[Role]]] = {}
        for method, entries in templated.items():
            # Each alternative ends in an empty group of its own: the match's lastgroup
            # names the template that matched.
            alternatives = [
                _PARAMETER.sub("[^/]+", re.escape(path).replace(r"\{", "{").replace(r"\}", "}"))
                + f"(?P<t{index}>)"
                for index, (path, _) in enumerate(entries)
            ]
            pattern = re.compile("|".join(alternatives))
            self._patterns[method] = (pattern, [role for _, role in entries])

    def role(self, method: str, path: str) -> Role | None:
        """The role ``method path`` needs, or ``None`` when it is open."""
        if method == "HEAD":
            method = "GET"
        role = self._exact.get((method, path))
        if role is not None:
            return role
        if is_open(path):
            return None
        templated = self._patterns.get(method)
        if templated is not None:
            match = templated[0].fullmatch(path)
            if match is not None and match.lastgroup is not None:
                return templated[1][int(match.lastgroup[1:])]
        return "admin"


_DETAIL_BODY: Final = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"detail": {"type": "string"}},
            "required": ["detail"],
        }
    }
}


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (an OpenAPI document, changed in place) with the key's security scheme, and
    for each operation of :data:`ROUTES` its requirement, its role (``x-abscope-role``) and
    its 401 and 403 answers. The requirement holds when the service has any key set."""
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[SCHEME] = {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The key of a role that the operation allows (x-abscope-role) or the"
        " admin key; needed when the service has any key set.",
    }
    schemes[BEARER_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "The same keys as the ApiKey scheme, as Authorization: Bearer <key>.",
    }
    schemes[BASIC_SCHEME] = {
        "type": "http",
        "scheme": "basic",
        "description": "The same keys as the ApiKey scheme, as the password of Basic"
        " authentication (any user name), e.g. from a URL's user info.",
    }
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            role = ROUTES.get((method.upper(), path))
            if role is None or not isinstance(operation, dict):
                continue
            operation["security"] = [{SCHEME: []}, {BEARER_SCHEME: []}, {BASIC_SCHEME: []}]
            operation["x-abscope-role"] = role
            responses = operation.setdefault("responses", {})
            responses.setdefault(
                "401", {"description": _unauthorized(role), "content": _DETAIL_BODY}
            )
            responses.setdefault(
                "403",
                {"description": f"the key has a role other than {role}", "content": _DETAIL_BODY},
            )
    return schema


def _keys(settings: Settings) -> tuple[tuple[bytes, Role], ...]:
    configured: Iterable[tuple[Any, Role]] = (
        (settings.read_api_key, "read"),
        (settings.ingest_api_key, "ingest"),
        (settings.admin_api_key, "admin"),
    )
    return tuple(
        (key.get_secret_value().encode("latin-1"), role)
        for key, role in configured
        if key is not None
    )


def _answer(status: int, detail: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    if status == 401:
        headers.append((b"www-authenticate", b'ApiKey header="X-API-Key"'))
    return headers, body


def _basic_password(credentials: bytes) -> bytes | None:
    """The password of Basic credentials (``base64(user:password)``); ``None`` when they
    are not valid base64 or hold no colon."""
    try:
        decoded = base64.b64decode(credentials, validate=True)
    except (binascii.Error, ValueError):
        return None
    _, colon, password = decoded.partition(b":")
    return password if colon else None


def _unauthorized(role: Role) -> str:
    alternative = "" if role == "admin" else " (or the admin key)"
    return f"a valid {role} key is required in X-API-Key{alternative}"


def _forbidden(needed: Role, held: Role) -> str:
    alternative = "" if needed == "admin" else " or the admin key"
    return (
        f"this route needs the {needed} role; the key given has the {held} role: send the"
        f" {needed} key{alternative} in X-API-Key"
    )


_ROLES: Final[tuple[Role, ...]] = ("admin", "ingest", "read")


class Auth:
    """Answers 401 or 403 when the request's ``X-API-Key`` lacks the route's role (see the
    module's table); passes every other request on, its body unread."""

    def __init__(self, app: ASGIApp, *, settings: Settings, routes: RouteTable | None = None):
        self.app = app
        self._keys = _keys(settings)
        self._table = routes or RouteTable(ROUTES)
        self._unauthorized = {role: _answer(401, _unauthorized(role)) for role in _ROLES}
        self._forbidden = {
            (needed, held): _answer(403, _forbidden(needed, held))
            for needed in _ROLES
            for held in _ROLES
        }

    def _role_of(self, given: bytes | None) -> Role | None:
        """The role of the key ``given``, comparing it with every key in constant time."""
        if given is None:
            return None
        held: Role | None = None
        for key, role in self._keys:
            if hmac.compare_digest(given, key):
                held = role
        return held

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._keys:
            await self.app(scope, receive, send)
            return
        needed = self._table.role(scope["method"], scope["path"])
        if needed is None:
            await self.app(scope, receive, send)
            return
        given = bearer = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                given = value
                break
            if name == b"authorization":
                scheme = value[:7].lower()
                if scheme == _BEARER:
                    bearer = value[7:].strip(b" ")
                elif scheme[:6] == _BASIC:
                    bearer = _basic_password(value[6:].strip(b" "))
        held = self._role_of(bearer if given is None else given)
        if held is None:
            status, (headers, body) = 401, self._unauthorized[needed]
        elif held == needed or held == "admin":
            # Who asked, for the audit trail: the role of the key (Request.state.role).
            scope.setdefault("state", {})["role"] = held
            await self.app(scope, receive, send)
            return
        else:
            status, (headers, body) = 403, self._forbidden[(needed, held)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
