"""The list page's data: one ``GET /summary`` against what the page did before it, one
``GET /experiments`` and one ``GET /experiments/{id}/results`` per experiment, on the same
uvicorn server in the same run.

``python -m benchmarks.summary``: 35 experiments (2 to 4 arms, binary and continuous,
sequential and fixed-horizon, a guardrail on every fourth, five drafts, two completed) with
14 days of events, 6,000 users each, written to a SQLite file through the store (with a
clock 14 days back, so the events may predate "now"), then served by uvicorn. Each way is
timed as the best of ``REPEATS`` runs, the old one sequentially and with six requests in
flight (what Chromium opens per host), and the ratio is printed. Nothing is asserted.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
from tests.fixtures.uvicorn_server import ABSCOPE_APP, UvicornServer

from abscope.config import Settings
from abscope.models import Event
from abscope.schemas import CreateExperimentRequest
from abscope.service import ExperimentService
from abscope.storage.sqlite import SQLiteStore

EXPERIMENTS = 35
USERS = 6_000
DAYS = 14
REPEATS = 7
IN_FLIGHT = 6


def seed(path: Path) -> list[str]:
    """The experiments and their events; their ids."""
    start = datetime.now(UTC) - timedelta(days=DAYS)
    moment = [start]
    store = SQLiteStore(path, clock=lambda: moment[0])
    service = ExperimentService(store, Settings(db_path=path), clock=lambda: moment[0])
    rng = np.random.default_rng(35)
    ids = []
    for i in range(EXPERIMENTS):
        arms = 2 + i % 3
        names = ["control", *(f"t{k}" for k in range(1, arms))]
        weights = [1 / arms] * arms
        weights[0] = 1 - sum(weights[1:])
        continuous = i % 5 == 4
        metrics = None
        if i % 4 == 0 and not continuous:
            metrics = [{"name": "latency", "kind": "mean", "role": "guardrail",
                        "higher_is_better": False, "margin": 0.05, "action": "alert"}]  # fmt: skip
        body = CreateExperimentRequest.model_validate({
            "id": f"bench-{i:02d}", "name": f"Benchmark experiment {i}",
            "variants": [{"name": n, "model_id": f"m-{n}", "weight": w}
                         for n, w in zip(names, weights, strict=True)],
            "metric_type": "continuous" if continuous else "binary",
            "sequential": i % 2 == 0, "min_relative_lift": 0.05 if i % 3 else None,
            "metrics": metrics,
        })  # fmt: skip
        experiment = service.create(body)
        ids.append(experiment.id)
        if i % 7 == 6:
            continue  # a draft
        service.transition(experiment.id, "start")
        events: list[Event] = []
        hours = rng.integers(0, DAYS * 24, USERS)
        for u in range(USERS):
            variant = names[u % arms]
            at = start + timedelta(hours=int(hours[u]), minutes=1)
            user = f"user-{u}"
            events.append(Event(experiment_id=experiment.id, user_id=user, variant=variant,
                                kind="exposure", at=at))  # fmt: skip
            if continuous:
                value = float(rng.exponential(3.0 + 0.1 * (u % arms)))
                events.append(Event(experiment_id=experiment.id, user_id=user,
                                    variant=variant, kind="value", value=value, at=at))  # fmt: skip
            elif rng.random() < 0.1 + 0.005 * (u % arms):
                events.append(Event(experiment_id=experiment.id, user_id=user,
                                    variant=variant, kind="conversion", at=at))  # fmt: skip
            if metrics:
                events.append(Event(experiment_id=experiment.id, user_id=user, variant=variant,
                                    kind="value", value=float(rng.normal(100, 10)), at=at,
                                    metric="latency"))  # fmt: skip
        moment[0] = start + timedelta(days=DAYS)
        store.record_events(events)
        moment[0] = start
        if i in (5, 17):
            service.transition(experiment.id, "complete")
    store.close()
    return ids


def best_of(run: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="abscope-summary-") as directory:
        workdir = Path(directory)
        db = workdir / "abscope.db"
        seed(db)
        server = UvicornServer(ABSCOPE_APP, workdir / "uvicorn.log",
                               env={"ABSCOPE_DB_PATH": str(db)}, health_path="/health")  # fmt: skip
        with server, httpx.Client(base_url=server.url, timeout=60) as client:
            listing = client.get("/experiments").json()["experiments"]
            started = [x["id"] for x in listing if x["status"] != "draft"]
            summary = client.get("/summary").json()["experiments"]
            assert len(summary) == EXPERIMENTS == len(listing)

            def new() -> None:
                client.get("/summary").raise_for_status()

            def old_sequential() -> None:
                client.get("/experiments").raise_for_status()
                for experiment_id in started:
                    client.get(f"/experiments/{experiment_id}/results").raise_for_status()

            pool = ThreadPoolExecutor(IN_FLIGHT)

            def old_parallel() -> None:
                client.get("/experiments").raise_for_status()
                answers = pool.map(lambda x: client.get(f"/experiments/{x}/results"), started)
                for answer in answers:
                    answer.raise_for_status()

            for warm in (new, old_sequential):
                warm()
            summary_s = best_of(new)
            sequential_s = best_of(old_sequential)
            parallel_s = best_of(old_parallel)
            pool.shutdown()
            size_new = len(client.get("/summary").content)
            size_old = len(client.get("/experiments").content) + sum(
                len(client.get(f"/experiments/{x}/results").content) for x in started
            )
    print(f"{EXPERIMENTS} experiments ({len(started)} started), {USERS:,} users each, "
          f"{DAYS} days; best of {REPEATS}")  # fmt: skip
    print(f"GET /summary (1 request):                 {summary_s * 1000:8.1f} ms  {size_new:>9,} B")
    print(f"/experiments + {len(started)} /results, one by one: {sequential_s * 1000:8.1f} ms"
          f"  {size_old:>9,} B  ratio {sequential_s / summary_s:5.1f}x")  # fmt: skip
    print(f"/experiments + {len(started)} /results, {IN_FLIGHT} at once:"
          f"  {parallel_s * 1000:8.1f} ms  {'':>9}"
          f"    ratio {parallel_s / summary_s:5.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
