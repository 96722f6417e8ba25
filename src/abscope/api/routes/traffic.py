"""Routing and event ingestion (the ingest role: :mod:`abscope.api.auth`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from abscope.api.deps import Service
from abscope.api.errors import documented
from abscope.api.hot_paths import events_body, log_body, route_body
from abscope.schemas import (
    BatchRequest,
    BatchResponse,
    CovariateRequest,
    CovariateResponse,
    LogRequest,
    LogResponse,
    RouteRequest,
    RouteResponse,
)

router = APIRouter(tags=["traffic"])


@router.post(
    "/route",
    response_model=RouteResponse,
    summary="Route a user",
    responses=documented(400, 401, 403, 404, 413, 422, 503),
)
async def route(body: RouteRequest, request: Request) -> Response:
    """Which variant (and model) to serve this user, recording the user's exposure.

    With ``experiment_id``, that experiment's variant (404 for an unknown one); without
    it, the user's assignments in every running experiment. ``expose: false`` asks for the
    decision only.
    \f
    Ordinary requests are answered by ``abscope.api.fast_path`` before they reach here;
    both run :func:`abscope.api.hot_paths.route_body`.
    """
    serving = request.app.state.service.serving
    answer = await route_body(serving, request.app.state.exposures, body)
    return Response(answer, media_type="application/json")


@router.post(
    "/log",
    response_model=LogResponse,
    summary="Log an outcome",
    responses=documented(400, 401, 403, 404, 409, 413, 422, 503),
)
async def log(body: LogRequest, request: Request) -> Response:
    """Record a conversion, a value or an exposure for a user, idempotent by ``event_id``.

    A variant other than the user's assignment is a 409; a timestamp in the future or
    before the experiment is a 422. ``metric`` names a declared metric (``converted`` for
    a binary one, ``value`` for a mean or ratio one, with a ratio's ``denominator``, 1 by
    default); without it the outcome is the primary's. A call that does not fit its
    metric is a 422 naming the field, and nothing of it is written.
    \f
    Committed with the events of concurrent calls; ordinary requests are answered by
    ``abscope.api.fast_path`` before they reach here, and both run
    :func:`abscope.api.hot_paths.log_body`.
    """
    traffic = request.app.state.service.traffic
    answer = await log_body(traffic, request.app.state.events, body, request.app.state.metrics)
    return Response(answer, media_type="application/json")


@router.post(
    "/events",
    response_model=BatchResponse,
    summary="Log a batch of events",
    responses=documented(400, 401, 403, 404, 409, 413, 422, 503),
)
async def events(body: BatchRequest, request: Request) -> Response:
    """Record a batch of events: each is checked as ``/log`` checks its call, and the valid
    ones are applied in one store call; each event's result says what happened to it (an
    event that does not fit the metric it names is ``rejected``, its error naming the field).
    \f
    Ordinary requests are answered by ``abscope.api.fast_path`` before they reach here;
    both run :func:`abscope.api.hot_paths.events_body`.
    """
    traffic = request.app.state.service.traffic
    answer = await events_body(traffic, body, request.app.state.metrics)
    return Response(answer, media_type="application/json")


@router.post(
    "/experiments/{experiment_id}/covariates",
    response_model=CovariateResponse,
    summary="Backfill CUPED covariates",
    responses=documented(400, 401, 403, 404, 409, 413, 422, 503),
)
def covariates(experiment_id: str, body: CovariateRequest, service: Service) -> CovariateResponse:
    """Set the pre-exposure covariate of users exposed in the experiment's current phase.

    Each user's covariate is set once: the same value again is ``unchanged``, another
    value is a ``conflict`` (the first is kept), and a user not exposed yet is
    ``not_exposed`` (nothing stored). The answer reports each user; the experiment must be
    running or paused (409 otherwise). CUPED then adjusts the primary metric's results.
    """
    return service.backfill_covariates(experiment_id, body)
