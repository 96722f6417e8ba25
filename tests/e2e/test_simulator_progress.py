"""While a simulation runs the simulator says so: a progress line, the button disabled and the
previous result greyed out and marked busy; all restored when the answer (or an error) comes.

The answer is held back by a route (the request reaches the service only when the test lets
it go), so the in-progress state is seen for certain, never by timing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Route, expect

from tests.e2e.helpers import MakeTab, read_chart
from tests.fixtures.uvicorn_server import UvicornServer

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.mark.parametrize("width", [1280, 390])
def test_simulator_shows_progress_while_it_runs(
    width: int, make_tab: MakeTab, server: UvicornServer
) -> None:
    page = make_tab(server.url, viewport={"width": width, "height": 844}).open("/simulator")
    read_chart(page, "chart-regret")
    button = page.locator("#simulator button[type=submit]")
    output = page.locator("#output")
    progress = page.locator("#sim-progress")
    rows = page.locator("#final-regret tbody tr")
    first = rows.locator("td").all_text_contents()
    expect(button).to_be_enabled()
    expect(progress).to_be_hidden()

    held: list[Route] = []
    page.route("**/charts/simulate", lambda route: held.append(route))
    page.locator("input[name=true_rates]").fill("0.02, 0.05")
    page.locator("input[name=horizon]").fill("500")
    page.locator("input[name=runs]").fill("5")
    button.click()

    expect(button).to_be_disabled()
    expect(progress).to_be_visible()
    expect(progress).to_have_attribute("role", "status")
    expect(progress).to_contain_text("Simulating")
    expect(output).to_have_attribute("aria-busy", "true")
    expect(output).to_have_class("sim-stale")
    opacity = float(output.evaluate("node => getComputedStyle(node).opacity"))
    assert opacity < 1, opacity
    assert rows.locator("td").all_text_contents() == first  # the old result, still shown
    assert len(held) == 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"simulator-running-{width}.png", full_page=True)
    button.click(force=True)  # a click on the disabled button sends nothing more
    assert len(held) == 1

    with page.expect_response("**/charts/simulate") as answer:
        held[0].continue_()
    assert answer.value.status == 200
    expect(button).to_be_enabled()
    expect(progress).to_be_hidden()
    expect(output).to_have_attribute("aria-busy", "false")
    expect(output).not_to_have_class("sim-stale")
    expect(rows).to_have_count(4)
    expect(rows.locator("td")).not_to_have_text(first)  # the new run's figures
    assert float(output.evaluate("node => getComputedStyle(node).opacity")) == 1


def test_simulator_restores_the_form_after_an_error(
    make_tab: MakeTab, server: UvicornServer
) -> None:
    page = make_tab(server.url, viewport={"width": 1280, "height": 844}).open("/simulator")
    read_chart(page, "chart-regret")
    held: list[Route] = []
    page.route("**/charts/simulate", lambda route: held.append(route))
    page.locator("input[name=true_rates]").fill("0.5")
    button = page.locator("#simulator button[type=submit]")
    button.click()
    expect(button).to_be_disabled()
    held[0].continue_()
    expect(page.locator("#error")).to_contain_text("true_rates")
    expect(button).to_be_enabled()
    expect(page.locator("#sim-progress")).to_be_hidden()
    expect(page.locator("#simulator")).to_have_attribute("aria-busy", "false")
