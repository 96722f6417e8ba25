"""Results, time series, assignment explanations and the duration planner."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from abscope.api.deps import Service
from abscope.models import MAX_USER_ID_LENGTH
from abscope.schemas import CalculateRequest

router = APIRouter(tags=["analysis"])


@router.get("/experiments/{experiment_id}/results")
def results(experiment_id: str, service: Service, phase: int | None = None) -> dict[str, Any]:
    return service.results(experiment_id, phase)


@router.get("/experiments/{experiment_id}/timeseries")
def timeseries(experiment_id: str, service: Service, phase: int | None = None) -> dict[str, Any]:
    return service.timeseries(experiment_id, phase)


@router.get("/experiments/{experiment_id}/explain")
def explain(
    experiment_id: str,
    service: Service,
    user_id: Annotated[str, Query(min_length=1, max_length=MAX_USER_ID_LENGTH)],
) -> dict[str, Any]:
    return service.explain(experiment_id, user_id)


@router.post("/calculate")
def calculate(body: CalculateRequest, service: Service) -> dict[str, Any]:
    return service.calculate(body)
