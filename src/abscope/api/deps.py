"""Request dependencies as ``Annotated`` aliases: the service, the two API keys and the
simulations' thread.

Configuration routes take ``Service`` and ``AdminKey``; route, log and events take
``IngestService``, the service behind the ingest key check.

They are ``async def`` because they do no I/O: a plain ``def`` dependency costs a thread-pool
hand-off per request.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from abscope.api.simulations import SimulationPool
from abscope.config import Settings
from abscope.service import ExperimentService

__all__ = [
    "AdminKey",
    "IngestService",
    "Service",
    "Simulations",
    "ingest_key_accepted",
    "ingest_service",
]


async def _service(request: Request) -> ExperimentService:
    service: ExperimentService = request.app.state.service
    return service


async def _simulations(request: Request) -> SimulationPool:
    simulations: SimulationPool = request.app.state.simulations
    return simulations


def _matches(given: str | None, expected: str) -> bool:
    # Constant-time comparison, so the key cannot be guessed byte by byte from timings.
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def _require_admin(
    request: Request, x_api_key: Annotated[str | None, Header()] = None
) -> None:
    settings: Settings = request.app.state.settings
    if settings.admin_api_key is None:
        return
    if not _matches(x_api_key, settings.admin_api_key.get_secret_value()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "a valid admin key is required in X-API-Key"
        )


def ingest_service(request: Request) -> ExperimentService:
    """The service, once the ingest key (or the admin key) in ``X-API-Key`` is checked.

    A plain function so that ``/route``, the hot path, can call it without FastAPI's
    dependency solving (about 40% of that request's cost); other routes use
    ``IngestService``, the same check as a dependency.
    """
    settings: Settings = request.app.state.settings
    if not ingest_key_accepted(settings, request.headers.get("x-api-key")):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "a valid ingest key is required in X-API-Key"
        )
    service: ExperimentService = request.app.state.service
    return service


def ingest_key_accepted(settings: Settings, given: str | None) -> bool:
    """Whether ``given`` (the ``X-API-Key`` header) may route and log: always when no
    ingest key is set, else the ingest or the admin key."""
    if settings.ingest_api_key is None:
        return True
    accepted = (settings.ingest_api_key, settings.admin_api_key)
    keys = [key.get_secret_value() for key in accepted if key is not None]
    return any(_matches(given, key) for key in keys)


async def _ingest_service(request: Request) -> ExperimentService:
    return ingest_service(request)


Service = Annotated[ExperimentService, Depends(_service)]
AdminKey = Annotated[None, Depends(_require_admin)]
IngestService = Annotated[ExperimentService, Depends(_ingest_service)]
Simulations = Annotated[SimulationPool, Depends(_simulations)]
