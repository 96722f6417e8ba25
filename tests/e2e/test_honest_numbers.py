"""The dashboard shows what the numbers mean: an undefined value is an em dash with its
reason on hover, every interval and badge comes from the experiment's inference mode (the
list, the detail page and the API agree), and the pre-registered design is set in the form
and changed on the detail page."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Page, expect

from abscope.assignment import bucket, variant_salt
from tests.e2e.helpers import Tab, create_experiment, log_events, route_users

DASH = "\u2014"


def _traffic(api: httpx.Client, experiment_id: str, arms: dict[str, tuple[int, int]]) -> None:
    """``arms`` maps a variant to (users, converters): exposures and conversions via /events.

    Users are picked by the pure hash (a 50/50 split, full traffic, phase 0), so each is
    logged in the variant it is assigned; a sample is checked against ``/route``.
    """
    salt = variant_salt(experiment_id)
    users: dict[str, list[str]] = {name: [] for name in arms}
    i = 0
    while any(len(users[name]) < n for name, (n, _) in arms.items()):
        user = f"{experiment_id}-u{i}"
        variant = "control" if bucket(user, salt) < 0.5 else "treatment"
        if len(users[variant]) < arms[variant][0]:
            users[variant].append(user)
        i += 1
    sample = {u: v for v, names in users.items() for u in names[:3]}
    assert route_users(api, experiment_id, sample) == sample
    events: list[dict[str, Any]] = []
    for variant, (_, converters) in arms.items():
        for k, user in enumerate(users[variant]):
            base = {"experiment_id": experiment_id, "user_id": user, "variant_name": variant}
            events.append({**base, "kind": "conversion" if k < converters else "exposure"})
    log_events(api, events)


def _pct(x: float) -> str:
    """abscope.signedPct: one decimal, a sign."""
    return f"{'+' if x >= 0 else ''}{x * 100:.1f}%"


def _row(page: Page, experiment_id: str) -> Any:
    return page.locator(f'#experiments tbody tr[data-id="{experiment_id}"]')


def test_a_zero_baseline_shows_a_dash_with_the_reason(tab: Tab, api: httpx.Client) -> None:
    experiment_id = "e2e-zero-baseline"
    create_experiment(api, experiment_id)
    _traffic(api, experiment_id, {"control": (100, 0), "treatment": (100, 5)})
    results = api.get(f"/experiments/{experiment_id}/results").json()
    assert results["relative_lift"] is None
    assert results["null_reasons"]["relative_lift"] == "zero_baseline"

    page = tab.open(f"/view/{experiment_id}")
    cells = page.locator('#comparisons-table tbody tr[data-variant="treatment"] td')
    expect(cells).to_have_count(10)
    for index in (3, 4):  # the relative lift and its interval
        expect(cells.nth(index)).to_have_text(DASH)
        expect(cells.nth(index)).to_have_attribute("title", "the control has no conversions"
                                                   " (or a zero mean), so a relative lift is"
                                                   " undefined (zero_baseline)")  # fmt: skip
    expect(cells.nth(1)).to_have_text("+5.00%")  # the absolute difference is defined
    expect(cells.nth(9)).to_have_text(DASH)  # power: no minimum lift
    expect(cells.nth(9)).to_have_attribute("data-reason", "no_min_lift")
    expect(page.locator("#decision-detail")).to_contain_text("no minimum relative lift is set")
    page.screenshot(path="test-artifacts/honest-zero-baseline-detail.png", full_page=True)

    page = tab.open("/")
    lift = _row(page, experiment_id).locator("td").nth(4)
    expect(lift).to_have_text(DASH)
    expect(lift).to_have_attribute("data-reason", "zero_baseline")
    assert "0.0%" not in _row(page, experiment_id).inner_text()


def test_list_detail_and_api_agree_on_the_mode_in_force(tab: Tab, api: httpx.Client) -> None:
    """3,000 users an arm, 10% against 12%: the fixed-horizon CI excludes zero (p = 0.013)
    but the always-valid sequence does not (p = 0.20). A sequential experiment shows the
    sequence, no "significant" badge, and "Keep running"; the fixed-horizon figures appear
    only in the reference column."""
    arms = {"control": (3000, 300), "treatment": (3000, 360)}
    for experiment_id, sequential in (("e2e-mode-seq", True), ("e2e-mode-fixed", False)):
        create_experiment(api, experiment_id, sequential=sequential, min_relative_lift=0.2)
        _traffic(api, experiment_id, arms)
    seq = api.get("/experiments/e2e-mode-seq/results").json()
    fixed = api.get("/experiments/e2e-mode-fixed/results").json()
    assert seq["inference"] == "sequential" and not seq["is_significant"]
    assert fixed["inference"] == "fixed_horizon" and fixed["is_significant"]
    assert seq["decision"]["verdict"] == "keep_running"
    assert fixed["decision"]["verdict"] == "winner"

    page = tab.open("/")
    for experiment_id, results in (("e2e-mode-seq", seq), ("e2e-mode-fixed", fixed)):
        row = _row(page, experiment_id)
        low, high = results["relative_lift_interval"]
        interval = row.locator("td").nth(5)
        expect(interval).to_have_text(f"{_pct(low)} to {_pct(high)}")
        expect(interval).to_have_attribute("data-basis", results["inference"])
        significant = row.locator(".badge.significant")
        expect(significant).to_have_count(1 if results["is_significant"] else 0)
    # The sequential row's interval spans zero, next to no "significant" badge.
    low, high = seq["relative_lift_interval"]
    assert low < 0 < high
    page.screenshot(path="test-artifacts/honest-list-modes.png", full_page=True)

    page = tab.open("/view/e2e-mode-seq")
    row = page.locator('#comparisons-table tbody tr[data-variant="treatment"]')
    expect(row).to_have_attribute("data-basis", "sequential")
    expect(page.locator("#relative-ci-heading")).to_have_text("CS (relative)")
    expect(page.locator("#secondary-heading")).to_have_text("Fixed-horizon (reference)")
    expect(row.locator("td").nth(4)).to_have_text(f"{_pct(low)} to {_pct(high)}")
    p = seq["p_value"]
    expect(row.locator("td").nth(6)).to_have_text(f"{p:.4f}")
    secondary = seq["comparisons"][0]["secondary"]["relative_ci"]
    expect(row.locator("td").nth(8)).to_contain_text(
        f"{_pct(secondary['lower'])} to {_pct(secondary['upper'])}"
    )
    expect(row.locator("td").nth(0)).to_contain_text("not yet")
    expect(page.locator("#decision")).to_contain_text("Keep running")
    page.screenshot(path="test-artifacts/honest-detail-sequential.png", full_page=True)

    page = tab.open("/view/e2e-mode-fixed")
    expect(page.locator("#relative-ci-heading")).to_have_text("CI (relative)")
    expect(page.locator("#secondary-heading")).to_have_text("Sequential (reference)")
    low, high = fixed["relative_lift_interval"]
    decision = page.locator("#decision")
    expect(decision).to_contain_text(f"CI {_pct(low)} to {_pct(high)}")


def test_the_design_is_set_in_the_form_and_changed_on_the_detail_page(
    tab: Tab, api: httpx.Client
) -> None:
    page = tab.open("/new")
    page.locator("input[name=name]").fill("Design from the form")
    page.locator("input[name=id]").fill("e2e-design")
    page.locator("input[name=min_relative_lift]").fill("5")
    page.locator("input[name=power]").fill("3")  # below alpha: refused beside the field
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.locator("#submit").click()
    assert answer.value.status == 422
    expect(page.locator('.field-error[data-field="power"]')).to_contain_text("alpha")
    page.locator("input[name=power]").fill("90")
    page.locator("#submit").click()
    page.wait_for_url("**/view/e2e-design")
    created = api.get("/experiments/e2e-design").json()
    assert (created["min_relative_lift"], created["power"]) == (0.05, 0.9)
    expect(page.locator("#config-summary")).to_contain_text("minimum lift +5.0% · power 90%")

    assert api.post("/experiments/e2e-design/start").status_code == 200
    page = tab.open("/view/e2e-design")
    expect(page.locator("#design")).to_be_enabled()
    page.locator("#design-lift").fill("")
    page.locator("#design-power").fill("80")
    with page.expect_response(lambda r: r.request.method == "PATCH"):
        page.locator("#design").click()
    expect(page.locator("#config-summary")).to_contain_text("no minimum lift set · power 80%")
    changed = api.get("/experiments/e2e-design").json()
    assert changed["min_relative_lift"] is None and changed["power"] == 0.8
    assert changed["audit"][-1]["changes"] == {
        "power": {"from": 0.9, "to": 0.8},
        "min_relative_lift": {"from": 0.05, "to": None},
    }
    expect(page.locator("#audit li").last).to_contain_text(
        "power 90% \u2192 80%; minimum lift +5.0% \u2192 none"
    )
