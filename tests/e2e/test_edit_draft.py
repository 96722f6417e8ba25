"""A draft is edited in the create form at /edit/<id> (reached from its page) and deleted
after a confirmation, at 1280 and 390 px; once started it is neither."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import MakeTab
from tests.fixtures.uvicorn_server import UvicornServer

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WIDTHS = [1280, 390]


def _draft(api: httpx.Client, experiment_id: str) -> dict[str, Any]:
    body = {
        "id": experiment_id,
        "name": "Draft to edit",
        "description": "before",
        "variants": [
            {"name": "control", "model_id": "m1", "weight": 0.6, "description": "kept"},
            {"name": "treatment", "model_id": "m2", "weight": 0.4},
        ],
        "min_relative_lift": 0.05,
        "forced_variants": {"qa-1": "treatment"},
        "metrics": [
            {"name": "latency_ms", "kind": "ratio", "role": "guardrail",
             "higher_is_better": False, "margin": 0.1, "action": "alert"},
            {"name": "revenue", "kind": "mean", "role": "secondary"},
        ],
    }  # fmt: skip
    response = api.post("/experiments", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / name, full_page=True)


def _values(page: Page, selector: str) -> list[str]:
    return page.locator(selector).evaluate_all("nodes => nodes.map(n => n.value)")


@pytest.mark.parametrize("width", WIDTHS)
def test_a_draft_is_edited_in_the_form_and_each_change_audited(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client, width: int
) -> None:
    experiment_id = f"e2e-edit-{width}"
    before = _draft(api, experiment_id)
    tab = make_tab(server.url, viewport={"width": width, "height": 900})
    page = tab.open(f"/view/{experiment_id}")
    page.locator("#draft-edit").click()
    page.wait_for_url(f"**/edit/{experiment_id}")
    expect(page.locator("#form-title")).to_have_text("Edit draft")
    expect(page.locator("input[name=name]")).to_have_value("Draft to edit")
    expect(page.locator("input[name=id]")).to_have_value(experiment_id)
    expect(page.locator("input[name=id]")).not_to_be_editable()
    assert _values(page, "#variants [name=variant-weight]") == ["60", "40"]
    expect(page.locator("input[name=min_relative_lift]")).to_have_value("5")
    expect(page.locator("input[name=confidence_level]")).to_have_value("95")
    assert _values(page, "#metrics [name=metric-name]") == ["latency_ms", "revenue"]
    assert _values(page, "#metrics [name=metric-margin]")[0] == "10"
    assert _values(page, "#forced [name=forced-user]") == ["qa-1"]
    assert _values(page, "#forced [name=forced-variant]") == ["treatment"]

    # Saved untouched: nothing changes, not even the version.
    with page.expect_response(lambda r: r.request.method == "PATCH") as answer:
        page.locator("#submit").click()
    assert answer.value.status == 200
    page.wait_for_url(f"**/view/{experiment_id}")
    assert api.get(f"/experiments/{experiment_id}").json()["version"] == before["version"]

    page = tab.open(f"/edit/{experiment_id}")
    expect(page.locator("#variants .variant-row")).to_have_count(2)
    page.locator("input[name=name]").fill("Draft, edited")
    page.locator("#add-variant").click()
    assert _values(page, "#variants [name=variant-weight]") == ["33.33", "33.33", "33.34"]
    new_row = page.locator("#variants .variant-row").nth(2)
    new_row.locator("[name=variant-name]").fill("fast")
    new_row.locator("[name=variant-model]").fill("m3")
    page.locator("select[name=allocation]").select_option("thompson")
    page.locator("input[name=confidence_level]").fill("90")
    page.locator("input[name=min_relative_lift]").fill("")
    page.locator("#metrics .metric-row").nth(1).locator("button.remove").click()
    page.locator("#forced [name=forced-variant]").select_option("fast")
    page.locator("input[name=layer]").fill("checkout")
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width
    _shot(page, f"edit-draft-{width}.png")
    page.locator("#submit").click()
    page.wait_for_url(f"**/view/{experiment_id}")
    expect(page.locator("#title")).to_have_text("Draft, edited")

    after = api.get(f"/experiments/{experiment_id}").json()
    weights = [v["weight"] for v in after["variants"]]
    assert abs(math.fsum(weights) - 1.0) <= 1e-9
    assert [v["name"] for v in after["variants"]] == ["control", "treatment", "fast"]
    assert after["variants"][0]["description"] == "kept"
    assert (after["allocation"], after["layer"], after["min_relative_lift"]) == (
        "thompson",
        "checkout",
        None,
    )
    assert after["confidence_level"] == pytest.approx(0.9, abs=1e-12)
    assert [m["name"] for m in after["metrics"]] == ["latency_ms"]
    assert after["metrics"][0]["action"] == "alert"
    assert after["forced_variants"] == {"qa-1": "fast"}
    changes = after["audit"][-1]["changes"]
    assert set(changes) == {
        "name",
        "variants",
        "allocation",
        "confidence_level",
        "min_relative_lift",
        "metrics",
        "forced_variants",
        "layer",
    }
    assert (after["version"], len(after["audit"])) == (before["version"] + 1, 2)


@pytest.mark.parametrize("width", WIDTHS)
def test_a_draft_is_deleted_after_a_confirmation_and_a_started_one_is_not_offered(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client, width: int
) -> None:
    experiment_id = f"e2e-delete-{width}"
    _draft(api, experiment_id)
    tab = make_tab(server.url, viewport={"width": width, "height": 900})
    page = tab.open(f"/view/{experiment_id}")
    page.locator("#draft-delete").click()
    confirm = page.locator(".draft-confirm")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text(f"Delete the draft Draft to edit ({experiment_id}) for good?")
    _shot(page, f"detail-draft-delete-{width}.png")
    page.locator("#draft-delete-cancel").click()  # kept: nothing was sent
    expect(confirm).to_be_hidden()
    assert "DELETE" not in {r.method for r in tab.requests}
    assert api.get(f"/experiments/{experiment_id}").status_code == 200

    page.locator("#draft-delete").click()
    page.locator("#draft-delete-confirm").click()
    page.wait_for_url(f"{server.url}/")
    assert api.get(f"/experiments/{experiment_id}").status_code == 404

    # Started from its page, a draft loses its actions; its edit form is read-only.
    started = f"e2e-started-{width}"
    _draft(api, started)
    page = tab.open(f"/view/{started}")
    expect(page.locator("#draft-edit")).to_be_visible()
    page.locator('#lifecycle button[data-action="start"]').click()
    expect(page.locator("#status .badge")).to_have_text("running")
    expect(page.locator("#draft-actions")).to_be_empty()
    page = tab.open(f"/edit/{started}")
    expect(page.locator("#edit-note")).to_contain_text("is running: only drafts are edited here")
    expect(page.locator("#submit")).to_be_disabled()
    expect(page.locator("input[name=name]")).to_be_disabled()
    expect(page.locator("#draft-actions")).to_be_empty()
    page = tab.open("/edit/no-such-draft")
    expect(page.locator("#error")).to_have_text("There is no experiment no-such-draft.")
    expect(page.locator("#create")).to_be_hidden()
