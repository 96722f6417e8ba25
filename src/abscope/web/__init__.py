"""The dashboard and planner pages, served by the service at ``/``.

Plain HTML, CSS and a little JavaScript: each page fetches the JSON API and draws Plotly
figures that the server builds (``abscope.charts``). Every asset is served locally, Plotly.js
from the installed ``plotly`` package, so a page makes no request to any other host.

The assets are served gzipped, and the pages link to them by versioned URLs that the browser
keeps for a year (:mod:`abscope.web.assets`). Plotly.js (4.8 MB, 1.5 MB gzipped) is
preloaded, not run, by the head: the pages' own scripts and tables do not wait for it, and
the first ``abscope.plot`` runs it and draws each chart once it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from abscope.errors import NotFound
from abscope.web.assets import StaticAssets

__all__ = [
    "DETAIL",
    "EDIT",
    "NOT_FOUND",
    "PAGES",
    "Page",
    "plotly_files",
    "render",
    "router",
    "static_files",
]

_HERE = Path(__file__).parent


def _plotly_js() -> Path:
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


@cache
def static_files() -> StaticAssets:
    """The pages' CSS and JavaScript, for the ``/static`` mount (one per process)."""
    return StaticAssets.directory(_HERE / "static", "/static")


@cache
def plotly_files() -> StaticAssets:
    """Plotly.js from the installed plotly package (no CDN), at ``/assets/plotly.min.js``."""
    return StaticAssets({"plotly.min.js": _plotly_js()}, "/assets")


@dataclass(frozen=True, slots=True)
class Page:
    """A page: its title, its body file under ``pages/``, its script (none when empty),
    whether it draws charts (and so loads Plotly.js), and scripts it loads after its own."""

    title: str
    body: str
    script: str
    charts: bool = False
    extra: tuple[str, ...] = ()


PAGES = {
    "/": Page("Experiments", "list.html", "list.js"),
    "/new": Page("New experiment", "new.html", "new.js", extra=("draft.js",)),
    "/planner": Page("Planner", "planner.html", "planner.js", charts=True),
    "/simulator": Page("Bandit simulator", "simulator.html", "simulator.js", charts=True),
}
DETAIL = Page(
    "Experiment",
    "detail.html",
    "detail.js",
    charts=True,
    extra=("draft.js", "adaptive.js", "quantiles.js", "metric_cuped.js"),
)
NOT_FOUND = Page("Experiment not found", "not_found.html", "")
EDIT = Page("Edit experiment", "new.html", "new.js", extra=("draft.js",))
"""The create form in edit mode: its script reads the draft's id from the path."""

_LAYOUT = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" href="data:,">
  <title>{title} · abscope</title>
  <link rel="stylesheet" href="{css}">
{plotly}  <script src="{app}"></script>
{script}</head>
<body>
{body}</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@cache
def render(page: Page) -> str:
    """The page's body file in the shared layout (one head for every page), linking to the
    versioned URLs of its assets. Plotly.js is only preloaded: downloaded alongside the page
    but run by the first ``abscope.plot``, after the page's tables are drawn."""
    static = static_files()
    plotly = plotly_files().url("plotly.min.js")
    return _LAYOUT.format(
        title=page.title,
        css=static.url("app.css"),
        plotly=f'  <link id="plotly-js" rel="preload" href="{plotly}" as="script">\n'
        if page.charts
        else "",
        app=static.url("app.js"),
        script="".join(
            f'  <script src="{static.url(name)}" defer></script>\n'
            for name in (page.script, *page.extra)
            if name
        ),
        body=(_HERE / "pages" / page.body).read_text(encoding="utf-8"),
    )


def _page(page: Page, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(render(page), status_code, headers={"Cache-Control": "no-cache"})


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
async def plotly_js(request: Request) -> Response:
    """Plotly.js from the installed plotly package (no CDN), gzipped and cached."""
    headers = dict(request.headers)
    answer: Response = await anyio.to_thread.run_sync(
        plotly_files().response, "plotly.min.js", request.url.query, headers
    )
    return answer
