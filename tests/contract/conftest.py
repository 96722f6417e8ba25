"""One `store` fixture over every backend: SQLite, a real redis-server, a real Redis Cluster.

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

BACKENDS = ["sqlite", "redis", "redis-cluster"]

MakeStore = Callable[..., Store]


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    backend: str = request.param
    opened: list[Store] = []

    def make(**options: Any) -> Store:
        if backend == "sqlite":
            from abscope.storage.sqlite import SQLiteStore

            store: Store = SQLiteStore(tmp_path / "abscope.db", **options)
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


@pytest.fixture
def store(make_store: MakeStore) -> Store:
    return make_store()
