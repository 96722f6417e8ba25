"""Static files served compressed and cached: the pages' CSS and JavaScript, Plotly.js and
Swagger UI's files.

A file is read and gzip-compressed once, at its first request (again only when it changes on
disk), and answered from memory after that: gzip to a client that accepts it, as it is to
one that does not. Its version is the start of the SHA-256 of its bytes; the pages link to
``<url>?v=<version>`` (:meth:`StaticAssets.url`), so a new release changes the URL.

===============================  ===========================================================
request                          ``Cache-Control``
===============================  ===========================================================
``?v=`` the file's version       ``public, max-age=31536000, immutable``: a year, never
                                 revalidated, since that URL never names other bytes
no ``?v=``, or an old version    ``no-cache``: kept but revalidated (``ETag``, ``304``), so
                                 an unversioned link sees a new release at once
===============================  ===========================================================

Every answer carries ``Vary: Accept-Encoding`` and a strong ``ETag`` per encoding. Only the
files found at construction are served: a path that names no such file (``..`` among them)
is a 404, as with Starlette's ``StaticFiles``. The service's other headers (the
Content-Security-Policy among them) are added by the outer middlewares as on every answer.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs

import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["IMMUTABLE", "REVALIDATE", "StaticAssets", "accepts_gzip"]

IMMUTABLE: Final = "public, max-age=31536000, immutable"
"""``Cache-Control`` of a versioned URL."""

REVALIDATE: Final = "no-cache"
"""``Cache-Control`` of an unversioned (or outdated) URL."""

_VERSION_LENGTH: Final = 12
_COMPRESSIBLE: Final = ("text/", "application/javascript", "application/json", "image/svg")
_TYPES: Final = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css"}


@dataclass(frozen=True, slots=True)
class _Loaded:
    """One file's bytes as read, gzipped (None when gzip would not make it smaller), its
    version and what it was read at (modification time and size)."""

    stamp: tuple[int, int]
    body: bytes
    gzipped: bytes | None
    version: str


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value admits gzip (``gzip`` or ``*`` with ``q`` > 0).

    >>> accepts_gzip("gzip, deflate, br"), accepts_gzip("gzip;q=0"), accepts_gzip("br")
    (True, False, False)
    """
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        quality = params.strip().lower()
        if quality.startswith("q="):
            try:
                if float(quality[2:]) <= 0:
                    continue
            except ValueError:
                continue
        return True
    return False


class StaticAssets:
    """An ASGI app that serves ``files`` (URL name -> path) gzipped and cached.

    ``prefix`` is where it is reached (``/static``), for :meth:`url`.
    """

    def __init__(self, files: Mapping[str, Path], prefix: str) -> None:
        self._files = dict(files)
        self._prefix = prefix.rstrip("/")
        self._loaded: dict[str, _Loaded] = {}
        self._lock = threading.Lock()

    @classmethod
    def directory(cls, directory: Path, prefix: str) -> StaticAssets:
        """Every file under ``directory``, by its path relative to it."""
        files = {
            path.relative_to(directory).as_posix(): path
            for path in sorted(directory.rglob("*"))
            if path.is_file()
        }
        return cls(files, prefix)

    def url(self, name: str) -> str:
        """The versioned URL of file ``name``: cached for a year by the browser."""
        return f"{self._prefix}/{name}?v={self.load(name).version}"

    def load(self, name: str) -> _Loaded:
        """File ``name``, read and compressed once (again when it changed on disk)."""
        path = self._files[name]
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        loaded = self._loaded.get(name)
        if loaded is not None and loaded.stamp == stamp:
            return loaded
        with self._lock:
            loaded = self._loaded.get(name)
            if loaded is None or loaded.stamp != stamp:
                loaded = _read(path, stamp)
                self._loaded[name] = loaded
        return loaded

    def response(self, name: str, query: str, headers: Mapping[str, str]) -> Response:
        """The answer to a GET of file ``name`` with ``query`` and request ``headers``."""
        loaded = self.load(name)
        versioned = parse_qs(query).get("v") == [loaded.version]
        gzipped = loaded.gzipped is not None and accepts_gzip(headers.get("accept-encoding", ""))
        etag = f'"{loaded.version}{"-gz" if gzipped else ""}"'
        out = {
            "cache-control": IMMUTABLE if versioned else REVALIDATE,
            "etag": etag,
            "vary": "Accept-Encoding",
        }
        if gzipped:
            out["content-encoding"] = "gzip"
        media_type = _media_type(name)
        if etag in _tags(headers.get("if-none-match", "")):
            return Response(status_code=304, headers=out)
        body = loaded.gzipped if gzipped and loaded.gzipped is not None else loaded.body
        return Response(body, media_type=media_type, headers=out)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise HTTPException(404)
        name = _name(scope)
        if name not in self._files:
            raise HTTPException(404)
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(405, headers={"Allow": "GET, HEAD"})
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode("latin-1")
        # The first request of a file reads and compresses it (Plotly.js: about 0.15 s): off
        # the event loop.
        response = await anyio.to_thread.run_sync(self.response, name, query, headers)
        await response(scope, receive, send)


def _name(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.lstrip("/")


def _media_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in _TYPES:
        return _TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def _tags(if_none_match: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in if_none_match.split(",") if tag.strip()}


def _read(path: Path, stamp: tuple[int, int]) -> _Loaded:
    body = path.read_bytes()
    version = hashlib.sha256(body).hexdigest()[:_VERSION_LENGTH]
    gzipped = None
    if _media_type(path.name).startswith(_COMPRESSIBLE):
        packed = gzip.compress(body, compresslevel=9, mtime=0)
        if len(packed) < len(body):
            gzipped = packed
    return _Loaded(stamp, body, gzipped, version)
