"""Where a write path's time goes: py-spy samples of the server while the benchmark loads it.

``python -m benchmarks.profile log-redis`` (or ``log-sqlite``, ``events-redis``,
``route``) starts the server of that scenario as :mod:`benchmarks.http` does, loads it with
the same load generator, and samples the server process with ``py-spy record --format raw``
(````--nonblocking``; idle frames are not sampled) during the window. It prints the
functions with the most samples on top of the stack (self) and anywhere on it (total), as
shares of all samples. py-spy is a development tool, not a dependency: ``pip install
py-spy``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from tests.fixtures.redis_servers import RedisServer
from tests.fixtures.uvicorn_server import UvicornServer

from benchmarks import http

TOP = 25
SECONDS = 8


def _scenario(name: str, workdir: Path, redis_url: str) -> tuple[UvicornServer, str, list[str]]:
    backend = {"ABSCOPE_DB_PATH": str(workdir / "db")}
    if name != "log-sqlite":
        backend = {"ABSCOPE_REDIS_URL": redis_url}
    server = UvicornServer(http.ABSCOPE_APP, workdir / f"{name}.log", env=backend, access_log=False)
    first = "bench-000"
    if name in ("log-redis", "log-sqlite"):
        return server, "/log", http._log_bodies(first)
    if name == "events-redis":
        return server, "/events", http._events_bodies(first)
    if name == "route":
        return server, "/route", http._route_bodies(first, new_users=True)
    raise SystemExit(f"unknown scenario {name!r}: log-redis, log-sqlite, events-redis, route")


def _frames(raw: str) -> tuple[Counter[str], Counter[str], Counter[str], int]:
    """Self and total sample counts per function from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    roots: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1]
                  + ")" if " (" in f else f for f in stack.split(";")]  # fmt: skip
        own[frames[-1]] += n
        roots[frames[0] if len(frames) < 3 else frames[2]] += n
        for frame in set(frames):
            total[frame] += n
    return own, total, roots, samples


def main(name: str) -> None:
    with tempfile.TemporaryDirectory(prefix="abscope-profile-") as directory:
        workdir = Path(directory)
        with RedisServer(workdir / "redis") as redis_server:
            server, path, bodies = _scenario(name, workdir, redis_server.url)
            with server:
                http._start_experiments(server, ["bench-000"])
                options = {"connections": http.EVENTS_CONNECTIONS} if path == "/events" else {}
                result: list[http.LoadResult] = []
                loader = threading.Thread(
                    target=lambda: result.append(
                        http.load(server, path, bodies, duration=SECONDS + 2, **options)
                    )
                )
                loader.start()
                out = workdir / "profile.txt"
                subprocess.run(
                    [
                        str(Path(sys.executable).with_name("py-spy")),
                        "record",
                        "--pid",
                        str(server.pid),
                        "--duration",
                        str(SECONDS),
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--rate",
                        "200",
                        "--output",
                        str(out),
                    ],  # fmt: skip
                    check=True,
                    capture_output=True,
                )
                loader.join()
                raw = out.read_text()
    own, total, roots, samples = _frames(raw)
    r = result[0]
    print(f"{name}: {r.rate:,.0f} req/s, server CPU {r.server_cpu:.0%}, {samples} samples")
    for title, counts in (("thread", roots), ("self", own), ("total", total)):
        print(f"-- top {TOP} by {title}")
        for frame, n in counts.most_common(TOP):
            print(f"{n / samples:6.1%}  {frame}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "log-redis")
