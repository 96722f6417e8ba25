"""The dashboard and planner pages, served by the service at ``/``.

Plain HTML, CSS and a little JavaScript: each page fetches the JSON API and draws Plotly
figures that the server builds (``abscope.charts``). Every asset is served locally, Plotly.js
from the installed ``plotly`` package, so a page makes no request to any other host.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from abscope.errors import NotFound

__all__ = ["DETAIL", "EDIT", "NOT_FOUND", "PAGES", "Page", "render", "router", "static_files"]

_HERE = Path(__file__).parent


@dataclass(frozen=True, slots=True)
class Page:
    """A page: its title, its body file under ``pages/``, its script (none when empty), and
    whether it draws charts (and so loads Plotly.js)."""

    title: str
    body: str
    script: str
    charts: bool = False


PAGES = {
    "/": Page("Experiments", "list.html", "list.js"),
    "/new": Page("New experiment", "new.html", "new.js"),
    "/planner": Page("Planner", "planner.html", "planner.js", charts=True),
    "/simulator": Page("Bandit simulator", "simulator.html", "simulator.js", charts=True),
}
DETAIL = Page("Experiment", "detail.html", "detail.js", charts=True)
NOT_FOUND = Page("Experiment not found", "not_found.html", "")
EDIT = Page("Edit experiment", "new.html", "new.js")
"""The create form in edit mode: its script reads the draft's id from the path."""

_LAYOUT = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" href="data:,">
  <title>{title} · abscope</title>
  <link rel="stylesheet" href="/static/app.css">
{plotly}  <script src="/static/app.js"></script>
{script}</head>
<body>
{body}</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@cache
def render(page: Page) -> str:
    """The page's body file in the shared layout (one head for every page)."""
    return _LAYOUT.format(
        title=page.title,
        plotly='  <script src="/assets/plotly.min.js"></script>\n' if page.charts else "",
        script=f'  <script src="/static/{page.script}" defer></script>\n' if page.script else "",
        body=(_HERE / "pages" / page.body).read_text(encoding="utf-8"),
    )


def _page(page: Page, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(render(page), status_code, headers={"Cache-Control": "no-cache"})


def _plotly_js() -> Path:
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


for _path, _spec in PAGES.items():

    def _serve(page: Page = _spec) -> HTMLResponse:
        return _page(page)

    router.add_api_route(_path, _serve, methods=["GET"], response_class=HTMLResponse)


@router.get("/view/{experiment_id}", response_class=HTMLResponse)
def experiment_page(experiment_id: str, request: Request) -> HTMLResponse:
    """The detail page; its script reads the id from the path.

    Without API keys an unknown id gets the not-found page with a 404. With keys the page is
    open to anyone while the experiment is not, so the shell is served whatever the id (a
    404 would tell a visitor without a key which ids exist) and the script shows the same
    not-found state when the API, asked with the visitor's key, answers 404.
    """
    if not request.app.state.settings.has_keys:
        try:
            request.app.state.service.get(experiment_id)
        except NotFound:
            return _page(NOT_FOUND, 404)
    return _page(DETAIL)


@router.get("/edit/{experiment_id}", response_class=HTMLResponse)
def edit_page(experiment_id: str) -> HTMLResponse:
    """The create form filled with a draft, to change it (or delete it)."""
    return _page(EDIT)


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
