"""The FastAPI application factory: the store, the service, the routers and the middlewares.

Errors become HTTP statuses in one place, :mod:`abscope.api.errors`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from abscope import __version__, web
from abscope.api.asgi import ASGIApp, Message, Receive, Scope, Send
from abscope.api.auth import Auth, document
from abscope.api.errors import RETRY_AFTER_SECONDS, map_errors
from abscope.api.fast_path import FastPath
from abscope.api.group_commit import GroupCommit
from abscope.api.hot_paths import record_exposures
from abscope.api.metrics import Metrics, exposition_registry
from abscope.api.request_id import RequestId
from abscope.api.request_metrics import RequestMetrics
from abscope.api.routes import analysis, charts, experiments, health, sdk, traffic
from abscope.api.routes import metrics as metrics_route
from abscope.api.scrape import ScrapeCollector
from abscope.api.security_headers import SecurityHeaders
from abscope.api.simulations import SimulationPool
from abscope.config import KEY_SETTINGS, Settings, get_settings
from abscope.service import ExperimentService
from abscope.service.monitoring import Monitor, MonitorLoop
from abscope.storage.base import Store
from abscope.storage.instrumented import InstrumentedStore
from abscope.web import docs
from abscope.webhooks import WebhookSender

__all__ = ["RETRY_AFTER_SECONDS", "create_app", "open_store"]

_log = logging.getLogger("abscope.api")


def _webhook(settings: Settings) -> WebhookSender | None:
    """The guardrail monitor's webhook, when ``webhook_url`` is set."""
    if settings.webhook_url is None:
        return None
    secret = settings.webhook_secret
    if secret is None:
        _log.warning("ABSCOPE_WEBHOOK_SECRET is not set: the webhook's notices are unsigned")
    return WebhookSender(
        settings.webhook_url, None if secret is None else secret.get_secret_value()
    )


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


@contextmanager
def tuned_collector(threshold: int) -> Iterator[None]:
    """While the app runs: the objects made at start-up (modules, the app, the snapshot)
    frozen out of the collector's scans, and its first-generation threshold at
    ``threshold`` (0: the collector as it is). Undone at shutdown, so that a process that
    runs several apps (the tests) keeps its own collector."""
    if threshold == 0:
        yield
        return
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    service: ExperimentService | None = None,
) -> FastAPI:
    """Build the app. Tests pass ``Settings(...)`` (and may pass a store or a service).

    Invalid settings (a key under 16 characters among them) raise pydantic's
    ``ValidationError`` naming the setting, so a server built from this factory does not
    start.
    """
    config = settings or get_settings()
    if not config.has_keys:
        _log.warning(
            "no API key is set (%s): every route is open to anyone who can reach this service",
            ", ".join(KEY_SETTINGS),
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        webhook = _webhook(config)
        monitor = None
        if config.monitor:
            monitor = MonitorLoop(
                Monitor(
                    app.state.service.store, app.state.service.experiments, config, notifier=webhook
                ),
                config.monitor_interval_seconds,
            )
            monitor.start()
        app.state.monitor = monitor
        try:
            with tuned_collector(config.gc_threshold):
                yield
        finally:
            if monitor is not None:  # the look in progress ends, and the lease is given up
                await monitor.stop()
            if webhook is not None:  # the notices queued get a few seconds more
                await asyncio.to_thread(webhook.close)
        app.state.simulations.close()
        await app.state.service.store.aclose()
        app.state.service.store.close()

    # /docs is served by abscope.web.docs from an installed package, not from a CDN; ReDoc
    # is left out (it needs inline styles, which the Content-Security-Policy forbids).
    app = FastAPI(
        title="abscope", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.settings = config
    app.state.simulations = SimulationPool()
    metrics = Metrics() if config.metrics else None
    app.state.metrics = metrics
    if service is None:
        store = store or open_store(config)
        if metrics is not None:  # a service given is measured as it is
            store = InstrumentedStore(store, metrics)
        service = ExperimentService(store, config, rng=np.random.default_rng())
    app.state.service = service
    serving = service.serving
    app.state.exposures = GroupCommit(lambda events: record_exposures(serving, events, metrics))
    app.state.events = GroupCommit(service.store.record_events_async)
    # Traffic first: route matching walks the routers in order, and /route is the hot path.
    routers = [
        traffic.router,
        experiments.router,
        analysis.router,
        charts.router,
        sdk.router,
        health.router,
    ]
    if metrics is not None:
        scrape = ScrapeCollector(serving, config.metrics_max_experiments)
        app.state.metrics_registry = exposition_registry(metrics, scrape)
        routers.append(metrics_route.router)
    for router in routers:
        app.include_router(router)
    app.include_router(web.router)
    app.include_router(docs.router)
    app.mount("/static", web.static_files(), name="static")
    app.mount(docs.ASSETS, docs.assets(), name="docs-assets")
    map_errors(app)
    schema = app.openapi

    def openapi() -> dict[str, Any]:  # the keys' scheme and each operation's role, once
        if app.openapi_schema is None:
            app.openapi_schema = document(schema())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # Innermost of the middlewares: the keys, CORS and the body limit apply to it as to
    # every route.
    app.add_middleware(
        FastPath,
        traffic=service.traffic,
        exposures=app.state.exposures,
        events=app.state.events,
        metrics=metrics,
    )
    # Outside the fast path and FastAPI, so the key is checked before any body is read;
    # inside CORS, so that a preflight needs no key and a 401 carries the CORS headers.
    app.add_middleware(Auth, settings=config)
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Content-Type", "X-API-Key", "Authorization", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    # Every answer carries the headers, the body limit's 413 included.
    app.add_middleware(SecurityHeaders)
    # The request's id for every line logged while it is served, and in its answer.
    app.add_middleware(RequestId)
    if metrics is not None:  # outermost: every request is counted, with all of its time
        app.add_middleware(RequestMetrics, metrics=metrics, routes=app.routes)
    return app
