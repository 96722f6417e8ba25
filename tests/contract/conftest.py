"""One `store` fixture over every backend: SQLite, a real redis-server, a real Redis Cluster,
and SQLite behind :class:`abscope.storage.instrumented.InstrumentedStore` (the metrics'
wrapper must change nothing; the test's observer checks that every call was timed).

The Redis servers are started by `tests.fixtures.redis_servers` on free ports and stopped
afterwards; nothing touches a Redis the tests did not start. `make_store` opens further
stores of the same backend with other options (a clock, an event-id window).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from abscope.storage.base import Store

BACKENDS = ["sqlite", "redis", "redis-cluster", "sqlite-instrumented"]


class _Observer:
    """Keeps what an ``InstrumentedStore`` reports: (operation, seconds, failed) per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, bool]] = []

    def store_operation(self, operation: str) -> Callable[[float, bool], None]:
        def observe(seconds: float, failed: bool) -> None:
            assert seconds >= 0.0
            self.calls.append((operation, seconds, failed))

        return observe


MakeStore = Callable[..., Store]


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    backend: str = request.param
    opened: list[Store] = []
    observers: list[_Observer] = []

    def make(**options: Any) -> Store:
        if backend.startswith("sqlite"):
            from abscope.storage.sqlite import SQLiteStore

            store: Store = SQLiteStore(tmp_path / "abscope.db", **options)
            if backend == "sqlite-instrumented":
                from abscope.storage.instrumented import InstrumentedStore

                observers.append(observer := _Observer())
                store = InstrumentedStore(store, observer)
        else:
            from abscope.storage.redis import RedisStore

            fixture = "redis_url" if backend == "redis" else "redis_cluster_url"
            url = request.getfixturevalue(fixture)
            store = RedisStore.from_url(url, cluster=backend == "redis-cluster", **options)
        opened.append(store)
        return store

    make.backend = backend  # type: ignore[attr-defined]
    try:
        yield make
    finally:
        for store in opened:
            store.close()
    for observer in observers:  # the wrapper saw the test's calls (all but close)
        assert observer.calls, "the instrumented store timed no call"


@pytest.fixture
def store(make_store: MakeStore) -> Store:
    return make_store()
