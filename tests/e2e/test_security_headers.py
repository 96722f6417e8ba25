"""Under the service's Content-Security-Policy every page still draws, and so does ``/docs``,
with no violation reported and no request to another host.

A violation is caught twice: by a ``securitypolicyviolation`` listener that an init script
installs in every document before its own scripts run, and by Chromium's console message
("Refused to ... because it violates the following Content Security Policy directive").
"""

from __future__ import annotations

from playwright.sync_api import ConsoleMessage, Page, expect

from abscope.api.security_headers import CONTENT_SECURITY_POLICY
from tests.e2e.helpers import MakeTab, Tab, Tally
from tests.e2e.test_pages import PAGES
from tests.fixtures.uvicorn_server import UvicornServer

_RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`
    + ` at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def _watch(tab: Tab) -> list[str]:
    """Console messages about the policy, from now on; and the listener in every page."""
    messages: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            messages.append(message.text)

    tab.context.add_init_script(_RECORD_VIOLATIONS)
    tab.page.on("console", console)
    return messages


def _violations(page: Page) -> list[str]:
    found: list[str] = page.evaluate("window.__cspViolations")
    return found


def test_pages_draw_under_the_policy(
    make_tab: MakeTab, server: UvicornServer, results_traffic: dict[str, Tally]
) -> None:
    tab = make_tab(server.url, viewport={"width": 1280, "height": 900})
    console = _watch(tab)
    for _, path, plotly, ready in PAGES:
        page = tab.open(path)
        response_policy = page.evaluate(
            "fetch(location.href).then((r) => r.headers.get('content-security-policy'))"
        )
        assert response_policy == CONTENT_SECURITY_POLICY, path
        ready(page)
        if plotly:
            assert page.evaluate("typeof Plotly") == "object"
            assert page.locator(".main-svg").count() >= 1, path
        assert _violations(page) == [], (path, console)
    assert console == []


def test_docs_render_the_operations_from_the_service_only(
    make_tab: MakeTab, server: UvicornServer
) -> None:
    tab = make_tab(server.url, viewport={"width": 1280, "height": 900})
    console = _watch(tab)
    page = tab.open("/docs")
    operation = page.locator('.opblock-summary-path[data-path="/route"]')
    expect(operation.first).to_be_visible()
    expect(page.locator('.opblock-summary-path[data-path="/charts/simulate"]')).to_have_count(1)
    operation.first.click()  # expands: the body schema and the example render as well
    expect(page.locator(".opblock.is-open .opblock-body").first).to_be_visible()
    paths = tab.paths()
    assert "/openapi.json" in paths and "/docs/assets/swagger-ui-bundle.js" in paths, paths
    tab.assert_local()  # no request but to the service: no CDN, no outside validator
    assert _violations(page) == []
    assert console == []
