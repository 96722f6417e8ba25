"""Experiment configuration and lifecycle (reads: the read role; changes: the admin role;
see :mod:`abscope.api.auth`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from abscope.api.deps import Service
from abscope.models import Experiment, Status
from abscope.schemas import CompleteRequest, CreateExperimentRequest, PatchExperimentRequest

router = APIRouter(prefix="/experiments", tags=["experiments"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: CreateExperimentRequest, service: Service) -> Experiment:
    return service.create(body)


@router.get("")
def list_experiments(service: Service, status: Status | None = None) -> dict[str, Any]:
    return {"experiments": service.list_experiments(status)}


@router.get("/{experiment_id}")
def get(experiment_id: str, service: Service) -> Experiment:
    return service.get(experiment_id)


@router.patch("/{experiment_id}")
def patch(experiment_id: str, body: PatchExperimentRequest, service: Service) -> Experiment:
    return service.patch(experiment_id, body)


@router.delete("/{experiment_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(experiment_id: str, service: Service) -> Response:
    service.delete(experiment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{experiment_id}/start")
def start(experiment_id: str, service: Service) -> Experiment:
    return service.transition(experiment_id, "start")


@router.post("/{experiment_id}/pause")
def pause(experiment_id: str, service: Service) -> Experiment:
    return service.transition(experiment_id, "pause")


@router.post("/{experiment_id}/resume")
def resume(experiment_id: str, service: Service) -> Experiment:
    return service.transition(experiment_id, "resume")


@router.post("/{experiment_id}/complete")
def complete(
    experiment_id: str, service: Service, body: CompleteRequest | None = None
) -> Experiment:
    return service.transition(experiment_id, "complete", body.winner if body else None)


@router.post("/{experiment_id}/stop")
def stop(experiment_id: str, service: Service) -> Experiment:
    return service.transition(experiment_id, "stop")
