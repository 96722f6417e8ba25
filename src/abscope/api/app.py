"""The FastAPI application factory, and the one place errors become HTTP statuses.

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
=========================  ======  ===========================================

A 503 body names the action that failed, never the store's address or the driver's
message: those go to the ``abscope.api`` log.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Final

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from abscope import __version__, web
from abscope.api.exposures import ExposureCommitter
from abscope.api.fast_route import RouteFastPath
from abscope.api.routes import analysis, charts, experiments, health, traffic
from abscope.config import Settings, get_settings
from abscope.errors import Conflict, InvalidInput, NotFound, StorageUnavailable
from abscope.service import ExperimentService
from abscope.storage.base import Store

__all__ = ["RETRY_AFTER_SECONDS", "create_app", "open_store"]

RETRY_AFTER_SECONDS: Final = 1
"""``Retry-After`` of a 503: the service probes the store again within a second."""

_log = logging.getLogger("abscope.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def open_store(settings: Settings) -> Store:
    """Redis when ``redis_url`` is set, else the embedded SQLite file at ``db_path``."""
    window = timedelta(seconds=settings.event_id_window_seconds)
    if settings.redis_url:
        from abscope.storage.redis import RedisStore

        return RedisStore.from_url(
            settings.redis_url, cluster=settings.redis_cluster, event_id_window=window
        )
    from abscope.storage.sqlite import SQLiteStore

    return SQLiteStore(settings.db_path, event_id_window=window)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before the app reads them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # An HTTPException passes through FastAPI's body parsing as itself (any
                    # other error there becomes a 400), and the app answers it with 413.
                    raise HTTPException(413, f"request body is larger than {self.limit} bytes")
            return message

        await self.app(scope, limited, send)


async def _too_large(limit: int, send: Send) -> None:
    response = JSONResponse({"detail": f"request body is larger than {limit} bytes"}, 413)
    await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    service: ExperimentService | None = None,
) -> FastAPI:
    """Build the app. Tests pass ``Settings(...)`` (and may pass a store or a service)."""
    config = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.service.store.aclose()
        app.state.service.store.close()

    app = FastAPI(title="abscope", version=__version__, lifespan=lifespan)
    app.state.settings = config
    app.state.service = service or ExperimentService(
        store or open_store(config), config, rng=np.random.default_rng()
    )
    app.state.exposures = ExposureCommitter(app.state.service.serving)
    # Traffic first: route matching walks the routers in order, and /route is the hot path.
    for router in (
        traffic.router,
        experiments.router,
        analysis.router,
        charts.router,
        health.router,
    ):
        app.include_router(router)
    app.include_router(web.router)
    app.mount("/static", web.static_files(), name="static")
    _map_errors(app)
    # Innermost of the middlewares: CORS and the body limit apply to it as to every route.
    app.add_middleware(
        RouteFastPath,
        settings=config,
        serving=app.state.service.serving,
        exposures=app.state.exposures,
    )
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Content-Type", "X-API-Key"],
        )
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    return app


def _map_errors(app: FastAPI) -> None:
    async def not_found(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, 404)

    async def conflict(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, 409)

    async def invalid(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, InvalidInput)
        location = ["body", *error.field.split(".")]
        return JSONResponse({"detail": [{"loc": location, "msg": error.detail}]}, 422)

    async def unavailable(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StorageUnavailable)
        _log.warning("503: %s", error.message)
        return JSONResponse(
            {"detail": f"storage unavailable: {error.public}; retry later"},
            503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

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
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(Conflict, conflict)
    app.add_exception_handler(InvalidInput, invalid)
    app.add_exception_handler(StorageUnavailable, unavailable)
