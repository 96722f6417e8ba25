"""abscope.web.assets: gzip once, a version that follows the bytes, and the cache headers."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import pytest

from abscope.web.assets import IMMUTABLE, REVALIDATE, StaticAssets, accepts_gzip


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br, zstd", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("GZIP", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, br", False),
        ("identity", False),
        ("", False),
        ("gzip;q=oops", False),
    ],
)
def test_accept_encoding(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_gzip_version_and_headers_follow_the_file(tmp_path: Path) -> None:
    script = tmp_path / "app.js"
    script.write_text("const x = 1;\n" * 500)
    (tmp_path / "logo.png").write_bytes(bytes(range(256)) * 8)
    assets = StaticAssets.directory(tmp_path, "/static")
    version = hashlib.sha256(script.read_bytes()).hexdigest()[:12]
    assert assets.url("app.js") == f"/static/app.js?v={version}"

    zipped = assets.response("app.js", f"v={version}", {"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["cache-control"] == IMMUTABLE
    assert gzip.decompress(bytes(zipped.body)) == script.read_bytes()
    plain = assets.response("app.js", "", {})
    assert "content-encoding" not in plain.headers and plain.body == script.read_bytes()
    assert plain.headers["cache-control"] == REVALIDATE
    assert (
        assets.response("app.js", "", {"if-none-match": plain.headers["etag"]}).status_code == 304
    )

    png = assets.response("logo.png", "", {"accept-encoding": "gzip"})  # not text: as it is
    assert "content-encoding" not in png.headers and png.headers["content-type"] == "image/png"

    script.write_text("const y = 2;\n" * 500)  # changed on disk: read again, a new version
    stat = script.stat()
    os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    new_version = hashlib.sha256(script.read_bytes()).hexdigest()[:12]
    assert (
        assets.url("app.js") == f"/static/app.js?v={new_version}" != f"/static/app.js?v={version}"
    )
    old = assets.response("app.js", f"v={version}", {"accept-encoding": "gzip"})
    assert old.headers["cache-control"] == REVALIDATE  # an old version is never kept a year
    assert gzip.decompress(bytes(old.body)) == script.read_bytes()
