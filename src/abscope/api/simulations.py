"""Bandit simulations (``POST /charts/simulate``) on a thread of their own, a few at a time.

A simulation is seconds of CPU (see :data:`abscope.schemas.SIMULATION_BUDGET`). Run in the
thread pool that serves FastAPI's plain ``def`` routes, a handful of them held its threads
for a minute and more. Here they run on one dedicated thread, one after another, and at most
:data:`WAITING` more wait their turn; any request beyond that is refused at once with a
:class:`~abscope.errors.Busy` error, a 503 with ``Retry-After``, before any work is done.
``/route``, ``/log`` and ``/events`` are answered on the event loop meanwhile; the
simulation's thread shares the interpreter with it, so a running simulation slows them by
the interpreter's switch interval at most, and never holds them back for its whole length.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

from abscope.errors import Busy

__all__ = ["RETRY_AFTER_SECONDS", "RUNNING", "WAITING", "SimulationPool"]

A = TypeVar("A")
R = TypeVar("R")

RUNNING: Final = 1
"""Simulations that run at once (threads of the pool)."""

WAITING: Final = 1
"""Simulations that may wait for a turn; a request beyond these is refused."""

RETRY_AFTER_SECONDS: Final = 2
"""``Retry-After`` of a refused simulation: about the time the largest one takes."""


class SimulationPool:
    """Runs callables on ``running`` dedicated threads, with at most ``waiting`` queued.

    :meth:`run` raises :class:`~abscope.errors.Busy` when ``running + waiting`` calls are
    already admitted. A call counts until its thread finishes it, even when the request
    that made it went away.
    """

    def __init__(self, running: int = RUNNING, waiting: int = WAITING) -> None:
        if running < 1:
            raise ValueError(f"running must be at least 1, got {running!r}")
        if waiting < 0:
            raise ValueError(f"waiting must be at least 0, got {waiting!r}")
        self._capacity = running + waiting
        self._admitted = 0
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=running, thread_name_prefix="simulate")

    @property
    def admitted(self) -> int:
        """Calls running or waiting now."""
        return self._admitted

    async def run(self, function: Callable[[A], R], argument: A) -> R:
        """``function(argument)`` on the pool's thread, awaited; :class:`Busy` when full."""
        with self._lock:
            if self._admitted >= self._capacity:
                raise Busy(
                    f"{self._admitted} simulations are running or waiting, the most this "
                    f"server takes at once; retry in {RETRY_AFTER_SECONDS} s",
                    retry_after=RETRY_AFTER_SECONDS,
                )
            self._admitted += 1
        try:
            future = self._executor.submit(function, argument)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _: object = None) -> None:
        with self._lock:
            self._admitted -= 1

    def close(self) -> None:
        """Stop taking calls; drop the waiting ones (the running one finishes on its own)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
