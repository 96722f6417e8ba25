"""Routing and event ingestion (ingest key)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from abscope.api.deps import IngestService, ingest_service
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
    service = ingest_service(request)  # not a dependency: see ingest_service
    # Hash routing on a fresh snapshot is pure computation: answer it on the event loop.
    # Anything that may touch the store goes to the thread pool. The answer is already a
    # validated RouteResponse, so it is written out directly (response_model documents it).
    answer = service.route_without_io(body.user_id, body.experiment_id)
    if answer is None:
        answer = await run_in_threadpool(service.route, body.user_id, body.experiment_id)
    return Response(answer.model_dump_json(), media_type="application/json")


@router.post("/log")
def log(body: LogRequest, service: IngestService) -> LogResponse:
    return service.log(body)


@router.post("/events")
def events(body: BatchRequest, service: IngestService) -> BatchResponse:
    return service.ingest(body)
