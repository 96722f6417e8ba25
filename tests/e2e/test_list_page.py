"""The experiments list at 1280 and 390 px: one data request (``GET /summary``) for the whole
page; search by name or id, sort by any column and the status filter, kept in the URL and
restored on load and on back/forward; a table that never widens past its box (a 200-character
name wraps, its full text in a tooltip); a card per experiment at phone width with status,
users, the best lift with its interval (labelled with its inference mode) and flags; and two
distinct empty states. Full-page screenshots go to ``test-artifacts/screenshots/list-*.png``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from abscope.assignment import assign
from abscope.models import Experiment
from abscope.routing import compile_experiment
from tests.e2e.helpers import MakeTab, Tab, create_experiment, log_events, start_server
from tests.fixtures.uvicorn_server import UvicornServer

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PREFIX = "e2e-ls-"
DASH = "\u2014"
LONG_ID = "e2e-long-name"  # outside PREFIX: the searches of the other tests never find it
LONG_NAME = "Checkout" + "x" * 184 + "-the-end"  # 200 characters, no space to break at

LATENCY = {"name": "latency", "kind": "mean", "role": "guardrail", "higher_is_better": False,
           "margin": 0.05, "action": "alert", "min_samples": 20}  # fmt: skip


@dataclass(frozen=True)
class Seeded:
    """The list's experiments: each one's name, status and users sent."""

    names: dict[str, str]
    statuses: dict[str, str]
    users: dict[str, int]


def _assigned(api: httpx.Client, experiment_id: str, users: list[str]) -> dict[str, str]:
    """The variant each user gets, by the service's own pure hashing of the stored
    configuration (what ``POST /route`` answers, without a request per user)."""
    compiled = compile_experiment(
        Experiment.model_validate(api.get(f"/experiments/{experiment_id}").json())
    )
    out = {}
    for user in users:
        variant = assign(compiled.config, user, layer_slice=compiled.layer_slice).variant
        assert variant is not None
        out[user] = variant
    return out


def _traffic(api: httpx.Client, experiment_id: str, count: int, percent: dict[str, int]) -> int:
    """``count`` users exposed; the k-th user of a variant converts when
    ``k % 100 < percent[variant]``. The users logged."""
    assigned = _assigned(api, experiment_id, [f"{experiment_id}-{i:04d}" for i in range(count)])
    seen = dict.fromkeys(percent, 0)
    events: list[dict[str, Any]] = []
    for user, variant in assigned.items():
        base = {"experiment_id": experiment_id, "user_id": user, "variant_name": variant}
        events.append({**base, "kind": "exposure"})
        if seen[variant] % 100 < percent[variant]:
            events.append({**base, "kind": "conversion"})
        seen[variant] += 1
    log_events(api, events)
    return len(assigned)


def _srm_traffic(api: httpx.Client, experiment_id: str, count: int) -> int:
    """Every control user's exposure is logged, one treatment user in three: a mismatch."""
    assigned = _assigned(api, experiment_id, [f"srm-{i:04d}" for i in range(count)])
    events, logged = [], 0
    for k, (user, variant) in enumerate(assigned.items()):
        if variant == "treatment" and k % 3:
            continue
        events.append({"experiment_id": experiment_id, "user_id": user, "variant_name": variant,
                       "kind": "exposure"})  # fmt: skip
        logged += 1
    log_events(api, events)
    return logged


def _latency_traffic(api: httpx.Client, experiment_id: str, count: int) -> int:
    """Treatment requests 40% slower than the control's: a guardrail breach."""
    assigned = _assigned(api, experiment_id, [f"lat-{i:04d}" for i in range(count)])
    events: list[dict[str, Any]] = []
    for k, (user, variant) in enumerate(assigned.items()):
        base = {"experiment_id": experiment_id, "user_id": user, "variant_name": variant}
        events.append({**base, "kind": "exposure"})
        value = (100.0 if variant == "control" else 140.0) + (k % 7) * 3.0
        events.append({**base, "kind": "value", "value": value, "metric": "latency"})
    log_events(api, events)
    return len(assigned)


