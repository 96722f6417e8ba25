"""Request dependencies as ``Annotated`` aliases: the service and the simulations' thread.

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

__all__ = ["Service", "Simulations"]


async def _service(request: Request) -> ExperimentService:
    service: ExperimentService = request.app.state.service
    return service


async def _simulations(request: Request) -> SimulationPool:
    simulations: SimulationPool = request.app.state.simulations
    return simulations


Service = Annotated[ExperimentService, Depends(_service)]
Simulations = Annotated[SimulationPool, Depends(_simulations)]
