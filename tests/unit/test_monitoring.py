"""The guardrail monitor's looks (``Monitor.run_once``) on a real SQLite store, with a clock
the test moves: breach and pause, alert, too little data, the lease, conflicting saves.

The same behaviour on every backend (Redis and Redis Cluster leases) is
``tests/contract/test_monitor_backends.py``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from abscope import schemas
from abscope.config import Settings
from abscope.errors import Conflict, StorageUnavailable
from abscope.metric_analysis import guardrail_checks
from abscope.models import Experiment, Status
from abscope.service import ExperimentService
from abscope.service.experiments import Experiments
from abscope.service.monitoring import (
    BREACH_ACTION,
    MONITOR_LEASE,
    Monitor,
    MonitorLoop,
    breaches_recorded,
)
from abscope.storage.sqlite import SQLiteStore
from tests.fixtures.clock import FakeClock
from tests.fixtures.event_loop import run_async
from tests.fixtures.guardrail_data import LATENCY, create_request, latency_guardrail, seed_latency

INTERVAL = 60.0


class Notices:
    """A notifier that keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, payload: Mapping[str, Any]) -> None:
        self.sent.append(dict(payload))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        db_path=tmp_path / "abscope.db",
        monitor_interval_seconds=INTERVAL,
        guardrail_min_samples=100,
    )


@pytest.fixture
def store(settings: Settings, clock: FakeClock) -> SQLiteStore:
    opened = SQLiteStore(settings.db_path, clock=clock)
    yield opened  # type: ignore[misc]
    opened.close()


@pytest.fixture
def service(store: SQLiteStore, settings: Settings, clock: FakeClock) -> ExperimentService:
    return ExperimentService(store, settings, clock=clock)


@pytest.fixture
def notices() -> Notices:
    return Notices()


@pytest.fixture
def monitor(
    service: ExperimentService, settings: Settings, clock: FakeClock, notices: Notices
) -> Monitor:
    return Monitor(
        service.store, service.experiments, settings, clock=clock, notifier=notices, holder="w1"
    )


def _running(service: ExperimentService, experiment_id: str, **guardrail: Any) -> Experiment:
    service.create(create_request(experiment_id, [latency_guardrail(**guardrail)]))
    return service.transition(experiment_id, "start")


def _degraded(
    service: ExperimentService,
    experiment: Experiment,
    clock: FakeClock,
    users: int = 400,
    scale: float = 1.3,
) -> None:
    seed_latency(service.store, experiment, "control", users, at=clock())
    seed_latency(service.store, experiment, "treatment", users, at=clock(), scale=scale)


def test_a_breach_pauses_the_experiment_writes_the_audit_and_sends_the_notice(
    service: ExperimentService, monitor: Monitor, clock: FakeClock, notices: Notices
) -> None:
    experiment = _running(service, "ranker-breach")
    _degraded(service, experiment, clock)
    # The judgement the monitor must act on, computed here from the store's counts.
    expected = guardrail_checks(
        experiment,
        service.store.get_counts(experiment.id, 0),
        service.store.get_metric_counts(experiment.id, 0),
    )
    assert [c.result.verdict for c in expected] == ["breach"]
    result = expected[0].result
    assert result.interval is not None

    report = monitor.run_once()

    assert report.leader and report.paused == [experiment.id]
    seen = report.experiment(experiment.id)
    assert seen is not None and seen.status == Status.PAUSED
    (look,) = seen.looks
    assert (look.metric, look.variant, look.verdict, look.taken) == (
        LATENCY,
        "treatment",
        "breach",
        "paused",
    )
    assert look.estimate == result.estimate and look.p_value == result.p_breach
    stored = service.get(experiment.id)
    assert stored.status == Status.PAUSED and stored.version == experiment.version + 1
    breach, pause = stored.audit[-2:]
    assert breach.action == BREACH_ACTION
    assert breach.changes == {
        "metric": LATENCY,
        "variant": "treatment",
        "estimate": result.estimate,
        "interval": [result.interval.lower, result.interval.upper],
        "margin": 0.05,
        "action": "pause",
        "p_value": result.p_breach,
        "phase": 0,
        "n_control": 400,
        "n_treatment": 400,
        "summary": result.summary,
        "holder": "w1",
    }
    assert result.estimate is not None and 0.2 < result.estimate < 0.4  # 30% worse
    assert pause.action == "pause"
    assert pause.changes == {"status": {"from": "running", "to": "paused"}, "by": "monitor"}
    # A paused experiment sends everyone to the control.
    answer = service.route("someone-new", experiment.id)
    (assignment,) = answer.assignments
    assert (assignment.variant_name, assignment.reason) == ("control", "paused")
    (notice,) = notices.sent
    assert notice["type"] == BREACH_ACTION and notice["status"] == "paused"
    assert (notice["experiment_id"], notice["metric"], notice["variant"]) == (
        experiment.id,
        LATENCY,
        "treatment",
    )
    assert notice["interval"] == breach.changes["interval"] and notice["action"] == "pause"
    # A paused experiment is no longer watched.
    assert monitor.run_once().experiments == ()


