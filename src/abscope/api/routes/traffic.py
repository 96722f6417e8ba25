"""Routing and event ingestion (ingest key)."""

from __future__ import annotations

from fastapi import APIRouter

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
def route(body: RouteRequest, service: Service, _: IngestKey) -> RouteResponse:
    return service.route(body.user_id, body.experiment_id)


@router.post("/log")
def log(body: LogRequest, service: Service, _: IngestKey) -> LogResponse:
    return service.log(body)


@router.post("/events")
def events(body: BatchRequest, service: Service, _: IngestKey) -> BatchResponse:
    return service.ingest(body)
