"""HTTP throughput of the service under uvicorn, against baselines served the same way.

Every server here is ``python -m uvicorn <factory> --factory --workers 1 --no-access-log`` on
127.0.0.1 (uvicorn's defaults otherwise: the asyncio loop and the h11 parser, as installed),
started by :class:`tests.fixtures.uvicorn_server.UvicornServer`. The baselines are two apps
of this module:

* :func:`raw_app`, a raw ASGI hello world: the floor of uvicorn itself;
* :func:`trivial_app`, a FastAPI POST endpoint that parses a pydantic body shaped like the
  ``/route`` body and returns a small dict, once as ``async def`` and once as ``def`` (FastAPI
  runs a ``def`` endpoint in its thread pool, as it runs abscope's routes).

The load comes from another process (``python -m benchmarks.http --load``, reading a JSON spec
on stdin): an asyncio client with ``CONNECTIONS`` keep-alive HTTP/1.1 connections that each
send a request as soon as the previous reply is complete (closed loop), with precomputed
request bytes and a minimal response parser, so it costs far less per request than the
server. Each figure counts the replies completed in a ``DURATION`` window after a ``WARMUP``,
with the p99 of their latencies, and the CPU share the server process and the client used in
the window: a server near 100% of one core is the bottleneck, a client near 100% would be.
Request bodies cycle through ``USERS`` user ids; ``/log`` bodies carry a new ``event_id``
each time. Rates from a shared, noisy machine move by 10-20% between runs; the ratios to the
baselines measured minutes apart in the same run move less, and the best of ``ROUNDS``
interleaved rounds is kept for the figures that are compared.

Run alone with ``.venv/bin/python -m benchmarks.http``; ``make bench`` runs it with the rest.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import BaseModel
from tests.fixtures.uvicorn_server import HOST, UvicornServer

from abscope.assignment import AssignmentConfig, Router

CONNECTIONS = 16
WARMUP = 1.0
DURATION = 4.0
ROUNDS = 3
USERS = 20_000
EXPERIMENTS = 100
EVENTS_BATCH = 1_000  # events per /events request
EVENTS_CONNECTIONS = 4  # /events connections: 4 batches in flight keep the server busy
EVENT_ID = "%EID%"  # replaced by a new event id in every request that has it
ABSCOPE_APP = "abscope.api.app:create_app"

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


# --- the baseline apps ------------------------------------------------------------------------


class RouteBody(BaseModel):
    """The shape of abscope's ``/route`` body."""

    user_id: str
    experiment_id: str | None = None


def trivial_app() -> FastAPI:
    """A FastAPI app with one trivial POST endpoint, as ``async def`` and as ``def``."""
    app = FastAPI()

    @app.post("/async")
    async def parse_async(body: RouteBody) -> dict[str, str]:
        return {"user_id": body.user_id}

    @app.post("/sync")
    def parse_sync(body: RouteBody) -> dict[str, str]:
        return {"user_id": body.user_id}

    return app


class SeedLogBody(BaseModel):
    """The body of the seed's ``/log`` (the version abscope started from)."""

    experiment_id: str
    user_id: str
    variant_name: str
    converted: bool = False
    value: float | None = None
    event_id: str | None = None


def seed_log_app() -> FastAPI:
    """The seed's ``/log``, rebuilt for this benchmark as the write-path baseline.

    A ``def`` endpoint (FastAPI runs it in its thread pool) on one synchronous redis-py
    client (``SEED_REDIS_URL``) that makes the seed's unpipelined calls per event: ``RPUSH``
    of the event to the experiment's list, ``HINCRBY`` of the variant's exposures and, for
    a conversion, ``HINCRBY`` of its conversions (a value adds ``HINCRBYFLOAT``). It keeps
    no event ids and counts a user as often as they are logged: what abscope checks (the
    assignment, exactly once per user, idempotent retries) it does not.
    """
    import redis

    client = redis.Redis.from_url(os.environ["SEED_REDIS_URL"])
    app = FastAPI()

    @app.post("/log")
    def log(body: SeedLogBody) -> dict[str, str]:
        stats = f"seed:{body.experiment_id}:stats"
        client.rpush(f"seed:{body.experiment_id}:events", body.model_dump_json())
        client.hincrby(stats, f"{body.variant_name}:exposures", 1)
        if body.converted:
            client.hincrby(stats, f"{body.variant_name}:conversions", 1)
        if body.value is not None:
            client.hincrbyfloat(stats, f"{body.variant_name}:value", body.value)
        return {"status": "logged"}

    return app


