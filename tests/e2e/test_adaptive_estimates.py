"""The detail page's card "Estimates corrected for adaptive allocation", in real Chromium:
a Thompson experiment fed through the HTTP API shows, per arm and for the difference, the
naive figure, the Hájek estimate and the stabilized interval that the API's results answer
holds, formatted as the page formats them; a fixed split shows no card. The card passes
axe at 1280 and 390 px. Screenshots: ``test-artifacts/screenshots/adaptive-<width>.png``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import (
    RESULTS_ID,
    MakeTab,
    Tally,
    create_experiment,
    log_events,
    route_users,
)
from tests.e2e.test_a11y import _RUN_AXE, AXE, _blocking
from tests.fixtures.uvicorn_server import UvicornServer

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
BANDIT_ID = "e2e-adaptive-thompson"
TRUE_RATES = {"control": 0.08, "treatment": 0.14}
ROUNDS, PER_ROUND = 3, 200


def _pct(x: float, signed: bool = False) -> str:
    """``abscope.pct(x, 2)`` / ``abscope.signedPct(x, 2)`` in Python."""
    return f"{'+' if signed and x >= 0 else ''}{x * 100:.2f}%"


@pytest.fixture(scope="module")
def bandit(api: httpx.Client) -> dict[str, Any]:
    """A running Thompson experiment with traffic in rounds a bandit refresh apart, so each
    round's users come with the probabilities the rounds before set; users convert at
    random (seeded) at the arm's true rate."""
    if api.get(f"/experiments/{BANDIT_ID}").status_code != 200:
        create_experiment(api, BANDIT_ID, allocation="thompson", name="Bandit ranker")
        rng = random.Random(11)
        for round_ in range(ROUNDS):
            if round_:
                time.sleep(1.1)  # the server's allocation is refreshed once a second
            users = [f"r{round_}-{i}" for i in range(PER_ROUND)]
            events = []
            for user, variant in route_users(api, BANDIT_ID, users).items():
                base = {"experiment_id": BANDIT_ID, "user_id": user, "variant_name": variant}
                events.append({**base, "kind": "exposure"})
                if rng.random() < TRUE_RATES[str(variant)]:
                    events.append({**base, "kind": "conversion"})
            log_events(api, events)
    results: dict[str, Any] = api.get(f"/experiments/{BANDIT_ID}/results").json()
    return results


@pytest.mark.parametrize("width", [1280, 390])
def test_the_card_shows_the_apis_corrected_figures(
    make_tab: MakeTab, server: UvicornServer, bandit: dict[str, Any], width: int
) -> None:
    section = bandit["adaptive_estimates"]
    assert section is not None and section["recommended_estimate"] == "hajek"
    tab = make_tab(server.url, viewport={"width": width, "height": 900}, bypass_csp=True)
    page = tab.open(f"/view/{BANDIT_ID}")
    card = page.locator("#adaptive-estimates")
    expect(card).to_be_visible()
    expect(card.locator("h2")).to_have_text("Estimates corrected for adaptive allocation")
    expect(page.locator("#adaptive-explanation")).to_contain_text("not always-valid")
    level = f"{round(section['confidence_level'] * 100)}%"
    for arm in section["arms"]:
        row = card.locator(f'#adaptive-arms tr[data-variant="{arm["variant"]}"] td')
        figures = arm["estimates"]
        low, high = figures["stabilized"]["interval"]
        expect(row).to_have_text([
            arm["variant"], f"{arm['users']:,}", _pct(figures["naive"]["estimate"]),
            _pct(figures["hajek"]["estimate"]), f"{_pct(low)} to {_pct(high)}",
        ])  # fmt: skip
    [comparison] = section["comparisons"]
    figures = comparison["estimates"]
    low, high = figures["stabilized"]["interval"]
    expect(card.locator('#adaptive-differences tr[data-variant="treatment"] td')).to_have_text([
        "treatment − control", _pct(figures["naive"]["estimate"], True),
        _pct(figures["hajek"]["estimate"], True), f"{_pct(low, True)} to {_pct(high, True)}",
    ])  # fmt: skip
    expect(card.locator("#adaptive-arms thead th").last).to_have_text(
        f"{level} interval (stabilized)"
    )
    # the policy moved the split, so the weights changed the figures
    assert any(
        arm["estimates"]["hajek"]["estimate"] != arm["estimates"]["naive"]["estimate"]
        for arm in section["arms"]
    )

    card.scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    card.screenshot(path=str(SHOTS / f"adaptive-{width}.png"))
    scroll = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll[0] <= scroll[1], f"the page scrolls sideways: {scroll}"
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci --prefix tools` (make test does)")
    page.add_script_tag(path=str(AXE))
    assert _blocking(page.evaluate(_RUN_AXE)["violations"], set()) == []


def test_a_fixed_split_shows_no_card(
    make_tab: MakeTab, server: UvicornServer, results_traffic: dict[str, Tally]
) -> None:
    page = make_tab(server.url, viewport={"width": 1280, "height": 800}).open(f"/view/{RESULTS_ID}")
    treatment = '#comparisons-table tbody tr[data-variant="treatment"]'
    expect(page.locator(f"{treatment} td").nth(3)).not_to_be_empty()  # results are drawn
    page.wait_for_load_state("networkidle")
    expect(page.locator("#adaptive-estimates")).to_be_hidden()
