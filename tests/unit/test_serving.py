"""Routing records exposures and keeps serving when the store fails (abscope.serving).

A real SQLite store sits behind a switch that makes every call raise StorageUnavailable, as
a dead store does; the clock is injected, so the retry interval is exact.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from abscope import schemas
from abscope.config import Settings
from abscope.errors import StorageUnavailable
from abscope.models import Event
from abscope.service import ExperimentService
from abscope.storage.sqlite import SQLiteStore
from tests.fixtures.clock import FakeClock


class SwitchableStore(SQLiteStore):
    """A real store whose every data call fails while ``down`` is set; counts the calls."""

    down = False
    calls = 0
    ping_gate: threading.Event | None = None  # when set, a ping waits for it

    def _guard(self, name: str) -> None:
        self.calls += 1
        if name == "ping" and self.ping_gate is not None:
            self.ping_gate.wait(10)
        if self.down:
            raise StorageUnavailable(f"test: store down during {name}", public="down")

    def __getattribute__(self, name: str) -> Any:
        attribute = super().__getattribute__(name)
        if name in _DATA_CALLS:
            guard: Callable[[str], None] = super().__getattribute__("_guard")

            def guarded(*args: Any, **kwargs: Any) -> Any:
                guard(name)
                return attribute(*args, **kwargs)

            return guarded
        return attribute


_DATA_CALLS = frozenset(
    {
        "ping", "list_experiments", "get_experiment", "record_events", "get_counts", "get_exposure",
        "get_assignment", "assign_if_absent", "save_experiment", "create_experiment",
    }
)  # fmt: skip


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SwitchableStore]:
    opened = SwitchableStore(tmp_path / "abscope.db")
    yield opened
    opened.close()


@pytest.fixture
def service(store: SwitchableStore, clock: FakeClock, tmp_path: Path) -> ExperimentService:
    settings = Settings(db_path=tmp_path / "abscope.db")
    return ExperimentService(store, settings, clock=clock, rng=np.random.default_rng(3))


def _start(service: ExperimentService, **extra: object) -> str:
    request = schemas.CreateExperimentRequest.model_validate(
        {"name": "v2 vs v1", "control_model_id": "v1", "treatment_model_id": "v2"} | extra
    )
    experiment = service.create(request)
    service.transition(experiment.id, "start")
    return experiment.id


def _samples(service: ExperimentService, experiment_id: str) -> dict[str, int]:
    return {k: v.samples for k, v in service.store.get_counts(experiment_id, 0).items()}


def test_route_records_each_user_once_with_the_assignment_probability(
    service: ExperimentService,
) -> None:
    experiment_id = _start(service, traffic_percentage=50)
    users = [f"user-{i}" for i in range(400)]
    answers = {u: service.route(u, experiment_id) for u in users}
    inside = {u: a.variant_name for u, a in answers.items() if a.in_experiment}
    assert 150 < len(inside) < 250
    assert all(answers[u].exposure_status == "recorded" for u in inside)
    outside = [a for a in answers.values() if not a.in_experiment]
    assert {(a.variant_name, a.reason, a.exposure_status) for a in outside} == {
        ("control", "not_in_traffic", "not_in_experiment")
    }
    for user in users:  # again: nobody is counted twice
        assert service.route(user, experiment_id).variant_name == answers[user].variant_name
    counts = service.store.get_counts(experiment_id, 0)
    assert sum(c.samples for c in counts.values()) == len(inside)
    for c in counts.values():  # p = 0.5 weight x 0.5 traffic
        assert c.inverse_probability_sum == pytest.approx(4.0 * c.samples)
        assert c.inverse_probability_square_sum == pytest.approx(16.0 * c.samples)


def test_expose_false_gives_the_decision_and_counts_nobody(service: ExperimentService) -> None:
    experiment_id = _start(service)
    peeked = service.route("u1", experiment_id, expose=False)
    assert (peeked.in_experiment, peeked.exposure_status) == (True, "not_requested")
    assert _samples(service, experiment_id) == {}
    assert service.route("u1", experiment_id).variant_name == peeked.variant_name
    assert sum(_samples(service, experiment_id).values()) == 1


def test_a_returning_user_costs_no_store_call(
    service: ExperimentService, store: SwitchableStore
) -> None:
    experiment_id = _start(service)
    service.route("u1", experiment_id)
    store.calls = 0
    for _ in range(50):
        assert service.route("u1", experiment_id).exposure_status == "recorded"
    assert store.calls == 0


def test_a_bandit_user_keeps_the_variant_of_their_first_exposure(
    service: ExperimentService, clock: FakeClock
) -> None:
    experiment_id = _start(service, allocation="thompson")
    first = {f"user-{i}": service.route(f"user-{i}", experiment_id).variant_name for i in range(60)}
    assert set(first.values()) == {"control", "treatment"}
    other = ExperimentService(service.store, service.settings, clock=clock,
                              rng=np.random.default_rng(99))  # fmt: skip
    for user, variant in first.items():  # another worker, with other random draws
        assert other.route(user, experiment_id).variant_name == variant
    assert sum(_samples(service, experiment_id).values()) == 60


def test_a_dead_store_serves_the_last_snapshot_and_the_service_recovers(
    service: ExperimentService, store: SwitchableStore, clock: FakeClock
) -> None:
    hashed = _start(service)
    sticky = _start(service, sticky=True)
    bandit = _start(service, allocation="thompson")
    before = {u: service.route(u, hashed).variant_name for u in ("a", "b")}
    sticky_before = service.route("s", sticky).variant_name
    store.down = True
    clock.advance(5.0)  # the snapshot is stale: routing would read the store now
    for experiment_id in (hashed, sticky, bandit):
        answer = service.route("new-user", experiment_id)
        assert answer.in_experiment and answer.model_id in ("v1", "v2")
        assert answer.exposure_status == "store_unavailable"
    assert {u: service.route(u, hashed).variant_name for u in before} == before
    # The documented rule: a sticky user whose stored variant cannot be read gets the
    # variant of the hash, which is theirs while the weights have not changed.
    assert service.route("s", sticky).variant_name == sticky_before
    # Once failed, the store is not called again before store_retry_seconds have passed.
    store.calls = 0
    for i in range(100):
        service.route(f"x-{i}", hashed)
        service.route(f"y-{i}", sticky)
    assert store.calls == 0
    with pytest.raises(StorageUnavailable):
        service.log(schemas.LogRequest(experiment_id=hashed, user_id="a", variant_name=before["a"]))
    store.down = False
    store.ping_gate = threading.Event()  # the probe's ping answers only once released
    clock.advance(service.settings.store_retry_seconds)
    # The next request starts a probe in the background and is still served without the
    # store; once the probe has its answer, exposures are recorded again.
    assert service.route("probing", hashed).exposure_status == "store_unavailable"
    store.ping_gate.set()
    deadline = time.monotonic() + 5
    while not service.serving.store_available() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert service.route("back", hashed).exposure_status == "recorded"
    assert sum(_samples(service, hashed).values()) == 3  # a, b and back


def test_a_worker_that_never_read_the_configuration_answers_unavailable(
    service: ExperimentService, store: SwitchableStore
) -> None:
    store.down = True
    with pytest.raises(StorageUnavailable):
        service.route("u1", "anything")


def test_a_trusted_exposure_equals_the_validated_event() -> None:
    at = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    fast = Event.exposure("exp-1", 2, "user-1", "control", 0.25, at)
    checked = Event.model_validate(
        {"experiment_id": "exp-1", "phase": 2, "user_id": "user-1", "variant": "control",
         "kind": "exposure", "probability": 0.25, "at": at}
    )  # fmt: skip
    assert fast == checked
    assert fast.model_dump() == checked.model_dump()
    assert fast.model_fields_set == set(Event.model_fields)
