"""The dashboard and planner pages, served by the service at ``/``.

Plain HTML, CSS and a little JavaScript: each page fetches the JSON API and draws Plotly
figures that the server builds (``abscope.charts``). Every asset is served locally, Plotly.js
from the installed ``plotly`` package, so a page makes no request to any other host.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["PAGES", "router", "static_files"]

_HERE = Path(__file__).parent
PAGES = {
    "/": "list.html",
    "/new": "new.html",
    "/planner": "planner.html",
    "/simulator": "simulator.html",
}

router = APIRouter(include_in_schema=False)


def _page(name: str) -> HTMLResponse:
    html = (_HERE / "pages" / name).read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


def _plotly_js() -> Path:
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


for _path, _name in PAGES.items():

    def _serve(name: str = _name) -> HTMLResponse:
        return _page(name)

    router.add_api_route(_path, _serve, methods=["GET"], response_class=HTMLResponse)


@router.get("/view/{experiment_id}", response_class=HTMLResponse)
def experiment_page(experiment_id: str) -> HTMLResponse:
    """The detail page; its script reads the id from the path."""
    return _page("detail.html")


@router.get("/assets/plotly.min.js")
def plotly_js() -> FileResponse:
    """Plotly.js from the installed plotly package: no CDN."""
    return FileResponse(
        _plotly_js(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def static_files() -> StaticFiles:
    """The pages' CSS and JavaScript."""
    return StaticFiles(directory=_HERE / "static")
