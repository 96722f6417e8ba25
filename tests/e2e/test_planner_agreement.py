"""The planner page, ``abscope plan --json`` and ``POST /calculate`` give the same plan.

Each case is typed into the page in percent, given to the CLI in percent (``10%``) and to the
API in fractions; the users, days and warnings must match across the three. The cases cover
the new inputs: an absolute effect, three and four arms, a continuous metric, a one-sided
fixed-horizon test, a limit on the days and a CUPED correlation (whose plan without CUPED
must match too), at 1280 and 390 px.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from typer.testing import CliRunner

from abscope.cli import app
from tests.e2e.helpers import MakeTab, js_int
from tests.fixtures.uvicorn_server import UvicornServer

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

# name: (page fields, selects, CLI arguments, API body)
CASES: dict[str, tuple[dict[str, str], dict[str, str], list[str], dict[str, Any]]] = {
    "absolute-three-arms": (
        {"baseline_pct": "4", "min_effect": "0.5", "daily_traffic": "5000", "traffic_pct": "50",
         "arms": "3", "power_pct": "90", "alpha_pct": "1", "max_days": "30"},
        {"effect_scale": "absolute", "two_sided": "false", "sequential": "false"},
        ["--baseline-rate", "4%", "--min-absolute-effect", "0.5%", "--daily-traffic", "5000",
         "--allocation", "50%", "--arms", "3", "--power", "90%", "--alpha", "1%",
         "--max-days", "30", "--one-sided", "--fixed-horizon"],
        {"baseline_rate": 0.04, "min_absolute_effect": 0.005, "daily_traffic": 5000,
         "allocation": 0.5, "arms": 3, "power": 0.9, "alpha": 0.01, "max_days": 30,
         "two_sided": False, "sequential": False},
    ),
    "continuous-four-arms-sequential": (
        {"baseline_mean": "42", "standard_deviation": "30", "min_effect": "1.5",
         "daily_traffic": "2000", "arms": "4", "treatment_share_pct": "20"},
        {"metric_type": "continuous", "effect_scale": "absolute"},
        ["--metric", "continuous", "--baseline-mean", "42", "--std", "30",
         "--min-absolute-effect", "1.5", "--daily-traffic", "2000", "--arms", "4",
         "--treatment-share", "20%"],
        {"metric_type": "continuous", "baseline_mean": 42, "standard_deviation": 30,
         "min_absolute_effect": 1.5, "daily_traffic": 2000, "arms": 4, "treatment_share": 0.2},
    ),
    "relative-longer-than-a-year": (
        {"baseline_pct": "1", "min_effect": "2", "daily_traffic": "300"},
        {},
        ["--baseline-rate", "1%", "--min-relative-lift", "2%", "--daily-traffic", "300"],
        {"baseline_rate": 0.01, "min_relative_lift": 0.02, "daily_traffic": 300},
    ),
    "cuped-three-arms": (
        {"baseline_pct": "10", "min_effect": "5", "daily_traffic": "20000", "arms": "3",
         "covariate_correlation": "0.7"},
        {},
        ["--baseline-rate", "10%", "--min-relative-lift", "5%", "--daily-traffic", "20000",
         "--arms", "3", "--covariate-correlation", "0.7"],
        {"baseline_rate": 0.1, "min_relative_lift": 0.05, "daily_traffic": 20000, "arms": 3,
         "covariate_correlation": 0.7},
    ),
}  # fmt: skip
FIGURES = ("control_samples", "treatment_samples", "total_samples", "days")


def _type_in(page: Page, fields: dict[str, str], selects: dict[str, str]) -> None:
    for name, value in selects.items():
        page.locator(f"select[name={name}]").select_option(value)
    for name, value in fields.items():
        page.locator(f"input[name={name}]").fill(value)
    expect(page.locator("#error")).to_be_hidden()


def _cli_plan(arguments: list[str]) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["plan", *arguments, "--json"])
    assert result.exit_code == 0, result.output
    plan: dict[str, Any] = json.loads(result.output)
    return plan


# Every case at 1280 px; at 390 px two (the layout, not the numbers, depends on the width).
RUNS = [(1280, name) for name in CASES] + [(390, "absolute-three-arms"), (390, "cuped-three-arms")]


@pytest.mark.parametrize("width", [1280, 390])
def test_page_cli_and_api_give_the_same_plan(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client, width: int
) -> None:
    page = make_tab(server.url, viewport={"width": width, "height": 900}).open("/planner")
    expect(page.locator("#output")).to_be_visible()
    for name in (name for run_width, name in RUNS if run_width == width):
        fields, selects, arguments, body = CASES[name]
        response = api.post("/calculate", json=body)
        assert response.status_code == 200, response.text
        served = response.json()
        printed = _cli_plan(arguments)
        for figure in FIGURES:
            assert printed[figure] == served[figure], (name, figure)
        assert printed["fixed_horizon"] == served["fixed_horizon"], name
        assert printed["always_valid"] == served["always_valid"], name
        assert printed["warnings"] == served["warnings"], name
        assert printed["unadjusted"] == served["unadjusted"], name

        _type_in(page, fields, selects)
        expect(page.locator("#days")).to_have_text(js_int(served["days"]))
        for figure, element in zip(
            FIGURES,
            ("#control-samples", "#treatment-samples", "#total-samples", "#days"),
            strict=True,
        ):
            expect(page.locator(element)).to_have_text(js_int(served[figure]))
        warnings = page.locator("#plan-warnings p")
        expect(warnings).to_have_count(len(served["warnings"]))
        for i, warning in enumerate(served["warnings"]):
            expect(warnings.nth(i)).to_have_attribute("data-code", warning["code"])
            expect(warnings.nth(i)).to_have_text(warning["message"])
        cuped = page.locator("#plan-cuped")
        if served["unadjusted"] is None:
            expect(cuped).to_be_hidden()
        else:
            without = served["unadjusted"]
            expect(cuped).to_contain_text(f"With CUPED (ρ = {body['covariate_correlation']})")
            expect(page.locator("#cuped-adjusted")).to_have_text(
                f"{js_int(served['control_samples'])} users per arm, {js_int(served['days'])} days"
            )
            expect(page.locator("#cuped-unadjusted")).to_have_text(
                f" (instead of {js_int(without['control_samples'])} users per arm,"
                f" {js_int(without['days'])} days without it)"
            )
            assert without["days"] > served["days"], name
            # The correlation lives in the link, as every other input does.
            expect(page).to_have_url(re.compile(r"[?&]covariate_correlation=0\.7(&|$)"))
        if served["arms"] > 2:
            expect(page.locator("#plan-arms")).to_contain_text(
                f"{served['comparisons']} comparisons"
            )
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (name, overflow)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"planner-{name}-{width}.png", full_page=True)
        page.goto(f"{server.url}/planner")  # the next case starts from the defaults
        expect(page.locator("#output")).to_be_visible()
