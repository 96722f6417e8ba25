"""Routing and event ingestion (ingest key)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from abscope.api.deps import IngestService, ingest_service
from abscope.api.exposures import route_body
from abscope.schemas import (
    BatchRequest,
    BatchResponse,
    LogRequest,
    LogResponse,
    RouteRequest,
    RouteResponse,
)

router = APIRouter(tags=["traffic"])


@router.post("/route", response_model=RouteResponse)
async def route(body: RouteRequest, request: Request) -> Response:
    """Which variant (and model) to serve this user, recording the user's exposure.

    Ordinary requests are answered by ``abscope.api.fast_route`` before they reach here;
    both run :func:`abscope.api.exposures.route_body`.
    """
    serving = ingest_service(request).serving  # not a dependency: see ingest_service
    answer = await route_body(serving, request.app.state.exposures, body)
    return Response(answer, media_type="application/json")


@router.post("/log")
async def log(body: LogRequest, service: IngestService) -> LogResponse:
    """Record a conversion, a value or an exposure for a user, idempotent by ``event_id``.

    Checked on the event loop when that needs no I/O (else in the thread pool), written on
    the store's asyncio client, so a request holds no thread while the store answers.
    """
    events = service.log_events_without_io(body)
    if events is None:
        events = await run_in_threadpool(service.log_events, body)
    results = await service.store.record_events_async(events)
    if any(r.outcome == "variant_mismatch" for r in results):
        return await run_in_threadpool(service.log_outcome, body, events, results)
    return service.log_outcome(body, events, results)


@router.post("/events")
def events(body: BatchRequest, service: IngestService) -> BatchResponse:
    return service.ingest(body)
