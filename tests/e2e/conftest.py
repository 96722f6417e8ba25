"""Fixtures of the browser tests: Chromium, the service, an API client and recorded tabs.

``browser`` is Debian's Chromium (``/usr/bin/chromium``, installed by ``make test``),
launched once per session through Playwright; a missing browser fails every test, it never
skips one. ``server`` is a real uvicorn process on a free port with its own SQLite file.
``tab`` is a page of a fresh browser context: when the test ends, no request of that
context may have gone to a host other than the service, and no script may have thrown.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.e2e.helpers import (
    RESULTS_ID,
    RESULTS_RATES,
    RESULTS_USERS,
    MakeTab,
    Tab,
    Tally,
    create_experiment,
    send_traffic,
    start_server,
)
from tests.fixtures.uvicorn_server import UvicornServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium package; make test does this "
            "(scripts/install-system-deps.sh)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UvicornServer]:
    """The service without API keys, shared by the session's tests."""
    server = start_server(tmp_path_factory.mktemp("e2e-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def api(server: UvicornServer) -> Iterator[httpx.Client]:
    """An HTTP client of ``server``."""
    with server.client() as client:
        yield client


@pytest.fixture
def make_tab(browser: Browser) -> Iterator[MakeTab]:
    """``make_tab(origin, **context_options)``: a recorded page of a fresh context.

    At the end of the test every context is closed, and each must have requested nothing
    but its origin.
    """
    with ExitStack() as stack:
        tabs: list[Tab] = []

        def make(origin: str, **options: Any) -> Tab:
            context = browser.new_context(**options)
            stack.callback(context.close)
            context.set_default_timeout(TIMEOUT_MS)
            tab = Tab(context, origin)
            tabs.append(tab)
            return tab

        yield make
        for tab in tabs:
            tab.assert_local()


@pytest.fixture
def tab(make_tab: MakeTab, server: UvicornServer) -> Tab:
    """A recorded page of a fresh context on ``server``, 1280 x 800."""
    return make_tab(server.url, viewport={"width": 1280, "height": 800})


@pytest.fixture(scope="session")
def results_traffic(api: httpx.Client) -> dict[str, Tally]:
    """Experiment ``RESULTS_ID``, running, with 2,000 users sent through the API."""
    create_experiment(
        api,
        RESULTS_ID,
        name="Ranker v2 against v1",
        description="Does the new ranker lift conversion?",
    )
    return send_traffic(api, RESULTS_ID, RESULTS_USERS, RESULTS_RATES)
