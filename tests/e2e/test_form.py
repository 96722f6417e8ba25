"""The create form at 1280 and 390 px: weights in percent that split equally as rows come and
go (three rows of 33.33% are accepted, stored as fractions summing to 1), the decision
fields and forced variants reach the API, and refused values are explained in sentences."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import MakeTab
from tests.fixtures.uvicorn_server import UvicornServer

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WIDTHS = [1280, 390]
SLUG_RULE = "Use lower-case letters, digits, - and _ (up to 64), starting with a letter or digit."


def _open(make_tab: MakeTab, server: UvicornServer, width: int, path: str = "/new") -> Page:
    return make_tab(server.url, viewport={"width": width, "height": 900}).open(path)


def _weights(page: Page) -> list[str]:
    return page.locator("#variants [name=variant-weight]").evaluate_all(
        "nodes => nodes.map(n => n.value)"
    )


def _fits(page: Page, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll} px wide in a {width} px window"


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / name, full_page=True)


@pytest.mark.parametrize("width", WIDTHS)
def test_weights_rebalance_and_thirds_are_stored_as_fractions_summing_to_one(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client, width: int
) -> None:
    page = _open(make_tab, server, width)
    assert _weights(page) == ["50", "50"]
    expect(page.locator("#weight-total")).to_have_text("Total 100%")
    expect(page.locator("#variants button.remove").first).to_be_disabled()  # two at least
    page.locator("#add-variant").click()
    assert _weights(page) == ["33.33", "33.33", "33.34"]
    page.locator("#add-variant").click()
    assert _weights(page) == ["25", "25", "25", "25"]
    page.locator("#variants .variant-row").nth(1).locator("button.remove").click()
    assert _weights(page) == ["33.33", "33.33", "33.34"]
    expect(page.locator("#weight-total")).to_have_text("Total 100%")

    rows = page.locator("#variants .variant-row")
    rows.nth(2).locator("[name=variant-weight]").fill("33.33")  # 99.99% in all: a rounding
    expect(page.locator("#weight-total")).to_have_text("Total 99.99%")
    expect(page.locator("#weight-total")).not_to_have_class("form-total off")
    rows.nth(1).locator("[name=variant-model]").fill("model-v2")  # a new row's model is blank
    rows.nth(2).locator("[name=variant-name]").fill("fast")
    rows.nth(2).locator("[name=variant-model]").fill("model-v3")
    experiment_id = f"e2e-form-thirds-{width}"
    page.locator("input[name=name]").fill(f"Thirds at {width}")
    page.locator("input[name=id]").fill(experiment_id)
    page.locator("input[name=confidence_level]").fill("90")
    page.locator("input[name=min_sample_size]").fill("1000")
    page.locator("input[name=min_relative_lift]").fill("5")
    page.locator("input[name=power]").fill("85")
    page.locator("#add-forced").click()
    forced = page.locator("#forced .forced-row").first
    forced.locator("[name=forced-user]").fill("qa-tester")
    forced.locator("[name=forced-variant]").select_option("fast")
    _fits(page, width)
    _shot(page, f"new-thirds-{width}.png")
    page.locator("#submit").click()
    page.wait_for_url(f"**/view/{experiment_id}")

    stored = api.get(f"/experiments/{experiment_id}").json()
    weights = [v["weight"] for v in stored["variants"]]
    assert abs(math.fsum(weights) - 1.0) <= 1e-9
    assert weights == pytest.approx([1 / 3] * 3, abs=1e-12)
    assert [v["name"] for v in stored["variants"]] == ["control", "variant-2", "fast"]
    assert stored["confidence_level"] == pytest.approx(0.9, abs=1e-12)
    assert stored["min_sample_size"] == 1000
    assert stored["min_relative_lift"] == pytest.approx(0.05, abs=1e-12)
    assert stored["power"] == pytest.approx(0.85, abs=1e-12)
    assert stored["forced_variants"] == {"qa-tester": "fast"}


@pytest.mark.parametrize("width", WIDTHS)
def test_refused_values_are_explained_in_sentences_beside_their_fields(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client, width: int
) -> None:
    tab = make_tab(server.url, viewport={"width": width, "height": 900})
    page = tab.open("/new")
    name = f"Refused at {width}"
    page.locator("input[name=name]").fill(name)
    rows = page.locator("#variants .variant-row")
    rows.nth(1).locator("[name=variant-weight]").fill("60")
    expect(page.locator("#weight-total")).to_have_text("Total 110%")
    expect(page.locator("#weight-total")).to_have_class("form-total off")
    page.locator("#submit").click()
    expect(page.locator('.field-error[data-field="variants"]')).to_have_text(
        "The weights add up to 110%; they must add up to 100%."
    )
    assert tab.paths("POST") == []  # refused in the page: nothing was sent
    rows.nth(1).locator("[name=variant-weight]").fill("0")
    page.locator("#submit").click()
    expect(rows.nth(1).locator('[data-variant-field="weight"]')).to_have_text(
        "Give a weight above 0%."
    )
    assert tab.paths("POST") == []

    rows.nth(1).locator("[name=variant-weight]").fill("50")
    rows.nth(1).locator("[name=variant-name]").fill("Treatment B")
    page.locator("input[name=name]").fill("   ")
    page.locator("input[name=id]").fill("Not A Slug")
    page.locator("input[name=traffic_percentage]").fill("120")
    page.locator("input[name=confidence_level]").fill("40")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.locator("#submit").click()
    assert answer.value.status == 422
    # The API keeps its precise locations and types; the page puts them in words.
    issues = {tuple(d["loc"]): d["type"] for d in answer.value.json()["detail"]}
    assert issues[("body", "id")] == "string_pattern_mismatch"
    assert issues[("body", "variants", 1, "name")] == "string_pattern_mismatch"
    expect(page.locator('.field-error[data-field="name"]')).to_have_text("Give a name.")
    expect(page.locator('.field-error[data-field="id"]')).to_have_text(SLUG_RULE)
    expect(rows.nth(1).locator('[data-variant-field="name"]')).to_have_text(SLUG_RULE)
    expect(page.locator('.field-error[data-field="traffic_percentage"]')).to_have_text(
        "Traffic is a percentage above 0 and at most 100."
    )
    expect(page.locator('.field-error[data-field="confidence_level"]')).to_have_text(
        "The confidence level is a percentage above 50 and below 100 (95 is usual)."
    )
    expect(page.locator('.field-error[data-field="variants"]')).to_be_empty()
    _fits(page, width)
    _shot(page, f"new-errors-{width}.png")

    rows.nth(1).locator("[name=variant-name]").fill("treatment")
    page.locator("input[name=name]").fill(name)
    page.locator("input[name=id]").fill("")
    page.locator("input[name=traffic_percentage]").fill("100")
    page.locator("input[name=confidence_level]").fill("95")
    page.locator("input[name=power]").fill("3")
    page.locator("#add-metric").click()
    page.locator("#add-metric").click()
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.locator("#submit").click()
    assert answer.value.status == 422
    expect(page.locator('.field-error[data-field="power"]')).to_have_text(
        "Power must be above 5% (alpha: 100% minus the confidence level)."
    )
    page.locator("input[name=power]").fill("80")
    metric = page.locator("#metrics .metric-row")
    metric.nth(1).locator("[name=metric-name]").fill("metric-1")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.locator("#submit").click()
    assert answer.value.status == 422
    expect(page.locator('.field-error[data-field="metrics"]')).to_have_text(
        "Each metric needs its own name: metric-1 is repeated."
    )
    expect(page.locator('.field-error[data-field="power"]')).to_be_empty()
    assert name not in {x["name"] for x in api.get("/experiments").json()["experiments"]}
    metric.nth(1).locator("[name=metric-name]").fill("metric-2")
    page.locator("#submit").click()
    page.wait_for_url("**/view/refused-at-*")
    assert name in {x["name"] for x in api.get("/experiments").json()["experiments"]}


_SPLITS = """() => {
  const out = [];
  for (let n = 2; n <= 32; n++) {
    const split = equalSplit(n);
    const shares = fractions(split);
    out.push({ n, split, shares, accepted: weightsAddUp(split) });
  }
  return out;
}"""


def test_every_equal_split_is_accepted_and_its_fractions_sum_to_one(
    make_tab: MakeTab, server: UvicornServer
) -> None:
    # The page's own functions, for every row count the API allows (2-32).
    page = _open(make_tab, server, 1280)
    for case in page.evaluate(_SPLITS):
        split, shares = case["split"], case["shares"]
        assert case["accepted"], case
        assert math.fsum(split) == pytest.approx(100.0, abs=1e-9), case
        assert max(split) - min(split) <= 0.01 * len(split), case
        assert abs(math.fsum(shares) - 1.0) <= 1e-9 and min(shares) > 0, case
    # Rounded by hand, the weights may be off 100 by 0.05 points a row, and no more.
    checks = page.evaluate(
        "() => [[33.3, 33.3, 33.3], [33.33, 33.33, 33.33], [16.7, 16.7, 16.7, 16.7, 16.7, 16.7],"
        " [33, 33, 33], [50, 49.8], [50, 50.2], [60, 40, 0]].map(weightsAddUp)"
    )
    assert checks == [True, True, True, False, False, False, False]
    thirds = page.evaluate("fractions([33.33, 33.33, 33.33])")
    assert thirds == pytest.approx([1 / 3] * 3, abs=1e-15)


_VARIANTS = [
    {"name": "control", "model_id": "m1", "weight": 0.5},
    {"name": "treatment", "model_id": "m2", "weight": 0.5},
]
# A bad create body, and the sentence the page gives for the API's first issue with it.
_IN_WORDS = [
    ({"layer": "Checkout Page"}, SLUG_RULE),
    ({"name": "x" * 201}, "Too long: at most 200 characters."),
    ({"min_sample_size": -1}, "The minimum sample size is a whole number of users, 0 or more."),
    ({"min_sample_size": 2.5}, "The minimum sample size is a whole number of users, 0 or more."),
    ({"min_relative_lift": 0}, "The target lift is a percentage above -100 and not 0 (5 for +5%)."),
    ({"power": 0.01}, "Power must be above 5% (alpha: 100% minus the confidence level)."),
    (
        {"variants": [{**v, "weight": 0.6} for v in _VARIANTS]},
        "The weights add up to 120%; they must add up to 100%.",
    ),
    (
        {"variants": [_VARIANTS[0], {**_VARIANTS[1], "name": "control"}]},
        "Each variant needs its own name: control is repeated.",
    ),
    (
        {"forced_variants": {"qa-1": "nobody"}},
        "No variant is named nobody: choose one of the variants above.",
    ),
    (
        {
            "metric_type": "binary",
            "metrics": [{"name": "revenue", "kind": "mean", "role": "primary"}],
        },
        "With metric type binary, the primary metric's kind is binary.",
    ),
    (
        {"metrics": [{"name": "latency", "kind": "ratio", "role": "guardrail"}]},
        "A guardrail needs a margin (5 allows 5% worse).",
    ),
]


def test_the_apis_issues_are_put_in_words(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client
) -> None:
    page = _open(make_tab, server, 390)
    for change, sentence in _IN_WORDS:
        body = {"name": "In words", "variants": _VARIANTS, **change}
        response = api.post("/experiments", json=body)
        assert response.status_code == 422, (change, response.text)
        issue = response.json()["detail"][0]
        assert page.evaluate("humanMessage", issue) == sentence, (change, issue)
    assert "In words" not in {x["name"] for x in api.get("/experiments").json()["experiments"]}
