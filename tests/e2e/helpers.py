"""What the browser tests share: a recorded browser tab, traffic sent through the HTTP API,
and a reading of the Plotly charts a page drew.

:class:`Tab` is one page of a fresh browser context. It records every request the context
makes (and every WebSocket and uncaught script error), and :meth:`Tab.open` checks after each
page load that no request went to a host other than the service.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import BrowserContext, Page, Request, WebSocket

from tests.fixtures.uvicorn_server import ABSCOPE_APP, UvicornServer

__all__ = [
    "RESULTS_ID",
    "RESULTS_RATES",
    "RESULTS_USERS",
    "TWO_VARIANTS",
    "Chart",
    "MakeTab",
    "Tab",
    "Tally",
    "create_experiment",
    "js_int",
    "log_events",
    "read_chart",
    "route_users",
    "send_traffic",
    "start_server",
]

_LOCAL_SCHEMES = {"data", "blob", "about"}  # no host: nothing leaves the browser


@dataclass
class Tab:
    """A page of ``context``, whose requests are recorded from its creation on.

    ``origin`` is the service's ``http://host:port``; every request must go there (or be a
    ``data:``/``blob:`` URL, which reaches no host).
    """

    context: BrowserContext
    origin: str
    requests: list[Request] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)
    page: Page = field(init=False)

    def __post_init__(self) -> None:
        # Context-wide, so a page the first one opens is recorded as well.
        self.context.on("request", self._record)
        self.context.on("page", self._watch)
        self.page = self.context.new_page()

    def _record(self, request: Request) -> None:
        self.requests.append(request)

    def _watch(self, page: Page) -> None:
        page.on("websocket", lambda socket: self._socket(socket))
        page.on("pageerror", lambda error: self.script_errors.append(f"{page.url}: {error}"))

    def _socket(self, socket: WebSocket) -> None:
        self.websockets.append(socket.url)

    def open(self, path: str) -> Page:
        """Load ``path`` of the service and check every request so far stayed on it."""
        response = self.page.goto(self.origin + path)
        assert response is not None and response.status == 200, (
            f"GET {path}: {response.status if response else 'no response'}"
        )
        self.page.wait_for_load_state("load")
        self.assert_local()
        return self.page

    def foreign(self) -> list[str]:
        """Requested URLs that left the service (other host, port or scheme)."""
        service = urlsplit(self.origin)
        out = []
        for url in [r.url for r in self.requests] + self.websockets:
            parts = urlsplit(url)
            if parts.scheme in _LOCAL_SCHEMES:
                continue
            if (parts.scheme, parts.netloc) != (service.scheme, service.netloc):
                out.append(url)
        return out

    def assert_local(self) -> None:
        foreign = self.foreign()
        assert not foreign, f"the page requested other hosts than {self.origin}: {foreign}"
        assert not self.script_errors, f"uncaught script errors: {self.script_errors}"

    def paths(self, method: str | None = None) -> list[str]:
        """Paths (with query) the tab requested, optionally of one method only."""
        out = []
        for request in self.requests:
            if method is None or request.method == method:
                parts = urlsplit(request.url)
                out.append(parts.path + (f"?{parts.query}" if parts.query else ""))
        return out


MakeTab = Callable[..., Tab]
"""``make_tab(origin, **context_options)``: the ``make_tab`` fixture."""


# --- the HTTP API --------------------------------------------------------------------------


def start_server(directory: Path, **env: str) -> UvicornServer:
    """A started uvicorn process on a fresh SQLite file in ``directory`` (stop it)."""
    server = UvicornServer(
        ABSCOPE_APP,
        directory / "uvicorn.log",
        env={"ABSCOPE_DB_PATH": str(directory / "abscope.db"), **env},
        health_path="/health",
    )
    server.start()
    return server


# The experiment every results test reads (the ``results_traffic`` fixture): 2,000 users, 10%
# of the control's and 13% of the treatment's converting. A fixed id, so the hash split (and
# with it every count) is the same on every run.
RESULTS_ID = "e2e-results"
RESULTS_USERS = [f"user-{i:05d}" for i in range(2_000)]
RESULTS_RATES = {"control": 10, "treatment": 13}

TWO_VARIANTS: tuple[tuple[str, str, float], ...] = (
    ("control", "ranker-v1", 0.5),
    ("treatment", "ranker-v2", 0.5),
)


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url.path}: expected {status}, got "
        f"{response.status_code}: {response.text[:500]}"
    )
    return response.json() if response.content else None


def create_experiment(
    api: httpx.Client,
    experiment_id: str,
    *,
    variants: Sequence[tuple[str, str, float]] = TWO_VARIANTS,
    start: bool = True,
    **fields: Any,
) -> dict[str, Any]:
    """Create (and by default start) an experiment through the API; its config."""
    body = {
        "id": experiment_id,
        "name": fields.pop("name", experiment_id.replace("-", " ").capitalize()),
        "variants": [{"name": n, "model_id": m, "weight": w} for n, m, w in variants],
        **fields,
    }
    experiment = _ok(api.post("/experiments", json=body), 201)
    if start:
        experiment = _ok(api.post(f"/experiments/{experiment_id}/start"))
    return dict(experiment)


def route_users(
    api: httpx.Client, experiment_id: str, users: Iterable[str]
) -> dict[str, str | None]:
    """``POST /route`` for each user, decision only (``expose: false``: the test logs what it
    wants counted): the variant each one got, None when outside the experiment's traffic."""
    out: dict[str, str | None] = {}
    for user in users:
        body = {"user_id": user, "experiment_id": experiment_id, "expose": False}
        answer = _ok(api.post("/route", json=body))
        assert answer["experiment_id"] == experiment_id, answer
        out[user] = answer["variant_name"] if answer["in_experiment"] else None
    return out


