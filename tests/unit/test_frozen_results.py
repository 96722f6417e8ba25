"""An ended experiment's figures are those at its end: users a day over the days it ran,
nothing still needed, and the same answer however long after the end it is read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from abscope import schemas
from abscope.config import Settings
from abscope.errors import Conflict
from abscope.service import ExperimentService
from abscope.storage.sqlite import SQLiteStore
from tests.fixtures.clock import FakeClock

DAY = 86_400.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(tmp_path: Path, clock: FakeClock) -> Iterator[ExperimentService]:
    store = SQLiteStore(tmp_path / "frozen.db")
    yield ExperimentService(
        store, Settings(db_path=tmp_path / "frozen.db"), clock=clock, rng=np.random.default_rng(7)
    )
    store.close()


def _log(service: ExperimentService, experiment_id: str, users: list[str]) -> int:
    logged = 0
    for user in users:
        answer = service.route(user, experiment_id, expose=False)
        if answer.in_experiment and answer.variant_name is not None:
            service.log(
                schemas.LogRequest(
                    experiment_id=experiment_id, user_id=user, variant_name=answer.variant_name
                )
            )
            logged += 1
    return logged


@pytest.mark.parametrize("end", ["complete", "stop"])
def test_figures_stop_at_the_end(service: ExperimentService, clock: FakeClock, end: str) -> None:
    request = schemas.CreateExperimentRequest.model_validate(
        {
            "name": "frozen",
            "control_model_id": "v1",
            "treatment_model_id": "v2",
            "min_relative_lift": 0.05,
        }  # fmt: skip
    )
    experiment_id = service.create(request).id
    service.transition(experiment_id, "start")
    logged = _log(service, experiment_id, [f"u{i}" for i in range(300)])
    clock.advance(1.5 * DAY)
    logged += _log(service, experiment_id, [f"v{i}" for i in range(300)])
    clock.advance(0.5 * DAY)
    running = service.results(experiment_id)
    # Two days so far: the rate is the users over the days run, computed directly.
    assert running["decision"]["daily_users"] == pytest.approx(logged / 2.0)
    service.transition(experiment_id, end)  # type: ignore[arg-type]

    clock.advance(0.25 * DAY)
    first = service.results(experiment_id)
    clock.advance(30 * DAY)
    later = service.results(experiment_id)
    assert first == later  # nothing moves with the clock once it has ended
    assert later["decision"]["daily_users"] == pytest.approx(logged / 2.0)
    assert later["decision"]["remaining_samples"] is None
    assert later["decision"]["remaining_days"] is None
    # And nothing can be added after the end (the figures cannot grow).
    with pytest.raises(Conflict):
        service.log(
            schemas.LogRequest(experiment_id=experiment_id, user_id="late", variant_name="control")
        )
    assert service.results(experiment_id) == later
