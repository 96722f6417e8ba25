"""axe-core on every page at 1280 and 390 px: no serious or critical violation; every form
control has a name, and every chart a text alternative.

axe-core is the npm package pinned in ``tools/package.json`` (``npm ci --prefix tools``, which
``make test`` runs), injected from ``tools/node_modules`` by Playwright: it is never served
by abscope and no CDN is asked. Its injected script is inline, which the pages'
Content-Security-Policy forbids, so these contexts bypass the policy
(``tests/e2e/test_security_headers.py`` checks the pages under it). Each page's full axe
results are saved as ``test-artifacts/axe/<page>-<width>.json``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import (
    RESULTS_ID,
    MakeTab,
    Tally,
    create_experiment,
    log_events,
    route_users,
)
from tests.fixtures.uvicorn_server import UvicornServer

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tools" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "axe"
GUARDED_ID = "e2e-a11y-guarded"
BLOCKING = ("serious", "critical")
# Swagger UI's own markup on /docs (third-party, fastapi-offline's swagger-ui-bundle.js): its
# grey-on-white labels and its expandable operation rows (a button holding a copy button)
# fail these two rules there; nothing else may, and nothing of ours on any page.
SWAGGER_UI_KNOWN = {"color-contrast", "nested-interactive"}

_RUN_AXE = """async () => {
  // Plotly's drawn SVG is left out: each chart's box is checked instead (a named figure
  // with a summary in words, below), and the SVG inside is Plotly's, and slow to scan.
  const context = { exclude: [[".js-plotly-plot .plot-container"]] };
  const results = await axe.run(context, { resultTypes: ["violations", "incomplete"] });
  for (const violation of results.violations) {
    for (const node of violation.nodes) {
      const found = typeof node.target[0] === "string" && document.querySelector(node.target[0]);
      node.withinSwaggerUi = !!(found && found.closest(".swagger-ui"));
    }
  }
  return {
    url: results.url, testEngine: results.testEngine,
    violations: results.violations, incomplete: results.incomplete,
    passes: results.passes.map((r) => r.id),
  };
}"""

# Every visible form control, and whether it has a name a screen reader announces.
_UNNAMED_CONTROLS = """() => [...document.querySelectorAll("input, select, textarea, button")]
  .filter((c) => c.type !== "hidden" && c.getClientRects().length > 0)
  .filter((c) => !c.closest(".modebar"))
  .filter((c) => {
    const labelled = (c.labels && [...c.labels].some((l) => l.textContent.trim()))
      || (c.getAttribute("aria-label") || "").trim()
      || (c.getAttribute("aria-labelledby") || "").trim()
      || (c.tagName === "BUTTON" && c.textContent.trim());
    return !labelled;
  })
  .map((c) => c.outerHTML.slice(0, 160))"""

# Every Plotly chart, and whether its box is a named figure described by a summary in words.
_CHARTS_WITHOUT_TEXT = """() => [...document.querySelectorAll(".js-plotly-plot")]
  .filter((chart) => {
    const named = ["figure", "img"].includes(chart.getAttribute("role"))
      && (chart.getAttribute("aria-label") || "").trim();
    const summary = document.getElementById(chart.getAttribute("aria-describedby") || "");
    return !(named && summary && summary.textContent.trim());
  })
  .map((chart) => chart.id || chart.className)"""


def _guarded(api: httpx.Client) -> None:
    """An experiment with a latency guardrail (alert only) and a few hundred users' data,
    each exposure with a covariate of the primary and of a mean secondary (so the CUPED
    panel is drawn with its named metrics' table)."""
    if api.get(f"/experiments/{GUARDED_ID}").status_code == 200:
        return
    metric = {
        "name": "latency_ms",
        "kind": "ratio",
        "role": "guardrail",
        "higher_is_better": False,
        "margin": 0.05,
        "action": "alert",
    }
    basket = {"name": "basket", "kind": "mean", "role": "secondary"}
    create_experiment(api, GUARDED_ID, name="Ranker v2 latency guard", metrics=[metric, basket])
    rng = random.Random(13)
    events: list[dict[str, Any]] = []
    for user, variant in route_users(api, GUARDED_ID, [f"a11y-{i}" for i in range(300)]).items():
        assert variant is not None
        base = {"experiment_id": GUARDED_ID, "user_id": user, "variant_name": variant}
        before = rng.randint(0, 30)
        events.append({**base, "kind": "exposure", "covariate": round(rng.random(), 3),
                       "covariates": {"basket": before}})  # fmt: skip
        events.append({**base, "kind": "value", "metric": "basket", "value": before + 1})
        if rng.random() < 0.1:
            events.append({**base, "kind": "conversion"})
        latency = rng.lognormvariate(0.0, 0.3) * (100.0 if variant == "control" else 120.0)
        events.append({**base, "kind": "value", "metric": "latency_ms", "value": latency})
    log_events(api, events)


def _charts_drawn(*ids: str) -> Callable[[Page], None]:
    def ready(page: Page) -> None:
        for chart in ids:
            expect(page.locator(f"#{chart} .main-svg").first).to_be_attached()

    return ready


def _rows(selector: str) -> Callable[[Page], None]:
    def ready(page: Page) -> None:
        expect(page.locator(selector).first).to_be_attached()

    return ready


def _all(*steps: Callable[[Page], None]) -> Callable[[Page], None]:
    def ready(page: Page) -> None:
        for step in steps:
            step(page)

    return ready


DETAIL_CHARTS = ("chart-conversion", "chart-lift", "chart-samples", "chart-posterior")

# name, path, wait until drawn
PAGES: list[tuple[str, str, Callable[[Page], None]]] = [
    ("list", "/", _rows(f'#experiments tr[data-id="{RESULTS_ID}"]')),
    ("detail", f"/view/{RESULTS_ID}", _charts_drawn(*DETAIL_CHARTS)),
    (
        "detail-guardrail",
        f"/view/{GUARDED_ID}",
        _all(
            _charts_drawn(*DETAIL_CHARTS),
            _rows('#metric-figures [data-metric="latency_ms"] .main-svg'),
            _rows("#cuped-table tbody tr"),
            _rows('#cuped-metrics-table tbody tr[data-metric="basket"]'),
        ),
    ),
    ("new", "/new", _rows("#variants .variant-row")),
    ("planner", "/planner", _charts_drawn("chart-power", "chart-sensitivity")),
    (
        "planner-cuped",
        "/planner?covariate_correlation=0.7",
        _all(_charts_drawn("chart-power", "chart-sensitivity"), _rows("#cuped-adjusted")),
    ),
    ("simulator", "/simulator", _charts_drawn("chart-regret")),
    ("docs", "/docs", _rows('.opblock-summary-path[data-path="/route"]')),
]


def _blocking(violations: list[dict[str, Any]], known: set[str]) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(" ".join(n["target"]) for n in v["nodes"][:5])
        for v in violations
        if v["impact"] in BLOCKING and v["id"] not in known
    ]


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_passes_axe(
    width: int,
    make_tab: MakeTab,
    server: UvicornServer,
    api: httpx.Client,
    results_traffic: dict[str, Tally],
) -> None:
    if not AXE.exists():
        pytest.fail(
            f"{AXE} is missing: run `npm ci --prefix tools` (make test does)", pytrace=False
        )
    _guarded(api)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab = make_tab(server.url, viewport={"width": width, "height": 900}, bypass_csp=True)
    found: dict[str, list[str]] = {}
    for name, path, ready in PAGES:
        if name == "docs" and width != 1280:  # Swagger UI's layout: checked once, at 1280
            continue
        page = tab.open(path)
        ready(page)
        page.add_script_tag(path=str(AXE))
        results = page.evaluate(_RUN_AXE)
        (ARTIFACTS / f"{name}-{width}.json").write_text(json.dumps(results, indent=2))
        if name == "docs":  # the known ones only inside Swagger UI's own markup
            outside = [
                f"{v['id']} outside Swagger UI: {n['html'][:160]}"
                for v in results["violations"]
                if v["id"] in SWAGGER_UI_KNOWN
                for n in v["nodes"]
                if not n["withinSwaggerUi"]
            ]
            problems = _blocking(results["violations"], SWAGGER_UI_KNOWN) + outside
        else:
            problems = _blocking(results["violations"], set())
        if name != "docs":  # Swagger UI's own controls are not ours to label
            problems += [f"unnamed control: {c}" for c in page.evaluate(_UNNAMED_CONTROLS)]
            problems += [f"chart without text: {c}" for c in page.evaluate(_CHARTS_WITHOUT_TEXT)]
        if problems:
            found[name] = problems
    tab.assert_local()
    assert found == {}, json.dumps(found, indent=2)