@pytest.fixture(scope="module")
def seeded(api: httpx.Client) -> Seeded:
    names = {
        f"{PREFIX}alpha": "Alpha checkout button",
        f"{PREFIX}bravo": "Bravo ranking model",
        f"{PREFIX}charlie": "Charlie search (split broken)",
        f"{PREFIX}delta": "Delta onboarding",
        f"{PREFIX}echo": "Echo latency guardrail",
    }
    users: dict[str, int] = {}
    alpha, bravo, charlie, delta, echo = names
    create_experiment(api, alpha, name=names[alpha], min_relative_lift=0.05)
    users[alpha] = _traffic(api, alpha, 400, {"control": 10, "treatment": 14})
    create_experiment(api, bravo, name=names[bravo], sequential=False)
    users[bravo] = _traffic(api, bravo, 700, {"control": 10, "treatment": 22})
    create_experiment(api, charlie, name=names[charlie])
    users[charlie] = _srm_traffic(api, charlie, 500)
    create_experiment(api, delta, name=names[delta], start=False)
    users[delta] = 0
    create_experiment(api, echo, name=names[echo], sequential=False, metrics=[LATENCY])
    users[echo] = _latency_traffic(api, echo, 300)
    assert api.post(f"/experiments/{echo}/complete").status_code == 200
    statuses = {x: "running" for x in names} | {delta: "draft", echo: "completed"}
    return Seeded(names, statuses, users)


def _data_requests(tab: Tab) -> list[str]:
    """What the tab asked of the API (not pages, scripts, styles or Plotly)."""
    out = []
    for path in tab.paths():
        bare = urlsplit(path).path
        if bare.startswith(("/static/", "/assets/")) or bare == "/" or bare.startswith("/view/"):
            continue
        out.append(path)
    return out


