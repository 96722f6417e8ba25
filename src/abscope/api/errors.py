"""The one place abscope's errors become HTTP responses.

=========================  ======  ===========================================
error                      status  body
=========================  ======  ===========================================
NotFound                   404     ``{"detail": message}``
Conflict                   409     ``{"detail": message}``
InvalidInput               422     ``{"detail": [{"loc": [...field], "msg"}]}``
request validation         422     FastAPI's ``detail`` list, ``loc`` names the field
body over the size limit   413     ``{"detail": message}``
StorageUnavailable         503     ``{"detail": public message}`` and
                                   ``Retry-After``; nothing was applied
Busy (simulations)         503     ``{"detail": message}`` and ``Retry-After``
                                   (:data:`abscope.api.simulations.RETRY_AFTER_SECONDS`)
=========================  ======  ===========================================

A 503 body names the action that failed, never the store's address or the driver's
message: those go to the ``abscope.api`` log. The FastAPI app's handlers and the fast path
(:mod:`abscope.api.fast_path`) both answer with :func:`error_response`.
"""

from __future__ import annotations

import logging
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from abscope.errors import (
    AbscopeError,
    Busy,
    Conflict,
    InvalidInput,
    NotFound,
    StorageUnavailable,
)

__all__ = ["RETRY_AFTER_SECONDS", "error_response", "map_errors"]

RETRY_AFTER_SECONDS: Final = 1
"""``Retry-After`` of a 503: the service probes the store again within a second."""

_log = logging.getLogger("abscope.api")


def error_response(error: AbscopeError) -> JSONResponse:
    """The response to one of abscope's errors (see the table above)."""
    if isinstance(error, InvalidInput):
        location = ["body", *error.field.split(".")]
        return JSONResponse({"detail": [{"loc": location, "msg": error.detail}]}, 422)
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

    app.add_exception_handler(RequestValidationError, invalid_request)
    for error_type in (NotFound, Conflict, InvalidInput, StorageUnavailable, Busy):
        app.add_exception_handler(error_type, abscope_error)
