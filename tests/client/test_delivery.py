"""Exposures reach the server exactly once: through a crash, a full queue and a close.

Each test runs a real ``abscope serve`` on a SQLite file and a real ``Client``; the counts
are read back from ``GET /experiments/{id}/results``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from abscope.client import Client
from tests.client.conftest import MakeServer, create_running, samples


def _wait(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_every_exposure_is_counted_once_across_a_server_crash(make_server: MakeServer) -> None:
    """A stream of 4,000 users; the server is killed (SIGKILL) mid-stream and brought back
    on the same port; every user is counted once, in the variant the client served."""
    server = make_server()
    create_running(server.url, "crash")
    served: Counter[str] = Counter()
    with Client(
        server.url, flush_interval=0.02, batch_size=100, retry_seconds=0.2, close_timeout=60
    ) as client:
        routed = 0

        def stream(count: int) -> None:
            nonlocal routed
            for _ in range(count):
                decision = client.route(f"user-{routed}", "crash")
                assert decision.source == "local" and decision.exposure == "queued"
                assert decision.variant_name is not None
                served[decision.variant_name] += 1
                routed += 1
                if routed % 50 == 0:
                    time.sleep(0.005)  # a stream, not one burst

        stream(1500)
        _wait(lambda: client.stats.sent >= 800, "the first batches to be counted")
        feeder = threading.Thread(target=stream, args=(1000,))
        feeder.start()  # batches are in flight while the server dies
        server.kill()
        feeder.join()
        stream(500)  # decided locally while the server is down; queued
        assert client.stats.retries > 0, "no batch failed: the crash happened after the stream"
        server.restart_after_kill()
        stream(1000)
        assert client.flush(timeout=60)
        stats = client.stats
    assert routed == 4000
    assert samples(server.url, "crash") == dict(served)
    assert stats.queued == 4000 and stats.dropped == 0 and stats.lost == 0
    assert stats.counted + stats.duplicates == 4000 and stats.rejected == 0
    assert stats.sent == 4000


def test_a_full_queue_drops_the_oldest_and_counts_them(make_server: MakeServer) -> None:
    server = make_server()
    create_running(server.url, "overflow")
    with Client(server.url, max_queue=100, retry_seconds=0.2, close_timeout=60) as client:
        server.kill()
        decisions = [client.route(f"user-{i}", "overflow") for i in range(250)]
        assert all(d.source == "local" for d in decisions)  # served from the cached config
        assert client.stats.dropped == 150
        server.restart_after_kill()
        assert client.flush(timeout=60)
        assert client.stats.counted == 100
    newest = Counter(d.variant_name for d in decisions[150:])
    assert samples(server.url, "overflow") == dict(newest)


def test_close_flushes_and_a_returning_user_is_queued_once(make_server: MakeServer) -> None:
    server = make_server()
    create_running(server.url, "flush")
    with Client(server.url, flush_interval=30) as client:  # nothing is sent before close
        first = [client.route(f"user-{i}", "flush") for i in range(300)]
        again = [client.route(f"user-{i}", "flush") for i in range(300)]
        assert {d.exposure for d in again} == {"already_queued"}
        assert [d.variant_name for d in again] == [d.variant_name for d in first]
        assert client.stats.sent == 0
    assert client.stats.sent == 300 and client.stats.lost == 0
    assert sum(samples(server.url, "flush").values()) == 300


def test_a_second_client_sends_the_same_exposure_ids(make_server: MakeServer) -> None:
    """Two model servers that route the same user send one exposure between them."""
    server = make_server()
    create_running(server.url, "two-clients")
    with Client(server.url) as one, Client(server.url) as two:
        for i in range(200):
            one.route(f"user-{i}", "two-clients")
            two.route(f"user-{i}", "two-clients")
        assert one.flush(timeout=30) and two.flush(timeout=30)
        total = one.stats.counted + two.stats.counted
        duplicates = one.stats.duplicates + two.stats.duplicates
    assert total == 200 and duplicates == 200
    assert sum(samples(server.url, "two-clients").values()) == 200


def test_threads_sharing_a_client_count_each_user_once(make_server: MakeServer) -> None:
    """A threaded model server: 8 threads route overlapping users through one client."""
    server = make_server()
    create_running(server.url, "threads")
    with Client(server.url, flush_interval=0.02, batch_size=50) as client:

        def work(offset: int) -> list[tuple[str, str | None]]:
            users = [f"user-{(offset * 97 + i) % 1500}" for i in range(1500)]
            return [(u, client.route(u, "threads").variant_name) for u in users]

        threads: list[list[tuple[str, str | None]]] = []
        workers = [threading.Thread(target=lambda o=o: threads.append(work(o))) for o in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert client.flush(timeout=60)
    served = {user: variant for result in threads for user, variant in result}
    assert len(served) == 1500 and len(threads) == 8
    for result in threads:  # every thread saw the same variant for a user
        assert all(served[user] == variant for user, variant in result)
    assert samples(server.url, "threads") == dict(Counter(served.values()))
