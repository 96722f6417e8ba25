"""The detail page's CUPED section and its two sample-ratio checks, read against the API.

* An experiment whose users carry a pre-exposure covariate shows the adjusted difference and
  its interval beside the unadjusted ones, the variance reduction, θ and why, the users with
  a covariate and the inference mode, each figure as ``GET /results`` gives it.
* Without covariates a quiet line says how to send them, and no CUPED panel is drawn.
* The SRM banner names the test that raised it: both checks when the split is far off, the
  χ² check alone (saying the sequential one, valid under peeking, does not alarm) when it is
  off by a margin only a one-look test calls; both p-values are listed under the variants.
"""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import MakeTab, create_experiment, js_int, log_events, route_users
from tests.fixtures.uvicorn_server import UvicornServer

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


# The pages' formatting (app.js), in Python. ``Number.toFixed`` rounds the double's exact
# value, ties away from zero (90.5 is "91"); Python's format rounds ties to even.
def _fixed(x: float, digits: int) -> str:
    exact = Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return f"{exact:.{digits}f}"


def _signed_pct(x: float, digits: int = 2) -> str:
    return f"{'+' if x >= 0 else ''}{_fixed(x * 100, digits)}%"


def _pct(x: float, digits: int) -> str:
    return f"{_fixed(x * 100, digits)}%"


def _js_num(x: float) -> str:
    """``abscope.num``: ``toLocaleString("en-US", {maximumSignificantDigits: 4})``."""
    text = f"{float(f'{x:.4g}'):,.10f}".rstrip("0").rstrip(".")
    return text


def _p_value(p: float) -> str:
    return "<0.0001" if p < 0.0001 else _fixed(p, 4)


def _cuped_experiment(
    api: httpx.Client, experiment_id: str, weights: tuple[float, float] = (0.5, 0.5)
) -> dict[str, Any]:
    """600 users, nine in ten with a covariate that predicts conversion (seeded), the
    treatment converting a little more; the results after logging them."""
    variants = (("control", "ranker-v1", weights[0]), ("treatment", "ranker-v2", weights[1]))
    create_experiment(api, experiment_id, variants=variants)
    assigned = route_users(api, experiment_id, [f"cu-{i:04d}" for i in range(600)])
    rng = random.Random(2013)
    events: list[dict[str, Any]] = []
    for user, variant in assigned.items():
        assert variant is not None
        base = {"experiment_id": experiment_id, "user_id": user, "variant_name": variant}
        covariate = rng.random()
        exposure: dict[str, Any] = {**base, "kind": "exposure"}
        if rng.random() < 0.9:
            exposure["covariate"] = round(covariate, 3)
        events.append(exposure)
        lift = 0.08 if variant == "treatment" else 0.0
        if rng.random() < 0.02 + 0.9 * covariate + lift:
            events.append({**base, "kind": "conversion"})
    log_events(api, events)
    results: dict[str, Any] = api.get(f"/experiments/{experiment_id}/results").json()
    return results


@pytest.mark.parametrize("width", [1280, 390])
def test_the_cuped_section_shows_the_apis_figures_beside_the_unadjusted_ones(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client, width: int
) -> None:
    experiment_id = f"e2e-cuped-{width}"
    results = _cuped_experiment(api, experiment_id)
    section = results["cuped"]
    assert section is not None and section["covariate_users"] < section["users"]
    (c,) = section["comparisons"]
    assert c["inference"] == "sequential" and c["theta_method"] == "pooled"
    assert c["variance_reduction"] > 0.1  # the covariate explains a good part of the noise
    (plain,) = results["comparisons"]
    tab = make_tab(server.url, viewport={"width": width, "height": 900})
    page = tab.open(f"/view/{experiment_id}")
    panel = page.locator("#cuped-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#cuped-absent")).to_be_hidden()
    row = page.locator('#cuped-table tbody tr[data-variant="treatment"]')
    lower, upper = c["difference_interval"]
    unadjusted = plain["primary"]["absolute_ci"]
    shown = {
        "difference": _signed_pct(c["difference"]),
        "difference_interval": f"{_signed_pct(lower)} to {_signed_pct(upper)}",
        "unadjusted_difference": _signed_pct(c["unadjusted_difference"]),
        "unadjusted_interval": f"{_signed_pct(unadjusted['lower'])} to"
        f" {_signed_pct(unadjusted['upper'])}",
        "p_value": _p_value(c["p_value"]),
        "variance_reduction": _pct(c["variance_reduction"], 1),
    }
    for field, text in shown.items():
        expect(row.locator(f'[data-field="{field}"]')).to_have_text(text)
    # The unadjusted difference is the plain comparison's, in the same mode.
    assert c["unadjusted_difference"] == pytest.approx(plain["absolute"]["estimate"], abs=1e-12)
    expect(row.locator('[data-field="theta"]')).to_contain_text("pooled, θ = ")
    expect(row.locator('[data-field="theta"]')).to_have_attribute("title", c["theta_reason"])
    expect(page.locator("#cuped-theta")).to_contain_text(c["theta_reason"])
    coverage = section["covariate_users"] / section["users"]
    expect(page.locator("#cuped-coverage")).to_have_text(
        f"{js_int(section['covariate_users'])} of {js_int(section['users'])} users have a"
        f" covariate ({_pct(coverage, 0)})."
    )
    mode = page.locator("#cuped-mode")
    expect(mode).to_have_attribute("data-inference", "sequential")
    expect(mode).to_contain_text("Lindon")
    expect(page.locator("#cuped-ci-heading")).to_have_text("Adjusted CS")
    expect(page.locator("#cuped-note")).to_contain_text("Deng")
    expect(page.locator("#cuped-note")).to_contain_text("mean of the observed covariates")
    # The sample-ratio checks: both p-values, as the API gives them; no alarm here.
    figures = page.locator("#srm-checks-figures")
    expect(figures).to_contain_text(f"p = {_p_value(results['srm']['p_value'])}")
    expect(figures).to_contain_text(f"p = {_p_value(results['srm_sequential']['p_value'])}")
    expect(page.locator("#srm-banner")).to_be_hidden()
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, overflow
    SHOTS.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=SHOTS / f"detail-cuped-{width}.png")
    page.screenshot(path=SHOTS / f"detail-cuped-page-{width}.png", full_page=True)
    assert tab.script_errors == []


