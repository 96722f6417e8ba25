"""A real uvicorn process serving ``abscope.api.app:create_app``, for end-to-end tests.

The process is configured by ``ABSCOPE_*`` variables only (as in production), listens on a
free port of 127.0.0.1, writes its log to a file in the test's directory, and is stopped
afterwards: SIGTERM, then SIGKILL to its process group if it has not exited in time.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx

__all__ = ["UvicornServer"]

HOST = "127.0.0.1"
START_TIMEOUT = 60.0  # five interpreters importing numpy and scipy on a busy 2-core machine
STOP_TIMEOUT = 15.0
_START_ATTEMPTS = 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class UvicornServer:
    """``python -m uvicorn abscope.api.app:create_app --factory --workers N``."""

    _serial = 0

    def __init__(self, directory: Path, *, workers: int = 1, env: dict[str, str]) -> None:
        self.directory = directory
        self.workers = workers
        self.env = env
        self.port = 0
        UvicornServer._serial += 1
        self.log_file = directory / f"uvicorn-{UvicornServer._serial}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def client(self) -> httpx.Client:
        """A client of this server (close it).

        It opens a connection per request: with ``--workers`` > 1, uvicorn 0.54 leaves
        Nagle's algorithm on for accepted sockets (Kludex/uvicorn#3149), so every request
        after the first on a kept-alive connection waits ~40 ms for a delayed ACK.
        """
        return httpx.Client(
            base_url=self.url,
            timeout=30.0,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def post_json(self, path: str, body: Any) -> tuple[int, Any]:
        """POST ``body`` as JSON on a fresh connection; the status and the decoded answer.

        For bulk traffic: the standard library's client costs a test less CPU per request
        than httpx, which matters when the test and two workers share two cores.
        """
        connection = http.client.HTTPConnection(HOST, self.port, timeout=30.0)
        try:
            connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def start(self) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("ABSCOPE_")}
        environment.update(self.env)
        for _ in range(_START_ATTEMPTS):  # another process may take the port in between
            self.port = _free_port()
            self._log = self.log_file.open("ab")
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "abscope.api.app:create_app",
                    "--factory",
                    "--host",
                    HOST,
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                ],  # fmt: skip
                cwd=self.directory,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            if self._wait_until_healthy():
                return
            self.stop()
            if "address already in use" not in self.log_tail().lower():
                break
        raise RuntimeError(f"uvicorn did not answer GET /health; its log:\n{self.log_tail()}")

    def _wait_until_healthy(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(base_url=self.url, timeout=2.0) as probe:
            while time.monotonic() < deadline:
                if self._process is None or self._process.poll() is not None:
                    return False
                try:
                    if probe.get("/health").status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Stop the server and its workers; close the log file."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)  # the group we started
                    process.wait()
            with suppress(ProcessLookupError):  # a worker the supervisor left behind
                os.killpg(process.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
