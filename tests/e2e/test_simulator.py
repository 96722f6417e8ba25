"""The bandit simulator draws the regret of its four policies, and explains bad input."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.helpers import Tab, read_chart

POLICIES = ["Epsilon-greedy", "UCB1", "Thompson", "Fixed split"]


def test_simulator_draws_regret_of_four_policies(tab: Tab) -> None:
    page = tab.open("/simulator")
    chart = read_chart(page, "chart-regret")
    assert chart.scatter_traces == len(POLICIES), chart
    assert list(chart.legend) == POLICIES, chart
    rows = page.locator("#final-regret tbody tr")
    expect(rows).to_have_count(len(POLICIES))
    expect(rows.locator("th")).to_have_text(POLICIES)

    page.locator("input[name=true_rates]").fill("0.02, 0.03, 0.05")
    page.locator("input[name=horizon]").fill("1000")
    page.locator("input[name=runs]").fill("10")
    with page.expect_response("**/charts/simulate") as answer:
        page.locator("#simulator button[type=submit]").click()
    assert answer.value.status == 200
    assert answer.value.request.post_data_json == {
        "true_rates": [0.02, 0.03, 0.05],
        "horizon": 1000,
        "runs": 10,
        "seed": 1,
    }
    assert read_chart(page, "chart-regret").scatter_traces == len(POLICIES)
    expect(page.locator("#error")).to_be_hidden()


def test_simulator_explains_bad_input(tab: Tab) -> None:
    page = tab.open("/simulator")
    read_chart(page, "chart-regret")
    page.locator("input[name=true_rates]").fill("0.5")
    page.locator("#simulator button[type=submit]").click()
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("true_rates")
    expect(page.locator("#output")).to_be_hidden()
