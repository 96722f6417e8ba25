"""``python -m benchmarks.metric_covariate_ingest``: what named-metric events cost to store
when no metric has a covariate, and when they do.

``EVENTS`` events of ``USERS`` users, in batches of ``BATCH``, each with its own
``event_id``: 20% exposures, 50% value events of the mean metric ``spend`` and 30%
conversions of the binary metric ``clicked``, through :meth:`Store.record_events` on SQLite
(a WAL file) and on a real redis-server. ``plain``: no covariate anywhere (the stream any
abscope version can store: run this module with an older ``src`` on ``PYTHONPATH`` to
compare). ``with covariates``: every exposure also carries covariates of both metrics, so
later outcome events of those users update the metrics' CUPED sums. Each figure is the best
of ``benchmarks.ingest.REPEATS``, each repeat into a new experiment.
"""

from __future__ import annotations

import random
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from abscope.models import Event
from abscope.storage.base import Store
from abscope.storage.redis import RedisStore
from abscope.storage.sqlite import SQLiteStore
from benchmarks.ingest import time_record_events

EVENTS = 20_000
BATCH = 500
USERS = 5_000
AT = datetime(2026, 1, 1, tzinfo=UTC)


def make_events(experiment_id: str, covariates: bool, seed: int = 0) -> list[Event]:
    rng = random.Random(seed)
    events = []
    for i in range(EVENTS):
        user = f"u{rng.randrange(USERS)}"
        variant = "control" if sum(map(ord, user)) % 2 else "treatment"
        draw = rng.random()
        if draw < 0.2:
            fields: dict[str, object] = {"kind": "exposure"}
            if covariates:
                fields["metric_covariates"] = {"spend": float(len(user)), "clicked": 1.0}
        elif draw < 0.7:
            fields = {"kind": "value", "value": round(rng.random() * 10, 2), "metric": "spend"}
        else:
            fields = {"kind": "conversion", "metric": "clicked"}
        events.append(
            Event.model_validate(
                {
                    "experiment_id": experiment_id,
                    "user_id": user,
                    "variant": variant,
                    "at": AT,
                    "event_id": f"e{i}",
                }
                | fields
            )
        )
    return events


def time_stream(store: Store, prefix: str, covariates: bool) -> float:
    """Best seconds for the stream through ``record_events`` (each repeat into a new
    experiment: :func:`benchmarks.ingest.time_record_events`)."""
    tag = f"{prefix}-{'c' if covariates else 'p'}"
    return time_record_events(store, make_events(tag, covariates), tag, BATCH)


def main(with_covariates: bool = True) -> None:
    from tests.fixtures.redis_servers import RedisServer

    with tempfile.TemporaryDirectory(prefix="abscope-bench-") as directory:
        workdir = Path(directory)
        with RedisServer(workdir / "redis") as server:
            stores: list[tuple[str, Store]] = [
                ("sqlite", SQLiteStore(workdir / "abscope.db")),
                ("redis", RedisStore.from_url(server.url)),
            ]
            for name, store in stores:
                plain = time_stream(store, name, covariates=False)
                line = f"{name:7} plain metric events {EVENTS / plain:10,.0f}/s"
                if with_covariates:
                    covered = time_stream(store, name, covariates=True)
                    line += (
                        f"   with covariates {EVENTS / covered:10,.0f}/s"
                        f"   ratio {covered / plain:.2f}x"
                    )
                print(line)
                store.close()


if __name__ == "__main__":
    import sys

    main(with_covariates="--plain-only" not in sys.argv)
