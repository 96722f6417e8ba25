"""Routing and event ingestion (ingest key)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from abscope.api.deps import IngestKey, Service
from abscope.api.schemas import (
    BatchRequest,
    BatchResponse,
    LogRequest,
    LogResponse,
    RouteRequest,
    RouteResponse,
)

router = APIRouter(tags=["traffic"])


@router.post("/route")
async def route(body: RouteRequest, service: Service, _: IngestKey) -> RouteResponse:
    # Hash routing on a fresh snapshot is pure computation: answer it on the event loop.
    # Anything that may touch the store goes to the thread pool.
    answer = service.route_without_io(body.user_id, body.experiment_id)
    if answer is not None:
        return answer
    return await run_in_threadpool(service.route, body.user_id, body.experiment_id)


@router.post("/log")
def log(body: LogRequest, service: Service, _: IngestKey) -> LogResponse:
    return service.log(body)


@router.post("/events")
def events(body: BatchRequest, service: Service, _: IngestKey) -> BatchResponse:
    return service.ingest(body)
