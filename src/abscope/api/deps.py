"""Request dependencies as ``Annotated`` aliases: the service, the simulations' thread and
who asked (the role of the request's API key, for the audit trail).

Keys are not dependencies: :mod:`abscope.api.auth` checks them, for every route, before
the request reaches FastAPI.

``async def`` because they do no I/O: a plain ``def`` dependency costs a thread-pool
hand-off per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from abscope.api.simulations import SimulationPool
from abscope.service import ExperimentService

__all__ = ["Actor", "Service", "Simulations"]


async def _service(request: Request) -> ExperimentService:
    service: ExperimentService = request.app.state.service
    return service


async def _simulations(request: Request) -> SimulationPool:
    simulations: SimulationPool = request.app.state.simulations
    return simulations


async def _actor(request: Request) -> str | None:
    """The role of the key that :mod:`abscope.api.auth` accepted; ``None`` without keys."""
    role: str | None = getattr(request.state, "role", None)
    return role


Actor = Annotated[str | None, Depends(_actor)]
Service = Annotated[ExperimentService, Depends(_service)]
Simulations = Annotated[SimulationPool, Depends(_simulations)]
