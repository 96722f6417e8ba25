"""Phone-width layout (390 px): nothing sticks out of the box it belongs to."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.helpers import RESULTS_ID, MakeTab, Tally
from tests.fixtures.uvicorn_server import UvicornServer

PHONE = {"width": 390, "height": 844}

_SPILLS = """([container, items]) => {
  const out = [];
  for (const box of document.querySelectorAll(container)) {
    const outer = box.getBoundingClientRect();
    for (const item of box.querySelectorAll(items)) {
      const inner = item.getBoundingClientRect();
      if (inner.right > outer.right + 0.5 || inner.left < outer.left - 0.5) {
        const name = item.getAttribute("name") || item.tagName;
        out.push(`${box.getAttribute("id") || box.className} > ${name}:`
          + ` ${Math.round(inner.left)}..${Math.round(inner.right)} outside`
          + ` ${Math.round(outer.left)}..${Math.round(outer.right)}`);
      }
    }
  }
  return out;
}"""


def _spills(page: Page, container: str, items: str) -> list[Any]:
    return list(page.evaluate(_SPILLS, [container, items]))


def test_charts_fit_inside_their_boxes(
    make_tab: MakeTab, server: UvicornServer, results_traffic: dict[str, Tally]
) -> None:
    page = make_tab(server.url, viewport=PHONE).open(f"/view/{RESULTS_ID}")
    expect(page.locator("#chart-posterior .main-svg").first).to_be_attached()
    assert _spills(page, ".figure", ".main-svg") == []


def test_create_form_fits_a_phone(make_tab: MakeTab, server: UvicornServer) -> None:
    page = make_tab(server.url, viewport=PHONE).open("/new")
    expect(page.locator("#variants .variant-row")).to_have_count(2)
    assert _spills(page, "#create", "input, select, textarea, button") == []
