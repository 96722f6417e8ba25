"""Request dependencies as ``Annotated`` aliases: the service and the two API keys.

Configuration routes take ``Service`` and ``AdminKey``; route, log and events take
``IngestService``, the service behind the ingest key check.

They are ``async def`` because they do no I/O: a plain ``def`` dependency costs a thread-pool
hand-off per request.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from abscope.config import Settings
from abscope.service import ExperimentService

__all__ = ["AdminKey", "IngestService", "Service"]


async def _service(request: Request) -> ExperimentService:
    service: ExperimentService = request.app.state.service
    return service


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


async def _ingest_service(
    request: Request, x_api_key: Annotated[str | None, Header()] = None
) -> ExperimentService:
    """The service, once the ingest key (or the admin key) is checked: one dependency for the
    hot ingest routes instead of two."""
    settings: Settings = request.app.state.settings
    if settings.ingest_api_key is not None:
        keys = [
            k.get_secret_value() for k in (settings.ingest_api_key, settings.admin_api_key) if k
        ]
        if not any(_matches(x_api_key, key) for key in keys):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "a valid ingest key is required in X-API-Key"
            )
    service: ExperimentService = request.app.state.service
    return service


Service = Annotated[ExperimentService, Depends(_service)]
AdminKey = Annotated[None, Depends(_require_admin)]
IngestService = Annotated[ExperimentService, Depends(_ingest_service)]
