"""A latency guardrail declared in the create form, requests sent through the API, and the
detail page's latency card: every figure on it is the API's results, formatted as the page
formats numbers, and labelled with its inference mode; the page passes axe.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.helpers import MakeTab, log_events, route_users
from tests.e2e.test_a11y import _RUN_AXE, AXE, _blocking
from tests.fixtures.uvicorn_server import UvicornServer

USERS = [f"p95-user-{i:04d}" for i in range(300)]
SHOTS = Path("test-artifacts/screenshots")


def _create_with_a_latency_guardrail(page: Page) -> str:
    page.locator("input[name=name]").fill("Ranker v2 p95 guard")
    page.locator("#add-metric").click()
    row = page.locator("#metrics .metric-row").first
    row.locator("[name=metric-name]").fill("latency")
    row.locator("[name=metric-kind]").select_option("quantile")
    expect(row.locator("[name=metric-guard-quantile]")).to_be_enabled()
    row.locator("[name=metric-guard-quantile]").select_option("0.95")
    row.locator("[name=metric-direction]").select_option("lower")
    row.locator("[name=metric-margin]").fill("10")
    row.locator("[name=metric-action]").select_option("alert")
    page.locator("#submit").click()
    page.wait_for_url("**/view/*")
    return page.url.rsplit("/", 1)[-1]


def _send_requests(api: httpx.Client, experiment_id: str) -> None:
    rng = random.Random(20261202)
    events = []
    for user, variant in route_users(api, experiment_id, USERS).items():
        assert variant is not None
        scale = 1.25 if variant == "treatment" else 1.0
        for _ in range(rng.randint(1, 6)):
            latency = round(scale * rng.lognormvariate(5.0, 0.5), 2)
            events.append({"experiment_id": experiment_id, "user_id": user,
                           "variant_name": variant, "kind": "value", "metric": "latency",
                           "value": latency})  # fmt: skip
    log_events(api, events)


def js_num(x: float) -> str:
    """``abscope.num``: four significant digits, en-US grouping (``toLocaleString``)."""
    text = f"{float(f'{x:.4g}'):,.10f}".rstrip("0").rstrip(".")
    return text


def js_signed_pct(x: float) -> str:
    """``abscope.signedPct``: ``+12.3%``."""
    return f"{'+' if x >= 0 else ''}{x * 100:.1f}%"


def _interval(pair: list[float] | None, fmt: Any) -> str:
    return "\u2014" if pair is None else f"{fmt(pair[0])} to {fmt(pair[1])}"


def test_the_latency_card_shows_the_apis_quantiles(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client
) -> None:
    tab = make_tab(server.url, viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = tab.open("/new")
    experiment_id = _create_with_a_latency_guardrail(page)
    declared = api.get(f"/experiments/{experiment_id}").json()["metrics"][0]
    assert (declared["kind"], declared["guard_quantile"], declared["margin"]) == (
        "quantile", 0.95, 0.1,
    )  # fmt: skip
    page.locator('#lifecycle button[data-action="start"]').click()
    expect(page.locator("#status .badge")).to_have_text("running")
    _send_requests(api, experiment_id)
    page.reload()

    results = api.get(f"/experiments/{experiment_id}/results").json()
    (metric,) = [m for m in results["metrics"] if m["name"] == "latency"]
    card = page.locator('.quantile-card[data-metric="latency"]')
    expect(card).to_be_visible()
    expect(card.locator("h2")).to_have_text("Latency: latency")
    expect(card.locator(".quantile-note")).to_contain_text("fixed-horizon")
    expect(card.locator(".quantile-note")).to_contain_text("bootstrap over users")
    shown = 0
    for row in metric["quantile_results"]:
        changes = {c["variant"]: c for c in row["comparisons"]}
        for arm, figures in row["arms"].items():
            line = card.locator(f'tr[data-quantile="{row["q"]}"][data-variant="{arm}"]')
            expect(line.locator("td").first).to_have_text(row["label"])
            expect(line.locator('[data-field="estimate"]')).to_have_text(
                js_num(figures["estimate"])
            )
            expect(line.locator('[data-field="interval"]')).to_have_text(
                _interval(figures["interval"], js_num)
            )
            if arm in changes:
                change = changes[arm]
                expect(line.locator('[data-field="relative"]')).to_have_text(
                    js_signed_pct(change["relative"])
                )
                expect(line.locator('[data-field="relative-interval"]')).to_have_text(
                    _interval(change["relative_interval"], js_signed_pct)
                )
            shown += 1
    assert shown == 6
    # An undefined interval is a dash with its reason, never a number.
    undefined = [
        (row["q"], arm, figures["reason"])
        for row in metric["quantile_results"]
        for arm, figures in row["arms"].items()
        if figures["interval"] is None
    ]
    for q, arm, reason in undefined:
        cell = card.locator(
            f'tr[data-quantile="{q}"][data-variant="{arm}"] [data-field="interval"]'
        )
        expect(cell).to_have_attribute("data-reason", reason)
    # The guardrail, always-valid, and the metrics table pointing at the card.
    (guard,) = metric["comparisons"]
    item = card.locator(f'.quantile-guardrail li[data-variant="{guard["variant"]}"]')
    expect(item).to_have_attribute("data-verdict", guard["verdict"])
    expect(item).to_contain_text(f"change {js_signed_pct(guard['estimate'])}")
    expect(card.locator(".quantile-guardrail")).to_contain_text("always-valid (sequential)")
    expect(card.locator(".quantile-guardrail")).to_contain_text("p95 may not rise more than 10.0%")
    table_row = page.locator('#metrics-table tr[data-metric="latency"]')
    expect(table_row).to_have_attribute("data-verdict", guard["verdict"])
    expect(table_row.locator("td").nth(3)).to_have_text("see latency card")
    SHOTS.mkdir(parents=True, exist_ok=True)
    card.screenshot(path=str(SHOTS / "latency-card.png"))
    page.screenshot(path=str(SHOTS / "latency-detail.png"), full_page=True)
    # Accessible: axe finds nothing serious on the page with the card.
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(_RUN_AXE)["violations"]
    assert _blocking(violations, set()) == []
