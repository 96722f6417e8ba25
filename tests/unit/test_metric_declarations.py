"""Adding a metric as the service does it: saved with the experiment's optimistic
version check, and seen by another worker once its routing snapshot is refreshed.

Two services over one SQLite file stand in for two worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from abscope import schemas
from abscope.config import Settings
from abscope.errors import Conflict, InvalidInput
from abscope.models import Experiment, Metric, MetricCounts
from abscope.service import ExperimentService
from abscope.storage.sqlite import SQLiteStore
from tests.fixtures.clock import FakeClock

LATENCY = Metric(
    name="latency_ms",
    kind="ratio",
    role="guardrail",
    higher_is_better=False,
    margin=0.05,
    action="pause",
)


class StaleStore(SQLiteStore):
    """A real store whose reads of one experiment can be made to return an older copy, as
    a worker that read it before another one saved a change."""

    stale: Experiment | None = None

    def get_experiment(self, experiment_id: str) -> Experiment:
        if self.stale is not None and self.stale.id == experiment_id:
            return self.stale
        return super().get_experiment(experiment_id)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def workers(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[ExperimentService, ...]]:
    stores = [StaleStore(tmp_path / "shared.db") for _ in range(2)]
    settings = Settings(db_path=tmp_path / "shared.db", config_refresh_seconds=1.0)
    yield tuple(
        ExperimentService(store, settings, clock=clock, rng=np.random.default_rng(i))
        for i, store in enumerate(stores)
    )
    for store in stores:
        store.close()


def _started(service: ExperimentService) -> str:
    request = schemas.CreateExperimentRequest(
        name="v2 vs v1", control_model_id="v1", treatment_model_id="v2"
    )
    experiment = service.create(request)
    service.transition(experiment.id, "start")
    return experiment.id


def test_a_metric_added_on_a_stale_read_is_a_conflict(
    workers: tuple[ExperimentService, ...],
) -> None:
    first, second = workers
    experiment_id = _started(first)
    assert isinstance(first.store, StaleStore)
    first.store.stale = first.get(experiment_id)
    # Another worker changes the experiment after the first one read it.
    second.patch(experiment_id, schemas.PatchExperimentRequest(name="renamed"))

    with pytest.raises(Conflict, match="changed since it was read"):
        first.add_metric(experiment_id, LATENCY)

    stored = second.get(experiment_id)
    assert (stored.name, stored.metrics) == ("renamed", [])
    assert [entry.action for entry in stored.audit] == ["create", "start", "update"]
    first.store.stale = None
    added = first.add_metric(experiment_id, LATENCY)  # a fresh read goes through
    assert added.version == stored.version + 1
    assert added.metrics == [LATENCY]


def test_another_worker_takes_the_metric_within_its_refresh(
    workers: tuple[ExperimentService, ...], clock: FakeClock
) -> None:
    first, second = workers
    experiment_id = _started(first)
    user = "user-1"
    variant = first.route(user, experiment_id, expose=False).variant_name
    assert variant is not None
    log = schemas.LogRequest(
        experiment_id=experiment_id,
        user_id=user,
        variant_name=variant,
        metric="latency_ms",
        value=120.5,
    )
    with pytest.raises(InvalidInput) as refused:
        second.log(log)
    assert refused.value.field == "metric"

    first.add_metric(experiment_id, LATENCY)
    first.log(log)  # the worker that made the change sees it at once
    clock.advance(1.5)  # the other one once its snapshot is older than the refresh
    second.log(log)

    assert second.store.get_metric_counts(experiment_id, 0) == {
        "latency_ms": {
            variant: MetricCounts(
                sum=241.0,
                sum_squares=241.0**2,
                denominator_sum=2.0,
                denominator_sum_squares=4.0,
                cross_sum=482.0,
            )
        }
    }


def test_the_primary_and_a_name_clash_are_refused(
    workers: tuple[ExperimentService, ...],
) -> None:
    first, _ = workers
    experiment_id = _started(first)
    primary = Metric(name="clicks", kind="binary", role="primary")
    with pytest.raises(InvalidInput) as refused:
        first.add_metric(experiment_id, primary)
    assert refused.value.field == "role"
    with pytest.raises(Conflict, match="'converted'"):
        first.add_metric(experiment_id, Metric(name="converted", kind="binary"))
    assert first.get(experiment_id).metrics == []