def _query(page: Page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def _row_ids(page: Page) -> list[str]:
    return page.locator("#experiments tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)")


def _card_ids(page: Page) -> list[str]:
    return page.locator("#cards .list-card").evaluate_all("cards => cards.map(c => c.dataset.id)")


def _header(page: Page, column: str) -> Locator:
    return page.locator(f'#experiments th[data-sort="{column}"]')


def _pct(x: float) -> str:
    return f"{'+' if x >= 0 else ''}{x * 100:.1f}%"


def _ranked(seeded: Seeded, key: str, descending: bool) -> list[str]:
    ids = list(seeded.names)
    if key == "users":
        return sorted(ids, key=lambda x: seeded.users[x], reverse=descending)
    return sorted(ids, key=lambda x: seeded.names[x].lower(), reverse=descending)


def test_search_sort_and_filter_live_in_the_url(
    tab: Tab, api: httpx.Client, seeded: Seeded
) -> None:
    assert len(set(seeded.users.values())) == len(seeded.users), seeded.users  # no ties
    page = tab.open("/")
    expect(page.locator(f'#experiments tbody tr[data-id="{PREFIX}alpha"]')).to_have_count(1)
    assert _data_requests(tab) == ["/summary"]

    page.locator("#search").fill("E2E-LS-")  # ids match too, whatever the case typed
    expect(page.locator("#experiments tbody tr")).to_have_count(len(seeded.names))
    assert _query(page) == {"q": "E2E-LS-"}
    # "5 experiments", or "5 of 12 experiments" when other tests' experiments are there too
    expect(page.locator("#count")).to_have_text(
        re.compile(rf"^{len(seeded.names)}( of \d+)? experiments$")
    )

    _header(page, "users").locator("button").click()
    assert _row_ids(page) == _ranked(seeded, "users", descending=True)
    expect(_header(page, "users")).to_have_attribute("aria-sort", "descending")
    assert _query(page) == {"q": "E2E-LS-", "sort": "users"}
    _header(page, "users").locator("button").click()
    assert _row_ids(page) == _ranked(seeded, "users", descending=False)
    assert _query(page)["dir"] == "asc"
    _header(page, "name").locator("button").click()
    assert _row_ids(page) == _ranked(seeded, "name", descending=False)
    page.locator("#status-filter").select_option("running")
    running = [x for x in _ranked(seeded, "name", False) if seeded.statuses[x] == "running"]
    assert _row_ids(page) == running
    page.screenshot(path=SCREENSHOTS / "list-sorted-1280.png", full_page=True)

    page.go_back()  # the filter undone: every status again, still by name
    expect(page.locator("#status-filter")).to_have_value("")
    assert _row_ids(page) == _ranked(seeded, "name", descending=False)
    page.go_back()  # users, ascending
    expect(_header(page, "users")).to_have_attribute("aria-sort", "ascending")
    assert _row_ids(page) == _ranked(seeded, "users", descending=False)
    page.go_forward()
    expect(_header(page, "name")).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("#search")).to_have_value("E2E-LS-")

    # By the best lift: bravo (10% against 22%), alpha (10% against 14%), then the undefined
    # lifts, last: charlie and echo have no conversions (a zero baseline), delta is a draft.
    _header(page, "lift").locator("button").click()
    ids = _row_ids(page)
    assert ids[:2] == [f"{PREFIX}bravo", f"{PREFIX}alpha"]
    assert set(ids[2:]) == {f"{PREFIX}charlie", f"{PREFIX}delta", f"{PREFIX}echo"}

    page.locator("#search").fill("ls-ch")  # a part of an id only
    assert _row_ids(page) == [f"{PREFIX}charlie"]
    page.locator("#search").fill("onboarding")  # a part of a name only
    assert _row_ids(page) == [f"{PREFIX}delta"]

    page.locator("#search").fill("no-such-experiment-anywhere")
    expect(page.locator("#no-match")).to_be_visible()
    expect(page.locator("#no-match")).to_contain_text("“no-such-experiment-anywhere”")
    expect(page.locator("#empty")).to_be_hidden()
    page.screenshot(path=SCREENSHOTS / "list-no-match-1280.png", full_page=True)
    page.locator("#clear-filters").click()
    expect(page.locator("#no-match")).to_be_hidden()
    assert "q" not in _query(page) and "status" not in _query(page)

    # A link with the state opens in it, with one request again.
    before = len(_data_requests(tab))
    page = tab.open("/?q=e2e-ls-&sort=users&dir=asc&status=running")
    expect(page.locator("#experiments tbody tr").first).to_be_attached()
    running = [x for x in _ranked(seeded, "users", False) if seeded.statuses[x] == "running"]
    assert _row_ids(page) == running
    expect(page.locator("#status-filter")).to_have_value("running")
    assert _data_requests(tab)[before:] == ["/summary"]
    assert _data_requests(tab).count("/summary") == 2  # one per page load, nothing else


