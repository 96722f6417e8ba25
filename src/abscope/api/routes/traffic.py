"""Routing and event ingestion (ingest key)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from abscope.api.deps import IngestService, ingest_service
from abscope.api.exposures import ExposureCommitter
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

    Hash routing on a usable snapshot is pure computation, answered on the event loop;
    anything that may read the store goes to the thread pool. The exposures are committed
    with those of concurrent requests (see ``abscope.api.exposures``) before the answer.
    """
    serving = ingest_service(request).serving  # not a dependency: see ingest_service
    plan = serving.plan_without_io(body.user_id, body.experiment_id, body.expose)
    if plan is None:
        plan = await run_in_threadpool(serving.plan, body.user_id, body.experiment_id, body.expose)
    recorded: list[str | None] | None = []
    if plan.exposures:
        committer: ExposureCommitter = request.app.state.exposures
        recorded = await committer.record(plan.exposures)
    return Response(serving.answer(plan, recorded), media_type="application/json")


@router.post("/log")
def log(body: LogRequest, service: IngestService) -> LogResponse:
    return service.log(body)


@router.post("/events")
def events(body: BatchRequest, service: IngestService) -> BatchResponse:
    return service.ingest(body)
