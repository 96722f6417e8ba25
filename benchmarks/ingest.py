"""Batch ingest through :meth:`Store.record_events`, against a pipelined Redis baseline.

The events are made before the clock starts: ``USERS`` users in a two-variant experiment,
60% exposures, 15% conversions and 25% values (multiples of 0.25), each with its own
``event_id``, as ``/events`` would hand them to the store. The timed work is
``record_events(batch)`` for ``EVENTS`` events in batches of ``BATCH`` (on Redis one Lua call
per batch, since a batch is one experiment's), each repeat into a new experiment so that no
event is a duplicate.

The baseline, on the same redis-server in the same run, is the cheapest way to send as many
writes: one ``HINCRBY`` per event, ``BATCH`` of them per pipeline (no transaction), from the
same redis-py client. SQLite (a file in WAL mode, one transaction per batch) is measured for
reference. Each figure is the best of ``REPEATS``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from abscope.assignment import AssignmentConfig, Router
from abscope.models import Event
from abscope.storage.base import Store
from abscope.storage.redis import RedisStore
from abscope.storage.sqlite import SQLiteStore

EVENTS = 50_000
BATCH = 1_000
SMALL_BATCH = 100
USERS = 20_000
REPEATS = 3
VARIANTS = ("control", "treatment")


@dataclass(frozen=True)
class IngestFigure:
    """Events per second of one way of writing ``events`` events in batches of ``batch``."""

    key: str
    label: str
    events: int
    batch: int
    seconds: float
    redis_cpu: float | None = None  # redis-server CPU seconds per event (Redis figures)

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def make_events(experiment_id: str, count: int = EVENTS, seed: int = 0) -> list[Event]:
    """``count`` events of ``USERS`` users, each in the variant the experiment gives it."""
    rng = random.Random(seed)
    router = Router(AssignmentConfig(experiment_id, VARIANTS, (0.5, 0.5)))
    variant_of = {f"user-{u}": router.choose(f"user-{u}") for u in range(USERS)}
    at = datetime.now(UTC)
    events = []
    for index in range(count):
        user = f"user-{rng.randrange(USERS)}"
        draw = rng.random()
        kind = "exposure" if draw < 0.6 else "conversion" if draw < 0.75 else "value"
        events.append(
            Event(
                experiment_id=experiment_id,
                user_id=user,
                variant=variant_of[user],
                kind=kind,
                value=rng.randint(-8, 40) / 4 if kind == "value" else None,
                probability=0.5,
                at=at,
                event_id=f"{experiment_id}-{index}",
            )
        )
    return events


def _batches(events: list[Event], size: int) -> list[list[Event]]:
    return [events[start : start + size] for start in range(0, len(events), size)]


def _best(run: Callable[[int], float]) -> float:
    return min(run(repeat) for repeat in range(REPEATS))


def _renamed(events: list[Event], experiment_id: str) -> list[Event]:
    """The same events in another experiment (with the experiment id in their event ids)."""
    return [
        e.model_copy(update={"experiment_id": experiment_id, "event_id": f"{experiment_id}-{i}"})
        for i, e in enumerate(events)
    ]


def redis_cpu_seconds(store: RedisStore) -> float:
    """CPU seconds the redis-server process has used (utime + stime, from /proc)."""
    pid = int(store.client.info("server")["process_id"])
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_record_events(
    store: Store,
    events: list[Event],
    tag: str,
    batch: int,
    cpu: list[float] | None = None,
    cpu_seconds: Callable[[], float] = time.process_time,
) -> float:
    """Best seconds for ``events`` through ``record_events`` in batches of ``batch``.

    Each repeat writes them into a new experiment, so none is a duplicate. With ``cpu``,
    the ``cpu_seconds()`` of each repeat (e.g. the redis-server's) are appended to it.
    """

    def run(repeat: int) -> float:
        batches = _batches(_renamed(events, f"ingest-{tag}-{batch}-{repeat}"), batch)
        before = cpu_seconds()
        start = time.perf_counter()
        for chunk in batches:
            store.record_events(chunk)
        elapsed = time.perf_counter() - start
        if cpu is not None:
            cpu.append(cpu_seconds() - before)
        return elapsed

    return _best(run)


def time_pipelined_hincrby(store: RedisStore, batch: int) -> float:
    """Best seconds for ``EVENTS`` HINCRBY commands, ``batch`` per pipeline."""
    client = store.client

    def run(repeat: int) -> float:
        key = f"bench:{{hincrby-{batch}-{repeat}}}:counts"
        fields = [f"user-{u % USERS}|samples" for u in range(EVENTS)]
        start = time.perf_counter()
        for offset in range(0, EVENTS, batch):
            pipe = client.pipeline(transaction=False)
            for field in fields[offset : offset + batch]:
                pipe.hincrby(key, field, 1)
            pipe.execute()
        elapsed = time.perf_counter() - start
        client.delete(key)
        return elapsed

    return _best(run)


def run(workdir: Path, redis_url: str) -> list[IngestFigure]:
    """Every ingest figure, on the redis-server at ``redis_url`` and a new SQLite file."""
    figures = []
    events = make_events("ingest")
    redis_store = RedisStore.from_url(redis_url)
    sqlite_store = SQLiteStore(workdir / "ingest.db")
    try:
        for batch in (BATCH, SMALL_BATCH):
            figures.append(
                IngestFigure(
                    f"hincrby-{batch}",
                    f"pipelined HINCRBY, {batch:,} per pipeline",
                    EVENTS,
                    batch,
                    time_pipelined_hincrby(redis_store, batch),
                )
            )
            cpu: list[float] = []
            figures.append(
                IngestFigure(
                    f"redis-{batch}",
                    f"Redis record_events, batches of {batch:,} (1 Lua call each)",
                    EVENTS,
                    batch,
                    time_record_events(
                        redis_store,
                        events,
                        "redis",
                        batch,
                        cpu,
                        lambda: redis_cpu_seconds(redis_store),
                    ),  # fmt: skip
                    redis_cpu=min(cpu) / EVENTS,
                )
            )
        figures.append(
            IngestFigure(
                f"sqlite-{BATCH}",
                f"SQLite record_events, batches of {BATCH:,}",
                EVENTS,
                BATCH,
                time_record_events(sqlite_store, events, "sqlite", BATCH),
            )
        )
    finally:
        redis_store.close()
        sqlite_store.close()
    return figures


def main() -> None:
    import tempfile

    from tests.fixtures.redis_servers import RedisServer

    with tempfile.TemporaryDirectory(prefix="abscope-bench-") as directory:
        workdir = Path(directory)
        with RedisServer(workdir / "redis") as server:
            figures = run(workdir, server.url)
    for figure in figures:
        redis = "" if figure.redis_cpu is None else f"  redis {figure.redis_cpu * 1e6:.1f} us/ev"
        print(f"{figure.label:60} {figure.rate:12,.0f} events/s{redis}")


if __name__ == "__main__":
    main()
