"""The detail page of an experiment with traffic: the results tables, the four charts, the
decision, the explain box and the sample-ratio-mismatch banner."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import (
    RESULTS_ID,
    RESULTS_USERS,
    Tab,
    Tally,
    create_experiment,
    js_int,
    log_events,
    read_chart,
    route_users,
)

VARIANTS = ("control", "treatment")


def _open_results(tab: Tab) -> Page:
    page = tab.open(f"/view/{RESULTS_ID}")
    expect(page.locator("#variants-table tbody tr")).to_have_count(len(VARIANTS))
    return page


def test_traffic_sent_through_the_api_is_counted(
    results_traffic: dict[str, Tally], api: httpx.Client
) -> None:
    assert sum(t.users for t in results_traffic.values()) == len(RESULTS_USERS)
    assert all(t.users > 800 for t in results_traffic.values()), results_traffic
    results = api.get(f"/experiments/{RESULTS_ID}/results").json()
    counted = {v["name"]: (v["n"], v["conversions"]) for v in results["variants"]}
    assert counted == {name: (t.users, t.conversions) for name, t in results_traffic.items()}


def test_results_tables_show_what_was_sent(tab: Tab, results_traffic: dict[str, Tally]) -> None:
    page = _open_results(tab)
    expect(page.locator("#status .badge")).to_have_text("running")
    for name, tally in results_traffic.items():
        cells = page.locator(f'#variants-table tbody tr[data-variant="{name}"] td')
        expect(cells).to_have_count(7)
        expect(cells.nth(0)).to_contain_text(name)
        expect(cells.nth(2)).to_have_text("50%")
        expect(cells.nth(3)).to_have_text(js_int(tally.users))
        expect(cells.nth(4)).to_have_text(f"{tally.rate * 100:.2f}%")
    expect(page.locator('#variants-table tr[data-variant="control"] .badge')).to_have_text(
        "control"
    )
    rows = page.locator("#comparisons-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-variant", "treatment")
    lift = results_traffic["treatment"].rate - results_traffic["control"].rate
    expect(rows.first.locator("td").nth(1)).to_have_text(f"{lift * 100:+.2f}%")
    expect(page.locator("#decision")).not_to_be_empty()
    assert page.locator("#decision").inner_text().strip()
    expect(page.locator("#srm-banner")).to_be_hidden()
    expect(page.locator("#error")).to_be_hidden()


def test_charts_draw_a_trace_per_variant(tab: Tab, results_traffic: dict[str, Tally]) -> None:
    page = _open_results(tab)
    for element in ("chart-conversion", "chart-samples", "chart-posterior"):
        chart = read_chart(page, element)
        assert chart.svgs >= 1, element
        assert chart.scatter_traces >= len(VARIANTS), (element, chart)
        assert set(VARIANTS) <= set(chart.legend), (element, chart)
        assert "No data yet" not in chart.annotations, (element, chart)
    lift = read_chart(page, "chart-lift")
    assert lift.svgs >= 1
    assert lift.scatter_traces >= 1, lift
    assert "treatment" in lift.legend and "control" not in lift.legend, lift
    assert not lift.annotations, lift


def test_explain_shows_the_reason_and_buckets(
    tab: Tab, api: httpx.Client, results_traffic: dict[str, Tally]
) -> None:
    page = _open_results(tab)
    user = RESULTS_USERS[7]
    expected = api.get(f"/experiments/{RESULTS_ID}/explain", params={"user_id": user}).json()
    page.locator("#explain-user").fill(user)
    page.locator("#explain-form button[type=submit]").click()
    table = page.locator("#explain-table")
    expect(table).to_be_visible()
    rows = {
        row.locator("th").text_content(): row.locator("td").text_content()
        for row in table.locator("tr").all()
    }
    assert rows["Variant"] == expected["variant_name"] == route_users(api, RESULTS_ID, [user])[user]
    assert rows["Reason"] == expected["reason"] and rows["Reason"]
    assert float(rows["Variant bucket"]) == pytest.approx(expected["variant_bucket"], abs=1e-4)
    assert rows["Traffic gate bucket"].endswith("(in if below 1)"), rows
    assert rows["Ranges"] == "control [0, 0.5), treatment [0.5, 1)"
    assert rows["Forced"] == "no" and rows["Sticky"] == "no"

    # The id goes into the query string encoded, and comes back as typed.
    odd = "a b&c=d/é#x"
    page.locator("#explain-user").fill(odd)
    with page.expect_response(lambda r: "/explain?" in r.url) as answer:
        page.locator("#explain-form button[type=submit]").click()
    assert parse_qs(urlsplit(answer.value.url).query)["user_id"] == [odd]
    assert answer.value.json()["user_id"] == odd
    expect(page.locator("#explain-table")).to_be_visible()


def test_explain_reports_a_bad_user_id(tab: Tab, results_traffic: dict[str, Tally]) -> None:
    page = _open_results(tab)
    page.locator("#explain-user").fill("u" * 257)
    page.locator("#explain-form button[type=submit]").click()
    error = page.locator("#explain-result .field-error")
    expect(error).to_contain_text("user_id")
    expect(error).to_contain_text("at most 256 characters")
    expect(page.locator("#explain-table")).to_have_count(0)

    # An empty id is refused by the browser (the field is required): no request is made.
    before = len(tab.paths())
    page.locator("#explain-user").fill("")
    page.locator("#explain-form button[type=submit]").click()
    page.wait_for_timeout(300)
    assert not [p for p in tab.paths()[before:] if "/explain" in p]
    expect(error).to_contain_text("user_id")


def test_srm_banner_when_traffic_is_unbalanced(tab: Tab, api: httpx.Client) -> None:
    experiment_id = "e2e-srm"
    create_experiment(api, experiment_id)
    assigned = route_users(api, experiment_id, [f"srm-{i:04d}" for i in range(800)])
    # Every control user is logged, but only one treatment user in four: a logging bug.
    treatment = [u for u, v in assigned.items() if v == "treatment"]
    logged = [u for u, v in assigned.items() if v == "control"] + treatment[::4]
    log_events(
        api,
        [
            {
                "experiment_id": experiment_id,
                "user_id": user,
                "variant_name": assigned[user],
                "kind": "exposure",
            }
            for user in logged
        ],
    )
    assert api.get(f"/experiments/{experiment_id}/results").json()["srm"]["mismatch"] is True

    page = tab.open(f"/view/{experiment_id}")
    banner = page.locator("#srm-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Sample ratio mismatch")
    page = tab.open("/?status=running")
    expect(page.locator(f'#experiments tr[data-id="{experiment_id}"] .badge.srm')).to_have_text(
        "SRM"
    )


def test_a_bandit_experiment_explains_its_adaptive_split(tab: Tab, api: httpx.Client) -> None:
    """A Thompson experiment moves traffic on purpose: no SRM banner, and a note on why its
    plain rates are biased and what the logged probabilities allow."""
    experiment_id = "e2e-bandit"
    create_experiment(api, experiment_id, allocation="thompson")
    for i in range(300):  # /route records each exposure with its assignment probability
        answer = api.post("/route", json={"user_id": f"b-{i:04d}", "experiment_id": experiment_id})
        assert answer.status_code == 200 and answer.json()["exposure_recorded"], answer.text
    results = api.get(f"/experiments/{experiment_id}/results").json()
    assert results["srm_method"] == "adaptive" and results["srm"]["mismatch"] is False
    page = tab.open(f"/view/{experiment_id}")
    note = page.locator("#adaptive-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("inverse-probability weighting")
    expect(page.locator("#srm-banner")).to_be_hidden()