def test_an_alert_is_recorded_once_per_phase_and_the_experiment_keeps_running(
    service: ExperimentService, monitor: Monitor, clock: FakeClock, notices: Notices
) -> None:
    experiment = _running(service, "ranker-alert", action="alert")
    _degraded(service, experiment, clock)

    first = monitor.run_once().experiment(experiment.id)
    assert first is not None and first.outcome == "alerted"
    assert first.status == Status.RUNNING and first.looks[0].taken == "alerted"
    again = monitor.run_once().experiment(experiment.id)
    assert again is not None and again.outcome == "watched"
    assert again.looks[0].verdict == "breach" and again.looks[0].taken == "reported_before"
    stored = service.get(experiment.id)
    assert stored.status == Status.RUNNING
    assert [e.action for e in stored.audit].count(BREACH_ACTION) == 1
    assert breaches_recorded(stored) == {(LATENCY, "treatment")}
    assert len(notices.sent) == 1 and notices.sent[0]["status"] == "running"
    assert notices.sent[0]["action"] == "alert"

    # New weights open phase 1: its data is judged afresh, and its breach alerts again.
    service.patch(
        experiment.id, schemas.PatchExperimentRequest(weights={"control": 0.6, "treatment": 0.4})
    )
    phase1 = service.get(experiment.id)
    assert phase1.phase == 1
    quiet = monitor.run_once().experiment(experiment.id)
    assert quiet is not None and quiet.looks[0].reason == "too_little_data"
    _degraded(service, phase1, clock)
    later = monitor.run_once().experiment(experiment.id)
    assert later is not None and later.outcome == "alerted"
    assert [e.action for e in service.get(experiment.id).audit].count(BREACH_ACTION) == 2
    assert [n["phase"] for n in notices.sent] == [0, 1]


def test_too_little_data_is_inconclusive_and_never_acted_on(
    service: ExperimentService, monitor: Monitor, clock: FakeClock, notices: Notices
) -> None:
    experiment = _running(service, "ranker-few")
    _degraded(service, experiment, clock, users=60)  # 30% worse, 60 users per arm

    seen = monitor.run_once().experiment(experiment.id)

    assert seen is not None and seen.outcome == "watched"
    (look,) = seen.looks
    assert look.verdict == "inconclusive" and look.reason == "too_little_data"
    assert look.summary.startswith("inconclusive: too little data (60 users")
    assert look.estimate is not None and look.estimate > 0.1  # reported, not acted on
    assert service.get(experiment.id).status == Status.RUNNING
    assert service.get(experiment.id).version == experiment.version and notices.sent == []


def test_a_guardrails_own_min_samples_wins_over_the_setting(
    service: ExperimentService, store: SQLiteStore, clock: FakeClock, tmp_path: Path
) -> None:
    low = _running(service, "ranker-low-floor", min_samples=50)
    default = _running(service, "ranker-default-floor")
    for experiment in (low, default):
        _degraded(service, experiment, clock, users=60, scale=2.0)
    settings = Settings(db_path=tmp_path / "abscope.db", guardrail_min_samples=100)
    report = Monitor(store, service.experiments, settings, clock=clock, holder="w").run_once()
    assert report.paused == [low.id]
    held = report.experiment(default.id)
    assert held is not None and held.looks[0].reason == "too_little_data"
    strict = _running(service, "ranker-strict")
    _degraded(service, strict, clock, users=400)
    settings = Settings(db_path=tmp_path / "abscope.db", guardrail_min_samples=500)
    seen = Monitor(store, service.experiments, settings, clock=clock, holder="w").run_once()
    look = seen.experiment(strict.id)
    assert look is not None and look.looks[0].reason == "too_little_data"


