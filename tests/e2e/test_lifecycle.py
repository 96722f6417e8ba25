"""An experiment created through the form and moved through its lifecycle with the buttons of
its detail page, whose enabled states follow the allowed transitions."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.e2e.helpers import Tab, create_experiment

BUTTONS = ("start", "pause", "resume", "complete", "stop")
# Mirrors abscope.models.ALLOWED_TRANSITIONS, read from the user's side.
ENABLED = {
    "draft": {"start"},
    "running": {"pause", "complete", "stop"},
    "paused": {"resume", "complete", "stop"},
    "completed": set(),
    "stopped": set(),
}


def _button(page: Page, action: str) -> Locator:
    return page.locator(f'#lifecycle button[data-action="{action}"]')


def _expect_status(page: Page, status: str) -> None:
    badge = page.locator("#status .badge")
    expect(badge).to_have_text(status)
    expect(badge).to_have_class(re.compile(rf"\b{status}\b"))
    for action in BUTTONS:
        button = _button(page, action)
        if action in ENABLED[status]:
            expect(button, f"{action} in {status}").to_be_enabled()
        else:
            expect(button, f"{action} in {status}").to_be_disabled()
    winner = page.locator("#winner")
    if "complete" in ENABLED[status]:
        expect(winner).to_be_enabled()
    else:
        expect(winner).to_be_disabled()
    ramp = page.locator("#ramp")
    if status in ("completed", "stopped"):
        expect(ramp).to_be_disabled()
    else:
        expect(ramp).to_be_enabled()


def _fill_variant(page: Page, index: int, name: str, model_id: str, weight: str) -> None:
    row = page.locator("#variants .variant-row").nth(index)
    row.locator("[name=variant-name]").fill(name)
    row.locator("[name=variant-model]").fill(model_id)
    row.locator("[name=variant-weight]").fill(weight)


def test_create_through_the_form_and_start(tab: Tab, api: httpx.Client) -> None:
    page = tab.open("/new")
    expect(page.locator("#variants .variant-row")).to_have_count(2)
    page.locator("input[name=name]").fill("Checkout ranker v3")
    page.locator("textarea[name=description]").fill("Three rankers on the checkout page")
    page.locator("#add-variant").click()
    page.locator("#add-variant").click()
    expect(page.locator("#variants .variant-row")).to_have_count(4)
    page.locator("#variants .variant-row").nth(2).locator("button.remove").click()
    expect(page.locator("#variants .variant-row")).to_have_count(3)
    _fill_variant(page, 0, "control", "ranker-v1", "50")
    _fill_variant(page, 1, "treatment-a", "ranker-v2", "30")
    _fill_variant(page, 2, "treatment-b", "ranker-v3", "20")
    page.locator("input[name=traffic_percentage]").fill("80")
    page.locator("select[name=metric_type]").select_option("binary")
    page.locator("select[name=allocation]").select_option("thompson")
    page.locator("input[name=sticky]").check()
    page.locator("#submit").click()

    page.wait_for_url(re.compile(r"/view/checkout-ranker-v3-[0-9a-f]{6}$"))
    experiment_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#title")).to_have_text("Checkout ranker v3")
    expect(page.locator("#experiment-id")).to_have_text(experiment_id)
    expect(page.locator("#config-summary")).to_have_text(
        "80% of traffic · binary · thompson · sticky · sequential · no minimum lift set · power 80%"
    )
    _expect_status(page, "draft")

    stored = api.get(f"/experiments/{experiment_id}").json()
    assert [(v["name"], v["model_id"], v["weight"]) for v in stored["variants"]] == [
        ("control", "ranker-v1", 0.5),
        ("treatment-a", "ranker-v2", 0.3),
        ("treatment-b", "ranker-v3", 0.2),
    ]
    assert stored["description"] == "Three rankers on the checkout page"
    assert stored["traffic_percentage"] == 80
    assert stored["metric_type"] == "binary"
    assert stored["allocation"] == "thompson"
    assert stored["sticky"] is True and stored["sequential"] is True

    _button(page, "start").click()
    _expect_status(page, "running")
    expect(page.locator("#audit li")).to_have_count(2)
    expect(page.locator("#audit li").last).to_contain_text("start")
    assert api.get(f"/experiments/{experiment_id}").json()["status"] == "running"
    assert "/experiments" in tab.paths("POST")
    assert f"/experiments/{experiment_id}/start" in tab.paths("POST")


def test_pause_resume_and_complete_with_a_winner(tab: Tab, api: httpx.Client) -> None:
    create_experiment(api, "e2e-lifecycle", start=False)
    page = tab.open("/view/e2e-lifecycle")
    _expect_status(page, "draft")
    expect(page.locator("#winner option")).to_have_text(["no winner", "control", "treatment"])

    for action, status in (("start", "running"), ("pause", "paused"), ("resume", "running")):
        _button(page, action).click()
        _expect_status(page, status)
    _button(page, "pause").click()
    _expect_status(page, "paused")

    page.locator("#winner").select_option("treatment")
    _button(page, "complete").click()
    # No users, so treatment is not significant: the page asks before completing.
    dialog = page.get_by_role("dialog", name="Complete without a significant winner?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Complete anyway").click()
    _expect_status(page, "completed")
    expect(page.locator("#winner")).to_have_value("treatment")
    expect(page.locator("#winner option:checked")).to_have_text("winner: treatment")
    stored = api.get("/experiments/e2e-lifecycle").json()
    assert stored["status"] == "completed"
    assert stored["winner"] == "treatment"
    actions = [entry["action"] for entry in stored["audit"]]
    assert actions == ["create", "start", "pause", "resume", "pause", "complete"]
    expect(page.locator("#audit li")).to_have_count(len(actions))
    expect(page.locator("#audit li").last).to_contain_text("completed with treatment as the winner")
    expect(page.locator("#error")).to_be_hidden()

    page.reload()  # the states come from the stored status, not from the clicks
    _expect_status(page, "completed")


def test_stop_ends_the_experiment(tab: Tab, api: httpx.Client) -> None:
    create_experiment(api, "e2e-stop")
    page = tab.open("/view/e2e-stop")
    _expect_status(page, "running")
    _button(page, "stop").click()
    _expect_status(page, "stopped")
    assert api.get("/experiments/e2e-stop").json()["winner"] is None


def test_unknown_experiment_offers_no_actions(tab: Tab) -> None:
    response = tab.page.goto(f"{tab.origin}/view/no-such-experiment")
    assert response is not None and response.status == 404
    page = tab.page
    expect(page.locator("h1")).to_have_text("Experiment not found")
    for action in BUTTONS:
        expect(_button(page, action), action).to_have_count(0)
    expect(page.locator("#winner")).to_have_count(0)
    expect(page.locator("#ramp")).to_have_count(0)
