"""A cold load is small and does not wait for Plotly.js; a warm load fetches no asset again.

The static assets are served gzipped and linked by versioned URLs that the browser keeps for
a year without asking again (``abscope.web.assets``). Chromium's own figures are read: the
``PerformanceResourceTiming`` of every request of the page (``transferSize``: bytes on the
wire, headers included, 0 from the cache) and the moment the first table row appears (a
``MutationObserver`` set before any script of the page runs, with the next animation frame
as its paint). The bytes are asserted (they are deterministic); the times are written to
``test-artifacts/speed/<page>-<width>.json`` and printed, never asserted.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from abscope.api.security_headers import CONTENT_SECURITY_POLICY
from tests.e2e.helpers import RESULTS_ID, MakeTab, Tally
from tests.fixtures.uvicorn_server import UvicornServer

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "speed"
STATIC = Path(__file__).resolve().parents[2] / "src" / "abscope" / "web" / "static"
PLOTLY = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
IMMUTABLE = "public, max-age=31536000, immutable"

# Installed before any script of the page: when the first row of a table in <main> appears
# (and the frame after it, when it is painted).
_WATCH_FIRST_TABLE = """
window.__firstTable = null;
window.__firstTablePaint = null;
new MutationObserver((_, observer) => {
  if (window.__firstTable === null && document.querySelector("main table tbody tr")) {
    window.__firstTable = performance.now();
    performance.mark("first-table");
    observer.disconnect();
    requestAnimationFrame(() => { window.__firstTablePaint = performance.now(); });
  }
}).observe(document, { childList: true, subtree: true });
"""

_TIMING = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = Object.fromEntries(performance.getEntriesByType("paint")
    .map((p) => [p.name, p.startTime]));
  const resources = performance.getEntriesByType("resource").map((r) => ({
    url: r.name, initiator: r.initiatorType, transfer: r.transferSize,
    encoded: r.encodedBodySize, decoded: r.decodedBodySize, end: r.responseEnd,
  }));
  return {
    document: { transfer: nav.transferSize, encoded: nav.encodedBodySize,
                decoded: nav.decodedBodySize },
    resources,
    first_contentful_paint_ms: paint["first-contentful-paint"] ?? null,
    first_table_ms: window.__firstTable,
    first_table_painted_ms: window.__firstTablePaint,
    dom_content_loaded_ms: nav.domContentLoadedEventEnd,
    load_ms: nav.loadEventEnd,
  };
}"""

# name, path, the selector that says the page is fully drawn
PAGES = [
    ("detail", f"/view/{RESULTS_ID}", "#chart-posterior .main-svg"),
    ("list", "/", f'#experiments tr[data-id="{RESULTS_ID}"]'),
]


def _assets(page: Page) -> list[str]:
    return list(
        page.eval_on_selector_all(
            "link[rel=stylesheet], script[src]", "nodes => nodes.map((n) => n.href || n.src)"
        )
    )


def _warm_the_server(api: httpx.Client, path: str) -> None:
    """The page and its assets fetched once over HTTP, so that what is timed in the browser
    is a cold browser cache, not the service's first read (and gzip) of each file."""
    html = api.get(path).text
    for url in re.findall(r'(?:src|href)="(/[^"]+)"', html):
        api.get(url, headers={"Accept-Encoding": "gzip"})


def _measure(page: Page) -> dict[str, Any]:
    timing: dict[str, Any] = page.evaluate(_TIMING)
    resources = timing["resources"]
    plotly = [r for r in resources if "/assets/plotly.min.js" in r["url"]]
    timing["plotly_arrived_ms"] = plotly[0]["end"] if plotly else None
    timing["bytes_transferred"] = timing["document"]["transfer"] + sum(
        r["transfer"] for r in resources
    )
    timing["bytes_decoded"] = timing["document"]["decoded"] + sum(r["decoded"] for r in resources)
    return timing


