"""``abscope serve --workers 1`` against ``--workers 2``: ``POST /log`` on Redis, 64 connections.

Both servers run ``abscope serve`` (:class:`tests.fixtures.uvicorn_server.AbscopeServer`, so
the access log is off) on one redis-server, with one running experiment created through the
API. Each is loaded with :func:`benchmarks.http.load` (its closed-loop load generator, in
another process) on ``/log`` bodies of :func:`benchmarks.http._log_bodies`, with
``CONNECTIONS`` keep-alive connections, in ``ROUNDS`` interleaved rounds; the best round of
each is kept.

While a run goes on, a thread here reads the kernel's view of the workers from /proc: once
every connection is open (the load generator then waits ``WARMUP`` before its window), the
CPU time of every worker process over the window (less ``MARGIN`` at each end) and, in the
middle of it, the established connections each worker holds. CPU per request is that CPU
share (summed over the workers; the load generator and redis-server are not counted) over
the window's request rate. ``benchmarks.http.load`` measures the CPU of ``server.pid``
alone, which with two workers is the supervisor, so its ``server_cpu`` is not used here;
with one worker the two agree to about 1%.

Run alone with ``PYTHONPATH=src:. .venv/bin/python -m benchmarks.workers``.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.uvicorn_server import AbscopeServer

from benchmarks.http import DURATION, WARMUP, LoadResult, _cpu_seconds, _log_bodies, load
from benchmarks.http import _start_experiments as start_experiments

__all__ = ["CONNECTIONS", "ROUNDS", "WorkersFigure", "best", "main", "run"]

CONNECTIONS = 64
ROUNDS = 2
WORKER_COUNTS = (1, 2)
MARGIN = 0.25  # seconds left out at each end of the load generator's window
EXPERIMENT = "bench-workers"


@dataclass(frozen=True)
class WorkersFigure:
    """One load run of ``/log`` on ``abscope serve --workers N``."""

    workers: int
    result: LoadResult
    cpu_per_request: float  # seconds of CPU, summed over the worker processes
    connections: tuple[int, ...]  # established connections each worker held, mid-window

    @property
    def rate(self) -> float:
        return self.result.rate


class _Watch(threading.Thread):
    """The workers' CPU share over the load window and their connections in its middle."""

    def __init__(self, server: AbscopeServer, connections: int) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.expected = connections
        self.cpu_share = float("nan")  # cores, summed over the workers
        self.held: tuple[int, ...] = ()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._watch()
        except BaseException as error:  # reported by the caller
            self.error = error

    def _watch(self) -> None:
        deadline = time.monotonic() + 60
        while sum(self.server.connections_per_worker().values()) < self.expected:
            if time.monotonic() > deadline:
                raise RuntimeError("the load generator did not open its connections")
            time.sleep(0.01)
        opened = time.monotonic()
        pids = self.server.worker_pids()
        self._sleep_until(opened + WARMUP + MARGIN)
        began, cpu_before = time.monotonic(), sum(_cpu_seconds(p) for p in pids)
        self._sleep_until(opened + WARMUP + DURATION / 2)
        self.held = tuple(self.server.connections_per_worker().values())
        self._sleep_until(opened + WARMUP + DURATION - MARGIN)
        ended, cpu_after = time.monotonic(), sum(_cpu_seconds(p) for p in pids)
        self.cpu_share = (cpu_after - cpu_before) / (ended - began)

    @staticmethod
    def _sleep_until(moment: float) -> None:
        time.sleep(max(0.0, moment - time.monotonic()))


def _measure(server: AbscopeServer, bodies: list[str]) -> WorkersFigure:
    watch = _Watch(server, CONNECTIONS)
    watch.start()
    result = load(server, "/log", bodies, connections=CONNECTIONS)
    watch.join()
    if watch.error is not None:
        raise RuntimeError("watching the workers failed") from watch.error
    return WorkersFigure(server.workers, result, watch.cpu_share / result.rate, watch.held)


def run(workdir: Path, redis_url: str) -> list[WorkersFigure]:
    """Every run, in the order measured: ``--workers 1``, ``--workers 2``, ``ROUNDS`` times."""
    figures: list[WorkersFigure] = []
    with ExitStack() as stack:
        servers = []
        for workers in WORKER_COUNTS:
            server = AbscopeServer(
                workdir / f"workers-{workers}.log",
                env={"ABSCOPE_REDIS_URL": redis_url},
                workers=workers,
                health_path="/health",
            )
            servers.append(stack.enter_context(server))
            if len(servers) == 1:  # the store is shared: the others find it there
                start_experiments(server, [EXPERIMENT])
        bodies = _log_bodies(EXPERIMENT)
        for _ in range(ROUNDS):  # interleaved, so that a busy moment hurts both sides
            figures.extend(_measure(server, bodies) for server in servers)
    return figures


def best(figures: Sequence[WorkersFigure]) -> dict[int, WorkersFigure]:
    """The fastest run for each number of workers."""
    chosen: dict[int, WorkersFigure] = {}
    for figure in figures:
        if figure.workers not in chosen or figure.rate > chosen[figure.workers].rate:
            chosen[figure.workers] = figure
    return chosen


def main() -> None:
    from tests.fixtures.redis_servers import RedisServer

    with tempfile.TemporaryDirectory(prefix="abscope-bench-") as directory:
        workdir = Path(directory)
        with RedisServer(workdir / "redis") as redis_server:
            figures = best(run(workdir, redis_server.url))
    one = figures[1].rate
    print(f"POST /log (Redis), {CONNECTIONS} keep-alive connections, best of {ROUNDS} rounds")
    for figure in figures.values():
        r = figure.result
        held = " / ".join(str(n) for n in figure.connections)
        print(
            f"--workers {figure.workers}  {r.rate:7,.0f} req/s ({r.rate / one:4.2f}x)  "
            f"p99 {r.p99_ms:6.1f} ms  cpu/request {figure.cpu_per_request * 1e6:5.0f} us "
            f"(all workers)  connections per worker {held:9}  errors {r.errors}"
        )


if __name__ == "__main__":
    main()