def test_a_worker_without_the_lease_does_nothing_until_the_lease_expires(
    service: ExperimentService,
    monitor: Monitor,
    store: SQLiteStore,
    clock: FakeClock,
    notices: Notices,
) -> None:
    experiment = _running(service, "ranker-follower")
    _degraded(service, experiment, clock)
    assert store.acquire_lease(MONITOR_LEASE, "w0", monitor.lease_ttl)

    report = monitor.run_once()

    assert not report.leader and report.experiments == ()
    assert service.get(experiment.id).status == Status.RUNNING and notices.sent == []
    clock.advance(3 * INTERVAL - 1)  # w0's lease still holds
    assert not monitor.run_once().leader
    clock.advance(1)  # w0 missed its renewals: w1 takes over
    assert monitor.run_once().paused == [experiment.id]
    assert not store.acquire_lease(MONITOR_LEASE, "w0", monitor.lease_ttl)
    monitor.close()  # gives it up at once
    assert store.acquire_lease(MONITOR_LEASE, "w0", monitor.lease_ttl)


def _conflict_once(store: SQLiteStore, concurrent: Any) -> list[int]:
    """Make the next save lose a race: ``concurrent()`` saves first, then the save runs."""
    save = store.save_experiment
    calls: list[int] = []

    def racing(experiment: Experiment) -> None:
        calls.append(experiment.version)
        if len(calls) == 1:
            concurrent()
        save(experiment)

    store.save_experiment = racing  # type: ignore[method-assign]
    return calls


def test_a_save_that_lost_a_race_is_judged_again_on_the_new_version(
    service: ExperimentService,
    monitor: Monitor,
    store: SQLiteStore,
    clock: FakeClock,
    notices: Notices,
) -> None:
    experiment = _running(service, "ranker-race")
    _degraded(service, experiment, clock)
    other = Experiments(SQLiteStore(store._path, clock=clock), clock=clock)
    calls = _conflict_once(
        store,
        lambda: other.patch(experiment.id, schemas.PatchExperimentRequest(description="edited")),
    )

    report = monitor.run_once()

    assert calls == [experiment.version + 1, experiment.version + 2]  # lost, then won
    assert report.paused == [experiment.id]
    stored = service.get(experiment.id)
    assert stored.description == "edited" and stored.status == Status.PAUSED
    assert [e.action for e in stored.audit][-3:] == ["update", BREACH_ACTION, "pause"]
    assert len(notices.sent) == 1
    other.store.close()


def test_an_experiment_paused_by_someone_else_meanwhile_is_left_alone(
    service: ExperimentService,
    monitor: Monitor,
    store: SQLiteStore,
    clock: FakeClock,
    notices: Notices,
) -> None:
    experiment = _running(service, "ranker-race-pause")
    _degraded(service, experiment, clock)
    other = Experiments(SQLiteStore(store._path, clock=clock), clock=clock)
    _conflict_once(store, lambda: other.transition(experiment.id, "pause"))

    seen = monitor.run_once().experiment(experiment.id)

    assert seen is not None and seen.outcome == "skipped" and seen.status == Status.PAUSED
    stored = service.get(experiment.id)
    assert [e.action for e in stored.audit][-1] == "pause" and BREACH_ACTION not in [
        e.action for e in stored.audit
    ]
    assert "by" not in stored.audit[-1].changes and notices.sent == []
    other.store.close()


def test_saves_that_always_conflict_give_up_without_raising(
    service: ExperimentService, monitor: Monitor, store: SQLiteStore, clock: FakeClock
) -> None:
    experiment = _running(service, "ranker-busy")
    _degraded(service, experiment, clock)

    def conflict(experiment: Experiment) -> None:
        raise Conflict("someone saved first")

    store.save_experiment = conflict  # type: ignore[method-assign]
    seen = monitor.run_once().experiment(experiment.id)
    assert seen is not None and seen.outcome == "conflict" and seen.status == Status.RUNNING


def test_a_store_that_is_down_is_reported_not_raised(
    service: ExperimentService, monitor: Monitor, store: SQLiteStore, clock: FakeClock
) -> None:
    experiment = _running(service, "ranker-down")
    _degraded(service, experiment, clock)

    def down(*args: object) -> None:
        raise StorageUnavailable("the store is down")

    store.acquire_lease = down  # type: ignore[assignment, method-assign]
    report = monitor.run_once()
    assert not report.leader and report.error == "the store is down"
    del store.acquire_lease
    store.get_metric_counts = down  # type: ignore[assignment, method-assign]
    seen = monitor.run_once().experiment(experiment.id)
    assert seen is not None and seen.outcome == "failed" and seen.error == "the store is down"


