"""The experiments list: each experiment with its status badge, variants and users, and a
status filter that is kept in the URL."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.e2e.helpers import Tab, create_experiment, send_traffic

DRAFT, RUNNING, COMPLETED = "e2e-list-draft", "e2e-list-running", "e2e-list-completed"


def _row(page: Page, experiment_id: str) -> Locator:
    return page.locator(f'#experiments tbody tr[data-id="{experiment_id}"]')


def _statuses(page: Page) -> set[str]:
    return set(page.locator("#experiments tbody tr td:nth-child(2) .badge").all_text_contents())


def test_list_shows_experiments_and_filters_by_status(tab: Tab, api: httpx.Client) -> None:
    create_experiment(api, DRAFT, start=False, name="List: a draft")
    create_experiment(api, RUNNING, name="List: running")
    users = send_traffic(
        api, RUNNING, [f"list-{i:03d}" for i in range(300)], {"control": 10, "treatment": 10}
    )
    create_experiment(api, COMPLETED, name="List: completed")
    assert api.post(f"/experiments/{COMPLETED}/complete").status_code == 200

    page = tab.open("/")
    for experiment_id, status in ((DRAFT, "draft"), (RUNNING, "running"), (COMPLETED, "completed")):
        row = _row(page, experiment_id)
        expect(row).to_have_count(1)
        badge = row.locator("td").nth(1).locator(".badge")
        expect(badge).to_have_text(status)
        expect(badge).to_have_class(re.compile(rf"\b{status}\b"))
        expect(row.locator("td").nth(2)).to_have_text("control, treatment")
    link = _row(page, RUNNING).locator("a")
    expect(link).to_have_text("List: running")
    expect(link).to_have_attribute("href", f"/view/{RUNNING}")
    total = sum(t.users for t in users.values())
    expect(_row(page, RUNNING).locator("td").nth(3)).to_have_text(f"{total:,}")
    expect(_row(page, DRAFT).locator("td").nth(3)).to_have_text("0")
    expect(page.locator("#empty")).to_be_hidden()

    page.locator("#status-filter").select_option("running")
    expect(_row(page, DRAFT)).to_have_count(0)
    expect(_row(page, RUNNING)).to_have_count(1)
    assert _statuses(page) == {"running"}
    assert "status=running" in page.url

    page.locator("#status-filter").select_option("")
    expect(_row(page, DRAFT)).to_have_count(1)
    assert "status=" not in page.url

    page = tab.open("/?status=completed")  # a filtered link
    expect(page.locator("#status-filter")).to_have_value("completed")
    expect(_row(page, COMPLETED)).to_have_count(1)
    expect(_row(page, RUNNING)).to_have_count(0)
    assert _statuses(page) == {"completed"}

    page.locator("#status-filter").select_option("stopped")
    expect(_row(page, COMPLETED)).to_have_count(0)
    assert _statuses(page) <= {"stopped"}

    page = tab.open("/")
    _row(page, RUNNING).locator("a").click()
    page.wait_for_url(f"**/view/{RUNNING}")
    expect(page.locator("#title")).to_have_text("List: running")
