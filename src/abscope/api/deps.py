"""Request dependencies as ``Annotated`` aliases: the service and the two API keys.

They are ``async def`` because they do no I/O: a plain ``def`` dependency costs a thread-pool
hand-off per request.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from abscope.config import Settings
from abscope.service import ExperimentService

__all__ = ["AdminKey", "IngestKey", "Service"]


async def _service(request: Request) -> ExperimentService:
    service: ExperimentService = request.app.state.service
    return service


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _matches(given: str | None, expected: str) -> bool:
    # Constant-time comparison, so the key cannot be guessed byte by byte from timings.
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def _require_admin(
    settings: Annotated[Settings, Depends(_settings)],
    x_api_key: Annotated[str | None, Header()] = None,
) -> None:
    if settings.admin_api_key is None:
        return
    if not _matches(x_api_key, settings.admin_api_key.get_secret_value()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "a valid admin key is required in X-API-Key"
        )


async def _require_ingest(
    settings: Annotated[Settings, Depends(_settings)],
    x_api_key: Annotated[str | None, Header()] = None,
) -> None:
    keys = [k.get_secret_value() for k in (settings.ingest_api_key, settings.admin_api_key) if k]
    if settings.ingest_api_key is None:
        return
    if not any(_matches(x_api_key, key) for key in keys):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "a valid ingest key is required in X-API-Key"
        )


Service = Annotated[ExperimentService, Depends(_service)]
AdminKey = Annotated[None, Depends(_require_admin)]
IngestKey = Annotated[None, Depends(_require_ingest)]
