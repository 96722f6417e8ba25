"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from abscope.api.deps import Service
from abscope.api.errors import documented
from abscope.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness", response_model=Health)
def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/ready", summary="Readiness", response_model=Health, responses=documented(503))
def ready(service: Service) -> dict[str, str]:
    """The store answers (503 otherwise)."""
    service.store.ping()
    return {"status": "ready"}