def test_an_unequal_split_shows_both_slopes_and_why(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client
) -> None:
    results = _cuped_experiment(api, "e2e-cuped-unequal", weights=(0.7, 0.3))
    (c,) = results["cuped"]["comparisons"]
    assert c["theta_method"] == "per_arm" and c["theta_control"] != c["theta_treatment"]
    page = make_tab(server.url).open("/view/e2e-cuped-unequal")
    theta = page.locator('#cuped-table tr[data-variant="treatment"] [data-field="theta"]')
    expect(theta).to_have_text(
        f"per arm, θ = {_js_num(c['theta_control'])} (control),"
        f" {_js_num(c['theta_treatment'])} (treatment)"
    )
    expect(page.locator("#cuped-theta")).to_contain_text("Lin (2013)")


def test_without_covariates_a_quiet_line_says_how_to_send_them(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client
) -> None:
    experiment_id = "e2e-no-covariates"
    create_experiment(api, experiment_id)
    assigned = route_users(api, experiment_id, [f"nc-{i:03d}" for i in range(40)])
    log_events(
        api,
        [{"experiment_id": experiment_id, "user_id": u, "variant_name": v, "kind": "exposure"}
         for u, v in assigned.items()],
    )  # fmt: skip
    results = api.get(f"/experiments/{experiment_id}/results").json()
    assert results["cuped"] is None and results["null_reasons"]["cuped"] == "no_covariates"
    page = make_tab(server.url).open(f"/view/{experiment_id}")
    absent = page.locator("#cuped-absent")
    expect(absent).to_be_visible()
    expect(absent).to_contain_text("No covariates sent: send covariate")
    expect(page.locator("#cuped-panel")).to_be_hidden()


def _unbalanced(api: httpx.Client, experiment_id: str, control: int, treatment: int) -> None:
    """Log ``control`` exposures of control users and ``treatment`` of treatment users."""
    create_experiment(api, experiment_id)
    assigned = route_users(api, experiment_id, [f"{experiment_id}-{i:04d}" for i in range(1000)])
    chosen = [u for u, v in assigned.items() if v == "control"][:control]
    chosen += [u for u, v in assigned.items() if v == "treatment"][:treatment]
    assert len(chosen) == control + treatment
    log_events(
        api,
        [{"experiment_id": experiment_id, "user_id": u, "variant_name": assigned[u],
          "kind": "exposure"} for u in chosen],
    )  # fmt: skip


def _banner(page: Page) -> str:
    banner = page.locator("#srm-banner")
    expect(banner).to_be_visible()
    return str(banner.get_attribute("data-raised-by"))


def test_the_srm_banner_names_the_test_that_raised_it(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client
) -> None:
    # 234 against 166 of a 50/50 split: chi-square p < 0.001, the sequential p about 0.02.
    _unbalanced(api, "e2e-srm-chi", 234, 166)
    results = api.get("/experiments/e2e-srm-chi/results").json()
    assert results["srm"]["mismatch"] and not results["srm_sequential"]["mismatch"]
    tab = make_tab(server.url)
    page = tab.open("/view/e2e-srm-chi")
    assert _banner(page) == "chi_square"
    banner = page.locator("#srm-banner")
    expect(banner).to_contain_text(f"the χ² check (valid when read once): p = "
                                   f"{_p_value(results['srm']['p_value'])}")  # fmt: skip
    expect(banner).to_contain_text("The sequential check, safe under daily peeking, does not alarm")
    expect(page.locator("#srm-checks")).to_contain_text("Lindon & Malek 2022")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "detail-srm-chi-only.png")

    # 300 against 60: both checks alarm, and the banner names both.
    _unbalanced(api, "e2e-srm-both", 300, 60)
    both = api.get("/experiments/e2e-srm-both/results").json()
    assert both["srm"]["mismatch"] and both["srm_sequential"]["mismatch"]
    page = tab.open("/view/e2e-srm-both")
    assert _banner(page) == "sequential chi_square"
    banner = page.locator("#srm-banner")
    expect(banner).to_contain_text(
        f"the sequential check (valid at every look): p = "
        f"{_p_value(both['srm_sequential']['p_value'])}"
    )
    expect(banner).not_to_contain_text("does not alarm")
