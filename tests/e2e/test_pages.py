"""Every page, at a desktop and a phone width: it loads and draws with requests to the service
only (Plotly.js included), and a full-page screenshot of it is saved under
``test-artifacts/screenshots/<page>-<width>.png`` on every run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import RESULTS_ID, MakeTab, Tally
from tests.fixtures.uvicorn_server import UvicornServer

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _list_ready(page: Page) -> None:
    expect(page.locator(f'#experiments tr[data-id="{RESULTS_ID}"]')).to_have_count(1)


def _new_ready(page: Page) -> None:
    expect(page.locator("#variants .variant-row")).to_have_count(2)


def _detail_ready(page: Page) -> None:
    expect(page.locator("#variants-table tbody tr")).to_have_count(2)
    for chart in ("conversion", "lift", "samples", "posterior"):
        expect(page.locator(f"#chart-{chart} .main-svg").first).to_be_attached()


def _planner_ready(page: Page) -> None:
    expect(page.locator("#days")).not_to_have_text("–")
    expect(page.locator("#chart-power .main-svg").first).to_be_attached()
    expect(page.locator("#chart-sensitivity .main-svg").first).to_be_attached()


def _simulator_ready(page: Page) -> None:
    expect(page.locator("#chart-regret .main-svg").first).to_be_attached()


# name, path, drawn with Plotly, wait until drawn
PAGES: list[tuple[str, str, bool, Callable[[Page], None]]] = [
    ("list", "/", False, _list_ready),
    ("new", "/new", False, _new_ready),
    ("detail", f"/view/{RESULTS_ID}", True, _detail_ready),
    ("planner", "/planner", True, _planner_ready),
    ("simulator", "/simulator", True, _simulator_ready),
]


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_loads_from_the_service_only(
    width: int,
    make_tab: MakeTab,
    server: UvicornServer,
    results_traffic: dict[str, Tally],
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab = make_tab(server.url, viewport={"width": width, "height": 900})
    for name, path, plotly, ready in PAGES:
        before = len(tab.requests)
        page = tab.open(path)
        ready(page)
        tab.assert_local()
        requested = [p.partition("?")[0] for p in tab.paths()[before:]]  # without ?v=
        assert requested[0] == path, requested
        assert "/static/app.css" in requested and "/static/app.js" in requested, requested
        if plotly:  # from the service (maybe from the cache of an earlier page), no CDN
            assert page.evaluate("typeof Plotly") == "object"
        page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png", full_page=True)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{path} scrolls sideways at {width} px: {scroll_width}"
    assert "/assets/plotly.min.js" in [p.partition("?")[0] for p in tab.paths()]
