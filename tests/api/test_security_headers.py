"""Every kind of answer carries the security headers: a page, the JSON API, the fast path
(its 200s and its own errors), FastAPI's errors, a 404, a 405, the body limit's 413, static
files, Plotly.js, ``/docs`` and its files, ``/openapi.json``; in process and from a real
uvicorn. And the inline styles the policy allows by hash are the ones in the installed
Plotly.js."""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources
from typing import Any

import pytest

from abscope.api.security_headers import (
    CONTENT_SECURITY_POLICY,
    EMPTY_STYLE_HASH,
    PLOTLY_HEATMAP_STYLE_HASH,
    PLOTLY_MAPLIBRE_STYLE_HASH,
    SECURITY_HEADERS,
)
from tests.api.helpers import (
    HttpClient,
    MakeClient,
    MakeServer,
    TestClient,
    assert_status,
    route,
    started,
)

EXPECTED = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}

EXPOSURE = {
    "experiment_id": "{id}",
    "user_id": "u1",
    "variant_name": "{variant}",
    "kind": "exposure",
}

# What each request is, and the status it gets. ``{id}`` is a running experiment's id and
# ``{variant}`` the variant of user u1 in it.
REQUESTS: list[tuple[str, str, str, dict[str, Any], int]] = [
    ("page", "GET", "/", {}, 200),
    ("detail page", "GET", "/view/{id}", {}, 200),
    ("static file", "GET", "/static/app.js", {}, 200),
    ("plotly.js", "GET", "/assets/plotly.min.js", {}, 200),
    ("docs page", "GET", "/docs", {}, 200),
    ("docs asset", "GET", "/docs/assets/swagger-ui-bundle.js", {}, 200),
    ("openapi", "GET", "/openapi.json", {}, 200),
    ("api json", "GET", "/experiments/{id}", {}, 200),
    (
        "fast path route",
        "POST",
        "/route",
        {"json": {"user_id": "u1", "experiment_id": "{id}"}},
        200,
    ),  # noqa: E501
    (
        "fast path log",
        "POST",
        "/log",
        {"json": {"user_id": "u1", "experiment_id": "{id}", "variant_name": "{variant}"}},
        200,
    ),
    ("fast path events", "POST", "/events", {"json": {"events": [EXPOSURE]}}, 200),
    ("fast path error", "POST", "/route", {"json": {"user_id": "u", "experiment_id": "nope"}}, 404),
    ("validation error", "POST", "/route", {"json": {"user_id": 5}}, 422),
    ("domain error", "GET", "/experiments/nope", {}, 404),
    ("unknown path", "GET", "/no/such/path", {}, 404),
    ("unknown static file", "GET", "/static/nope.js", {}, 404),
    ("wrong method", "DELETE", "/route", {}, 405),
    ("body too large", "POST", "/route", {"content": b"x" * (8 * 1024 * 1024 + 1)}, 413),
    ("health", "GET", "/health", {}, 200),
]


def _send(
    client: HttpClient | Any, names: dict[str, str], method: str, path: str, **kw: Any
) -> Any:
    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.format(**names)
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    options = {k: fill(v) for k, v in kw.items()}
    if "content" in options:
        options["headers"] = {"Content-Type": "application/json"}
    return client.request(method, fill(path), **options)


def _check_all(client: Any) -> None:
    experiment_id = started(client)["id"]
    variant = route(client, "u1", experiment_id)["variant_name"]
    names = {"id": experiment_id, "variant": variant}
    for kind, method, path, options, status in REQUESTS:
        response = _send(client, names, method, path, **options)
        assert_status(response, status)
        got = {name: response.headers.get(name) for name in EXPECTED}
        assert got == EXPECTED, kind
        # Once each: the middleware adds them to the answer's own headers, never twice.
        for name in EXPECTED:
            assert len(response.headers.get_list(name)) == 1, (kind, name)


def test_every_kind_of_answer_carries_the_headers(client: TestClient) -> None:
    _check_all(client)


def test_a_real_server_sends_them_on_every_kind_of_answer(make_server: MakeServer) -> None:
    server = make_server()
    with server.client() as client:
        _check_all(client)


def test_an_answer_sent_twice_gets_them_once(make_client: MakeClient) -> None:
    # A Response object's header list is not extended in place: the same page twice
    # (pages are rendered once and cached) still has one of each.
    client = make_client()
    for _ in range(2):
        response = client.get("/planner")
        assert response.headers.get_list("x-frame-options") == ["DENY"]


def test_the_header_pairs_are_those_documented() -> None:
    assert {k.decode(): v.decode() for k, v in SECURITY_HEADERS} == EXPECTED
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "'unsafe-eval'" not in CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY


def _csp_hash(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


@pytest.fixture(scope="module")
def plotly_js() -> str:
    path = resources.files("plotly") / "package_data" / "plotly.min.js"
    return path.read_text(encoding="utf-8")


def test_the_empty_style_hash_is_of_no_text() -> None:
    assert _csp_hash("") == EMPTY_STYLE_HASH


def test_the_maplibre_style_hash_is_of_the_installed_plotly_js(plotly_js: str) -> None:
    # Plotly.js adds the stylesheet as e.textContent='...' (single-quoted, no escapes).
    texts = re.findall(r'createElement\("style"\);e\.id="[0-9a-f]+",e\.textContent=\'([^\']*)\'',
                       plotly_js)  # fmt: skip
    assert len(texts) == 1, "Plotly.js adds another <style> than MapLibre's: review the policy"
    assert "\\" not in texts[0]
    assert _csp_hash(texts[0]) == PLOTLY_MAPLIBRE_STYLE_HASH, (
        f"Plotly.js changed its MapLibre stylesheet: the hash is now {_csp_hash(texts[0])}"
    )


def test_the_heatmap_style_hash_is_of_the_installed_plotly_js(plotly_js: str) -> None:
    found = re.search(r"CSS_DECLARATIONS=(\[\[.*?\]\]);", plotly_js)
    assert found, "Plotly.js no longer lists the heatmap's image-rendering declarations"
    pairs = re.findall(r'\["([^"]+)","([^"]+)"\]', found.group(1))
    style = "".join(f"{name}: {value}; " for name, value in pairs)  # its ``SL().STYLE``
    assert "image-rendering: pixelated; " in style
    assert _csp_hash(style) == PLOTLY_HEATMAP_STYLE_HASH, (
        f"Plotly.js changed its heatmap style: the hash is now {_csp_hash(style)}"
    )