def test_rows_show_the_figures_of_the_mode_in_force(
    tab: Tab, api: httpx.Client, seeded: Seeded
) -> None:
    page = tab.open(f"/?q={PREFIX}")
    for experiment_id in seeded.names:
        row = page.locator(f'#experiments tbody tr[data-id="{experiment_id}"]')
        cells = row.locator("td")
        expect(cells.nth(3)).to_have_text(f"{seeded.users[experiment_id]:,}")
        if seeded.statuses[experiment_id] == "draft":
            expect(cells.nth(4)).to_have_text(DASH)
            expect(cells.nth(4)).to_have_attribute("data-reason", "not_started")
            continue
        results = api.get(f"/experiments/{experiment_id}/results").json()
        lift = results["relative_lift"]
        if lift is None:  # no conversions in the control: undefined, and said why
            assert results["null_reasons"]["relative_lift"] == "zero_baseline"
            for index in (4, 5):
                expect(cells.nth(index)).to_have_text(DASH)
                expect(cells.nth(index)).to_have_attribute("data-reason", "zero_baseline")
        else:
            low, high = results["relative_lift_interval"]
            expect(cells.nth(4)).to_have_text(f"treatment {_pct(lift)}")
            expect(cells.nth(5)).to_have_text(f"{_pct(low)} to {_pct(high)}")
            mode = "CS 95%" if results["inference"] == "sequential" else "CI 95%"
            expect(cells.nth(5)).to_have_attribute("data-mode", mode)
            expect(cells.nth(5)).to_have_attribute("data-basis", results["inference"])
            shown = cells.nth(5).evaluate("td => getComputedStyle(td, '::after').content")
            assert mode in shown, shown  # the label is drawn beside the interval
        expect(row.locator(".badge.significant")).to_have_count(int(results["is_significant"]))
        expect(row.locator(".badge.srm")).to_have_count(int(results["srm"]["mismatch"]))
    alpha = page.locator(f'#experiments tbody tr[data-id="{PREFIX}alpha"]')
    expect(alpha.locator(".badge.underpowered")).to_have_count(1)
    charlie = page.locator(f'#experiments tbody tr[data-id="{PREFIX}charlie"]')
    expect(charlie.locator(".badge.srm")).to_have_text("SRM")
    echo = api.get(f"/experiments/{PREFIX}echo/results").json()
    assert echo["guardrail_status"] == "failing"
    breach = page.locator(f'#experiments tbody tr[data-id="{PREFIX}echo"] [data-guardrail]')
    expect(breach).to_have_attribute("data-guardrail", "failing")
    expect(breach).to_have_text("guardrail breach")


def test_phone_cards(make_tab: MakeTab, server: UvicornServer, seeded: Seeded) -> None:
    tab = make_tab(server.url, viewport={"width": 390, "height": 844})
    page = tab.open(f"/?q={PREFIX}")
    cards = page.locator("#cards .list-card")
    expect(cards).to_have_count(len(seeded.names))
    expect(page.locator("#experiments")).to_be_hidden()
    assert _data_requests(tab) == ["/summary"]
    for experiment_id, name in seeded.names.items():
        card = page.locator(f'#cards .list-card[data-id="{experiment_id}"]')
        expect(card.locator(".list-name")).to_have_text(name)
        expect(card.locator(".badge").first).to_have_text(seeded.statuses[experiment_id])
        expect(card.locator("dd.list-users")).to_have_text(f"{seeded.users[experiment_id]:,}")
        box = card.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    bravo = page.locator(f'#cards .list-card[data-id="{PREFIX}bravo"]')
    expect(bravo.locator("dd.list-lift")).to_contain_text("treatment +")
    expect(bravo.locator("dt").nth(2)).to_have_text("CI 95%")  # fixed-horizon, labelled
    expect(bravo.locator("dd.list-interval")).to_contain_text(" to ")
    expect(bravo.locator(".badge.significant")).to_have_count(1)
    alpha = page.locator(f'#cards .list-card[data-id="{PREFIX}alpha"]')
    expect(alpha.locator("dt").nth(2)).to_have_text("CS 95%")
    expect(alpha.locator(".badge.underpowered")).to_have_count(1)
    charlie = page.locator(f'#cards .list-card[data-id="{PREFIX}charlie"]')
    expect(charlie.locator(".badge.srm")).to_have_count(1)
    delta = page.locator(f'#cards .list-card[data-id="{PREFIX}delta"]')
    expect(delta.locator("dd.list-lift")).to_have_attribute("data-reason", "not_started")
    page.screenshot(path=SCREENSHOTS / "list-cards-390.png", full_page=True)

    page.locator("#sort-select").select_option("users")  # sorting at phone width
    assert _card_ids(page) == _ranked(seeded, "users", descending=True)
    page.locator("#sort-dir").click()
    assert _card_ids(page) == _ranked(seeded, "users", descending=False)
    assert _query(page) == {"q": PREFIX, "sort": "users", "dir": "asc"}
    page.go_back()
    assert _card_ids(page) == _ranked(seeded, "users", descending=True)
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= 390, f"the list scrolls sideways at 390 px: {scroll}"


