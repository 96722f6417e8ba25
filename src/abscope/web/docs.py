"""``/docs``: Swagger UI over ``/openapi.json``, with no CDN.

FastAPI's own ``/docs`` loads Swagger UI from a CDN and starts it with an inline script,
which the Content-Security-Policy (:mod:`abscope.api.security_headers`) forbids. Here the
page's script and stylesheet come from the installed ``fastapi-offline`` package (Swagger
UI's ``swagger-ui-bundle.js`` and ``swagger-ui.css``, Apache-2.0, served under
:data:`ASSETS`), and Swagger UI is started by ``/static/docs.js``, a file of ours. ReDoc is
left out: it adds its styles as ``<style>`` elements, which the policy forbids too.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from abscope.web.assets import StaticAssets

__all__ = ["ASSETS", "PAGE", "assets", "router"]

ASSETS: Final = "/docs/assets"
"""Where Swagger UI's files are served."""

PAGE: Final = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" href="data:,">
  <title>API reference · abscope</title>
  <link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="/openapi.json"></div>
  <script src="{ASSETS}/swagger-ui-bundle.js"></script>
  <script src="/static/docs.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui() -> HTMLResponse:
    """The Swagger UI page."""
    return HTMLResponse(PAGE, headers={"Cache-Control": "no-cache"})


def _swagger_ui_files() -> Path:
    return Path(str(resources.files("fastapi_offline") / "static"))


def assets() -> StaticAssets:
    """Swagger UI's script and stylesheet, from the installed ``fastapi-offline`` package,
    gzipped (:mod:`abscope.web.assets`)."""
    return StaticAssets.directory(_swagger_ui_files(), ASSETS)
