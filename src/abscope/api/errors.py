"""The one place abscope's errors become HTTP responses.

=========================  ======  ===========================================
error                      status  body
=========================  ======  ===========================================
NotFound                   404     ``{"detail": message}``
Conflict                   409     ``{"detail": message}``
InvalidInput               422     ``{"detail": [{"loc": [where, ...field],
                                   "msg", "type"}]}``
request validation         422     the same list, ``loc`` names the field
body over the size limit   413     ``{"detail": message}``
a method the path lacks    405     ``{"detail": message}``, ``Allow`` lists
                                   every method of the path
StorageUnavailable         503     ``{"detail": public message}`` and
                                   ``Retry-After``; nothing was applied
Busy (simulations)         503     ``{"detail": message}`` and ``Retry-After``
                                   (:data:`abscope.api.simulations.RETRY_AFTER_SECONDS`)
=========================  ======  ===========================================

Every 422 body is :class:`abscope.schemas.ValidationErrorBody`, every other error body
:class:`abscope.schemas.ErrorBody`; :func:`documented` gives a route's ``responses=``.

A 503 body names the action that failed, never the store's address or the driver's
message: those go to the ``abscope.api`` log. The FastAPI app's handlers and the fast path
(:mod:`abscope.api.fast_path`) both answer with :func:`error_response`.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from abscope.errors import (
    AbscopeError,
    Busy,
    Conflict,
    InvalidInput,
    NotFound,
    StorageUnavailable,
)
from abscope.schemas import ErrorBody, ValidationErrorBody

__all__ = ["RETRY_AFTER_SECONDS", "documented", "error_response", "map_errors"]

RETRY_AFTER_SECONDS: Final = 1
"""``Retry-After`` of a 503: the service probes the store again within a second."""

_log = logging.getLogger("abscope.api")


def error_response(error: AbscopeError) -> JSONResponse:
    """The response to one of abscope's errors (see the table above)."""
    if isinstance(error, InvalidInput):
        location = [error.location, *error.field.split(".")]
        issue = {"loc": location, "msg": error.detail, "type": error.kind}
        return JSONResponse({"detail": [issue]}, 422)
    if isinstance(error, StorageUnavailable):
        _log.warning("503: %s", error.message)
        return JSONResponse(
            {"detail": f"storage unavailable: {error.public}; retry later"},
            503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(error, Busy):
        return JSONResponse(
            {"detail": str(error)}, 503, headers={"Retry-After": str(error.retry_after)}
        )
    status = 404 if isinstance(error, NotFound) else 409 if isinstance(error, Conflict) else 500
    return JSONResponse({"detail": str(error)}, status)


def map_errors(app: FastAPI) -> None:
    """Install the handlers of abscope's errors and of request validation on ``app``."""

    async def abscope_error(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, AbscopeError)
        return error_response(error)

    async def invalid_request(_: Request, error: Exception) -> JSONResponse:
        # FastAPI's default echoes the offending input, which fails to serialise when it
        # holds NaN or infinity (a 500). The field, the message and the type are enough.
        assert isinstance(error, RequestValidationError)
        detail = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in error.errors()
        ]
        return JSONResponse({"detail": detail}, 422)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return JSONResponse({"detail": error.detail}, error.status_code, headers=headers)

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for error_type in (NotFound, Conflict, InvalidInput, StorageUnavailable, Busy):
        app.add_exception_handler(error_type, abscope_error)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on the request's path (Starlette's own
    ``Allow`` names only the first matching route's). Each method is probed through the
    routes' public ``matches``, as routing itself would match it."""
    routes = request.app.router.routes
    allowed = []
    for method in _METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in routes):
            allowed.append(method)
    return allowed


_METHODS: Final = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


_DESCRIPTIONS: Final = {
    400: "The body could not be read.",
    401: "No key, or a key that is not valid, in X-API-Key.",
    403: "The key is valid but its role may not call this route.",
    404: "The experiment (or variant) does not exist.",
    409: "The experiment's state forbids the request.",
    413: "The body is larger than the configured limit.",
    422: "A value breaks a rule; ``loc`` names it.",
    503: "The store could not be reached; nothing was applied. Retry after Retry-After.",
}
_RETRY_AFTER: Final = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "string", "example": str(RETRY_AFTER_SECONDS)},
    }
}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that can answer ``statuses``: each with its
    description and error body model (and ``Retry-After`` for 503)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        model = ValidationErrorBody if status == 422 else ErrorBody
        response: dict[str, Any] = {"model": model, "description": _DESCRIPTIONS[status]}
        if status == 503:
            response["headers"] = _RETRY_AFTER
        responses[status] = response
    return responses
