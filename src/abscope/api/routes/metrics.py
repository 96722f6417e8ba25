"""``GET /metrics``: the service's Prometheus metrics (:mod:`abscope.api.metrics`), read
role; mounted only when metrics are on (``ABSCOPE_METRICS``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from abscope.api.errors import documented

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "The text format."},
        **documented(401, 403),
    },
)
def metrics(request: Request) -> Response:
    """Requests, events, store calls (every worker's, summed), the routing snapshot's age
    and the running experiments' users and conversions, in Prometheus' text format.
    \f
    A ``def``: the scrape reads the store (the experiments' counts), in the thread pool.
    """
    body = generate_latest(request.app.state.metrics_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
