"""The experiment detail page for daily use, at 1280 and 390 px: key figures on screen at
phone width, the audit trail in words, one date format, chart spinners, buttons that look
their state, the completed state with its winner, the warning before completing with a
winner that is not significant, probabilities at a sensible precision, "Adjusted p" only
with several comparisons, whole-user ticks, and a real not-found page."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.e2e.helpers import (
    RESULTS_ID,
    MakeTab,
    Tally,
    create_experiment,
    send_traffic,
    start_server,
)
from tests.fixtures.uvicorn_server import UvicornServer

SHOTS = Path("test-artifacts/screenshots")
WIDTHS = [1280, 390]
WHEN = r"\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2} UTC"
THREE = (("control", "m1", 0.34), ("fast", "m2", 0.33), ("slow", "m3", 0.33))


_CHARTS_FIT = """() => [...document.querySelectorAll(".figure")].every((box) => {
  const svg = box.querySelector(".main-svg");
  return svg && svg.getBoundingClientRect().right <= box.getBoundingClientRect().right + 0.5;
})"""


def _open(make_tab: MakeTab, server: UvicornServer, path: str, width: int) -> Page:
    return make_tab(server.url, viewport={"width": width, "height": 844}).open(path)


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _when(iso: str) -> str:
    """``abscope.when`` in Python: "1 Dec 2026 14:03 UTC"."""
    moment = datetime.fromisoformat(iso)
    return f"{moment.day} {moment:%b %Y %H:%M} UTC"


def _box(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not drawn"
    return dict(box)


@pytest.mark.parametrize("width", WIDTHS)
def test_key_figures_are_on_screen_without_sideways_scroll(
    make_tab: MakeTab, server: UvicornServer, results_traffic: dict[str, Tally], width: int
) -> None:
    page = _open(make_tab, server, f"/view/{RESULTS_ID}", width)
    expect(page.locator("#chart-samples .main-svg").first).to_be_attached()
    treatment = '#comparisons-table tbody tr[data-variant="treatment"]'
    expect(page.locator(f"{treatment} td").nth(3)).not_to_be_empty()
    scroll = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll[0] <= scroll[1], f"the page scrolls sideways: {scroll}"
    figures = {
        "rate (control)": '#variants-table tr[data-variant="control"] td:nth-child(5)',
        "rate (treatment)": '#variants-table tr[data-variant="treatment"] td:nth-child(5)',
        "relative lift": f"{treatment} td:nth-child(4)",
        "its interval": f"{treatment} td:nth-child(5)",
        "p": f"{treatment} td:nth-child(6)",
        "verdict": f"{treatment} td:first-child .badge",
        "decision": "#decision",
    }
    for name, selector in figures.items():
        expect(page.locator(selector).first, name).to_be_visible()
        box = _box(page, selector)
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (name, box)
        # Not hidden inside a scrolled box either: the table fits its box.
        inner = page.eval_on_selector(
            selector,
            "n => { const b = n.closest('.table-wrap');"
            " return b ? [b.scrollWidth, b.clientWidth] : [0, 0]; }",
        )
        assert inner[0] <= inner[1], (name, inner)
    lift = page.locator(f"{treatment} td:nth-child(4)")
    rate = page.locator('#variants-table tr[data-variant="treatment"] td:nth-child(5)')
    if width == 390:  # a card: each figure on its own line, named by its column
        expect(lift).to_have_attribute("data-label", "Relative")
        expect(rate).to_have_attribute("data-label", "Rate")
        assert (
            _box(page, f"{treatment} td:nth-child(5)")["y"]
            > _box(page, f"{treatment} td:nth-child(4)")["y"]
        )
    else:  # a table row: the figures side by side
        assert _box(page, f"{treatment} td:nth-child(5)")["y"] == pytest.approx(
            _box(page, f"{treatment} td:nth-child(4)")["y"], abs=1
        )
    _shot(page, f"detail-results-{width}")


@pytest.mark.parametrize("width", WIDTHS)
def test_chart_dates_and_hover_use_the_one_format(
    make_tab: MakeTab, server: UvicornServer, results_traffic: dict[str, Tally], width: int
) -> None:
    page = _open(make_tab, server, f"/view/{RESULTS_ID}", width)
    for chart in ("chart-conversion", "chart-samples"):
        page.wait_for_selector(f"#{chart} .xtick text", state="attached")
        ticks = page.eval_on_selector_all(
            f"#{chart} .xtick text",
            "ns => ns.map((n) => [...n.querySelectorAll('tspan')].map((t) => t.textContent)"
            ".join(' ') || n.textContent)",
        )
        assert ticks and all(re.fullmatch(WHEN, tick) for tick in ticks), ticks
    # The hover label of the hour, as plotly formats it.
    plot = _box(page, "#chart-samples .nsewdrag")  # one hour: its point is in the middle
    page.locator("#chart-samples").scroll_into_view_if_needed()
    plot = _box(page, "#chart-samples .nsewdrag")
    page.mouse.move(plot["x"] + plot["width"] / 2, plot["y"] + plot["height"] / 2)
    hover = page.locator("#chart-samples .hoverlayer")
    expect(hover).to_contain_text(re.compile(WHEN))
    assert not re.search(r"\d{2}/\d{2}/\d{4}", page.locator("main").inner_text())


def test_probabilities_are_never_a_hundred_or_zero_percent(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client
) -> None:
    experiment_id = "e2e-detail-sure"
    create_experiment(api, experiment_id)
    send_traffic(api, experiment_id, [f"sure-{i:04d}" for i in range(300)],
                 {"control": 5, "treatment": 50})  # fmt: skip
    results = api.get(f"/experiments/{experiment_id}/results").json()
    best = {v["name"]: v["prob_best"] for v in results["variants"]}
    beat = results["comparisons"][0]["bayesian"]["chance_to_beat_control"]
    # The data make the figures extreme: "100.0%" and "0.0%" at one decimal.
    assert beat > 0.9995 and best["treatment"] > 0.9995 and best["control"] < 0.0005
    page = _open(make_tab, server, f"/view/{experiment_id}", WIDTHS[0])
    row = page.locator('#comparisons-table tr[data-variant="treatment"]')
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 844})
        expect(row.locator("td").nth(7)).to_have_text(">99.9%")
        expect(row.locator("td").nth(7)).to_be_visible()
        treatment = page.locator('#variants-table tr[data-variant="treatment"] td').nth(6)
        control = page.locator('#variants-table tr[data-variant="control"] td').nth(6)
        expect(treatment).to_have_text(">99.9%")
        expect(control).to_have_text("<0.1%")
        expect(control).to_be_visible()
        # One comparison: nothing to adjust, so no "Adjusted p" column.
        expect(page.locator("#adjusted-p-heading")).to_be_hidden()
        expect(row.locator("td").nth(6)).to_be_hidden()
        expect(row.locator("td").nth(5)).to_be_visible()
    # A significant winner completes without a question.
    page.locator("#winner").select_option("treatment")
    page.locator('#lifecycle button[data-action="complete"]').click()
    expect(page.locator("#status .badge")).to_have_text("completed")
    expect(page.locator("#confirm-complete")).to_be_hidden()
    assert api.get(f"/experiments/{experiment_id}").json()["winner"] == "treatment"


def test_three_arms_show_adjusted_p_and_whole_user_ticks(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client
) -> None:
    experiment_id = "e2e-detail-three"
    create_experiment(api, experiment_id, variants=THREE)
    send_traffic(api, experiment_id, [f"three-{i}" for i in range(4)],
                 {"control": 0, "fast": 0, "slow": 0})  # fmt: skip
    page = _open(make_tab, server, f"/view/{experiment_id}", WIDTHS[0])
    expect(page.locator("#comparisons-table tbody tr")).to_have_count(2)
    cell = page.locator('#comparisons-table tr[data-variant="fast"] td').nth(6)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 844})
        page.wait_for_function(_CHARTS_FIT)  # plotly redraws them to the new width
        expect(page.locator("#adjusted-p-heading")).not_to_have_class(re.compile(r"\bhidden\b"))
        expect(cell).to_be_visible()
        page.wait_for_selector("#chart-samples .ytick text", state="attached")
        ticks = page.eval_on_selector_all(
            "#chart-samples .ytick text", "ns => ns.map((n) => n.textContent)"
        )
        assert len(ticks) >= 2 and all(re.fullmatch(r"\d+", t) for t in ticks), ticks
        assert len(set(ticks)) == len(ticks), ticks  # no repeated labels of rounded fractions
        _shot(page, f"detail-three-arms-{width}")


def test_the_audit_trail_is_in_words(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client
) -> None:
    experiment_id = "e2e-detail-audit"
    create_experiment(api, experiment_id, traffic_percentage=10)
    patches: list[dict[str, Any]] = [
        {"traffic_percentage": 50},
        {"name": "Audit words", "min_sample_size": 200, "confidence_level": 0.99},
        {"power": 0.9, "min_relative_lift": 0.05},
        {"min_relative_lift": None},
        {"forced_variants": {"qa-1": "treatment"}},
        {"weights": {"control": 0.3, "treatment": 0.7}},
    ]
    for body in patches:
        assert api.patch(f"/experiments/{experiment_id}", json=body).status_code == 200
    metric = {"name": "latency_ms", "kind": "ratio", "role": "guardrail",
              "higher_is_better": False, "margin": 0.05, "action": "alert"}  # fmt: skip
    assert api.post(f"/experiments/{experiment_id}/metrics", json=metric).status_code == 201
    for action in ("pause", "resume"):
        assert api.post(f"/experiments/{experiment_id}/{action}").status_code == 200
    done = api.post(f"/experiments/{experiment_id}/complete", json={"winner": "treatment"})
    assert done.status_code == 200
    audit = done.json()["audit"]
    expected = [
        "created",
        "started",
        "traffic 10% \u2192 50%",
        "name \u201cE2e detail audit\u201d \u2192 \u201cAudit words\u201d; minimum sample size"
        " 0 users \u2192 200 users; confidence level 95% \u2192 99%",
        "power 80% \u2192 90%; minimum lift none \u2192 +5.0%",
        "minimum lift +5.0% \u2192 none",
        "forced variants set: qa-1 \u2192 treatment",
        "weights control 50%, treatment 50% \u2192 control 30%, treatment 70%; phase 0 \u2192 1",
        "metric latency_ms added (ratio, guardrail, margin 5%, lower is better, on breach: alert)",
        "paused",
        "resumed",
        "completed with treatment as the winner",
    ]
    assert len(audit) == len(expected)
    for width in WIDTHS:
        page = _open(make_tab, server, f"/view/{experiment_id}", width)
        items = page.locator("#audit li")
        expect(items).to_have_count(len(expected))
        texts = items.all_inner_texts()
        for text, words, entry in zip(texts, expected, audit, strict=True):
            assert text == f"{words}, {_when(entry['at'])}", (text, entry)
        assert "{" not in page.locator("#audit").inner_text()
        _shot(page, f"detail-audit-{width}")


def test_a_drafts_own_changes_are_in_words(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client
) -> None:
    experiment_id = "e2e-detail-draft-audit"
    create_experiment(api, experiment_id, start=False)
    body = {
        "variants": [
            {"name": "control", "model_id": "m1", "weight": 0.5},
            {"name": "treatment", "model_id": "m9", "weight": 0.5},
        ],
        "allocation": "thompson",
        "sticky": True,
        "sequential": False,
    }
    changed = api.patch(f"/experiments/{experiment_id}", json=body)
    assert changed.status_code == 200, changed.text
    entry = changed.json()["audit"][-1]
    page = _open(make_tab, server, f"/view/{experiment_id}", WIDTHS[1])
    expect(page.locator("#audit li").last).to_have_text(
        "variants control (ranker-v1, 50%), treatment (ranker-v2, 50%) \u2192 control (m1, 50%),"
        " treatment (m9, 50%); allocation fixed \u2192 thompson; sticky assignment off \u2192 on;"
        f" testing sequential \u2192 fixed horizon, {_when(entry['at'])}"
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_charts_show_a_spinner_while_they_load(
    make_tab: MakeTab, server: UvicornServer, results_traffic: dict[str, Tally], width: int
) -> None:
    tab = make_tab(server.url, viewport={"width": width, "height": 844})
    held: list[Route] = []
    tab.page.route(re.compile(r"/experiments/[^/]+/charts$"), lambda route: held.append(route))
    page = tab.open(f"/view/{RESULTS_ID}")
    expect(page.locator("#decision")).not_to_be_empty()
    page.wait_for_function("() => true")
    assert held, "the charts were not requested"
    for chart in ("chart-conversion", "chart-lift", "chart-samples", "chart-posterior"):
        box = page.locator(f"#{chart}")
        expect(box).to_have_attribute("aria-busy", "true")
        expect(box.get_by_role("status")).to_have_text("Loading chart…")
        expect(box.get_by_role("status")).to_be_visible()
    spin = page.eval_on_selector(
        "#chart-lift .detail-spinner", "n => getComputedStyle(n, '::before').animationName"
    )
    assert spin == "detail-spin"
    _shot(page, f"detail-loading-{width}")
    held[0].continue_()
    for chart in ("chart-conversion", "chart-lift", "chart-samples", "chart-posterior"):
        expect(page.locator(f"#{chart} .main-svg").first).to_be_attached()
        expect(page.locator(f"#{chart} .detail-spinner")).to_have_count(0)
        expect(page.locator(f"#{chart}")).not_to_have_attribute("aria-busy", "true")


_STYLE = "n => { const s = getComputedStyle(n); return [s.backgroundColor, s.color, s.cursor]; }"


def test_disabled_buttons_look_disabled(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client
) -> None:
    experiment_id = "e2e-detail-buttons"
    create_experiment(api, experiment_id, start=False)
    page = _open(make_tab, server, f"/view/{experiment_id}", WIDTHS[0])
    start = page.locator('#lifecycle button[data-action="start"]')
    expect(start).to_be_enabled()
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 844})
        enabled = start.evaluate(_STYLE)
        assert enabled == ["rgb(47, 91, 211)", "rgb(255, 255, 255)", "pointer"]
        # Secondary, primary, secondary and danger buttons, all disabled in a draft.
        for action in ("pause", "resume", "complete", "stop"):
            button = page.locator(f'#lifecycle button[data-action="{action}"]')
            expect(button).to_be_disabled()
            looks = button.evaluate(_STYLE)
            assert looks == ["rgb(236, 238, 242)", "rgb(122, 131, 148)", "not-allowed"], (
                action,
                looks,
            )
            assert button.evaluate("n => getComputedStyle(n).opacity") == "1"


def test_completing_with_a_winner_that_is_not_significant_asks_first(
    make_tab: MakeTab, server: UvicornServer, api: httpx.Client
) -> None:
    experiment_id = "e2e-detail-complete"
    create_experiment(api, experiment_id)
    send_traffic(api, experiment_id, [f"even-{i:03d}" for i in range(60)],
                 {"control": 10, "treatment": 10})  # fmt: skip
    page = _open(make_tab, server, f"/view/{experiment_id}", WIDTHS[0])
    expect(page.locator("#decision")).not_to_be_empty()
    complete = page.locator('#lifecycle button[data-action="complete"]')
    dialog = page.get_by_role("dialog", name="Complete without a significant winner?")
    page.locator("#winner").select_option("treatment")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 844})
        complete.click()
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text(
            "treatment is not significantly different from control, the control"
        )
        expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        _shot(page, f"detail-confirm-{width}")
        page.keyboard.press("Escape")  # the dialog's own cancel
        expect(dialog).to_be_hidden()
        assert api.get(f"/experiments/{experiment_id}").json()["status"] == "running"
    complete.click()
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Complete anyway").click()
    expect(page.locator("#status .badge")).to_have_text("completed")
    stored = api.get(f"/experiments/{experiment_id}").json()
    assert (stored["status"], stored["winner"]) == ("completed", "treatment")
    completes = [a for a in stored["audit"] if a["action"] == "complete"]
    assert len(completes) == 1  # the two cancels sent nothing

    # The completed state shows the winner chosen, when, and the figures at the end.
    page.reload()
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 844})
        expect(page.locator("#winner")).to_be_disabled()
        expect(page.locator("#winner option:checked")).to_have_text("winner: treatment")
        expect(page.locator("#outcome")).to_contain_text(
            f"Completed on {_when(stored['ended_at'])} with treatment chosen as the winner"
        )
        expect(page.locator("#decision")).to_contain_text("with treatment chosen as the winner")
        expect(page.locator("#decision-detail")).to_contain_text("users a day while it ran")
        expect(page.locator("#decision-detail")).not_to_contain_text("so far")
        _shot(page, f"detail-completed-{width}")


@pytest.mark.parametrize("width", WIDTHS)
def test_an_unknown_experiment_gets_a_not_found_page(
    make_tab: MakeTab, server: UvicornServer, width: int
) -> None:
    tab = make_tab(server.url, viewport={"width": width, "height": 844})
    response = tab.page.goto(f"{server.url}/view/no-such-thing")
    assert response is not None and response.status == 404
    page = tab.page
    expect(page).to_have_title("Experiment not found · abscope")
    expect(page.get_by_role("heading", level=1)).to_have_text("Experiment not found")
    link = page.get_by_role("link", name="Back to the experiments")
    expect(link).to_be_visible()
    _shot(page, f"detail-not-found-{width}")
    link.click()
    page.wait_for_url(f"{server.url}/")
    tab.assert_local()


def test_with_keys_an_unknown_id_shows_the_not_found_state(
    make_tab: MakeTab, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With API keys the shell is open to anyone, so it cannot say whether an id exists
    (that would leak ids); the script asks the API with the visitor's key and shows the
    same not-found state on its 404."""
    secured = start_server(
        tmp_path_factory.mktemp("e2e-detail-keys"),
        ABSCOPE_READ_API_KEY="r" * 24,
        ABSCOPE_ADMIN_API_KEY="a" * 24,
    )
    try:
        tab = make_tab(secured.url, viewport={"width": 390, "height": 844})
        tab.page.add_init_script("sessionStorage.setItem('abscope.apiKey', '" + "r" * 24 + "')")
        page = tab.open("/view/no-such-thing")
        expect(page.locator("#not-found")).to_be_visible()
        expect(page).to_have_title("Experiment not found · abscope")
        expect(page.locator("#variants-table")).to_be_hidden()
        expect(page.locator("#chart-lift")).to_be_hidden()
        expect(page.locator("#lifecycle")).to_be_hidden()
    finally:
        secured.stop()
