"""Group commit: the events of concurrent requests go to the store in one call.

One store call per request would cost a round trip (and, for a store without an asyncio
client, a thread-pool hand-off) each, so a request adds its events to the pending list and
waits; one flush takes everything pending, writes it with one call of ``write``, and wakes
each request with its own slice of the results (or the call's error). While a flush runs,
new requests gather for the next one, so batches grow with the load and a lone request waits
for one store call only. Each answer is sent after the commit of its own events.

The store applies one call's events in order, each atomically, with the same guarantees as
if each request had called it alone: a user is counted once, an ``event_id`` is applied
once (a retry that arrives while its first attempt is pending is a duplicate of it, in the
same call), and a call that fails applies nothing, or says per event what it applied
(``unavailable`` on a Redis Cluster), so that each request learns what happened to its own
events.

``/route`` commits its exposures through one :class:`GroupCommit`, and ``/log`` its events
through another (:mod:`abscope.api.hot_paths`).

A flush runs in a context of its own, not the one of the request that happened to start
it: it serves several requests, so its log lines carry no request id.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from abscope.models import Event

__all__ = ["GroupCommit"]

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Commits the events of concurrent requests of one event loop together.

    ``write(events)`` is the store call: a result per event, in order, or ``None`` for all.
    A flush starts on the loop iteration after the first request of a batch arrived, so it
    takes every request parsed in the meantime; up to ``max_in_flight`` flushes run at once
    (each on its own store connection), so the store's round trip never idles the loop. A
    flush takes at most ``max_batch`` events (more only when one request has more).
    """

    def __init__(
        self,
        write: Callable[[list[Event]], Awaitable[Sequence[T] | None]],
        max_batch: int = 2000,
        max_in_flight: int = 4,
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[list[Event], asyncio.Future[list[T] | None]]] = []
        self._in_flight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def record(self, events: list[Event]) -> list[T] | None:
        """Commit ``events`` with whatever else is pending: their results, in order (or
        ``None``), or the store call's error."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (tests start one per client): start afresh
            self._loop, self._pending, self._in_flight, self._scheduled = loop, [], 0, False
        done: asyncio.Future[list[T] | None] = loop.create_future()
        self._pending.append((events, done))
        self._schedule(loop)
        return await done

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled and self._pending and self._in_flight < self._max_in_flight:
            self._scheduled = True
            loop.call_soon(self._start, loop, context=contextvars.Context())

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
        taken: list[tuple[list[Event], asyncio.Future[list[T] | None]]],
    ) -> None:
        try:
            results = await self._write(batch)
        except Exception as error:  # each request raises it (an outage: nothing applied)
            for _, done in taken:
                if not done.done():
                    done.set_exception(error)
            return
        finally:
            self._in_flight -= 1
            self._schedule(loop)
        start = 0
        for events, done in taken:
            part = None if results is None else list(results[start : start + len(events)])
            start += len(events)
            if not done.done():
                done.set_result(part)

    def _take(self) -> tuple[list[Event], list[tuple[list[Event], asyncio.Future[list[T] | None]]]]:
        taken: list[tuple[list[Event], asyncio.Future[list[T] | None]]] = []
        batch: list[Event] = []
        for events, done in self._pending:
            if batch and len(batch) + len(events) > self._max_batch:
                break
            taken.append((events, done))
            batch.extend(events)
        del self._pending[: len(taken)]
        return batch, taken
