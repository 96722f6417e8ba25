"""Group commit of the exposures that ``/route`` records.

Every ``/route`` of a running experiment records the user's exposure before it answers.
One store call per request would cost a thread-pool hand-off and a round trip each, so the
exposures of concurrent requests are committed together: a request adds its exposures to
the pending list and waits; one flush at a time takes everything pending, writes it with
one store call in the thread pool, and wakes each request with its own results. While a
flush runs, new requests gather for the next one, so batches grow with the load and a lone
request waits for one store call only. Each answer is sent after the commit of its own
exposures.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from abscope.models import Event
from abscope.serving import Serving

__all__ = ["ExposureCommitter"]

_log = logging.getLogger("abscope.api.exposures")

Recorded = list[str | None] | None


class ExposureCommitter:
    """Commits the exposures of concurrent requests of one event loop together."""

    def __init__(self, serving: Serving, max_batch: int = 2000) -> None:
        self._serving = serving
        self._max_batch = max_batch
        self._pending: list[tuple[list[Event], asyncio.Future[Recorded]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, events: list[Event]) -> Recorded:
        """Commit ``events`` (with whatever else is pending); see ``Serving.record_exposures``."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Recorded] = loop.create_future()
        self._pending.append((events, done))
        flusher = self._flusher
        if flusher is None or flusher.done() or flusher.get_loop() is not loop:
            self._flusher = loop.create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        while self._pending:
            batch, taken = self._take()
            try:
                recorded = await run_in_threadpool(self._serving.record_exposures, batch)
            except Exception:  # a bug, not an outage: the requests are still answered
                _log.exception("recording %d exposures failed", len(batch))
                recorded = None
            start = 0
            for events, done in taken:
                part = None if recorded is None else recorded[start : start + len(events)]
                start += len(events)
                if not done.done():
                    done.set_result(part)

    def _take(self) -> tuple[list[Event], list[tuple[list[Event], asyncio.Future[Recorded]]]]:
        taken: list[tuple[list[Event], asyncio.Future[Recorded]]] = []
        batch: list[Event] = []
        while self._pending and (
            not batch or len(batch) + len(self._pending[0][0]) <= self._max_batch
        ):
            events, done = self._pending.pop(0)
            taken.append((events, done))
            batch.extend(events)
        return batch, taken
