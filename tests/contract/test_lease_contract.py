"""The storage contract for leases (see abscope.storage.base): one holder at a time, renewed
by that holder, free after a release by it or after the time to live.

Each test uses fresh lease names, so backends shared across tests never see each other's
leases. Expiry is the real clock (Redis expires keys on the server): a short time to live,
then a wait; nothing asserts how long any call took.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from abscope.storage.base import Store
from tests.contract.conftest import MakeStore
from tests.contract.test_store_contract import new_id
from tests.fixtures.factories import experiment

TTL = timedelta(seconds=30)
SHORT_TTL = timedelta(milliseconds=300)


def test_a_lease_has_one_holder_until_its_holder_releases_it(store: Store) -> None:
    name = new_id()
    assert store.acquire_lease(name, "worker-a", TTL)
    assert not store.acquire_lease(name, "worker-b", TTL)
    assert store.acquire_lease(name, "worker-a", TTL)  # renewed by its holder
    store.release_lease(name, "worker-b")  # not the holder: nothing changes
    assert not store.acquire_lease(name, "worker-b", TTL)
    store.release_lease(name, "worker-a")
    assert store.acquire_lease(name, "worker-b", TTL)
    assert not store.acquire_lease(name, "worker-a", TTL)


def test_leases_of_different_names_are_independent(store: Store) -> None:
    first, second = new_id(), new_id()
    assert store.acquire_lease(first, "worker-a", TTL)
    assert store.acquire_lease(second, "worker-b", TTL)
    store.release_lease(second, "worker-b")
    assert not store.acquire_lease(first, "worker-b", TTL)


def test_an_expired_lease_is_free_and_a_renewed_one_is_not(store: Store) -> None:
    expiring, renewed = new_id(), new_id()
    assert store.acquire_lease(expiring, "worker-a", SHORT_TTL)
    assert store.acquire_lease(renewed, "worker-a", SHORT_TTL)
    assert store.acquire_lease(renewed, "worker-a", TTL)  # renewed, for longer
    assert not store.acquire_lease(expiring, "worker-b", TTL)
    time.sleep(2 * SHORT_TTL.total_seconds())
    assert store.acquire_lease(expiring, "worker-b", TTL)
    assert not store.acquire_lease(expiring, "worker-a", TTL)
    assert not store.acquire_lease(renewed, "worker-b", TTL)


def test_releasing_a_free_lease_does_nothing(store: Store) -> None:
    name = new_id()
    store.release_lease(name, "worker-a")
    assert store.acquire_lease(name, "worker-a", TTL)


def test_a_lease_lives_apart_from_the_experiment_of_the_same_name(store: Store) -> None:
    exp = experiment()
    store.create_experiment(exp)
    assert store.acquire_lease(exp.id, "worker-a", TTL)
    store.delete_experiment(exp.id)
    store.create_experiment(exp)
    assert not store.acquire_lease(exp.id, "worker-b", TTL)


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-1)])
def test_a_lease_needs_a_positive_time_to_live(store: Store, ttl: timedelta) -> None:
    with pytest.raises(ValueError, match="ttl"):
        store.acquire_lease(new_id(), "worker-a", ttl)


def _race(store: Store, name: str, holder: str, start: threading.Barrier, won: list[str]) -> None:
    start.wait()
    if store.acquire_lease(name, holder, TTL):
        won.append(holder)


def test_racing_workers_elect_exactly_one(make_store: MakeStore) -> None:
    """Two workers, each with its own store (its own connection), race for fresh leases."""
    stores = [make_store(), make_store()]
    holders = ["worker-0", "worker-1"]
    for _ in range(10):
        name = new_id()
        start = threading.Barrier(len(stores))
        won: list[str] = []
        threads = [
            threading.Thread(target=_race, args=(store, name, holder, start, won))
            for store, holder in zip(stores, holders, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1, won
        [loser] = [holder for holder in holders if holder != won[0]]
        assert not stores[0].acquire_lease(name, loser, TTL)
        assert stores[1].acquire_lease(name, won[0], TTL)  # the winner renews it
