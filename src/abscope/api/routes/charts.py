"""Chart figures as plotly JSON: an experiment's dashboard, the planner and a bandit simulation.

Each figure is ``{"data": [...], "layout": {...}}``, ready for
``Plotly.newPlot(element, figure.data, figure.layout)``; see :mod:`abscope.charts` for the traces.

======================================  ==========================================================
endpoint                                body
======================================  ==========================================================
``GET /experiments/{id}/charts``        ``{"conversion", "lift", "samples", "posterior"}``
``POST /charts/plan``                   ``{"plan": <POST /calculate>, "sensitivity", "power"}``
``POST /charts/simulate``               ``{"regret", "final_regret": {policy: mean},
                                        "final_regret_se": {policy: se}}``; 422 over
                                        the budget, 503 + ``Retry-After`` when busy
======================================  ==========================================================
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from abscope.api.deps import Service, Simulations
from abscope.schemas import CalculateRequest, SimulateRequest

__all__ = ["router"]

router = APIRouter(tags=["charts"])


@router.get("/experiments/{experiment_id}/charts")
def experiment_charts(
    experiment_id: str, service: Service, phase: int | None = None
) -> dict[str, Any]:
    return service.experiment_charts(experiment_id, phase)


@router.post("/charts/plan")
def plan_charts(body: CalculateRequest, service: Service) -> dict[str, Any]:
    return service.plan_charts(body)


@router.post("/charts/simulate")
async def simulate_charts(
    body: SimulateRequest, service: Service, simulations: Simulations
) -> dict[str, Any]:
    """Bounded by ``horizon × runs × arms`` (422 beyond it); run on the simulations' own
    thread, a 503 with ``Retry-After`` when it is busy (:mod:`abscope.api.simulations`)."""
    return await simulations.run(service.simulate_bandits, body)