def raw_app() -> ASGIApp:
    """A raw ASGI app that reads the request body and answers ``{"ok":true}``."""
    body = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]

    async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


# --- the load generator (runs in its own process) ---------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    """What one closed-loop load run measured in its window."""

    requests: int
    seconds: float
    errors: int
    first_error: str
    p50_ms: float
    p99_ms: float
    server_cpu: float  # share of one core, over the window
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Load:
    """Shared state of one load run: request bytes, the window and what was measured."""

    def __init__(self, spec: dict[str, Any]) -> None:
        host, port, path = spec["host"], spec["port"], spec["path"]
        self.prefix = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.bodies: list[bytes] = [b.encode() for b in spec["bodies"]]
        self.ready: list[bytes | None] = [
            None if EVENT_ID.encode() in b else self._request(b) for b in self.bodies
        ]
        self.server_pid: int = spec["server_pid"]
        self.nonce = b"%d" % spec["nonce"]
        self.sent = 0
        self.window_start = float("inf")
        self.window_end = float("inf")
        self.stopping = False
        self.latencies: list[float] = []
        self.errors = 0
        self.first_error = ""
        self.cpu: dict[str, float] = {}

    def _request(self, body: bytes) -> bytes:
        return self.prefix + str(len(body)).encode() + b"\r\n\r\n" + body

    def next_request(self) -> bytes:
        index = self.sent % len(self.bodies)
        self.sent += 1
        ready = self.ready[index]
        if ready is not None:
            return ready
        unique = b"e%s-%d" % (self.nonce, self.sent)
        return self._request(self.bodies[index].replace(EVENT_ID.encode(), unique))

    def record(self, started: float, finished: float, status: int, reply: bytes) -> None:
        if status != 200:
            self.errors += 1
            self.first_error = self.first_error or reply[:300].decode(errors="replace")
        elif self.window_start <= started and finished <= self.window_end:
            self.latencies.append(finished - started)

    def mark(self, name: str) -> None:
        self.cpu[f"{name}_client"] = time.process_time()
        try:
            self.cpu[f"{name}_server"] = _cpu_seconds(self.server_pid)
        except OSError:
            self.cpu[f"{name}_server"] = float("nan")


class _Connection(asyncio.Protocol):
    """One keep-alive connection: send, read the whole reply, send the next."""

    def __init__(self, load: _Load, closed: asyncio.Future[None]) -> None:
        self.load = load
        self.closed = closed
        self.buffer = b""
        self.need = -1  # bytes of the current reply, once its head is read
        self.status = 0
        self.started = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        if self.load.stopping:
            self.transport.close()
            return
        self.started = time.perf_counter()
        self.transport.write(self.load.next_request())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.need < 0:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].lower()
                self.status = int(head[9:12])
                at = head.find(b"\r\ncontent-length:")
                if at < 0:
                    raise RuntimeError(f"a reply without content-length: {head[:200]!r}")
                start = at + len(b"\r\ncontent-length:")
                stop = head.find(b"\r\n", start)
                length = int(head[start : stop if stop >= 0 else None])
                self.need = end + 4 + length
            if len(self.buffer) < self.need:
                return
            reply, self.buffer = self.buffer[: self.need], self.buffer[self.need :]
            self.need = -1
            self.load.record(self.started, time.perf_counter(), self.status, reply)
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.load.stopping:
            self.load.errors += 1
            self.load.first_error = self.load.first_error or f"connection lost: {exc!r}"
        if not self.closed.done():
            self.closed.set_result(None)


async def _run_load(spec: dict[str, Any]) -> LoadResult:
    load = _Load(spec)
    loop = asyncio.get_running_loop()
    closed = [loop.create_future() for _ in range(spec["connections"])]
    for future in closed:
        await loop.create_connection(
            lambda f=future: _Connection(load, f),  # type: ignore[misc]
            spec["host"],
            spec["port"],
        )
    await asyncio.sleep(spec["warmup"])
    load.window_start = time.perf_counter()
    load.mark("start")
    await asyncio.sleep(spec["duration"])
    load.window_end = time.perf_counter()
    load.mark("end")
    load.stopping = True
    await asyncio.wait_for(asyncio.gather(*closed), timeout=30)
    seconds = load.window_end - load.window_start
    latencies = sorted(load.latencies)

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3 if latencies else 0

    cpu = load.cpu
    return LoadResult(
        requests=len(latencies),
        seconds=seconds,
        errors=load.errors,
        first_error=load.first_error,
        p50_ms=quantile(0.50),
        p99_ms=quantile(0.99),
        server_cpu=(cpu["end_server"] - cpu["start_server"]) / seconds,
        client_cpu=(cpu["end_client"] - cpu["start_client"]) / seconds,
    )


