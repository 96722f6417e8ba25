"""``abscope serve``: workers that each listen on a socket of their own share the connections,
stop on SIGTERM, are replaced when one dies, and log no access lines unless asked to.

Real processes on free ports (:class:`tests.fixtures.uvicorn_server.AbscopeServer`); who holds
which connection is read from the kernel (/proc), never asked of the server.
"""

from __future__ import annotations

import http.client
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.proc import LISTEN, listening_sockets, tcp_sockets
from tests.fixtures.scrape import Scrape
from tests.fixtures.uvicorn_server import HOST, AbscopeServer

CONNECTIONS = 64
# With two listening sockets, Linux picks one per connection from a hash of its addresses
# and ports: each of 64 connections lands on a given worker with probability 1/2, so the
# chance that either worker gets fewer than 8 is 2 * sum(comb(64, k) for k in range(8)) / 2**64
# = 7.6e-11.
AT_LEAST = 8
ACCESS_LINE = '"GET /health HTTP/1.1" 200'

MakeAbscope = Callable[..., AbscopeServer]


@pytest.fixture
def make_abscope(tmp_path: Path) -> Iterator[MakeAbscope]:
    """``make_abscope(workers=..., access_log=..., **env)``: a started ``abscope serve``
    on SQLite in ``tmp_path``, stopped afterwards."""
    with ExitStack() as stack:
        count = 0

        def make(*, workers: int = 2, access_log: bool = False, **env: str) -> AbscopeServer:
            nonlocal count
            count += 1
            server = AbscopeServer(
                tmp_path / f"serve-{count}.log",
                env={"ABSCOPE_DB_PATH": str(tmp_path / "abscope.db"), **env},
                workers=workers,
                access_log=access_log,
                health_path="/health",
            )
            return stack.enter_context(server)

        yield make


@contextmanager
def _connections(server: AbscopeServer, count: int = CONNECTIONS) -> Iterator[None]:
    """``count`` kept-alive connections, each having made two requests, open until exit."""
    opened: list[http.client.HTTPConnection] = []
    try:
        for _ in range(count):
            connection = http.client.HTTPConnection(HOST, server.port, timeout=30)
            opened.append(connection)
            for _ in range(2):
                connection.request("GET", "/health")
                response = connection.getresponse()
                assert response.status == 200, response.read()
                response.read()
        yield
    finally:
        for connection in opened:
            connection.close()


def _assert_both_workers_hold_connections(server: AbscopeServer) -> dict[int, int]:
    with _connections(server):
        held = server.connections_per_worker()
    assert len(held) == 2, f"expected two workers, the kernel shows {held}"
    assert sum(held.values()) == CONNECTIONS, held
    assert min(held.values()) >= AT_LEAST, f"connections per worker pid: {held}"
    return held


