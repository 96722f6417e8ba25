"""``GET /metrics`` of ``abscope serve --workers 2``: a scrape sums both workers' counts, the
per-experiment gauges are the store's, and a worker killed and replaced takes nothing back
and counts nothing twice.

A real supervisor with two workers (:class:`tests.fixtures.uvicorn_server.AbscopeServer`)
on SQLite, its metrics directory one of the test's, so that each worker's own file can be
read apart (prometheus-client names them by pid). Every request opens a connection of its
own, so the kernel spreads them over both workers' sockets.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.api.helpers import seed_body
from tests.fixtures.proc import LISTEN, listening_sockets, tcp_sockets
from tests.fixtures.scrape import Scrape
from tests.fixtures.uvicorn_server import HOST, AbscopeServer

KEYS = {
    "admin": "workers-admin-key-3e9d71",
    "ingest": "workers-ingest-key-b4a022",
    "read": "workers-read-key-0c6f58",
}
EXPERIMENT = "two-workers"
ROUTES, LOGS, BATCHES, BATCH = 120, 40, 10, 5  # requests of each kind, events per batch


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("metrics")
    (directory / "counter_999999.db").write_bytes(b"a previous run's file")
    return directory


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, metrics_dir: Path) -> Iterator[AbscopeServer]:
    directory = tmp_path_factory.mktemp("serve")
    env = {
        "ABSCOPE_DB_PATH": str(directory / "abscope.db"),
        "ABSCOPE_ADMIN_API_KEY": KEYS["admin"],
        "ABSCOPE_INGEST_API_KEY": KEYS["ingest"],
        "ABSCOPE_READ_API_KEY": KEYS["read"],
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    with AbscopeServer(directory / "serve.log", env=env, workers=2, health_path="/health") as s:
        status, _ = _call(s, "POST", "/experiments", seed_body(id=EXPERIMENT), "admin")
        assert status == 201
        assert _call(s, "POST", f"/experiments/{EXPERIMENT}/start", None, "admin")[0] == 200
        yield s


def _call(
    server: AbscopeServer, method: str, path: str, body: Any, role: str | None
) -> tuple[int, Any]:
    """One request on a connection of its own; the status and the decoded body."""
    connection = http.client.HTTPConnection(HOST, server.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if role is not None:
        headers["X-API-Key"] = KEYS[role]
    try:
        connection.request(method, path, None if body is None else json.dumps(body), headers)
        response = connection.getresponse()
        data = response.read()
        kind = response.getheader("content-type", "")
        return response.status, json.loads(data) if "json" in kind else data.decode()
    finally:
        connection.close()


def _scrape(server: AbscopeServer) -> Scrape:
    status, text = _call(server, "GET", "/metrics", None, "read")
    assert status == 200, text
    return Scrape(text)


def _traffic(server: AbscopeServer, round_: str) -> None:
    """``ROUTES`` /route (a new user each), ``LOGS`` /log conversions and ``BATCHES``
    /events of ``BATCH`` exposures, every one answered 200."""
    variants = {}
    for i in range(ROUTES):
        user = f"{round_}-user-{i}"
        status, answer = _call(
            server, "POST", "/route", {"user_id": user, "experiment_id": EXPERIMENT}, "ingest"
        )
        assert status == 200, answer
        variants[user] = answer["variant_name"]
    users = list(variants)
    for user in users[:LOGS]:
        body = {"experiment_id": EXPERIMENT, "user_id": user, "variant_name": variants[user],
                "converted": True}  # fmt: skip
        assert _call(server, "POST", "/log", body, "ingest")[0] == 200
    for b in range(BATCHES):
        events = [
            {"experiment_id": EXPERIMENT, "user_id": f"{round_}-batch-{b}-{e}",
             "variant_name": "control", "kind": "exposure"}
            for e in range(BATCH)
        ]  # fmt: skip
        status, answer = _call(server, "POST", "/events", {"events": events}, "ingest")
        assert status == 200 and answer["counted"] + answer["rejected"] == BATCH, answer


def _requests(scrape: Scrape, route: str) -> float:
    return scrape.value("abscope_http_requests_total", route=route, method="POST", status="200")


def _per_worker(metrics_dir: Path, pid: int, scratch: Path) -> Scrape:
    """The counts of one worker alone: its own files, summed by the same collector."""
    alone = scratch / str(pid)
    alone.mkdir()
    for file in metrics_dir.glob(f"*_{pid}.db"):
        shutil.copy(file, alone / file.name)
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(alone))  # type: ignore[no-untyped-call]
    return Scrape(generate_latest(registry).decode())


def _eventually(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what} did not happen in time"
        time.sleep(0.05)
    return value


def _assert_totals(scrape: Scrape, rounds: int) -> None:
    assert _requests(scrape, "/route") == rounds * ROUTES
    assert _requests(scrape, "/log") == rounds * LOGS
    assert _requests(scrape, "/events") == rounds * BATCHES
    events = "abscope_events_total"
    assert scrape.value(events, source="route", kind="exposure", outcome="counted") == (
        rounds * ROUTES
    )
    assert scrape.value(events, source="log", kind="conversion", outcome="counted") == (
        rounds * LOGS
    )
    assert scrape.total(events, source="events", kind="exposure") == rounds * BATCHES * BATCH


def test_a_scrape_sums_both_workers_and_a_replaced_worker_takes_nothing_back(
    server: AbscopeServer, metrics_dir: Path, tmp_path: Path
) -> None:
    assert not (metrics_dir / "counter_999999.db").exists()  # emptied at start
    workers = server.worker_pids()
    assert len(workers) == 2
    _traffic(server, "first")
    scrape = _scrape(server)
    _assert_totals(scrape, rounds=1)
    # Each worker served some of the requests, and the two add up to the scrape.
    alone = [_per_worker(metrics_dir, pid, tmp_path) for pid in workers]
    served = [sum(_requests(s, path) for path in ("/route", "/log", "/events")) for s in alone]
    assert min(served) > 0, f"requests per worker {dict(zip(workers, served, strict=True))}"
    assert sum(served) == ROUTES + LOGS + BATCHES
    # The gauges are the store's counts, as /results analyses them.
    status, results = _call(server, "GET", f"/experiments/{EXPERIMENT}/results", None, "read")
    assert status == 200
    for variant in results["variants"]:
        labels = {"experiment": EXPERIMENT, "variant": variant["name"]}
        assert scrape.value("abscope_experiment_users", **labels) == variant["n"]
        assert scrape.value("abscope_experiment_conversions", **labels) == variant["conversions"]
    assert scrape.total("abscope_experiment_users") == sum(v["n"] for v in results["variants"])
    assert scrape.total("abscope_experiment_conversions") == LOGS

    killed, survivor = workers
    its_socket = listening_sockets(killed, server.port)
    os.kill(killed, signal.SIGKILL)
    _eventually(lambda: killed not in server.worker_pids(), "the killed worker's socket closing")
    _eventually(
        lambda: not its_socket & tcp_sockets(server.port, LISTEN),
        "the kernel closing the killed worker's socket",
    )
    replaced = _eventually(
        lambda: len(pids := server.worker_pids()) == 2 and pids, "a new worker listening"
    )
    assert survivor in replaced and killed not in replaced
    _assert_totals(_scrape(server), rounds=1)  # the dead worker's counts stay
    _traffic(server, "second")
    _assert_totals(_scrape(server), rounds=2)  # and are not counted twice


def test_the_scrape_needs_the_read_key(server: AbscopeServer) -> None:
    assert _call(server, "GET", "/metrics", None, None)[0] == 401
    assert _call(server, "GET", "/metrics", None, "ingest")[0] == 403
    assert _call(server, "GET", "/metrics", None, "admin")[0] == 200
    connection = http.client.HTTPConnection(HOST, server.port, timeout=30)
    try:
        connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {KEYS['read']}"})
        response = connection.getresponse()
        assert response.status == 200
        assert b"abscope_http_requests_total" in response.read()
    finally:
        connection.close()
