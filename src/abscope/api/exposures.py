"""Group commit of the exposures that ``/route`` records.

Every ``/route`` of a running experiment records the user's exposure before it answers.
One store call per request would cost a thread-pool hand-off and a round trip each, so the
exposures of concurrent requests are committed together: a request adds its exposures to
the pending list and waits; one flush at a time takes everything pending, writes it with
one store call (on the store's asyncio client: Redis needs no thread; SQLite runs in one),
and wakes each request with its own results. While a
flush runs, new requests gather for the next one, so batches grow with the load and a lone
request waits for one store call only. Each answer is sent after the commit of its own
exposures.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from abscope.models import Event
from abscope.schemas import RouteRequest
from abscope.serving import Serving

__all__ = ["ExposureCommitter", "route_body"]

_log = logging.getLogger("abscope.api.exposures")

Recorded = list[str | None] | None


class ExposureCommitter:
    """Commits the exposures of concurrent requests of one event loop together.

    A flush starts on the loop iteration after the first request of a batch arrived, so it
    takes every request parsed in the meantime; up to ``max_in_flight`` flushes run at once
    (each on its own store connection), so the store's round trip never idles the loop.
    """

    def __init__(self, serving: Serving, max_batch: int = 2000, max_in_flight: int = 4) -> None:
        self._serving = serving
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[list[Event], asyncio.Future[Recorded]]] = []
        self._in_flight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def record(self, events: list[Event]) -> Recorded:
        """Commit ``events`` (with whatever else is pending); see ``Serving.record_exposures``."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (tests start one per client): start afresh
            self._loop, self._pending, self._in_flight, self._scheduled = loop, [], 0, False
        done: asyncio.Future[Recorded] = loop.create_future()
        self._pending.append((events, done))
        self._schedule(loop)
        return await done

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled and self._pending and self._in_flight < self._max_in_flight:
            self._scheduled = True
            loop.call_soon(self._start, loop)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        if not self._pending or self._in_flight >= self._max_in_flight:
            return
        self._in_flight += 1
        task = loop.create_task(self._flush(loop, *self._take()))
        self._tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self._tasks.discard)

    async def _flush(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[Event],
        taken: list[tuple[list[Event], asyncio.Future[Recorded]]],
    ) -> None:
        try:
            recorded = await self._serving.record_exposures_async(batch)
        except Exception:  # a bug, not an outage: the requests are still answered
            _log.exception("recording %d exposures failed", len(batch))
            recorded = None
        finally:
            self._in_flight -= 1
        start = 0
        for events, done in taken:
            part = None if recorded is None else recorded[start : start + len(events)]
            start += len(events)
            if not done.done():
                done.set_result(part)
        self._schedule(loop)

    def _take(self) -> tuple[list[Event], list[tuple[list[Event], asyncio.Future[Recorded]]]]:
        taken: list[tuple[list[Event], asyncio.Future[Recorded]]] = []
        batch: list[Event] = []
        count = 0
        for events, done in self._pending:
            if batch and len(batch) + len(events) > self._max_batch:
                break
            taken.append((events, done))
            batch.extend(events)
            count += 1
        del self._pending[:count]
        return batch, taken


async def route_body(
    serving: Serving, committer: ExposureCommitter, request: RouteRequest
) -> bytes:
    """The ``/route`` answer: decided on the event loop when that needs no I/O (hash routing
    on a usable snapshot), else in the thread pool; the exposures committed with those of
    concurrent requests before the answer. The errors of ``Serving.plan`` pass through."""
    plan = serving.plan_without_io(request.user_id, request.experiment_id, request.expose)
    if plan is None:
        plan = await run_in_threadpool(
            serving.plan, request.user_id, request.experiment_id, request.expose
        )
    recorded: list[str | None] | None = []
    if plan.exposures:
        recorded = await committer.record(plan.exposures)
    return serving.answer(plan, recorded)
