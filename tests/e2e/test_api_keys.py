"""With API keys configured, a key is typed once in the header's key field (the read key to
view, the admin key to make changes): it is kept in the tab's sessionStorage, sent in the
``X-API-Key`` header of every data call, and never put in a URL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import MakeTab, create_experiment, route_users, start_server
from tests.fixtures.uvicorn_server import UvicornServer

ADMIN_KEY = "admin-e2e-Zq8v1TkP"
INGEST_KEY = "ingest-e2e-Lm3w9RxC"
READ_KEY = "read-e2e-Hy6s2QwN"
KEY_STORAGE = "abscope.apiKey"  # app.js


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UvicornServer]:
    server = start_server(
        tmp_path_factory.mktemp("e2e-keyed"),
        ABSCOPE_ADMIN_API_KEY=ADMIN_KEY,
        ABSCOPE_INGEST_API_KEY=INGEST_KEY,
        ABSCOPE_READ_API_KEY=READ_KEY,
    )
    try:
        yield server
    finally:
        server.stop()


def test_admin_key_typed_once_unlocks_the_actions(
    make_tab: MakeTab, keyed_server: UvicornServer
) -> None:
    tab = make_tab(keyed_server.url)
    page = tab.open("/new")
    page.locator("input[name=name]").fill("Keyed experiment")
    page.locator("#submit").click()
    expect(page.locator("#error")).to_contain_text("a valid admin key is required")
    assert page.url.endswith("/new")

    key_field = page.locator("#api-key")
    expect(key_field).to_have_attribute("type", "password")
    key_field.fill(ADMIN_KEY)
    key_field.press("Tab")  # the key is kept on change
    assert page.evaluate(f"sessionStorage.getItem('{KEY_STORAGE}')") == ADMIN_KEY
    assert page.evaluate("localStorage.length") == 0

    page.locator("#submit").click()
    page.wait_for_url(re.compile(r"/view/keyed-experiment-[0-9a-f]{6}$"))
    experiment_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#api-key")).to_have_value(ADMIN_KEY)  # still there on the next page
    page.locator('#lifecycle button[data-action="start"]').click()
    expect(page.locator("#status .badge")).to_have_text("running")
    page.locator("#ramp-value").fill("60")
    page.locator("#ramp").click()
    expect(page.locator("#config-summary")).to_contain_text("60% of traffic")
    expect(page.locator("#error")).to_be_hidden()

    with keyed_server.client() as api:
        admin = {"X-API-Key": ADMIN_KEY}
        assert api.get(f"/experiments/{experiment_id}").status_code == 401
        stored = api.get(f"/experiments/{experiment_id}", headers=admin).json()
        assert (stored["status"], stored["traffic_percentage"]) == ("running", 60)
        assert api.post(f"/experiments/{experiment_id}/pause").status_code == 401
        assert api.post(f"/experiments/{experiment_id}/pause", headers=admin).status_code == 200

    secrets = {ADMIN_KEY, quote(ADMIN_KEY), INGEST_KEY, READ_KEY}
    leaked = [r.url for r in tab.requests if any(s in r.url for s in secrets)]
    assert leaked == [], leaked
    assert not any(s in page.url for s in secrets)
    writes = [r for r in tab.requests if r.method in ("POST", "PATCH")]
    assert [r.url.removeprefix(keyed_server.url) for r in writes] == [
        "/experiments",
        "/experiments",
        f"/experiments/{experiment_id}/start",
        f"/experiments/{experiment_id}",
    ]
    assert "x-api-key" not in writes[0].headers  # before the key was typed
    assert all(r.headers.get("x-api-key") == ADMIN_KEY for r in writes[1:])
    reads = [r for r in tab.requests if r.method == "GET" and "/experiments/" in r.url]
    assert reads and all(r.headers.get("x-api-key") == ADMIN_KEY for r in reads)


def test_a_new_session_needs_the_key_again(make_tab: MakeTab, keyed_server: UvicornServer) -> None:
    with keyed_server.client() as api:
        api.headers["X-API-Key"] = ADMIN_KEY
        create_experiment(api, "e2e-keyed-traffic")
        api.headers["X-API-Key"] = INGEST_KEY
        assert all(route_users(api, "e2e-keyed-traffic", ["a", "b", "c"]).values())
    anonymous = httpx.post(
        f"{keyed_server.url}/route", json={"user_id": "a", "experiment_id": "e2e-keyed-traffic"}
    )
    assert anonymous.status_code == 401

    tab = make_tab(keyed_server.url)
    page = tab.open("/view/e2e-keyed-traffic")  # the page's shell is open, its data is not
    expect(page.locator("#error")).to_contain_text("a valid read key is required")
    expect(page.locator("#api-key")).to_have_value("")
    expect(page.locator("#api-key")).to_have_attribute("aria-invalid", "true")

    page.locator("#api-key").fill(READ_KEY)
    page.locator("#api-key").press("Tab")  # kept, and the page reloads to fetch its data
    expect(page.locator("#status .badge")).to_have_text("running")
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#api-key")).to_have_value(READ_KEY)
    page.locator('#lifecycle button[data-action="pause"]').click()
    expect(page.locator("#error")).to_contain_text("this route needs the admin role")
    expect(page.locator("#status .badge")).to_have_text("running")
    with keyed_server.client() as api:
        stored = api.get("/experiments/e2e-keyed-traffic", headers={"X-API-Key": READ_KEY})
        assert stored.json()["status"] == "running"


def test_the_list_asks_for_a_key_and_shows_the_experiments_with_the_read_key(
    make_tab: MakeTab, keyed_server: UvicornServer
) -> None:
    with keyed_server.client() as api:
        api.headers["X-API-Key"] = ADMIN_KEY
        create_experiment(api, "e2e-keyed-list")
    tab = make_tab(keyed_server.url)
    page = tab.open("/")
    expect(page.locator("#error")).to_contain_text("a valid read key is required")
    page.locator("#api-key").fill(READ_KEY)
    page.locator("#api-key").press("Tab")
    expect(page.locator('#experiments tr[data-id="e2e-keyed-list"]')).to_be_visible()
    expect(page.locator("#error")).to_be_hidden()
    listed = [r for r in tab.requests if r.url.startswith(f"{keyed_server.url}/summary")]
    assert listed and listed[-1].headers.get("x-api-key") == READ_KEY
