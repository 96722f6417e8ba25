"""Experiment configuration and lifecycle (reads: the read role; changes: the admin role;
see :mod:`abscope.api.auth`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from abscope.api.deps import Actor, Service
from abscope.api.errors import documented
from abscope.models import Experiment, Metric, Status
from abscope.schemas import (
    CompleteRequest,
    CreateExperimentRequest,
    ExperimentList,
    PatchExperimentRequest,
)

router = APIRouter(prefix="/experiments", tags=["experiments"])

_TRANSITION = documented(401, 403, 404, 409, 422, 503)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an experiment",
    responses=documented(400, 401, 403, 409, 413, 422, 503),
)
def create(body: CreateExperimentRequest, service: Service, actor: Actor) -> Experiment:
    """Create a draft experiment, in the two-model form (``control_model_id``,
    ``treatment_model_id``) or with a ``variants`` list. An ``id`` already taken is a 409;
    without one, an id is made from the name."""
    return service.create(body, by=actor)


@router.get(
    "",
    summary="List experiments",
    response_model=ExperimentList,
    responses=documented(401, 403, 422, 503),
)
def list_experiments(
    service: Service,
    status: Annotated[Status | None, Query(description="Only experiments in this state.")] = None,
) -> ExperimentList:
    """Every experiment (or those in ``status``), with its configuration and state."""
    return ExperimentList(experiments=service.list_experiments(status))


@router.get(
    "/{experiment_id}",
    summary="Get an experiment",
    responses=documented(401, 403, 404, 422, 503),
)
def get(experiment_id: str, service: Service) -> Experiment:
    """An experiment's configuration, state, phase and audit trail."""
    return service.get(experiment_id)


@router.patch(
    "/{experiment_id}",
    summary="Change an experiment",
    responses=documented(400, 401, 403, 404, 409, 413, 422, 503),
)
def patch(
    experiment_id: str, body: PatchExperimentRequest, service: Service, actor: Actor
) -> Experiment:
    """Change the given fields (each change is audited). A draft changes in every field it
    was created with (``variants`` in full, ``metric_type``, ``allocation``, ``layer``,
    ``sticky``, ``sequential``, ``metrics``: a 409 once started). New weights outside draft
    open a new phase, whose counts are kept apart; a concurrent change is a 409."""
    return service.patch(experiment_id, body, by=actor)


@router.post(
    "/{experiment_id}/metrics",
    status_code=status.HTTP_201_CREATED,
    summary="Add a metric to an experiment",
    responses=documented(400, 401, 403, 404, 409, 413, 422, 503),
)
def add_metric(experiment_id: str, body: Metric, service: Service, actor: Actor) -> Experiment:
    """Declare a secondary or guardrail metric, in draft, running or paused (audited as
    ``metric_added``). A primary is a 422 (it is declared at creation); a name the
    experiment has, or an ended experiment, is a 409. Events may name it from now on."""
    return service.add_metric(experiment_id, body, by=actor)


@router.delete(
    "/{experiment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an experiment",
    response_class=Response,
    responses=documented(401, 403, 404, 409, 422, 503),
)
def delete(experiment_id: str, service: Service) -> Response:
    """Delete a draft (it has no counts yet); any other status is a 409."""
    service.delete(experiment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{experiment_id}/start", summary="Start an experiment", responses=_TRANSITION)
def start(experiment_id: str, service: Service, actor: Actor) -> Experiment:
    """From draft to running: users are assigned and counted from now on."""
    return service.transition(experiment_id, "start", by=actor)


@router.post("/{experiment_id}/pause", summary="Pause an experiment", responses=_TRANSITION)
def pause(experiment_id: str, service: Service, actor: Actor) -> Experiment:
    """From running to paused: everyone is served the control, nothing is counted."""
    return service.transition(experiment_id, "pause", by=actor)


@router.post("/{experiment_id}/resume", summary="Resume an experiment", responses=_TRANSITION)
def resume(experiment_id: str, service: Service, actor: Actor) -> Experiment:
    """From paused to running."""
    return service.transition(experiment_id, "resume", by=actor)


@router.post(
    "/{experiment_id}/complete",
    summary="Complete an experiment",
    responses=documented(400, 401, 403, 404, 409, 413, 422, 503),
)
def complete(
    experiment_id: str, service: Service, actor: Actor, body: CompleteRequest | None = None
) -> Experiment:
    """From running or paused to completed: everyone is served the ``winner`` (a variant
    of the experiment), or the control when none is given."""
    return service.transition(experiment_id, "complete", body.winner if body else None, by=actor)


@router.post("/{experiment_id}/stop", summary="Stop an experiment", responses=_TRANSITION)
def stop(experiment_id: str, service: Service, actor: Actor) -> Experiment:
    """From running or paused to stopped: everyone is served the control, for good."""
    return service.transition(experiment_id, "stop", by=actor)
