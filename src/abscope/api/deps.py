"""Request dependencies as ``Annotated`` aliases: the service.

Keys are not dependencies: :mod:`abscope.api.auth` checks them, for every route, before
the request reaches FastAPI.

``async def`` because it does no I/O: a plain ``def`` dependency costs a thread-pool
hand-off per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from abscope.service import ExperimentService

__all__ = ["Service"]


async def _service(request: Request) -> ExperimentService:
    service: ExperimentService = request.app.state.service
    return service


Service = Annotated[ExperimentService, Depends(_service)]