def load(
    server: UvicornServer,
    path: str,
    bodies: Sequence[str],
    *,
    connections: int = CONNECTIONS,
    warmup: float = WARMUP,
    duration: float = DURATION,
) -> LoadResult:
    """Load ``path`` of ``server`` from a separate process; the window's figures."""
    spec = {
        "host": HOST,
        "port": server.port,
        "path": path,
        "bodies": list(bodies),
        "server_pid": server.pid,
        "connections": connections,
        "warmup": warmup,
        "duration": duration,
        "nonce": time.time_ns(),  # new ids in every run: a server never saw them before
    }
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks.http", "--load"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{finished.stderr[-3000:]}")
    return LoadResult(**json.loads(finished.stdout))


def _load_main() -> None:
    gc.disable()  # the client makes few objects that live; keep pauses out of the latencies
    spec = json.loads(sys.stdin.read())
    result = asyncio.run(_run_load(spec))
    print(json.dumps(asdict(result)))


# --- the scenarios ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpFigure:
    """One line of the table: what was loaded, how, and what it did."""

    key: str
    label: str
    result: LoadResult


def _route_bodies(
    experiment_id: str | None, *, new_users: bool = False, expose: bool = True
) -> list[str]:
    """``/route`` bodies: ``USERS`` user ids in a cycle, or (``new_users``) a user never
    seen before in every request, so that every request records a new exposure."""
    users = [EVENT_ID] if new_users else [f"user-{i}" for i in range(USERS)]
    extra: dict[str, Any] = {} if expose else {"expose": False}
    if experiment_id is not None:
        extra["experiment_id"] = experiment_id
    return [json.dumps({"user_id": u} | extra) for u in users]


def _log_bodies(experiment_id: str) -> list[str]:
    """``/log`` bodies for users in their own variant: exposures, some conversions, values."""
    router = Router(AssignmentConfig(experiment_id, ("control", "treatment"), (0.5, 0.5)))
    bodies = []
    for i in range(USERS):
        user = f"user-{i}"
        body: dict[str, Any] = {
            "experiment_id": experiment_id,
            "user_id": user,
            "variant_name": router.choose(user),
            "converted": i % 10 == 0,
            "event_id": EVENT_ID,
        }
        if i % 4 == 0:
            body["value"] = (i % 37) * 0.25
        bodies.append(json.dumps(body))
    return bodies


