"""The detail page's CUPED panel lists named metrics adjusted by their own covariates, each
figure as ``GET /results`` gives it (real Chromium).

An experiment with a mean secondary (``basket_value``) and a binary guardrail (``clicked``),
both with covariates on the exposures and the primary with none: the panel shows the named
metrics' table (the primary's own table hidden, its "no covariates" line shown), with the
adjusted difference and interval of the inference mode, the unadjusted difference, the
p-value, the secondary's corrected p (the guardrail's "not corrected") and the variance
removed; the note says the guardrail's verdict stays unadjusted. At 1280 and 390 px.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import MakeTab, create_experiment, log_events, route_users
from tests.e2e.test_cuped_srm_views import _js_num, _p_value, _pct, _signed_pct
from tests.fixtures.uvicorn_server import UvicornServer

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
METRICS = [
    {"name": "basket_value", "kind": "mean", "role": "secondary"},
    {"name": "clicked", "kind": "binary", "role": "guardrail", "margin": 0.5},
]


def _experiment(api: httpx.Client, experiment_id: str) -> dict[str, Any]:
    create_experiment(api, experiment_id, metrics=METRICS)
    assigned = route_users(api, experiment_id, [f"mc-{i:04d}" for i in range(400)])
    rng = random.Random(7)
    events: list[dict[str, Any]] = []
    for user, variant in assigned.items():
        assert variant is not None
        base = {"experiment_id": experiment_id, "user_id": user, "variant_name": variant}
        before = rng.randint(0, 40)
        clicks_before = round(rng.random(), 3)
        covariates = {"basket_value": before, "clicked": clicks_before}
        events.append({**base, "kind": "exposure", "covariates": covariates})
        lift = 3 if variant == "treatment" else 0
        events.append({**base, "kind": "value", "metric": "basket_value",
                       "value": before + lift + rng.randint(-5, 5)})  # fmt: skip
        if rng.random() < 0.05 + 0.9 * clicks_before:
            events.append({**base, "kind": "conversion", "metric": "clicked"})
    log_events(api, events)
    results: dict[str, Any] = api.get(f"/experiments/{experiment_id}/results").json()
    return results


@pytest.mark.parametrize("width", [1280, 390])
def test_the_cuped_panel_lists_named_metrics_as_the_api_gives_them(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client, width: int
) -> None:
    experiment_id = f"e2e-metric-cuped-{width}"
    results = _experiment(api, experiment_id)
    assert results["cuped"] is None
    blocks = {m["name"]: m["cuped"] for m in results["metrics"] if m["cuped"]}
    assert set(blocks) == {"basket_value", "clicked"}
    tab = make_tab(server.url, viewport={"width": width, "height": 900})
    page = tab.open(f"/view/{experiment_id}")
    panel = page.locator("#cuped-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#cuped-primary")).to_be_hidden()
    expect(page.locator("#cuped-absent")).to_contain_text("No covariates sent")
    for name, block in blocks.items():
        (c,) = block["comparisons"]
        assert c["variance_reduction"] > 0.1, name  # the covariates explain much of the noise
        binary = block["outcome"] == "conversion"

        def diff(x: float, binary: bool = binary) -> str:
            return _signed_pct(x) if binary else _js_num(x)

        row = page.locator(
            f'#cuped-metrics-table tr[data-metric="{name}"][data-variant="treatment"]'
        )
        lower, upper = c["difference_interval"]
        shown = {
            "metric": f"{name} ({block['role']})",
            "difference": diff(c["difference"]),
            "difference_interval": f"{diff(lower)} to {diff(upper)}",
            "unadjusted_difference": diff(c["unadjusted_difference"]),
            "p_value": _p_value(c["p_value"]),
            "variance_reduction": _pct(c["variance_reduction"], 1),
        }
        if block["role"] == "secondary":
            shown["adjusted_p_value"] = _p_value(c["adjusted_p_value"])
        else:
            shown["adjusted_p_value"] = "not corrected"
        for field, text in shown.items():
            expect(row.locator(f'[data-field="{field}"]')).to_have_text(text)
        expect(row.locator('[data-field="adjusted_p_value"]')).to_have_attribute(
            "title", c["p_value_correction"]
        )
        expect(row.locator('[data-field="theta"]')).to_have_attribute("title", c["theta_reason"])
    sequential = results["metrics"][1]["cuped"]["comparisons"][0]["inference"] == "sequential"
    expect(page.locator("#cuped-metrics-ci-heading")).to_have_text(
        f"Adjusted {'CS' if sequential else 'CI'}"
    )
    expect(page.locator("#cuped-metrics-mode")).to_have_attribute(
        "data-inference", "sequential" if sequential else "fixed"
    )
    expect(page.locator("#cuped-metrics-note")).to_contain_text(
        "verdicts stay on the unadjusted always-valid test"
    )
    coverage = ", ".join(
        f"{name} {b['covariate_users']:,} of {b['users']:,}" for name, b in blocks.items()
    )
    expect(page.locator("#cuped-metrics-coverage")).to_have_text(
        f" Users with a covariate: {coverage}."
    )
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, overflow
    SHOTS.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=SHOTS / f"detail-metric-cuped-{width}.png")
    assert tab.script_errors == []