_FITS = """() => {
  const wrap = document.querySelector(".list-wrap");
  const box = wrap.getBoundingClientRect();
  const table = document.getElementById("experiments").getBoundingClientRect();
  const cut = [...document.querySelectorAll("#experiments th, #experiments td")]
    .filter((c) => c.getBoundingClientRect().right > box.right + 0.5
      || c.scrollWidth > c.clientWidth + 1)
    .map((c) => c.textContent.slice(0, 40));
  return { scroll: wrap.scrollWidth, client: wrap.clientWidth, tableRight: table.right,
           boxRight: box.right, cut };
}"""


@pytest.mark.parametrize("width", [1280, 390])
def test_a_long_name_never_widens_the_list(
    width: int, make_tab: MakeTab, server: UvicornServer, api: httpx.Client, seeded: Seeded
) -> None:
    assert len(LONG_NAME) == 200
    if api.get(f"/experiments/{LONG_ID}").status_code == 404:
        create_experiment(api, LONG_ID, name=LONG_NAME, sequential=False)
        _traffic(api, LONG_ID, 200, {"control": 10, "treatment": 12})
    tab = make_tab(server.url, viewport={"width": width, "height": 900})
    page = tab.open("/")  # every experiment of the session, the long one among them
    if width == 1280:
        name = page.locator(f'#experiments tr[data-id="{LONG_ID}"] .list-name')
        expect(name).to_have_attribute("title", LONG_NAME)  # the whole name on hover
        fits = page.evaluate(_FITS)
        assert fits["scroll"] <= fits["client"], fits  # no horizontal overflow in the box
        assert fits["tableRight"] <= fits["boxRight"] + 0.5, fits
        assert fits["cut"] == [], fits
    else:
        name = page.locator(f'#cards .list-card[data-id="{LONG_ID}"] .list-name')
        expect(name).to_have_attribute("title", LONG_NAME)
        box = page.locator(f'#cards .list-card[data-id="{LONG_ID}"]').bounding_box()
        assert box is not None and box["x"] + box["width"] <= width
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the page scrolls sideways at {width} px: {scroll}"
    page.screenshot(path=SCREENSHOTS / f"list-all-{width}.png", full_page=True)


@pytest.fixture
def empty_server(tmp_path: Path) -> Iterator[UvicornServer]:
    server = start_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_no_experiments_and_no_match_are_told_apart(
    make_tab: MakeTab, empty_server: UvicornServer
) -> None:
    for width in (1280, 390):
        tab = make_tab(empty_server.url, viewport={"width": width, "height": 800})
        page = tab.open("/?status=running")
        expect(page.locator("#empty")).to_be_visible()
        expect(page.locator("#empty")).to_contain_text("No experiments yet")
        expect(page.locator("#no-match")).to_be_hidden()
        page.screenshot(path=SCREENSHOTS / f"list-empty-{width}.png", full_page=True)
    with empty_server.client() as api:
        create_experiment(api, "e2e-ls-only", name="The only one", start=False)
    for width in (1280, 390):
        tab = make_tab(empty_server.url, viewport={"width": width, "height": 800})
        page = tab.open("/?status=running")
        expect(page.locator("#no-match")).to_be_visible()
        expect(page.locator("#no-match")).to_contain_text("status running")
        expect(page.locator("#empty")).to_be_hidden()
        page.locator("#clear-filters").click()
        selector = "#experiments tbody tr" if width == 1280 else "#cards .list-card"
        expect(page.locator(selector)).to_have_count(1)
        expect(page.locator("#count")).to_have_text("1 experiment")
