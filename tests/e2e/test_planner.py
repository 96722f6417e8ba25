"""The duration planner: its numbers agree with ``POST /calculate``, both charts render, the
inputs (in percent) live in the query string, old links in fractions still open, and a bad
input is named in the page's words in an error that hides the output. At 1280 and 390 px."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import MakeTab, Tab, js_int, read_chart
from tests.fixtures.uvicorn_server import UvicornServer

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WIDTHS = {"1280": {"width": 1280, "height": 900}, "390": {"width": 390, "height": 844}}


def _expect_plan(page: Page, api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/calculate", json=body)
    assert response.status_code == 200, response.text
    plan: dict[str, Any] = response.json()
    expect(page.locator("#control-samples")).to_have_text(js_int(plan["control_samples"]))
    expect(page.locator("#treatment-samples")).to_have_text(js_int(plan["treatment_samples"]))
    expect(page.locator("#total-samples")).to_have_text(js_int(plan["total_samples"]))
    expect(page.locator("#days")).to_have_text(js_int(plan["days"]))
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#output")).to_be_visible()
    sequential = plan["mode"] == "sequential"
    other = plan["fixed_horizon"] if sequential else plan["always_valid"]
    expect(page.locator("#plan-mode")).to_contain_text(
        "sequential" if sequential else "fixed-horizon"
    )
    alternative = page.locator("#plan-alternative")
    expect(alternative).to_contain_text("fixed-horizon" if sequential else "sequential")
    expect(alternative).to_contain_text(f"{js_int(other['total_samples'])} users")
    expect(alternative).to_contain_text(f"({js_int(other['days'])} days)")
    return plan


def _expect_charts(page: Page) -> None:
    sensitivity = read_chart(page, "chart-sensitivity")
    assert sensitivity.svgs >= 1 and sensitivity.scatter_traces >= 1, sensitivity
    assert "Days needed" in sensitivity.legend, sensitivity
    power = read_chart(page, "chart-power")
    assert power.svgs >= 1
    assert "heatmap" in power.trace_types, power
    assert power.heatmap_images >= 1, power


def _query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def _fits(page: Page) -> None:
    """Nothing scrolls sideways: the page is no wider than the window."""
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, overflow


@pytest.mark.parametrize("width", list(WIDTHS))
def test_planner_in_percent_agrees_with_calculate(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client, width: str
) -> None:
    page = make_tab(server.url, viewport=WIDTHS[width]).open("/planner")
    defaults = {"baseline_rate": 0.1, "min_relative_lift": 0.05, "daily_traffic": 20000}
    _expect_plan(page, api, defaults)  # 10% and 5% on the page: sequential, as by default
    expect(page.locator("input[name=baseline_pct]")).to_have_value("10")
    expect(page.locator("select[name=sequential]")).to_have_value("true")
    # The share of traffic is not called "Allocation", the create form's bandit policy.
    form = page.locator("#planner")
    expect(form).to_contain_text("Traffic in the experiment (%)")
    assert "allocation" not in form.inner_text().lower()
    _expect_charts(page)
    _fits(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"planner-sequential-{width}.png", full_page=True)

    fields = {
        "baseline_pct": "4",
        "min_effect": "10",
        "daily_traffic": "5000",
        "traffic_pct": "50",
        "treatment_share_pct": "40",
        "power_pct": "90",
        "alpha_pct": "1",
    }
    for name, value in fields.items():
        page.locator(f"input[name={name}]").fill(value)
    page.locator("select[name=two_sided]").select_option("false")
    page.locator("select[name=sequential]").select_option("false")
    changed = {
        "baseline_rate": 0.04,
        "min_relative_lift": 0.1,
        "daily_traffic": 5000,
        "allocation": 0.5,
        "treatment_share": 0.4,
        "power": 0.9,
        "alpha": 0.01,
        "two_sided": False,
        "sequential": False,
    }
    _expect_plan(page, api, changed)
    _expect_charts(page)
    page.screenshot(path=SCREENSHOTS / f"planner-fixed-horizon-{width}.png", full_page=True)
    query = _query(page)
    for name, value in {**fields, "two_sided": "false", "sequential": "false"}.items():
        assert query.get(name) == [value], (name, page.url)


def test_a_planner_link_fills_the_form_and_old_fraction_links_still_open(
    tab: Tab, api: httpx.Client
) -> None:
    page = tab.open(
        "/planner?baseline_pct=20&min_effect=3&daily_traffic=1500&power_pct=85&two_sided=false"
    )
    expect(page.locator("input[name=baseline_pct]")).to_have_value("20")
    expect(page.locator("input[name=alpha_pct]")).to_have_value("5")  # not in the link
    expect(page.locator("select[name=two_sided]")).to_have_value("false")
    body = {
        "baseline_rate": 0.2,
        "min_relative_lift": 0.03,
        "daily_traffic": 1500,
        "power": 0.85,
        "two_sided": False,
    }
    _expect_plan(page, api, body)
    assert _query(page)["alpha_pct"] == ["5"]  # the link now holds every input

    # A link made when the page took fractions: the same plan, now shown in percent.
    page = tab.open(
        "/planner?baseline_rate=0.2&min_relative_lift=0.03&daily_traffic=1500&power=0.85"
        "&two_sided=false"
    )
    expect(page.locator("input[name=baseline_pct]")).to_have_value("20")
    expect(page.locator("input[name=min_effect]")).to_have_value("3")
    expect(page.locator("input[name=power_pct]")).to_have_value("85")
    _expect_plan(page, api, body)
    assert "baseline_rate" not in _query(page)


def test_planner_names_a_bad_baseline_in_its_words_and_hides_the_output(
    tab: Tab, api: httpx.Client
) -> None:
    page = tab.open("/planner")
    expect(page.locator("#output")).to_be_visible()
    page.locator("input[name=baseline_pct]").fill("150")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Baseline conversion rate")
    expect(error).to_contain_text("10%")  # the fraction the service speaks is explained
    expect(page.locator("#output")).to_be_hidden()
    expect(page.locator("#chart-sensitivity")).to_be_hidden()

    page.locator("input[name=baseline_pct]").fill("10")  # fixed: the output comes back
    _expect_plan(
        page, api, {"baseline_rate": 0.1, "min_relative_lift": 0.05, "daily_traffic": 20000}
    )

    page.locator("input[name=baseline_pct]").fill("")
    expect(error).to_contain_text("Baseline conversion rate is required")
    assert "baseline_pct" not in _query(page), page.url  # emptied: left out, never "null"
