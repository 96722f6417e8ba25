"""Bad input in the create form is explained beside the field it concerns, and nothing is
created; an unknown experiment's page says so."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.helpers import Tab


def _weights(page: Page, *weights: str) -> None:
    for index, weight in enumerate(weights):
        page.locator("#variants .variant-row").nth(index).locator("[name=variant-weight]").fill(
            weight
        )


def _submit(page: Page) -> int:
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.locator("#submit").click()
    return answer.value.status


def _names(api: httpx.Client) -> set[str]:
    return {x["name"] for x in api.get("/experiments").json()["experiments"]}


def test_weights_not_summing_to_one_are_explained_beside_the_variants(
    tab: Tab, api: httpx.Client
) -> None:
    page = tab.open("/new")
    page.locator("input[name=name]").fill("Weights off by a tenth")
    _weights(page, "0.5", "0.6")
    assert _submit(page) == 422
    error = page.locator('.field-error[data-field="variants"]')
    expect(error).to_contain_text("weights must sum to 1")
    expect(error).to_contain_text("1.1")
    expect(page.locator("#error")).to_be_hidden()
    assert page.url.endswith("/new")
    assert "Weights off by a tenth" not in _names(api)

    _weights(page, "0.5", "0.5")  # corrected: the error goes and the experiment is created
    page.locator("#submit").click()
    page.wait_for_url("**/view/weights-off-by-a-tenth-*")
    assert "Weights off by a tenth" in _names(api)


def test_field_errors_sit_beside_their_fields(tab: Tab, api: httpx.Client) -> None:
    page = tab.open("/new")
    page.locator("input[name=name]").fill("   ")
    _weights(page, "0.5", "0")
    page.locator("input[name=traffic_percentage]").fill("120")
    assert _submit(page) == 422
    expect(page.locator('.field-error[data-field="name"]')).to_contain_text("at least 1")
    expect(page.locator('.field-error[data-field="traffic_percentage"]')).to_contain_text(
        "less than or equal to 100"
    )
    rows = page.locator("#variants .variant-row")
    expect(rows.nth(1).locator('[data-variant-field="weight"]')).to_contain_text("greater than 0")
    expect(rows.nth(0).locator('[data-variant-field="weight"]')).to_be_empty()
    expect(page.locator('.field-error[data-field="variants"]')).to_be_empty()

    page.locator("input[name=id]").fill("Not A Slug")
    page.locator("input[name=name]").fill("Named")
    _weights(page, "0.5", "0.5")
    page.locator("input[name=traffic_percentage]").fill("100")
    assert _submit(page) == 422
    expect(page.locator('.field-error[data-field="id"]')).to_contain_text("pattern")
    expect(page.locator('.field-error[data-field="name"]')).to_be_empty()
    expect(rows.nth(1).locator('[data-variant-field="weight"]')).to_be_empty()


def test_unknown_experiment_page_says_so(tab: Tab) -> None:
    response = tab.page.goto(f"{tab.origin}/view/no-such-experiment")
    assert response is not None and response.status == 404
    expect(tab.page.locator("h1")).to_have_text("Experiment not found")
    expect(tab.page.get_by_role("link", name="Back to the experiments")).to_have_attribute(
        "href", "/"
    )