def _eventually(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """The first truthy value of ``check()``; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what} did not happen in time"
        time.sleep(0.05)
    return value


def _environment(pid: int) -> dict[str, str]:
    """The environment a process started with (from /proc)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {name: value for name, _, value in pairs}


def _get_health(server: AbscopeServer) -> int:
    connection = http.client.HTTPConnection(HOST, server.port, timeout=30)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status
    finally:
        connection.close()


def test_two_workers_both_accept_connections_and_log_no_requests(
    make_abscope: MakeAbscope,
) -> None:
    server = make_abscope(workers=2)
    # Each worker listens on a socket of its own; the supervisor holds none.
    first, second = (listening_sockets(pid, server.port) for pid in server.worker_pids())
    assert len(first) == len(second) == 1 and first != second
    assert listening_sockets(server.pid, server.port) == set()
    _assert_both_workers_hold_connections(server)
    log = server.log_file.read_text()
    assert log.count("Application startup complete") == 2
    assert ACCESS_LINE not in log


def test_sigterm_stops_every_worker_and_the_supervisor_exits_0(
    make_abscope: MakeAbscope,
) -> None:
    server = make_abscope(workers=2)
    workers = server.worker_pids()
    # With no PROMETHEUS_MULTIPROC_DIR given, the supervisor makes a directory for both
    # workers' metrics, which a scrape sums, and removes it at exit.
    directories = {_environment(pid).get("PROMETHEUS_MULTIPROC_DIR") for pid in workers}
    assert len(directories) == 1 and None not in directories, directories
    (directory,) = directories
    assert directory is not None and Path(directory).is_dir()
    with _connections(server):  # kept-alive connections do not hold the shutdown up
        connection = http.client.HTTPConnection(HOST, server.port, timeout=30)
        connection.request("GET", "/metrics")
        scrape = connection.getresponse().read().decode()
        connection.close()
        served = Scrape(scrape).value(
            "abscope_http_requests_total", route="/health", method="GET", status="200"
        )
        # Each worker served at least AT_LEAST connections' two requests, not all of them:
        # so the sum (and the readiness probes) is both workers'.
        assert served >= 2 * CONNECTIONS, served
        server.stop()  # SIGTERM; SIGKILL (and another exit status) only after 15 s
    assert server.returncode == 0, server.log_tail()
    assert server.left_behind == []
    assert not Path(directory).exists()
    log = server.log_file.read_text()
    assert "Received SIGTERM" in log
    for pid in workers:  # each shut down gracefully: the app's lifespan ended
        assert f"Finished server process [{pid}]" in log
    assert log.count("Application shutdown complete") == 2


def test_a_killed_worker_is_replaced_and_the_port_keeps_answering(
    make_abscope: MakeAbscope,
) -> None:
    server = make_abscope(workers=2)
    killed, survivor = server.worker_pids()
    its_socket = listening_sockets(killed, server.port)
    assert its_socket, "the worker to kill holds no listening socket"
    os.kill(killed, signal.SIGKILL)
    _eventually(lambda: killed not in server.worker_pids(), "the killed worker's socket closing")
    # /proc may stop showing a dying process's files before the kernel closes them, and a
    # connection queued on the dying socket would be reset: wait until the kernel's own
    # table no longer lists that socket.
    _eventually(
        lambda: not its_socket & tcp_sockets(server.port, LISTEN),
        "the kernel closing the killed worker's socket",
    )
    assert [_get_health(server) for _ in range(20)] == [200] * 20  # the survivor answers
    replaced = _eventually(
        lambda: len(pids := server.worker_pids()) == 2 and pids, "a new worker listening"
    )
    assert survivor in replaced and killed not in replaced
    log = server.log_file.read_text()
    assert f"Child process [{killed}] died (killed by SIGKILL); starting a new one" in log
    _eventually(
        lambda: server.log_file.read_text().count("Application startup complete") == 3,
        "the new worker's startup",
    )
    _assert_both_workers_hold_connections(server)  # the new worker takes its share
    server.stop()
    assert server.returncode == 0, server.log_tail()
    assert server.left_behind == []


@pytest.mark.parametrize(("workers", "access_log"), [(1, False), (1, True), (2, True)])
def test_the_access_log_is_off_unless_asked_for(
    make_abscope: MakeAbscope, workers: int, access_log: bool
) -> None:
    server = make_abscope(workers=workers, access_log=access_log)
    assert [_get_health(server) for _ in range(4)] == [200] * 4
    if access_log:  # uvicorn logs the line before it sends the answer
        _eventually(
            lambda: server.log_file.read_text().count(ACCESS_LINE) >= 4, "four access lines"
        )
    else:
        assert ACCESS_LINE not in server.log_file.read_text()


def test_a_worker_that_fails_to_start_stops_the_supervisor_with_status_1(
    tmp_path: Path,
) -> None:
    # The store's directory does not exist: every worker's app factory raises. (An invalid
    # setting is refused by ``abscope serve`` itself, with status 2, before any worker.)
    server = AbscopeServer(
        tmp_path / "serve.log",
        env={"ABSCOPE_DB_PATH": str(tmp_path / "missing" / "abscope.db")},
        workers=2,
    )
    with pytest.raises(RuntimeError, match="did not start"):
        server.start()
    assert server.returncode == 1, server.log_tail()
    assert server.left_behind == []
    assert "failed to start" in server.log_file.read_text()


class _SharedSocket(AbscopeServer):
    """``abscope serve`` as it runs where SO_REUSEPORT does not balance connections: the
    check answers no, so uvicorn's own workers share one socket."""

    def command(self) -> list[str]:
        code = (
            "import abscope.api.workers as w\n"
            "w.reuseport_balances = lambda: False\n"
            f"raise SystemExit(w.serve(w.ServeOptions({HOST!r}, {self.port}, {self.workers})))"
        )
        return [sys.executable, "-c", code]


def test_without_reuseport_uvicorns_workers_share_one_socket(tmp_path: Path) -> None:
    with _SharedSocket(
        tmp_path / "serve.log",
        env={"ABSCOPE_DB_PATH": str(tmp_path / "abscope.db")},
        workers=2,
        health_path="/health",
    ) as server:
        assert len(server.worker_pids()) == 2
        assert [_get_health(server) for _ in range(4)] == [200] * 4
        log = server.log_file.read_text()
        assert "SO_REUSEPORT does not balance connections here" in log
        assert ACCESS_LINE not in log
    assert server.returncode == 0, server.log_tail()
