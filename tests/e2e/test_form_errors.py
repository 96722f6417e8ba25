"""An unknown experiment's page says so. (The create form's errors, in words beside their
fields, are checked at both widths in ``test_form.py``.)"""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.helpers import Tab


def test_unknown_experiment_page_says_so(tab: Tab) -> None:
    response = tab.page.goto(f"{tab.origin}/view/no-such-experiment")
    assert response is not None and response.status == 404
    expect(tab.page.locator("h1")).to_have_text("Experiment not found")
    expect(tab.page.get_by_role("link", name="Back to the experiments")).to_have_attribute(
        "href", "/"
    )
