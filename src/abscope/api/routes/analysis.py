"""Results, the deployment gate, time series, assignment explanations and the planner."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from abscope.api.deps import Service
from abscope.api.errors import documented
from abscope.gate import GATE_STATUS, gate_status_code
from abscope.models import MAX_USER_ID_LENGTH, Status
from abscope.schemas import (
    CalculateRequest,
    CalculateResponse,
    ExplainResponse,
    GateResponse,
    ResultsResponse,
    SummaryResponse,
    TimeseriesResponse,
)

router = APIRouter(tags=["analysis"])

Phase = Annotated[
    int | None,
    Query(description="The phase to analyse (0 is the first); the current one by default."),
]


@router.get(
    "/experiments/{experiment_id}/results",
    summary="Analyse an experiment",
    response_model=ResultsResponse,
    responses=documented(401, 403, 404, 422, 503),
)
def results(experiment_id: str, service: Service, phase: Phase = None) -> dict[str, Any]:
    """The full analysis of a phase: each variant's counts and rate with its interval, each
    treatment's lift against the control with its p-value (sequential or fixed-horizon, as
    the experiment says), the sample-ratio check and the decision the numbers allow.
    Values that cannot be computed are null, with the reason in ``null_reasons``."""
    return service.results(experiment_id, phase)


@router.get(
    "/summary",
    summary="Summarise every experiment",
    response_model=SummaryResponse,
    responses=documented(401, 403, 422, 503),
)
def summary(
    service: Service,
    status: Annotated[Status | None, Query(description="Only experiments in this state.")] = None,
) -> dict[str, Any]:
    """Each experiment (or those in ``status``) as the dashboard's list shows it, in one
    request: its configuration's headline, its users, the best treatment's lift with its
    interval and the flags (significant, sample-ratio mismatch, underpowered, guardrail
    status). Every figure is the one ``/experiments/{id}/results`` gives, from the
    experiment's inference mode (``best.basis``); null values carry their reason, a
    draft's with ``not_started``."""
    return service.summary(status)


_GATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    GATE_STATUS["inconclusive"]: {
        "model": GateResponse,
        "description": "inconclusive (412 instead with promotion=true)",
    },
    GATE_STATUS["fail"]: {
        "model": GateResponse,
        "description": "fail: a guardrail is in breach (or inconclusive with promotion=true)",
    },
    **documented(401, 403, 404, 422, 503),
}
Promotion = Annotated[
    bool, Query(description="Answer 412 for inconclusive too: promote only on pass.")
]
Report = Annotated[
    bool, Query(description="Always answer 200, the verdict in the body (Argo Rollouts).")
]


@router.get(
    "/experiments/{experiment_id}/gate",
    summary="The deployment gate",
    response_model=GateResponse,
    responses=_GATE_RESPONSES,
)
def gate(
    experiment_id: str,
    service: Service,
    response: Response,
    promotion: Promotion = False,
    report: Report = False,
) -> dict[str, Any]:
    """``pass`` (200) when every guardrail is shown within its margin for every arm,
    ``fail`` (412) when any is significantly beyond it, else ``inconclusive`` (202; e.g.
    too little data, or no guardrails declared), with the reasons per guardrail and arm.
    For an Argo Rollouts web metric (``report=true``, judged on ``verdict``)."""
    body = service.gate(experiment_id)
    response.status_code = gate_status_code(body["verdict"], promotion=promotion, report=report)
    return body


@router.post(
    "/experiments/{experiment_id}/gate",
    summary="The deployment gate, as a webhook",
    response_model=GateResponse,
    responses=_GATE_RESPONSES,
)
def gate_webhook(
    experiment_id: str,
    service: Service,
    response: Response,
    promotion: Promotion = False,
    report: Report = False,
) -> dict[str, Any]:
    """The gate for a Flagger webhook, which POSTs its canary's name, namespace and phase
    (the body is not read): the same verdict and statuses as ``GET``. A ``rollout``
    webhook fails on 412 only (Flagger counts a status above 202 as a failure); a
    ``confirm-promotion`` webhook takes ``promotion=true``, so that only a pass promotes."""
    return gate(experiment_id, service, response, promotion, report)


@router.get(
    "/experiments/{experiment_id}/timeseries",
    summary="An experiment's hourly series",
    response_model=TimeseriesResponse,
    responses=documented(401, 403, 404, 422, 503),
)
def timeseries(experiment_id: str, service: Service, phase: Phase = None) -> dict[str, Any]:
    """Hourly cumulative counts per variant, their rates with intervals, and the lift over
    time with its confidence sequence."""
    return service.timeseries(experiment_id, phase)


@router.get(
    "/experiments/{experiment_id}/explain",
    summary="Explain a user's assignment",
    response_model=ExplainResponse,
    responses=documented(401, 403, 404, 422, 503),
)
def explain(
    experiment_id: str,
    service: Service,
    user_id: Annotated[
        str,
        Query(min_length=1, max_length=MAX_USER_ID_LENGTH, description="The user to explain."),
    ],
) -> dict[str, Any]:
    """Which variant the user gets and why: the traffic gate's bucket, the variant's bucket
    and ranges, the layer's slice, a sticky or forced assignment. Records nothing."""
    return service.explain(experiment_id, user_id)


@router.post(
    "/calculate",
    summary="Plan an experiment's duration",
    response_model=CalculateResponse,
    responses=documented(400, 401, 403, 413, 422),
)
def calculate(body: CalculateRequest, service: Service) -> dict[str, Any]:
    """Users per variant and days needed to detect a relative lift with the given power,
    for the sequential and the fixed-horizon test, with the sensitivity curve and power
    grid behind the planner's charts. A planner argument out of range is a 422 naming it."""
    return service.calculate(body)
