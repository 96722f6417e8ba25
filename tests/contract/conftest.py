"""One `store` fixture over every backend: SQLite, a real redis-server, a real Redis Cluster.

The Redis servers are started by `tests.fixtures.redis_servers` on free ports and stopped
afterwards; nothing touches a Redis the tests did not start.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from abscope.storage.base import Store

BACKENDS = ["sqlite", "redis", "redis-cluster"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    backend: str = request.param
    if backend == "sqlite":
        from abscope.storage.sqlite import SQLiteStore

        opened: Store = SQLiteStore(tmp_path / "abscope.db")
    else:
        from abscope.storage.redis import RedisStore

        url = request.getfixturevalue("redis_url" if backend == "redis" else "redis_cluster_url")
        opened = RedisStore.from_url(url, cluster=backend == "redis-cluster")
    try:
        yield opened
    finally:
        opened.close()
