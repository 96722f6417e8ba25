"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from abscope.api.deps import Service

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/ready")
def ready(service: Service) -> dict[str, str]:
    """The store answers (503 otherwise)."""
    service.store.ping()
    return {"status": "ready"}