def _start_experiments(server: UvicornServer, ids: Sequence[str]) -> None:
    """Create and start two-variant 50/50 experiments through the API."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for experiment_id in ids:
            created = client.post(
                "/experiments",
                json={
                    "id": experiment_id,
                    "name": experiment_id,
                    "control_model_id": "model-a",
                    "treatment_model_id": "model-b",
                },
            )
            created.raise_for_status()
            client.post(f"/experiments/{experiment_id}/start").raise_for_status()


def _events_bodies(experiment_id: str, batch: int = EVENTS_BATCH, count: int = 20) -> list[str]:
    """``count`` different ``/events`` bodies of ``batch`` events each, users in their own
    variant: 60% exposures, 15% conversions, 25% values; every event id new per request."""
    import random

    rng = random.Random(0)
    router = Router(AssignmentConfig(experiment_id, ("control", "treatment"), (0.5, 0.5)))
    variant_of = {f"user-{u}": router.choose(f"user-{u}") for u in range(USERS)}
    bodies = []
    for _ in range(count):
        events = []
        for index in range(batch):
            user = f"user-{rng.randrange(USERS)}"
            draw = rng.random()
            kind = "exposure" if draw < 0.6 else "conversion" if draw < 0.75 else "value"
            event: dict[str, Any] = {
                "experiment_id": experiment_id,
                "user_id": user,
                "variant_name": variant_of[user],
                "kind": kind,
                "event_id": f"{EVENT_ID}-{index}",
            }
            if kind == "value":
                event["value"] = rng.randint(-8, 40) / 4
            events.append(event)
        bodies.append(json.dumps({"events": events}))
    return bodies


SCENARIOS = (
    "baselines",
    "route",
    "route-all",
    "log-redis",
    "events-redis",
    "route-100",
    "log-sqlite",
    "seed-log",
    "defaults",
    "metrics",
)


def run(
    workdir: Path, redis_url: str, only: Sequence[str] = SCENARIOS, rounds: int = ROUNDS
) -> list[HttpFigure]:
    """Every HTTP figure (or those of the ``only`` scenarios), measured in this order on
    servers started here; the figures that are compared are measured in ``rounds``
    interleaved rounds, so that a busy moment hurts both sides."""
    figures: list[HttpFigure] = []

    def measure(
        key: str, label: str, server: UvicornServer, path: str, bodies: list[str], **options: Any
    ) -> None:
        figures.append(HttpFigure(key, label, load(server, path, bodies, **options)))

    first = "bench-000"
    log_bodies = _log_bodies(first)
    with (
        UvicornServer("benchmarks.http:raw_app", workdir / "raw.log", access_log=False) as raw,
        UvicornServer(
            "benchmarks.http:trivial_app", workdir / "trivial.log", access_log=False
        ) as trivial,
        UvicornServer(
            "benchmarks.http:seed_log_app",
            workdir / "seed.log",
            env={"SEED_REDIS_URL": redis_url},
            access_log=False,
        ) as seed,
        UvicornServer(
            ABSCOPE_APP,
            workdir / "abscope-redis.log",
            env={"ABSCOPE_REDIS_URL": redis_url},
            access_log=False,
        ) as abscope,
        UvicornServer(
            ABSCOPE_APP,
            workdir / "abscope-sqlite.log",
            env={"ABSCOPE_DB_PATH": str(workdir / "db")},
            access_log=False,
        ) as embedded,
        UvicornServer(  # what the defaults save, one at a time: the access log on ...
            ABSCOPE_APP,
            workdir / "abscope-logged.log",
            env={"ABSCOPE_REDIS_URL": redis_url},
            access_log=True,
        ) as logged,
        UvicornServer(  # ... and the collector as Python sets it
            ABSCOPE_APP,
            workdir / "abscope-untuned.log",
            env={"ABSCOPE_REDIS_URL": redis_url, "ABSCOPE_GC_THRESHOLD": "0"},
            access_log=False,
        ) as untuned,
        UvicornServer(  # what the metrics cost: the same, with them off
            ABSCOPE_APP,
            workdir / "abscope-unmetered.log",
            env={"ABSCOPE_REDIS_URL": redis_url, "ABSCOPE_METRICS": "false"},
            access_log=False,
        ) as unmetered,
    ):
        _start_experiments(abscope, [first])
        _start_experiments(embedded, [first])
        # These servers share the store with the first: an experiment of their own each.
        _start_experiments(logged, ["bench-logged"])
        _start_experiments(untuned, ["bench-untuned"])
        _start_experiments(unmetered, ["bench-unmetered"])
        plain, with_id = _route_bodies(None), _route_bodies(first)
        new_users = _route_bodies(first, new_users=True)
        peek = _route_bodies(first, expose=False)
        for _ in range(rounds):
            if "baselines" in only:
                measure("raw", "raw ASGI hello world (uvicorn floor)", raw, "/", with_id)
                measure(
                    "async",
                    "trivial FastAPI POST, pydantic body, async def (baseline)",
                    trivial,
                    "/async",
                    with_id,
                )
                measure(
                    "sync", "trivial FastAPI POST, pydantic body, def", trivial, "/sync", with_id
                )
            if "seed-log" in only:
                measure(
                    "seed-log",
                    "the seed's /log: def, sync redis-py, RPUSH + HINCRBY (+ HINCRBY) (baseline)",
                    seed,
                    "/log",
                    log_bodies,
                )
            if "route" in only:
                measure(
                    "route-1-id",
                    "/route, 1 running, a new user per request (records each exposure)",
                    abscope,
                    "/route",
                    new_users,
                )
                measure(
                    "route-1-repeat",
                    f"/route, 1 running, {USERS:,} users in a cycle (exposures recorded once)",
                    abscope,
                    "/route",
                    with_id,
                )
                measure(
                    "route-1-peek", '/route, 1 running, "expose": false', abscope, "/route", peek
                )
            if "log-redis" in only:
                measure(
                    "log-redis",
                    "/log (Redis), 1/10 converted, 1/4 with value",
                    abscope,
                    "/log",
                    log_bodies,
                )
            if "log-sqlite" in only:
                measure(
                    "log-sqlite",
                    "/log (SQLite), 1/10 converted, 1/4 with value",
                    embedded,
                    "/log",
                    log_bodies,
                )
            if "events-redis" in only:
                measure(
                    "events-redis",
                    f"/events (Redis), {EVENTS_BATCH:,} events per request",
                    abscope,
                    "/events",
                    _events_bodies(first),
                    connections=EVENTS_CONNECTIONS,
                )
            if "defaults" in only:
                measure(
                    "route-logged",
                    "/route, a new user per request, with the access log",
                    logged,
                    "/route",
                    _route_bodies("bench-logged", new_users=True),
                )
                measure(
                    "log-logged",
                    "/log (Redis), with the access log",
                    logged,
                    "/log",
                    _log_bodies("bench-logged"),
                )
                measure(
                    "log-untuned",
                    "/log (Redis), the collector untuned (gc_threshold 0)",
                    untuned,
                    "/log",
                    _log_bodies("bench-untuned"),
                )
                measure(
                    "events-untuned",
                    f"/events (Redis), {EVENTS_BATCH:,} per request, the collector untuned",
                    untuned,
                    "/events",
                    _events_bodies("bench-untuned"),
                    connections=EVENTS_CONNECTIONS,
                )
            if "metrics" in only:  # each path with metrics on (the default), then off
                measure(
                    "route-metered",
                    "/route, a new user per request, metrics on",
                    abscope,
                    "/route",
                    new_users,
                )
                measure(
                    "route-unmetered",
                    "/route, a new user per request, metrics off",
                    unmetered,
                    "/route",
                    _route_bodies("bench-unmetered", new_users=True),
                )
                measure(
                    "events-metered",
                    f"/events (Redis), {EVENTS_BATCH:,} per request, metrics on",
                    abscope,
                    "/events",
                    _events_bodies(first),
                    connections=EVENTS_CONNECTIONS,
                )
                measure(
                    "events-unmetered",
                    f"/events (Redis), {EVENTS_BATCH:,} per request, metrics off",
                    unmetered,
                    "/events",
                    _events_bodies("bench-unmetered"),
                    connections=EVENTS_CONNECTIONS,
                )
        if "route-all" in only:
            measure(
                "route-1-all", "/route without experiment_id, 1 running", abscope, "/route", plain
            )
        if "route-100" in only:
            _start_experiments(abscope, [f"bench-{i:03d}" for i in range(1, EXPERIMENTS)])
            measure(
                "route-100-id",
                f"/route, {EXPERIMENTS} running, a new user per request",
                abscope,
                "/route",
                new_users,
            )
            measure(
                "route-100-all",
                f"/route without experiment_id, {EXPERIMENTS} running",
                abscope,
                "/route",
                plain,
            )
    return figures


def best(figures: Sequence[HttpFigure]) -> dict[str, HttpFigure]:
    """The fastest figure of each key."""
    chosen: dict[str, HttpFigure] = {}
    for figure in figures:
        if figure.key not in chosen or figure.result.rate > chosen[figure.key].result.rate:
            chosen[figure.key] = figure
    return chosen


def main(only: Sequence[str] = SCENARIOS) -> None:
    from tests.fixtures.redis_servers import RedisServer

    with tempfile.TemporaryDirectory(prefix="abscope-bench-") as directory:
        workdir = Path(directory)
        with RedisServer(workdir / "redis") as redis_server:
            figures = best(run(workdir, redis_server.url, only))
    for figure in figures.values():
        r = figure.result
        print(
            f"{figure.label:56} {r.rate:9,.0f} req/s  p99 {r.p99_ms:6.1f} ms  "
            f"cpu server {r.server_cpu:4.0%} client {r.client_cpu:4.0%}  errors {r.errors}"
        )


if __name__ == "__main__":
    if sys.argv[1:] == ["--load"]:
        _load_main()
    else:
        main(sys.argv[1:] or SCENARIOS)  # e.g. python -m benchmarks.http baselines log-redis
