"""Security headers on every answer: pages, the JSON API, the fast path, errors, 404s and
static files.

==============================  ================================================================
header                          value
==============================  ================================================================
``Content-Security-Policy``     :data:`CONTENT_SECURITY_POLICY`: everything from the service
                                itself; images may also be ``data:`` URLs (the pages' empty
                                favicon, Plotly's heatmaps, Swagger UI's icons in its CSS),
                                and three known inline styles of Plotly.js are let in by
                                their hashes (:data:`EMPTY_STYLE_HASH`,
                                :data:`PLOTLY_MAPLIBRE_STYLE_HASH`,
                                :data:`PLOTLY_HEATMAP_STYLE_HASH`); no inline script, no
                                other inline style or style attribute, no ``eval``, no
                                plugins, and no page may frame this one
``X-Frame-Options``             ``DENY`` (what ``frame-ancestors 'none'`` says, for old browsers)
``X-Content-Type-Options``      ``nosniff``
``Referrer-Policy``             ``no-referrer``
==============================  ================================================================

The pages need no more: their scripts and styles are files under ``/static``, Plotly.js is
served from the installed ``plotly`` package, and Swagger UI (``/docs``) from the installed
``fastapi-offline`` package with its setup in a script file; Plotly and Swagger UI set styles
through the DOM (``element.style``, ``sheet.insertRule``), which a policy without
``'unsafe-inline'`` allows. The browser tests
(``tests/e2e/test_security_headers.py``) check that the pages and ``/docs`` draw under it
with no violation reported.

The middleware is the outermost one, so the headers reach the answers that the body limit,
CORS and the fast path give as well as FastAPI's. Its cost per answer is a wrapped ``send``
and, on ``http.response.start``, one list of the answer's headers and the four built once.
"""

from __future__ import annotations

from typing import Final

from abscope.api.asgi import ASGIApp, Receive, Scope, Send, adding_headers

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "EMPTY_STYLE_HASH",
    "PLOTLY_HEATMAP_STYLE_HASH",
    "PLOTLY_MAPLIBRE_STYLE_HASH",
    "SECURITY_HEADERS",
    "SecurityHeaders",
]


EMPTY_STYLE_HASH: Final = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
"""The CSP hash of empty text (SHA-256 of no bytes, base64).

Plotly.js adds an empty ``<style>`` element and then its rules through the CSSOM
(``sheet.insertRule``), which the policy does not govern; blocked, the element has no sheet
and Plotly's own rules (the mode bar, hover labels) are lost. It also sets empty ``style``
attributes on the heatmap's image. This hash lets an empty element or attribute in, and
nothing else."""

PLOTLY_MAPLIBRE_STYLE_HASH: Final = "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='"
"""The CSP hash of the one ``<style>`` element with text that Plotly.js adds on load: the
stylesheet of MapLibre (its map traces), fixed text inside ``plotly.min.js`` of plotly 7.1.0.
Allowed so that the pages report no violation; it can only ever admit that text.
``tests/api/test_security_headers.py`` recomputes it from the installed Plotly.js, so an
upgrade that changes the text fails there with the new hash."""

PLOTLY_HEATMAP_STYLE_HASH: Final = "'sha256-AR/cKIZjWPcPmBUPDA6oti9XBiTbJvz0Cro2J1VzzS8='"
"""The CSP hash of the ``style`` attribute Plotly.js gives a heatmap's image
(``image-rendering: pixelated`` and its older spellings, ``SL().STYLE`` in ``plotly.min.js``),
so that the planner's power heatmap keeps crisp cells. Attribute hashes count only with
``'unsafe-hashes'``, which admits these exact values and no others; checked against the
installed Plotly.js like :data:`PLOTLY_MAPLIBRE_STYLE_HASH`."""

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; "
    f"style-src 'self' 'unsafe-hashes' {EMPTY_STYLE_HASH} {PLOTLY_MAPLIBRE_STYLE_HASH} "
    f"{PLOTLY_HEATMAP_STYLE_HASH}; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""Self only; ``data:`` images and Plotly's three known inline styles beside; no inline
script, no other inline style or style attribute, no ``eval``."""

SECURITY_HEADERS: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
"""The headers every HTTP answer carries, as ASGI header pairs."""


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to the start of every HTTP answer of ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        await self.app(scope, receive, adding_headers(send, SECURITY_HEADERS))
