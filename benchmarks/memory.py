"""Bytes a store keeps per user and per event id, and what the event-id window gives back.

``USERS`` users each log an exposure and a conversion, every event with its own
``event_id`` (as the README tells clients to send them), through ``Store.record_events``
with a short event-id window. Measured:

* Redis: ``used_memory`` of a redis-server of our own (``INFO memory``) after the events,
  and again once the window has passed (the expired buckets are touched, so Redis frees
  them at once rather than on its next active-expiry cycle);
* SQLite: bytes of each table's pages (the ``dbstat`` table) after the events, and again
  after a later batch, past the window, has purged the old ids.

Per-user state (the exposure, the conversion) is kept for the phase's whole life; what the
window bounds is the event ids, which grew with traffic before: they were kept forever.
Run alone with ``.venv/bin/python -m benchmarks.memory``; ``make bench`` runs it too.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from abscope.models import Event
from abscope.storage import keys
from abscope.storage.redis import RedisStore
from abscope.storage.sqlite import SQLiteStore

USERS = 20_000
BATCH = 1_000
WINDOW = timedelta(seconds=3)
EXPERIMENT = "memory"

__all__ = ["MemoryFigures", "measure_redis", "measure_sqlite", "main"]


@dataclass(frozen=True)
class MemoryFigures:
    """Bytes per user with the event ids of its two events, and without them."""

    backend: str
    with_ids: float
    after_window: float

    @property
    def per_event_id(self) -> float:
        return (self.with_ids - self.after_window) / 2


def _events(now: datetime) -> list[list[Event]]:
    events = []
    for i in range(USERS):
        user = f"user-{i:06d}"
        variant = "control" if i % 2 else "treatment"
        for kind in ("exposure", "conversion"):
            events.append(
                Event(
                    experiment_id=EXPERIMENT,
                    user_id=user,
                    variant=variant,
                    kind=kind,
                    probability=0.5,
                    at=now,
                    event_id=f"{kind}-{i:06d}-3f2a9c",
                )
            )
    return [events[i : i + BATCH] for i in range(0, len(events), BATCH)]


def measure_redis(url: str) -> MemoryFigures:
    clock = [datetime.now(UTC)]
    store = RedisStore.from_url(url, event_id_window=WINDOW, clock=lambda: clock[0])
    client = store.client
    try:
        client.flushall()
        empty = int(client.info("memory")["used_memory"])
        for batch in _events(clock[0]):
            store.record_events(batch)
        full = int(client.info("memory")["used_memory"])
        buckets, ttl = keys.id_buckets(clock[0].timestamp(), round(WINDOW.total_seconds()))
        time.sleep(ttl + 0.5)  # the current bucket lives until it leaves the window
        for bucket in buckets:  # expired keys are freed when touched
            client.exists(keys.applied_events(EXPERIMENT, bucket))
        after = int(client.info("memory")["used_memory"])
    finally:
        store.close()
    return MemoryFigures("Redis", (full - empty) / USERS, (after - empty) / USERS)


def _table_bytes(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (total,) = conn.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name NOT LIKE 'sqlite_%'"
        ).fetchone()
    return int(total)


def measure_sqlite(directory: Path) -> MemoryFigures:
    path = directory / "memory.db"
    clock = [datetime.now(UTC)]
    store = SQLiteStore(path, event_id_window=WINDOW, clock=lambda: clock[0])
    try:
        empty = _table_bytes(path)
        for batch in _events(clock[0]):
            store.record_events(batch)
        full = _table_bytes(path)
        clock[0] += 2 * WINDOW  # a later batch, past the window, purges the old ids
        store.record_events([_events(clock[0])[0][0].model_copy(update={"event_id": None})])
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("VACUUM")  # free pages are reused by new rows; count the live ones
    after = _table_bytes(path)
    return MemoryFigures("SQLite", (full - empty) / USERS, (after - empty) / USERS)


def main() -> list[MemoryFigures]:
    from tests.fixtures.redis_servers import RedisServer

    with tempfile.TemporaryDirectory(prefix="abscope-memory-") as directory:
        workdir = Path(directory)
        with RedisServer(workdir / "redis") as server:
            figures = [measure_redis(server.url), measure_sqlite(workdir)]
    for f in figures:
        print(
            f"{f.backend:7} {USERS:,} users x 2 events with ids: {f.with_ids:6.0f} B/user while"
            f" the ids are remembered, {f.after_window:6.0f} B/user after the window"
            f" ({f.per_event_id:4.0f} B per event id)"
        )
    return figures


if __name__ == "__main__":
    main()