@pytest.mark.parametrize("width", [1280, 390])
def test_a_cold_load_is_compressed_and_a_warm_one_fetches_no_asset(
    width: int,
    make_tab: MakeTab,
    server: UvicornServer,
    api: httpx.Client,
    results_traffic: dict[str, Tally],
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    measured = []
    for name, path, drawn in PAGES:  # every page measured and written first, then checked
        _warm_the_server(api, path)
        tab = make_tab(server.url, viewport={"width": width, "height": 900})  # a cold cache
        tab.context.add_init_script(_WATCH_FIRST_TABLE)
        page = tab.open(path)
        expect(page.locator(drawn).first).to_be_attached()
        cold = _measure(page)
        assets = _assets(page)

        # A warm load: another page, then this one again; the assets come from the cache.
        tab.open("/new")
        page = tab.open(path)
        expect(page.locator(drawn).first).to_be_attached()
        warm = _measure(page)
        report = {"page": path, "width": width, "cold": cold, "warm": warm}
        (ARTIFACTS / f"{name}-{width}.json").write_text(json.dumps(report, indent=2))
        print(
            f"\n{name} at {width} px, cold: {cold['bytes_transferred']:,} bytes on the wire "
            f"({cold['bytes_decoded']:,} decoded); first table row at "
            f"{cold['first_table_ms']} ms (painted {cold['first_table_painted_ms']} ms), "
            f"first paint {cold['first_contentful_paint_ms']} ms, Plotly.js arrived "
            f"{cold['plotly_arrived_ms']} ms, load {cold['load_ms']} ms; warm: "
            f"{warm['bytes_transferred']:,} bytes, first table row at {warm['first_table_ms']} ms"
        )
        measured.append((name, assets, cold, warm))

    for name, assets, cold, warm in measured:
        assert all("?v=" in url for url in assets), assets  # every asset by a versioned URL
        static = [r for r in cold["resources"] if r["initiator"] in ("script", "link", "css")]
        assert {r["url"] for r in static} == set(assets), (static, assets)
        for r in static:  # gzipped on the wire: at most 60% of the bytes decoded
            assert 0 < r["encoded"] <= 0.6 * r["decoded"], r
        assert cold["first_table_ms"] is not None  # a table row did appear
        if name == "detail":
            plotly = [r for r in static if "/assets/plotly.min.js" in r["url"]]
            assert plotly and plotly[0]["decoded"] == PLOTLY.stat().st_size, plotly
            assert plotly[0]["transfer"] < PLOTLY.stat().st_size // 3, plotly
            # The whole cold load, API answers included: under 1/3 of its decoded bytes.
            assert cold["bytes_transferred"] < cold["bytes_decoded"] / 3, cold
        for r in warm["resources"]:  # nothing versioned fetched again, not even to revalidate
            if "?v=" in r["url"]:
                assert r["transfer"] == 0, r


def test_assets_are_gzipped_and_cached_by_version(
    api: httpx.Client, results_traffic: dict[str, Tally]
) -> None:
    html = api.get(f"/view/{RESULTS_ID}").text
    urls = re.findall(r'(?:src|href)="(/(?:static|assets)/[^"]+\?v=[0-9a-f]+)"', html)
    names = sorted(url.split("?")[0] for url in urls)
    assert names == sorted(
        [
            "/static/app.css",
            "/static/app.js",
            "/static/detail.js",
            "/static/draft.js",
            "/static/adaptive.js",
            "/static/quantiles.js",
            "/static/metric_cuped.js",
            "/assets/plotly.min.js",
        ]
    ), urls
    for url in urls:
        path, _, version = url.partition("?v=")
        source = PLOTLY if path.startswith("/assets/") else STATIC / path.removeprefix("/static/")
        raw = source.read_bytes()

        zipped = api.get(url, headers={"Accept-Encoding": "gzip"})
        assert zipped.status_code == 200, url
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.headers["cache-control"] == IMMUTABLE
        assert zipped.headers["vary"] == "Accept-Encoding"
        assert zipped.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert zipped.headers["x-content-type-options"] == "nosniff"
        assert zipped.content == raw  # httpx unzipped it: the file's bytes exactly
        assert zipped.num_bytes_downloaded == int(zipped.headers["content-length"])
        assert zipped.num_bytes_downloaded < len(raw)

        plain = api.get(url, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.content == raw and plain.num_bytes_downloaded == len(raw)
        assert plain.headers["etag"] != zipped.headers["etag"]

        # Unversioned, or an old version: still served, but revalidated every time.
        for other in (path, f"{path}?v=000000000000"):
            answer = api.get(other, headers={"Accept-Encoding": "gzip"})
            assert answer.status_code == 200 and answer.content == raw, other
            assert answer.headers["cache-control"] == "no-cache", other
        again = api.get(path, headers={"If-None-Match": zipped.headers["etag"]})
        assert again.status_code == 304 and again.content == b"", path
        assert version == hashlib.sha256(raw).hexdigest()[:12]  # the version names the bytes

    assert api.get("/static/no-such-file.js").status_code == 404
    assert api.get("/static/%2e%2e/__init__.py").status_code == 404
    docs = api.get("/docs/assets/swagger-ui-bundle.js", headers={"Accept-Encoding": "gzip"})
    assert docs.status_code == 200 and docs.headers["content-encoding"] == "gzip"
