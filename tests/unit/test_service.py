"""Service behaviour that needs a controlled clock: the routing cache and bandit reads.

Two services over one SQLite file stand in for two worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from abscope import reports, schemas
from abscope.config import Settings
from abscope.models import Status, VariantCounts
from abscope.service import ExperimentService
from abscope.storage.sqlite import SQLiteStore
from tests.fixtures.clock import FakeClock


class CountingStore(SQLiteStore):
    """A real store that counts the reads routing cares about."""

    list_calls = 0
    count_calls = 0

    def list_experiments(self, status: Status | None = None):  # type: ignore[no-untyped-def]
        self.list_calls += 1
        return super().list_experiments(status)

    def get_counts(self, experiment_id: str, phase: int) -> dict[str, VariantCounts]:
        self.count_calls += 1
        return super().get_counts(experiment_id, phase)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def workers(
    tmp_path: Path, clock: FakeClock
) -> Iterator[tuple[ExperimentService, ExperimentService]]:
    stores = [CountingStore(tmp_path / "shared.db") for _ in range(2)]
    settings = Settings(db_path=tmp_path / "shared.db")
    services = tuple(
        ExperimentService(store, settings, clock=clock, rng=np.random.default_rng(i))
        for i, store in enumerate(stores)
    )
    yield services  # type: ignore[misc]
    for store in stores:
        store.close()


def _create(service: ExperimentService, **extra: object) -> str:
    request = schemas.CreateExperimentRequest.model_validate(
        {"name": "v2 vs v1", "control_model_id": "v1", "treatment_model_id": "v2"} | extra
    )
    experiment = service.create(request)
    service.transition(experiment.id, "start")
    return experiment.id


def test_another_worker_sees_a_change_within_one_second(
    workers: tuple[ExperimentService, ExperimentService], clock: FakeClock
) -> None:
    a, b = workers
    experiment_id = _create(a)
    b.route("warm-up")  # b builds its routing table now
    users = [f"user-{i}" for i in range(200)]
    before = {u: b.route(u, experiment_id).variant_name for u in users}
    a.transition(experiment_id, "pause")
    clock.advance(0.5)
    # Within the refresh interval b may still route by its snapshot...
    assert b.route(users[0], experiment_id).variant_name == before[users[0]]
    clock.advance(0.5)
    # ...and after one second it must have seen the pause: everyone gets the control,
    # outside the experiment, and nobody is counted.
    paused = b.route(users[0], experiment_id)
    assert (paused.variant_name, paused.in_experiment, paused.reason) == (
        "control",
        False,
        "paused",
    )
    assert paused.exposure_status == "not_in_experiment"


def test_the_worker_that_made_a_change_sees_it_at_once(
    workers: tuple[ExperimentService, ExperimentService],
) -> None:
    a, _ = workers
    experiment_id = _create(a)
    assert a.route("u1", experiment_id).in_experiment
    a.transition(experiment_id, "pause")
    assert a.route("u1", experiment_id).reason == "paused"


def test_the_parts_share_one_snapshot_and_the_facade_adds_no_call(
    workers: tuple[ExperimentService, ExperimentService],
) -> None:
    service, _ = workers
    experiment_id = _create(service)
    snapshot = service.serving.table()
    assert service.traffic.serving is service.serving
    assert service.traffic.serving.table() is snapshot  # routing and event checks: one snapshot
    service.experiments.transition(experiment_id, "pause")  # a change invalidates it at once
    assert service.traffic.serving.table() is not snapshot
    parts = (service.experiments, service.traffic, service.analysis)
    for part in parts:
        public = [n for n, v in vars(type(part)).items() if callable(v) and n[0] != "_"]
        assert public
        for name in public:
            # the part's own bound method: no wrapper frame on the hot paths
            assert getattr(service, name) == getattr(part, name), name
            assert getattr(service, name).__self__ is part, name


def test_routing_reads_the_configuration_at_most_once_a_second(
    workers: tuple[ExperimentService, ExperimentService], clock: FakeClock
) -> None:
    a, b = workers
    experiment_id = _create(a)
    store = b.store
    assert isinstance(store, CountingStore)
    store.list_calls = 0
    for second in range(5):
        for i in range(300):
            b.route(f"user-{second}-{i}", experiment_id)
        clock.advance(1.0)
    assert store.list_calls == 5


def test_bandit_counts_are_read_at_most_once_a_second(
    workers: tuple[ExperimentService, ExperimentService], clock: FakeClock
) -> None:
    a, b = workers
    experiment_id = _create(a, allocation="thompson")
    store = b.store
    assert isinstance(store, CountingStore)
    store.count_calls = 0
    for second in range(3):
        for i in range(200):
            assert b.route(f"u-{second}-{i}", experiment_id).variant_name in (
                "control",
                "treatment",
            )
        clock.advance(1.0)
    assert store.count_calls == 3


def test_bandit_traffic_shifts_to_the_better_arm(
    workers: tuple[ExperimentService, ExperimentService], clock: FakeClock
) -> None:
    a, _ = workers
    experiment_id = _create(a, allocation="thompson")
    rng = np.random.default_rng(5)
    rates = {"control": 0.05, "treatment": 0.20}
    served = {"control": 0, "treatment": 0}
    for i in range(3000):
        user = f"user-{i}"
        variant = a.route(user, experiment_id).variant_name
        assert variant is not None
        converted = bool(rng.random() < rates[variant])
        a.log(
            schemas.LogRequest(
                experiment_id=experiment_id, user_id=user, variant_name=variant, converted=converted
            )
        )
        if i >= 2000:
            served[variant] += 1
        if i % 50 == 0:
            clock.advance(1.0)
    assert served["treatment"] > 0.8 * 1000


def test_a_sticky_user_keeps_their_variant_after_a_weight_change(
    workers: tuple[ExperimentService, ExperimentService], clock: FakeClock
) -> None:
    a, b = workers
    experiment_id = _create(a, sticky=True)
    users = [f"user-{i}" for i in range(400)]
    first = {u: a.route(u, experiment_id).variant_name for u in users}
    a.patch(
        experiment_id, schemas.PatchExperimentRequest(weights={"control": 0.1, "treatment": 0.9})
    )
    assert a.get(experiment_id).phase == 1  # the counts start a new phase...
    clock.advance(1.0)
    for worker in (a, b):  # ...but no assigned user moves, on any worker
        assert {u: worker.route(u, experiment_id).variant_name for u in users} == first
    # New users follow the new weights.
    newcomers = [a.route(f"new-{i}", experiment_id).variant_name for i in range(400)]
    assert sum(v == "treatment" for v in newcomers) > 0.8 * 400
    # Without stickiness, the new phase reshuffles: some users do move.
    loose = _create(a)
    before = {u: a.route(u, loose).variant_name for u in users}
    a.patch(loose, schemas.PatchExperimentRequest(weights={"control": 0.1, "treatment": 0.9}))
    after = {u: a.route(u, loose).variant_name for u in users}
    assert before != after


def _log_routed(service: ExperimentService, experiment_id: str, users: list[str]) -> None:
    """Route without recording, then log the exposure: /log records the probability too."""
    for user in users:
        answer = service.route(user, experiment_id, expose=False)
        variant = answer.variant_name
        if answer.in_experiment and variant is not None:
            service.log(
                schemas.LogRequest(experiment_id=experiment_id, user_id=user, variant_name=variant)
            )


def test_exposures_record_the_assignment_probability(
    workers: tuple[ExperimentService, ExperimentService],
) -> None:
    a, _ = workers
    users = [f"user-{i}" for i in range(200)]
    # A bandit with no data yet allocates 0.5 / 0.5 (the clock does not move, so the
    # snapshot of the counts, and so the allocation, stays the same for every user).
    bandit = _create(a, allocation="thompson")
    _log_routed(a, bandit, users)
    for counts in a.store.get_counts(bandit, 0).values():
        assert counts.inverse_probability_sum == pytest.approx(2.0 * counts.samples)
    # Hash routing at 50% traffic on a 50/50 split: p = 0.25.
    ramped = _create(a, traffic_percentage=50)
    _log_routed(a, ramped, users)
    for counts in a.store.get_counts(ramped, 0).values():
        assert counts.inverse_probability_sum == pytest.approx(4.0 * counts.samples)
    # A forced user was assigned with certainty.
    forced = _create(a, traffic_percentage=50, forced_variants={"qa": "treatment"})
    _log_routed(a, forced, ["qa"])
    assert a.store.get_counts(forced, 0)["treatment"].inverse_probability_sum == 1.0


def test_a_continuous_experiment_has_a_lift_series_with_its_sequence(
    workers: tuple[ExperimentService, ExperimentService], clock: FakeClock
) -> None:
    a, _ = workers
    experiment_id = _create(a, metric_type="continuous")
    rng = np.random.default_rng(9)
    for hour in range(3):
        for i in range(150):
            user = f"user-{hour}-{i}"
            variant = a.route(user, experiment_id).variant_name
            assert variant is not None
            value = float(rng.normal(10.0 if variant == "control" else 11.0, 2.0))
            request = schemas.LogRequest(
                experiment_id=experiment_id, user_id=user, variant_name=variant, value=value
            )
            a.log(request)
        clock.advance(3600)
    series = a.timeseries(experiment_id)
    lift = series["lift"]["treatment"]
    assert len(lift["lift"]) == len(series["hours"]) == 3
    # The lift estimate sits inside its interval and its (wider) confidence sequence.
    for est, lo, hi, cs_lo, cs_hi in zip(
        lift["lift"],
        lift["ci_lower"],
        lift["ci_upper"],
        lift["cs_lower"],
        lift["cs_upper"],
        strict=True,
    ):
        assert cs_lo <= lo <= est <= hi <= cs_hi
    assert 0.0 < lift["lift"][-1] < 0.25  # about +10%
    assert all(v is not None for v in series["variants"]["control"]["ci_lower"])


@pytest.mark.parametrize("metric_type", ["binary", "continuous"])
def test_the_posterior_chart_reads_the_same_figures_as_the_results(
    workers: tuple[ExperimentService, ExperimentService], metric_type: str
) -> None:
    a, _ = workers
    experiment_id = _create(a, metric_type=metric_type)
    for i in range(300):
        user = f"user-{i}"
        variant = a.route(user, experiment_id).variant_name
        assert variant is not None
        a.log(
            schemas.LogRequest(
                experiment_id=experiment_id, user_id=user, variant_name=variant,
                converted=i % 7 == 0, value=float(i % 11) if metric_type == "continuous" else None,
            )
        )  # fmt: skip
    results = a.results(experiment_id)
    summary = reports.variant_summary(a.get(experiment_id), a.store.get_counts(experiment_id, 0))
    keys = ("name", "is_control", "n", "conversions", "mean", "std")
    assert [{k: v[k] for k in keys} for v in summary["variants"]] == [
        {k: v[k] for k in keys} for v in results["variants"]
    ]
