"""``python -m benchmarks.quantile_ingest``: what a request of a quantile metric costs to store.

Two streams of the same shape are timed through :meth:`Store.record_events` on SQLite (a
WAL file) and on a real redis-server: ``EVENTS`` value events of a named metric by
``USERS`` users in batches of ``BATCH``, each with its own ``event_id``. In one the metric
is a mean (a plain value event); in the other a quantile metric, each event carrying its
request's counter increments (1 fine bucket and about 63 replicate counters with the
default ``B = 100``). The increments are computed before the clock starts, as the service
computes them before the store call; their cost is measured apart (per event, in the
service). Each figure is the best of ``benchmarks.ingest.REPEATS``, each repeat into a new
experiment.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from pathlib import Path

from abscope.models import Event
from abscope.quantile_reports import quantile_config
from abscope.stats.quantiles import replicate_weights, request_increments
from abscope.storage.base import Store
from abscope.storage.redis import RedisStore
from abscope.storage.sqlite import SQLiteStore
from benchmarks.ingest import time_record_events

EVENTS = 20_000
BATCH = 500
USERS = 5_000
AT = datetime(2026, 1, 1, tzinfo=UTC)


def make_events(experiment_id: str, quantile: bool, seed: int = 0) -> list[Event]:
    rng = random.Random(seed)
    config = quantile_config(experiment_id, 0)
    events = []
    for i in range(EVENTS):
        user = f"u{rng.randrange(USERS)}"
        variant = "control" if int(user[1:]) % 2 else "treatment"
        value = round(rng.lognormvariate(5.0, 0.6), 2)
        increments = (
            request_increments(value, user, config, first_request=False) if quantile else None
        )
        events.append(
            Event.trusted(
                experiment_id,
                0,
                user,
                variant,
                "value",
                value,
                1.0,
                AT,
                f"e{i}",
                "latency",
                None,
                None,
                increments,
            )  # fmt: skip
        )
    return events


def time_stream(store: Store, prefix: str, quantile: bool) -> float:
    """Best seconds for the stream through ``record_events`` (each repeat into a new
    experiment: :func:`benchmarks.ingest.time_record_events`)."""
    tag = f"{prefix}-{'q' if quantile else 'm'}"
    return time_record_events(store, make_events(tag, quantile), tag, BATCH)


def increments_cost() -> float:
    """Seconds per event to compute the increments (weights cached per user, as in a
    long-running worker: ``replicate_weights`` keeps the last 8,192 users)."""
    config = quantile_config("bench", 0)
    users = [f"u{i}" for i in range(USERS)]
    for user in users:
        replicate_weights(user, config)
    start = time.perf_counter()
    for i in range(EVENTS):
        request_increments(100.0 + i % 500, users[i % USERS], config, first_request=False)
    return (time.perf_counter() - start) / EVENTS


def main() -> None:
    import tempfile

    from tests.fixtures.redis_servers import RedisServer

    with tempfile.TemporaryDirectory(prefix="abscope-bench-") as directory:
        workdir = Path(directory)
        with RedisServer(workdir / "redis") as server:
            stores: list[tuple[str, Store]] = [
                ("sqlite", SQLiteStore(workdir / "abscope.db")),
                ("redis", RedisStore.from_url(server.url)),
            ]
            for name, store in stores:
                plain = time_stream(store, name, quantile=False)
                quantile = time_stream(store, name, quantile=True)
                print(
                    f"{name:7} mean-metric value events {EVENTS / plain:10,.0f}/s   quantile"
                    f" requests {EVENTS / quantile:10,.0f}/s   ratio {quantile / plain:.2f}x"
                )
                store.close()
    print(f"service: computing one request's increments {increments_cost() * 1e6:.1f} us")


if __name__ == "__main__":
    main()
