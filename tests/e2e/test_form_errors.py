"""An unknown experiment's page says so. (The create form's errors, in words beside their
fields, are checked at both widths in ``test_form.py``.)"""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.helpers import Tab


def test_unknown_experiment_page_says_so(tab: Tab) -> None:
    page = tab.open("/view/no-such-experiment")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("no-such-experiment")
