"""The duration planner: its numbers agree with ``POST /calculate``, both charts render, the
inputs live in the query string, and a bad input is named in an error that hides the output."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.helpers import Tab, js_int, read_chart

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _expect_plan(page: Page, api: httpx.Client, body: dict[str, Any]) -> None:
    response = api.post("/calculate", json=body)
    assert response.status_code == 200, response.text
    plan = response.json()
    expect(page.locator("#control-samples")).to_have_text(js_int(plan["control_samples"]))
    expect(page.locator("#treatment-samples")).to_have_text(js_int(plan["treatment_samples"]))
    expect(page.locator("#total-samples")).to_have_text(js_int(plan["total_samples"]))
    expect(page.locator("#days")).to_have_text(js_int(plan["days"]))
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#output")).to_be_visible()
    sequential = plan["mode"] == "sequential"
    other = plan["fixed_horizon"] if sequential else plan["always_valid"]
    mode = page.locator("#plan-mode")
    expect(mode).to_contain_text("sequential" if sequential else "fixed-horizon")
    alternative = page.locator("#plan-alternative")
    expect(alternative).to_contain_text("fixed-horizon" if sequential else "sequential")
    expect(alternative).to_contain_text(f"{js_int(other['total_samples'])} users")
    expect(alternative).to_contain_text(f"({js_int(other['days'])} days)")


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


def test_planner_agrees_with_calculate(tab: Tab, api: httpx.Client) -> None:
    page = tab.open("/planner")
    defaults = {"baseline_rate": 0.1, "min_relative_lift": 0.05, "daily_traffic": 20000}
    _expect_plan(page, api, defaults)  # sequential, as a new experiment is
    expect(page.locator("select[name=sequential]")).to_have_value("true")
    _expect_charts(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "planner-sequential.png", full_page=True)

    page.locator("input[name=baseline_rate]").fill("0.04")
    page.locator("input[name=min_relative_lift]").fill("0.1")
    page.locator("input[name=daily_traffic]").fill("5000")
    page.locator("input[name=allocation]").fill("0.5")
    page.locator("input[name=treatment_share]").fill("0.4")
    page.locator("input[name=power]").fill("0.9")
    page.locator("input[name=alpha]").fill("0.01")
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
    page.screenshot(path=SCREENSHOTS / "planner-fixed-horizon.png", full_page=True)
    query = _query(page)
    for name, value in changed.items():
        expected = str(value).lower() if isinstance(value, bool) else str(value)
        assert query.get(name) == [expected], (name, page.url)


def test_a_planner_link_fills_the_form(tab: Tab, api: httpx.Client) -> None:
    page = tab.open(
        "/planner?baseline_rate=0.2&min_relative_lift=0.03&daily_traffic=1500&power=0.85"
        "&two_sided=false"
    )
    expect(page.locator("input[name=baseline_rate]")).to_have_value("0.2")
    expect(page.locator("input[name=min_relative_lift]")).to_have_value("0.03")
    expect(page.locator("input[name=daily_traffic]")).to_have_value("1500")
    expect(page.locator("input[name=power]")).to_have_value("0.85")
    expect(page.locator("input[name=alpha]")).to_have_value("0.05")  # not in the link
    expect(page.locator("select[name=two_sided]")).to_have_value("false")
    body = {
        "baseline_rate": 0.2,
        "min_relative_lift": 0.03,
        "daily_traffic": 1500,
        "power": 0.85,
        "two_sided": False,
    }
    _expect_plan(page, api, body)
    _expect_charts(page)
    assert _query(page)["alpha"] == ["0.05"]  # the link now holds every input


def test_planner_names_a_bad_baseline_and_hides_the_output(tab: Tab, api: httpx.Client) -> None:
    page = tab.open("/planner")
    expect(page.locator("#output")).to_be_visible()
    page.locator("input[name=baseline_rate]").fill("1.5")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("baseline_rate")
    expect(page.locator("#output")).to_be_hidden()
    expect(page.locator("#chart-sensitivity")).to_be_hidden()
    expect(page.locator("#chart-power")).to_be_hidden()

    page.locator("input[name=baseline_rate]").fill("0.1")  # fixed: the output comes back
    _expect_plan(
        page, api, {"baseline_rate": 0.1, "min_relative_lift": 0.05, "daily_traffic": 20000}
    )


def test_an_emptied_input_is_not_written_as_null(tab: Tab) -> None:
    page = tab.open("/planner")
    page.locator("input[name=baseline_rate]").fill("")
    expect(page.locator("#error")).to_contain_text("baseline_rate")
    assert _query(page).get("baseline_rate", [""]) == [""], page.url
