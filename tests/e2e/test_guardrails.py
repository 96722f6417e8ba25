"""A guardrail declared in the create form, degraded latency sent through the API, and the
monitor's automatic pause seen on the detail page: the banner with the audit entry, the
metrics table's failing badge, and the metric's own chart.

The server runs the monitor every 0.2 s (the default is 60 s), so the test waits seconds,
not minutes, for the pause.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import MakeTab, log_events, route_users, start_server
from tests.fixtures.uvicorn_server import UvicornServer

USERS = [f"lat-user-{i:04d}" for i in range(1_200)]
REQUESTS_PER_USER = 3
LATENCY_MS = {"control": 100.0, "treatment": 130.0}  # the treatment is 30% slower
SHOTS = Path("test-artifacts/screenshots")


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UvicornServer]:
    """A server of its own whose monitor looks every 0.2 s."""
    server = start_server(
        tmp_path_factory.mktemp("e2e-guardrails"), ABSCOPE_MONITOR_INTERVAL_SECONDS="0.2"
    )
    try:
        yield server
    finally:
        server.stop()


def _create_with_a_guardrail(page: Page) -> str:
    page.locator("input[name=name]").fill("Ranker v2 latency guard")
    page.locator("#add-metric").click()
    row = page.locator("#metrics .metric-row").first
    row.locator("[name=metric-name]").fill("latency_ms")
    expect(row.locator("[name=metric-kind]")).to_have_value("ratio")
    expect(row.locator("[name=metric-role]")).to_have_value("guardrail")
    row.locator("[name=metric-direction]").select_option("lower")
    row.locator("[name=metric-margin]").fill("5")
    row.locator("[name=metric-action]").select_option("pause")
    page.locator("#submit").click()
    page.wait_for_url("**/view/*")
    return page.url.rsplit("/", 1)[-1]


def _send_latency(api: httpx.Client, experiment_id: str) -> None:
    rng = random.Random(20261201)
    assigned = route_users(api, experiment_id, USERS)
    events = []
    for user, variant in assigned.items():
        assert variant is not None
        base = {"experiment_id": experiment_id, "user_id": user, "variant_name": variant}
        events.append({**base, "kind": "exposure"})
        for _ in range(REQUESTS_PER_USER):
            latency = rng.lognormvariate(0.0, 0.3) * LATENCY_MS[variant]
            events.append({**base, "kind": "value", "metric": "latency_ms", "value": latency})
    log_events(api, events)


def _wait_for_status(api: httpx.Client, experiment_id: str, status: str) -> dict[str, object]:
    deadline = time.monotonic() + 20.0
    while True:
        experiment = api.get(f"/experiments/{experiment_id}").json()
        if experiment["status"] == status or time.monotonic() > deadline:
            return dict(experiment)
        time.sleep(0.1)


@pytest.mark.parametrize("width", [1280, 390])
def test_a_guardrail_breach_pauses_the_experiment_and_shows_a_banner(
    make_tab: MakeTab, monitored: UvicornServer, width: int
) -> None:
    tab = make_tab(monitored.url, viewport={"width": width, "height": 900})
    page = tab.open("/new")
    experiment_id = _create_with_a_guardrail(page)
    page.locator('#lifecycle button[data-action="start"]').click()
    expect(page.locator("#status .badge")).to_have_text("running")
    expect(page.locator("#guardrail-banner")).to_be_hidden()

    with monitored.client() as api:
        _send_latency(api, experiment_id)
        experiment = _wait_for_status(api, experiment_id, "paused")
        assert experiment["status"] == "paused", "the monitor did not pause the experiment"
        breach = [a for a in experiment["audit"] if a["action"] == "guardrail_breach"]  # type: ignore[union-attr,index]
        assert breach and breach[-1]["changes"]["metric"] == "latency_ms"
        # Paused: everyone is served the control, outside the experiment.
        for user in USERS[:50]:
            body = {"user_id": user, "experiment_id": experiment_id, "expose": False}
            answer = api.post("/route", json=body).json()
            assert (answer["variant_name"], answer["in_experiment"]) == ("control", False), answer

    page.reload()
    expect(page.locator("#status .badge")).to_have_text("paused")
    banner = page.locator("#guardrail-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Guardrail latency_ms breached for treatment")
    expect(banner).to_contain_text("margin of 5.0%")
    expect(banner).to_contain_text("paused the experiment")
    # The audit trail in words: the monitor's breach, and its pause "by monitor".
    expect(page.locator('#audit li[data-action="guardrail_breach"]')).to_contain_text(
        "guardrail latency_ms breached for treatment"
    )
    expect(page.locator('#audit li[data-action="pause"]').last).to_have_text(
        re.compile(r"^paused by monitor, \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2} UTC$")
    )
    row = page.locator('#metrics-table tr[data-metric="latency_ms"][data-variant="treatment"]')
    expect(row).to_have_attribute("data-verdict", "breach")
    expect(row.locator(".badge")).to_have_text("failing")
    expect(page.locator("#decision-rule")).to_contain_text("latency_ms")
    chart = page.locator('#metric-figures [data-metric="latency_ms"] .main-svg').first
    expect(chart).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"guardrail-breach-{width}.png"), full_page=True)