def test_two_workers_on_one_store_exactly_one_acts(
    service: ExperimentService, settings: Settings, clock: FakeClock, store: SQLiteStore
) -> None:
    experiments = [_running(service, f"ranker-pair-{i}") for i in range(3)]
    for experiment in experiments:
        _degraded(service, experiment, clock)
    workers = []
    for name in ("a", "b"):
        own = SQLiteStore(settings.db_path, clock=clock)  # as another process opens it
        workers.append(
            Monitor(own, Experiments(own, clock=clock), settings, clock=clock, holder=name)
        )
    reports: list[Any] = []
    start = threading.Barrier(2)

    def look(worker: Monitor) -> None:
        start.wait()
        for _ in range(3):
            reports.append(worker.run_once())

    threads = [threading.Thread(target=look, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    leaders = {r.holder for r in reports if r.leader}
    assert len(leaders) == 1
    assert sorted(i for r in reports for i in r.paused) == sorted(e.id for e in experiments)
    for experiment in experiments:
        stored = service.get(experiment.id)
        assert [e.action for e in stored.audit].count(BREACH_ACTION) == 1
        assert stored.status == Status.PAUSED
    for worker in workers:
        worker.store.close()


def test_the_loop_looks_every_interval_and_gives_the_lease_up_when_stopped(
    service: ExperimentService, store: SQLiteStore, tmp_path: Path
) -> None:
    settings = Settings(db_path=tmp_path / "abscope.db", monitor_interval_seconds=0.05)
    monitor = Monitor(store, service.experiments, settings, holder="looper")

    async def run() -> int:
        loop = MonitorLoop(monitor, settings.monitor_interval_seconds)
        loop.start()
        while loop.looks < 2:
            await asyncio.sleep(0.01)
        assert not store.acquire_lease(MONITOR_LEASE, "other", monitor.lease_ttl)
        await loop.stop()
        return loop.looks

    assert run_async(run()) >= 2
    assert store.acquire_lease(MONITOR_LEASE, "other", monitor.lease_ttl)


def _latency_requests(
    service: ExperimentService, experiment_id: str, users: int, scale: float, seed: int
) -> None:
    """``users`` users per arm, five requests each, sent through the service's ``/events``
    path (which attaches each request's quantile counters)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    events: list[schemas.BatchEvent] = []
    index = 0
    per_arm = {"control": 0, "treatment": 0}
    while min(per_arm.values()) < users:
        user = f"q-{seed}-{index}"
        index += 1
        (assignment,) = service.route(user, experiment_id).assignments
        variant = assignment.variant_name
        if variant is None or per_arm[variant] >= users:
            continue
        per_arm[variant] += 1
        factor = scale if variant == "treatment" else 1.0
        for latency in factor * rng.lognormal(5.0, 0.4, size=5):
            events.append(
                schemas.BatchEvent(
                    experiment_id=experiment_id,
                    user_id=user,
                    variant_name=variant,
                    kind="value",
                    value=float(latency),
                    metric="latency",
                )  # fmt: skip
            )
    for start in range(0, len(events), 1000):
        answer = service.ingest(schemas.BatchRequest(events=events[start : start + 1000]))
        assert answer.rejected == 0


@pytest.mark.parametrize(("scale", "verdict"), [(1.8, "breach"), (1.0, "non_inferior")])
def test_a_quantile_guardrail_is_watched_like_the_others(
    service: ExperimentService, monitor: Monitor, scale: float, verdict: str
) -> None:
    guard = {"name": "latency", "kind": "quantile", "role": "guardrail", "margin": 0.3,
             "guard_quantile": 0.95, "action": "pause"}  # fmt: skip
    service.create(create_request("ranker-p95", [guard]))  # type: ignore[list-item]
    experiment = service.transition("ranker-p95", "start")
    _latency_requests(service, experiment.id, 250, scale, seed=5)

    report = monitor.run_once()

    seen = report.experiment(experiment.id)
    assert seen is not None
    (look,) = seen.looks
    assert (look.metric, look.variant, look.verdict) == ("latency", "treatment", verdict)
    # The same verdict as the results' and the gate's.
    results = service.results(experiment.id)
    (entry,) = [m for m in results["metrics"] if m["name"] == "latency"]
    assert entry["comparisons"][0]["verdict"] == verdict
    assert service.gate(experiment.id)["metrics"][0]["verdict"] == verdict
    paused = verdict == "breach"
    assert report.paused == ([experiment.id] if paused else [])
    assert service.get(experiment.id).status == (Status.PAUSED if paused else Status.RUNNING)
