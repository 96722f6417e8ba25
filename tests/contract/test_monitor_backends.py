"""The guardrail monitor on every backend of the contract suite (SQLite, a real redis-server,
a real Redis Cluster, SQLite behind the metrics' wrapper): the lease elects one monitor, a
breach pauses once, and a lease that is not renewed passes to another worker.

The store's own clock is the wall clock here (a Redis lease expires by the server's time),
so the expiry is waited for; ``tests/unit/test_monitoring.py`` moves a clock instead.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from abscope.config import Settings
from abscope.models import Status
from abscope.service.experiments import Experiments
from abscope.service.monitoring import BREACH_ACTION, MONITOR_LEASE, Monitor
from tests.contract.conftest import MakeStore
from tests.fixtures.guardrail_data import create_request, latency_guardrail, seed_latency


def _settings(tmp_path: Path, interval: float = 60.0) -> Settings:
    return Settings(db_path=tmp_path / "unused.db", monitor_interval_seconds=interval)


def test_the_lease_holder_pauses_a_breach_once_and_the_other_worker_does_nothing(
    make_store: MakeStore, tmp_path: Path
) -> None:
    first, second = make_store(), make_store()
    experiments = Experiments(first)
    experiment_id = f"monitor-{uuid.uuid4().hex[:10]}"
    experiments.create(create_request(experiment_id, [latency_guardrail()]))
    experiment = experiments.transition(experiment_id, "start")
    now = datetime.now(UTC)
    seed_latency(first, experiment, "control", 300, at=now)
    seed_latency(first, experiment, "treatment", 300, at=now, scale=1.3)
    leader = Monitor(first, experiments, _settings(tmp_path), holder=f"a-{experiment_id}")
    follower = Monitor(
        second, Experiments(second), _settings(tmp_path), holder=f"b-{experiment_id}"
    )
    report = leader.run_once()  # the first to ask holds the lease
    assert report.leader and experiment_id in report.paused
    assert not follower.run_once().leader
    again = leader.run_once()
    assert again.experiment(experiment_id) is None  # paused: no longer watched
    stored = second.get_experiment(experiment_id)
    assert stored.status == Status.PAUSED
    assert [e.action for e in stored.audit].count(BREACH_ACTION) == 1
    leader.close()
    assert second.acquire_lease(MONITOR_LEASE, follower.holder, timedelta(seconds=1))
    second.release_lease(MONITOR_LEASE, follower.holder)


def test_a_lease_that_is_not_renewed_passes_to_another_worker(
    make_store: MakeStore, tmp_path: Path
) -> None:
    first, second = make_store(), make_store()
    name = f"lease-{uuid.uuid4().hex[:10]}"
    assert first.acquire_lease(name, "a", timedelta(milliseconds=300))
    assert not second.acquire_lease(name, "b", timedelta(seconds=5))
    assert first.acquire_lease(name, "a", timedelta(milliseconds=300))  # renewed
    time.sleep(0.5)
    assert second.acquire_lease(name, "b", timedelta(seconds=5))
    assert not first.acquire_lease(name, "a", timedelta(seconds=5))
    first.release_lease(name, "a")  # not its lease: nothing changes
    assert not first.acquire_lease(name, "a", timedelta(seconds=5))
    second.release_lease(name, "b")
    assert first.acquire_lease(name, "a", timedelta(seconds=5))
    first.release_lease(name, "a")