def log_events(api: httpx.Client, events: Sequence[Mapping[str, Any]]) -> None:
    """``POST /events`` in batches; every event must be counted."""
    for start in range(0, len(events), 5_000):
        batch = list(events[start : start + 5_000])
        answer = _ok(api.post("/events", json={"events": batch}))
        assert answer["counted"] == len(batch) and answer["rejected"] == 0, answer


@dataclass(frozen=True)
class Tally:
    """Users logged for one variant, and how many of them converted."""

    users: int
    conversions: int

    @property
    def rate(self) -> float:
        return self.conversions / self.users


def send_traffic(
    api: httpx.Client,
    experiment_id: str,
    users: Sequence[str],
    conversion_percent: Mapping[str, int],
) -> dict[str, Tally]:
    """Route ``users``, then log an exposure for each and a conversion for some.

    The k-th user of a variant converts when ``k % 100 < conversion_percent[variant]``, so a
    variant's observed rate is known exactly (10 gives 10% of every hundred users).
    """
    assigned = route_users(api, experiment_id, users)
    seen = dict.fromkeys(conversion_percent, 0)
    converted = dict.fromkeys(conversion_percent, 0)
    events: list[dict[str, Any]] = []
    for user, variant in assigned.items():
        assert variant is not None, f"{user} is outside the experiment's traffic"
        base = {"experiment_id": experiment_id, "user_id": user, "variant_name": variant}
        events.append({**base, "kind": "exposure"})
        if seen[variant] % 100 < conversion_percent[variant]:
            events.append({**base, "kind": "conversion"})
            converted[variant] += 1
        seen[variant] += 1
    log_events(api, events)
    return {name: Tally(seen[name], converted[name]) for name in conversion_percent}


def js_int(x: float) -> str:
    """A number as the pages' ``abscope.int`` shows it: ``Math.round``, en-US grouping."""
    return f"{math.floor(x + 0.5):,}"


# --- charts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    """What Plotly drew in one chart element."""

    svgs: int
    scatter_traces: int
    legend: tuple[str, ...]
    trace_types: tuple[str, ...]
    heatmap_images: int
    annotations: tuple[str, ...]


_READ_CHART = """node => ({
  svgs: node.querySelectorAll(".main-svg").length,
  scatter_traces: node.querySelectorAll(".scatterlayer .trace").length,
  legend: [...node.querySelectorAll(".legend .legendtext")].map((t) => t.textContent),
  trace_types: (node._fullData || []).map((t) => t.type),
  heatmap_images: node.querySelectorAll(".heatmaplayer .hm image").length,
  annotations: [...node.querySelectorAll(".annotation-text")].map((t) => t.textContent),
})"""


def read_chart(page: Page, element_id: str) -> Chart:
    """Wait until ``#element_id`` holds a drawn Plotly figure, then read it."""
    page.wait_for_selector(f"#{element_id} .main-svg .legend .legendtext", state="attached")
    found = page.eval_on_selector(f"#{element_id}", _READ_CHART)
    return Chart(
        svgs=found["svgs"],
        scatter_traces=found["scatter_traces"],
        legend=tuple(found["legend"]),
        trace_types=tuple(found["trace_types"]),
        heatmap_images=found["heatmap_images"],
        annotations=tuple(found["annotations"]),
    )
