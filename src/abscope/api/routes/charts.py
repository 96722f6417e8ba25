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

from typing import Annotated, Any

from fastapi import APIRouter, Query

from abscope.api.deps import Service, Simulations
from abscope.api.errors import documented
from abscope.schemas import (
    CalculateRequest,
    ExperimentCharts,
    PlanCharts,
    SimulateRequest,
    SimulationCharts,
)

__all__ = ["router"]

router = APIRouter(tags=["charts"])


@router.get(
    "/experiments/{experiment_id}/charts",
    summary="An experiment's figures",
    response_model=ExperimentCharts,
    responses=documented(401, 403, 404, 422, 503),
)
def experiment_charts(
    experiment_id: str,
    service: Service,
    phase: Annotated[
        int | None, Query(description="The phase (0 is the first); the current one by default.")
    ] = None,
) -> dict[str, Any]:
    """The detail page's four plotly figures: conversion, lift and samples over time, and
    each variant's posterior."""
    return service.experiment_charts(experiment_id, phase)


@router.post(
    "/charts/plan",
    summary="The planner's figures",
    response_model=PlanCharts,
    responses=documented(400, 401, 403, 413, 422),
)
def plan_charts(body: CalculateRequest, service: Service) -> dict[str, Any]:
    """The plan (as ``POST /calculate`` gives it) with its sensitivity and power figures."""
    return service.plan_charts(body)


@router.post(
    "/charts/simulate",
    summary="Simulate the bandit policies",
    response_model=SimulationCharts,
    responses=documented(400, 401, 403, 413, 422, 503),
)
async def simulate_charts(
    body: SimulateRequest, service: Service, simulations: Simulations
) -> dict[str, Any]:
    """The regret of each allocation policy (epsilon-greedy, UCB1, Thompson, a fixed
    split) on the given true rates, over ``runs`` seeded runs of ``horizon`` users.

    Bounded by ``horizon`` and ``horizon × runs × arms`` (422 beyond them), and run on the
    simulations' own thread: a 503 with ``Retry-After`` while it is busy."""
    return await simulations.run(service.simulate_bandits, body)
