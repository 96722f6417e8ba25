"""The ramp control: it changes the share of traffic the experiment gets (which routing then
follows), the audit trail records the change, and a bad value is explained beside it."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.e2e.helpers import Tab, create_experiment, route_users

USERS = [f"ramp-{i:04d}" for i in range(400)]


def test_ramp_changes_traffic_and_the_audit_trail(tab: Tab, api: httpx.Client) -> None:
    create_experiment(api, "e2e-ramp")
    assert all(route_users(api, "e2e-ramp", USERS).values())  # 100%: everyone is in

    page = tab.open("/view/e2e-ramp")
    expect(page.locator("#ramp-value")).to_have_value("100")
    expect(page.locator("#audit li")).to_have_count(2)  # create, start
    page.locator("#ramp-value").fill("25")
    page.locator("#ramp").click()

    expect(page.locator("#config-summary")).to_contain_text("25% of traffic")
    expect(page.locator("#audit li")).to_have_count(3)
    last = page.locator("#audit li").last
    expect(last).to_contain_text("traffic 100% \u2192 25%")
    expect(page.locator("#ramp-error")).to_be_empty()
    assert api.get("/experiments/e2e-ramp").json()["traffic_percentage"] == 25

    assigned = route_users(api, "e2e-ramp", [f"ramp-new-{i:04d}" for i in range(400)])
    share = sum(v is not None for v in assigned.values()) / len(assigned)
    assert 0.15 < share < 0.35, share


def test_ramp_refuses_a_bad_value(tab: Tab, api: httpx.Client) -> None:
    create_experiment(api, "e2e-ramp-bad")
    page = tab.open("/view/e2e-ramp-bad")
    expect(page.locator("#ramp-value")).to_have_value("100")
    for bad in ("0", "150"):
        page.locator("#ramp-value").fill(bad)
        with page.expect_response(lambda r: r.request.method == "PATCH") as answer:
            page.locator("#ramp").click()
        assert answer.value.status == 422
        expect(page.locator("#ramp-error")).to_contain_text("traffic_percentage")
    expect(page.locator("#audit li")).to_have_count(2)
    assert api.get("/experiments/e2e-ramp-bad").json()["traffic_percentage"] == 100
