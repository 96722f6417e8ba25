"""``abscope serve``: the service in one process, or N workers that each listen on a socket of
their own.

With one listening socket shared by the workers (uvicorn's ``workers=N``), whichever worker
wakes first accepts, and with a few busy keep-alive connections one worker can take them all
while the other stays idle: measured with 64 connections, in 3 of 5 rounds all of them went to
one of two workers, and two workers logged only 1.2x the rate of one. So with ``workers`` above
1 a small supervisor of ours starts N worker processes (``python -m abscope.api.workers``),
and each binds **its own** socket on ``host:port`` with ``SO_REUSEPORT``: Linux then spreads
new connections over the listening sockets by a hash of the connection's addresses and ports.

A worker listens only once its app has started, so no connection waits on a worker that is
still importing. It tells the supervisor that it is serving by writing to a pipe, and the end
of that pipe (it is never closed by the worker) tells the supervisor that the worker is gone:

* a worker that exits before it served is a failure to start (a broken setting, a port taken):
  the supervisor stops the others and exits 1, as restarting it would fail again;
* a worker that dies after it served is replaced, with a log line, as uvicorn's own
  supervisor does;
* SIGINT or SIGTERM to the supervisor is forwarded to the workers as SIGTERM, a graceful
  shutdown (answers in flight are finished, the store is closed), and the supervisor exits 0
  once every worker has. SIGTERM rather than SIGINT because a terminal's Ctrl+C also reaches
  every worker of the process group itself, and uvicorn takes a second SIGINT for "force
  quit"; a second signal to the supervisor is forwarded as SIGINT, for that.

Before the workers start, the supervisor binds the address once without ``SO_REUSEPORT`` and
lets it go: if another program holds the port (even another ``SO_REUSEPORT`` group, which the
workers would otherwise silently join) it fails there, with uvicorn's "address already in
use". Port 0 becomes a real port at that step, shared by every worker.

With several workers, each counts its metrics in files of one directory that ``GET
/metrics`` sums (prometheus-client's multi-process mode, :mod:`abscope.api.metrics`): the
directory named by ``PROMETHEUS_MULTIPROC_DIR`` when it is set, else a new temporary one
removed at exit. The supervisor empties it before the first worker starts, passes it to the
workers in that variable, and marks each worker that exits as dead
(``multiprocess.mark_process_dead``); a dead worker's counts stay, so counters never go
back when it is replaced.

Where ``SO_REUSEPORT`` does not balance (outside Linux) or is not available, ``workers`` above
1 falls back to uvicorn's ``workers=N`` with a warning. One worker is served in process, by
``uvicorn.run``. Every worker serves HTTP with :class:`~abscope.api.nodelay.NoDelayH11Protocol`
(TCP_NODELAY) and logs as uvicorn does, ``Application startup complete`` included.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import LOG_LEVELS, STARTUP_FAILURE

from abscope.api.nodelay import NoDelayH11Protocol
from abscope.logs import LogFormat, log_config

__all__ = ["APP", "ServeOptions", "Supervisor", "reuseport_balances", "serve"]

APP = "abscope.api.app:create_app"
"""The app factory every worker serves."""

_FORWARDED = (signal.SIGINT, signal.SIGTERM)
_MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # abscope.api.metrics.MULTIPROCESS_DIR: it
# is not imported here, so that the supervisor never imports prometheus-client
logger = logging.getLogger("uvicorn.error")


@dataclass(frozen=True)
class ServeOptions:
    """What ``abscope serve`` was asked for.

    Parameters
    ----------
    host, port
        The address to listen on; port 0 picks a free one.
    workers
        Worker processes, at least 1.
    log_level
        uvicorn's log level: critical, error, warning, info, debug or trace.
    access_log
        Log a line per request (uvicorn's access log).
    log_format
        ``text`` (uvicorn's lines) or ``json`` (:mod:`abscope.logs`).
    metrics
        Whether the app counts metrics (``ABSCOPE_METRICS``): several workers then share a
        metrics directory.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "info"
    access_log: bool = False
    log_format: LogFormat = "text"
    metrics: bool = True

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if self.log_level not in LOG_LEVELS:
            raise ValueError(
                f"log_level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}"
            )
        if self.log_format not in ("text", "json"):
            raise ValueError(f"log_format must be text or json, got {self.log_format!r}")

    def uvicorn_options(self) -> dict[str, Any]:
        """Keyword arguments of ``uvicorn.run`` and ``uvicorn.Config`` for :data:`APP`."""
        options: dict[str, Any] = {
            "factory": True,
            "http": NoDelayH11Protocol,
            "host": self.host,
            "port": self.port,
            "log_level": self.log_level,
            "access_log": self.access_log,
        }
        config = log_config(self.log_format, self.log_level)
        if config is not None:  # else uvicorn's own
            options["log_config"] = config
        return options

    def config(self) -> uvicorn.Config:
        """The uvicorn configuration of one worker (building it sets up uvicorn's logging)."""
        return uvicorn.Config(APP, **self.uvicorn_options())


def reuseport_balances() -> bool:
    """Whether sockets bound with ``SO_REUSEPORT`` share a port's new connections here.

    Linux balances them (since 3.9); elsewhere the option is missing or means something else
    (on macOS one socket takes every connection).
    """
    if not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"):
        return False
    try:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        return False
    return True


def serve(options: ServeOptions) -> int:
    """Run the service until it is stopped; the exit status.

    With metrics on and several workers (or ``PROMETHEUS_MULTIPROC_DIR`` set), the metrics'
    directory is prepared first; 1 if it cannot be.

    Several workers run under a :class:`Supervisor` (0 once stopped, 1 if a worker failed to
    start), or under uvicorn's own where ``SO_REUSEPORT`` does not balance. One worker runs
    in this process, in ``uvicorn.run``, which exits non-zero by itself if the app fails to
    start.
    """
    if not options.metrics or (options.workers == 1 and not os.environ.get(_MULTIPROCESS_DIR)):
        return _serve(options)
    try:
        directory, made_here = _metrics_directory()
    except OSError as error:
        options.config()  # uvicorn's logging, for the error
        logger.error(
            "cannot prepare the workers' metrics directory (%s): set %s to a writable"
            " directory, or ABSCOPE_METRICS=false",
            error,
            _MULTIPROCESS_DIR,
        )
        return 1
    try:
        return _serve(options)
    finally:
        if made_here:
            os.environ.pop(_MULTIPROCESS_DIR, None)
            shutil.rmtree(directory, ignore_errors=True)


def _serve(options: ServeOptions) -> int:
    if options.workers > 1 and reuseport_balances():
        return Supervisor(options).run()
    if options.workers > 1:
        options.config()  # uvicorn's logging, for the warning
        logger.warning(
            "SO_REUSEPORT does not balance connections here: the %d workers share one "
            "socket (uvicorn's --workers), and one of them may take most connections",
            options.workers,
        )
    uvicorn.run(APP, workers=options.workers, **options.uvicorn_options())
    return 0


def _metrics_directory() -> tuple[Path, bool]:
    """The workers' metrics directory (see the module docstring), emptied and set in
    ``PROMETHEUS_MULTIPROC_DIR`` for the workers to inherit; and whether it was made here
    (a temporary one, to remove at exit)."""
    given = os.environ.get(_MULTIPROCESS_DIR)
    directory = Path(given) if given else Path(tempfile.mkdtemp(prefix="abscope-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # a previous run's counts
        stale.unlink()
    os.environ[_MULTIPROCESS_DIR] = str(directory)
    return directory, not given


# --- the supervisor -------------------------------------------------------------------------


@dataclass
class _Worker:
    """A worker process, and the read end of the pipe it writes to once it serves."""

    process: subprocess.Popen[bytes]
    ready_pipe: int
    serving: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _how_it_ended(returncode: int) -> str:
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:  # a real-time signal has no name
        return f"killed by signal {-returncode}"


class Supervisor:
    """Starts ``options.workers`` worker processes on ``SO_REUSEPORT`` sockets, replaces a
    worker that dies, and stops them all on SIGINT or SIGTERM (see the module docstring)."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self._workers: dict[int, _Worker] = {}  # by the read end of the worker's pipe
        self._signals: list[int] = []  # received, in order
        self._selector = selectors.DefaultSelector()

    def run(self) -> int:
        """Serve until a signal stops the workers (0) or one fails to start (1)."""
        self.options.config()  # uvicorn's logging
        try:
            port = self._check_address()
        except OSError as error:
            logger.error(error)
            return 1
        worker_options = replace(self.options, port=port)
        wakeup_read, wakeup_write = socket.socketpair()
        wakeup_write.setblocking(False)
        previous_wakeup = signal.set_wakeup_fd(wakeup_write.fileno())
        previous_handlers = {sig: signal.signal(sig, self._on_signal) for sig in _FORWARDED}
        self._selector.register(wakeup_read, selectors.EVENT_READ)
        try:
            logger.info(
                "Started supervisor process [%d]: %d workers, each with its own socket "
                "(SO_REUSEPORT)",
                os.getpid(),
                self.options.workers,
            )
            shown = f"[{self.options.host}]" if ":" in self.options.host else self.options.host
            logger.info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", shown, port)
            for _ in range(self.options.workers):
                self._start_worker(worker_options)
            status = self._supervise(worker_options, wakeup_read)
            self._stop_workers(wakeup_read)
            logger.info("Stopping supervisor process [%d]", os.getpid())
            return status
        finally:
            for worker in self._workers.values():  # only if this process is dying itself
                worker.process.kill()
                worker.process.wait()
                os.close(worker.ready_pipe)
            self._selector.close()
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_wakeup)
            wakeup_read.close()
            wakeup_write.close()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)

    def _check_address(self) -> int:
        """Bind the address without ``SO_REUSEPORT`` and let it go; the port it got.

        This fails if anything listens there, a ``SO_REUSEPORT`` group included, which the
        workers would otherwise join; and it turns port 0 into a real port.
        """
        with socket.socket(_family(self.options.host)) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((self.options.host, self.options.port))
            port: int = probe.getsockname()[1]
        return port

    def _start_worker(self, options: ServeOptions) -> None:
        read_end, write_end = os.pipe()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, json.dumps(asdict(options)), str(write_end)],
                stdin=subprocess.DEVNULL,
                pass_fds=(write_end,),
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self._workers[read_end] = _Worker(process, read_end)
        self._selector.register(read_end, selectors.EVENT_READ)

    def _ended(self, worker: _Worker) -> int:
        """Forget a worker whose pipe closed, and mark its metrics dead; its exit status."""
        self._selector.unregister(worker.ready_pipe)
        del self._workers[worker.ready_pipe]
        os.close(worker.ready_pipe)
        returncode = worker.process.wait()
        _mark_dead(worker.pid)
        return returncode

    def _events(self, wakeup: socket.socket) -> list[_Worker]:
        """Wait for a signal or a worker's news; the workers that ended (signals are kept)."""
        ended = []
        for key, _ in self._selector.select():
            if key.fileobj is wakeup:
                wakeup.recv(4096)
                continue
            worker = self._workers[key.fd]
            if os.read(key.fd, 64):
                worker.serving = True
            else:
                ended.append(worker)
        return ended

    def _supervise(self, options: ServeOptions, wakeup: socket.socket) -> int:
        while not self._signals:
            for worker in self._events(wakeup):
                returncode = self._ended(worker)
                if self._signals:
                    break
                if not worker.serving:
                    logger.error(
                        "Child process [%d] failed to start (%s); stopping the workers",
                        worker.pid,
                        _how_it_ended(returncode),
                    )
                    return 1
                logger.warning(
                    "Child process [%d] died (%s); starting a new one",
                    worker.pid,
                    _how_it_ended(returncode),
                )
                self._start_worker(options)
        name = signal.Signals(self._signals[0]).name
        logger.info("Received %s, stopping the workers.", name)
        return 0

    def _stop_workers(self, wakeup: socket.socket) -> None:
        """SIGTERM to every worker, SIGINT (uvicorn's force quit) on a further signal; wait
        until every worker has exited."""
        handled = len(self._signals)
        self._send(signal.SIGTERM)
        if self._workers:
            logger.info("Waiting for %d child process(es) to finish", len(self._workers))
        while self._workers:
            for worker in self._events(wakeup):
                self._ended(worker)
            if len(self._signals) > handled:
                handled = len(self._signals)
                logger.info("Received another signal: the workers are to quit now")
                self._send(signal.SIGINT)

    def _send(self, sig: signal.Signals) -> None:
        for worker in self._workers.values():
            if worker.process.poll() is None:
                worker.process.send_signal(sig)


def _mark_dead(pid: int) -> None:
    """prometheus-client's bookkeeping for a worker that exited (its live gauges' files go;
    its counters stay)."""
    directory = os.environ.get(_MULTIPROCESS_DIR)
    if directory:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


# --- one worker (python -m abscope.api.workers OPTIONS READY_FD) -----------------------------


class _Server(uvicorn.Server):
    """uvicorn's server that writes to ``ready_fd`` once it serves."""

    def __init__(self, config: uvicorn.Config, ready_fd: int) -> None:
        super().__init__(config)
        self.ready_fd = ready_fd

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            os.write(self.ready_fd, b"1")


def _worker_main(arguments: list[str]) -> None:
    """Bind a ``SO_REUSEPORT`` socket and serve on it; exit with uvicorn's startup failure
    status if that fails. ``ready_fd`` stays open until the process ends."""
    options, ready_fd = ServeOptions(**json.loads(arguments[0])), int(arguments[1])
    os.set_inheritable(ready_fd, False)
    config = options.config()
    sock = socket.socket(_family(options.host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((options.host, options.port))
    except OSError as error:
        logger.error(error)
        sys.exit(STARTUP_FAILURE)
    server = _Server(config, ready_fd)
    server.run(sockets=[sock])  # uvicorn listens once the app has started
    if not server.started:
        sys.exit(STARTUP_FAILURE)


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
