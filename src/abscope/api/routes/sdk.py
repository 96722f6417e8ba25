"""The SDK's routing configuration (the ingest role, as /route: see :mod:`abscope.api.auth`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from abscope.api.deps import Service
from abscope.api.errors import documented
from abscope.schemas import RoutingConfig

router = APIRouter(prefix="/sdk", tags=["sdk"])


@router.get(
    "/config",
    summary="Routing configuration for local evaluation",
    response_class=Response,
    responses={
        200: {
            "model": RoutingConfig,
            "description": "The configuration, with its `ETag`.",
        },
        304: {"description": "Unchanged since the `If-None-Match` version."},
        **documented(401, 403, 422, 503),
    },
)
def config(
    service: Service,
    if_none_match: Annotated[
        str | None, Header(description="The ETag of the configuration the client holds.")
    ] = None,
) -> Response:
    """Every experiment as the SDK needs it to route users in-process, with the server's
    hashing: running and paused ones in full, the others with the answer everyone gets.
    Refresh with ``If-None-Match``: a 304 means nothing changed. While the store is down the
    last known configuration is served."""
    document = service.routing_config()
    headers = {"ETag": document.etag, "Cache-Control": "no-cache"}
    if document.matches(if_none_match):
        return Response(status_code=304, headers=headers)
    return Response(document.body, media_type="application/json", headers=headers)
