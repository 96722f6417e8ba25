"""What only the Redis store has to get right: the keyspace (one hash slot per experiment,
every key enumerable), scripts loaded once, float64-exact counters, failures reported as
StorageUnavailable, Redis Cluster across slots, and a large batch in one call.

The behaviour every backend shares is checked by ``tests/contract``. The servers here are
started by ``tests.fixtures.redis_servers`` on free ports; nothing touches another Redis.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from abscope.errors import StorageUnavailable
from abscope.models import Event
from abscope.storage import keys
from abscope.storage.redis import RedisStore
from tests.fixtures.factories import T0, experiment
from tests.fixtures.redis_servers import RedisClusterServers, RedisServer

SCRIPTS = (
    "record_events.lua",
    "save_experiment.lua",
    "assign_if_absent.lua",
    "delete_data.lua",
    "acquire_lease.lua",
    "release_lease.lua",
)


def script_sha(name: str) -> str:
    source = (resources.files("abscope.storage") / "lua" / name).read_text("utf-8")
    return hashlib.sha1(source.encode()).hexdigest()


def new_id(prefix: str = "exp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def event(
    exp: str, user: str, variant: str = "control", kind: str = "exposure", **extra: Any
) -> Event:
    fields = {"experiment_id": exp, "user_id": user, "variant": variant, "kind": kind}
    return Event.model_validate({"at": T0, **fields, **extra})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as started:
        yield started


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    with RedisClusterServers(tmp_path_factory.mktemp("redis-cluster")) as started:
        yield started


@pytest.fixture
def store(server: RedisServer) -> Iterator[RedisStore]:
    opened = RedisStore.from_url(server.url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def cluster_store(cluster: RedisClusterServers) -> Iterator[RedisStore]:
    opened = RedisStore.from_url(cluster.url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def admin(server: RedisServer) -> Iterator[redis.Redis]:
    """A plain client of the module's own server, emptied before the test."""
    with server.client() as client:
        client.flushall()
        yield client


@pytest.fixture(params=["redis", "redis-cluster"])
def any_store(request: pytest.FixtureRequest) -> RedisStore:
    """The module's store on one server, then on the cluster."""
    name = "store" if request.param == "redis" else "cluster_store"
    chosen: RedisStore = request.getfixturevalue(name)
    return chosen


@pytest.fixture
def any_admin(any_store: RedisStore) -> Any:
    """The redis-py client under ``any_store`` (a cluster client routes keys by slot)."""
    return any_store.client


# --- the keyspace ------------------------------------------------------------------------------


@pytest.mark.parametrize("experiment_id", ["checkout", "a", "ranking-v2_test", "x" * 64])
def test_every_key_of_an_experiment_carries_its_hash_tag(experiment_id: str) -> None:
    built = keys.experiment_keys(experiment_id, [0, 1, 7], [20, 19])
    assert len(built) == 1 + 2 + 3 * 16  # 9 phase keys, assignments, 6 metric keys
    assert len(set(built)) == len(built)
    assert {keys.hash_tag(key) for key in built} == {experiment_id}
    assert {key_slot(key.encode()) for key in built} == {key_slot(experiment_id.encode())}


def test_experiments_land_in_different_slots_and_the_config_in_its_own() -> None:
    slots = {key_slot(keys.counts(name, 0).encode()) for name in ("checkout", "ranking", "search")}
    assert len(slots) == 3
    assert keys.hash_tag(keys.EXPERIMENTS) == "config"


def test_the_hash_tag_helper_agrees_with_redis_cluster() -> None:
    for key in ("abscope:{checkout}:p0:counts", "{}x", "a{b}c{d}", "no-tag", "x{}{y}"):
        assert key_slot(keys.hash_tag(key).encode()) == key_slot(key.encode()), key


@pytest.mark.parametrize("bad", ["", "Upper", "with space", "{tag}", "a:b", "x" * 65])
def test_keys_refuse_ids_that_could_break_the_hash_tag(bad: str) -> None:
    with pytest.raises(ValueError, match="experiment_id"):
        keys.counts(bad, 0)


@pytest.mark.parametrize("bad", [-1, True, 1.0])
def test_keys_refuse_bad_phases(bad: Any) -> None:
    with pytest.raises(ValueError, match="phase"):
        keys.counts("checkout", bad)


def test_the_enumerated_keys_are_all_the_keys_so_delete_leaves_nothing(
    store: RedisStore, admin: redis.Redis
) -> None:
    exp = new_id()
    store.create_experiment(experiment(exp))
    store.record_events(
        [
            event(exp, "u1", event_id="e1"),
            event(exp, "u1", kind="conversion"),
            event(exp, "u2", "treatment", "value", value=2.5, phase=2),
            event(exp, "u4", kind="value", value=1.0, metric="latency", denominator=1.0),
            event(exp, "u4", kind="conversion", metric="errors", phase=2),
            event(exp, "u5", kind="value", value=9.0, metric="p95", quantile_increments={"b:1": 1}),
            event(exp, "u5", kind="value", value=9.0, metric="p95", phase=2,
                  quantile_increments={"b:1": 1}),
            event(exp, "u6", metric_covariates={"errors": 1.0}),
            event(exp, "u6", metric_covariates={"errors": 2.0}, phase=2),
        ]
    )  # fmt: skip
    store.assign_if_absent(exp, 1, "u3", "treatment")
    present = set(admin.scan_iter())  # SCAN is fine in a test, never in the store
    buckets, _ = keys.id_buckets(datetime.now(UTC).timestamp(), 7 * 24 * 3600)
    assert present <= {keys.EXPERIMENTS, *keys.experiment_keys(exp, [0, 1, 2], buckets)}
    assert keys.applied_events(exp, buckets[0]) in present
    assert keys.counts(exp, 2) in present and keys.assignments(exp, 1) in present
    assert {*keys.metric_phase_keys(exp, 0), *keys.metric_phase_keys(exp, 2)} <= present
    store.delete_experiment(exp)
    assert admin.dbsize() == 0


# --- scripts -----------------------------------------------------------------------------------


def test_scripts_are_sent_once_and_called_by_sha(server: RedisServer, admin: redis.Redis) -> None:
    admin.script_flush()
    admin.config_resetstat()
    first, second = RedisStore.from_url(server.url), RedisStore.from_url(server.url)
    try:
        for store in (first, second, first, second):
            exp = new_id()
            store.create_experiment(experiment(exp))
            store.record_events([event(exp, "u1"), event(exp, "u2", "treatment")])
            store.assign_if_absent(exp, 0, "u1", "control")
            store.save_experiment(experiment(exp).model_copy(update={"version": 1}))
            store.delete_experiment(exp)
            assert store.acquire_lease(exp, "worker", timedelta(seconds=5))
            store.release_lease(exp, "worker")
    finally:
        first.close()
        second.close()
    stats = admin.info("commandstats")
    assert stats["cmdstat_eval"]["calls"] == len(SCRIPTS)  # the source is sent once per script
    assert stats["cmdstat_evalsha"]["calls"] >= 4 * (len(SCRIPTS) + 1)
    assert all(admin.script_exists(*(script_sha(name) for name in SCRIPTS)))


def test_a_script_flush_is_survived(store: RedisStore, admin: redis.Redis) -> None:
    exp = new_id()
    store.record_events([event(exp, "u1")])
    admin.script_flush()
    store.record_events([event(exp, "u2")])
    assert store.get_counts(exp, 0)["control"].samples == 2


def test_lua_files_ship_inside_the_package() -> None:
    lua = resources.files("abscope.storage") / "lua"
    assert sorted(p.name for p in lua.iterdir() if p.name.endswith(".lua")) == sorted(SCRIPTS)


# --- numbers -----------------------------------------------------------------------------------


def test_counters_are_float64_exact(store: RedisStore) -> None:
    """Lua passes numbers to Redis as %.17g, so sums match a float64 accumulator bit for bit."""
    exp = new_id()
    values = [0.1, 0.2, 1e-300, 123456.789, -0.7]
    store.record_events([event(exp, "u1", kind="value", value=v) for v in values])
    total = value_sum = squares = 0.0
    for v in values:
        value_sum += v
        squares += 2 * total * v + v * v
        total += v
    counts = store.get_counts(exp, 0)["control"]
    assert (counts.value_sum, counts.value_sum_squares) == (value_sum, squares)
    assert counts.inverse_probability_sum == 1.0
    [hour] = store.get_timeseries(exp, 0)
    assert hour.variants["control"] == counts


def test_inverse_probabilities_add_exactly(store: RedisStore) -> None:
    exp = new_id()
    probabilities = [0.3, 0.7, 0.1, 0.9, 0.33]
    store.record_events([event(exp, f"u{i}", probability=p) for i, p in enumerate(probabilities)])
    expected = 0.0
    for p in probabilities:
        expected += 1 / p
    assert store.get_counts(exp, 0)["control"].inverse_probability_sum == expected


def test_naive_timestamps_are_utc(store: RedisStore) -> None:
    exp = new_id()
    store.record_events([event(exp, "u1", at=datetime(2026, 1, 2, 3, 59, 59))])
    [hour] = store.get_timeseries(exp, 0)
    assert hour.hour == datetime(2026, 1, 2, 3, tzinfo=UTC)


def test_concurrent_writers_count_a_user_once(server: RedisServer) -> None:
    exp = new_id()
    stores = [RedisStore.from_url(server.url) for _ in range(8)]
    start = threading.Barrier(len(stores))

    def log(store: RedisStore, worker: int) -> None:
        start.wait()
        for i in range(50):
            store.record_events([event(exp, f"u{i}", kind="conversion", event_id=f"{worker}-{i}")])

    threads = [threading.Thread(target=log, args=(s, n)) for n, s in enumerate(stores)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for store in stores:
            store.close()
    reader = RedisStore.from_url(server.url)
    try:
        counts = reader.get_counts(exp, 0)["control"]
    finally:
        reader.close()
    assert (counts.samples, counts.conversions) == (50, 50)


# --- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "cluster", "message"),
    [
        ("http://localhost:6379", None, "url must start with"),
        ("localhost:6379", None, "url must start with"),
        ("redis+cluster://localhost:7000", False, "contradicts"),
        ("unix:///tmp/redis.sock", True, "over TCP"),
    ],
)
def test_bad_urls_are_refused(url: str, cluster: bool | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RedisStore.from_url(url, cluster=cluster)


def test_a_client_must_decode_responses(server: RedisServer) -> None:
    with redis.Redis(port=server.port) as raw, pytest.raises(ValueError, match="decode_responses"):
        RedisStore(raw)


def test_a_ready_client_is_used_and_left_open(server: RedisServer) -> None:
    with server.client() as client:
        store = RedisStore(client)
        store.ping()
        store.close()
        assert client.ping()  # still usable: the store does not own it


# --- failures ----------------------------------------------------------------------------------


def _calls(store: RedisStore, exp: str) -> list[Callable[[], object]]:
    return [
        store.ping,
        lambda: store.get_experiment(exp),
        lambda: store.list_experiments(),
        lambda: store.create_experiment(experiment(new_id())),
        lambda: store.save_experiment(experiment(exp).model_copy(update={"version": 1})),
        lambda: store.delete_experiment(exp),
        lambda: store.record_events([event(exp, "u2")]),
        lambda: store.get_counts(exp, 0),
        lambda: store.get_timeseries(exp, 0),
        lambda: store.get_exposure(exp, 0, "u1"),
        lambda: store.get_assignment(exp, 0, "u1"),
        lambda: store.assign_if_absent(exp, 0, "u1", "control"),
    ]


def test_a_stopped_server_gives_storage_unavailable_quickly(tmp_path: Path) -> None:
    exp = new_id()
    with RedisServer(tmp_path) as own:
        store = RedisStore.from_url(own.url)
        try:
            store.create_experiment(experiment(exp))
            store.record_events([event(exp, "u1")])
            own.stop()
            for call in _calls(store, exp):
                started = time.monotonic()
                with pytest.raises(StorageUnavailable, match="Redis could not"):
                    call()
                assert time.monotonic() - started < 2.0  # refused: a few quick connect retries
        finally:
            store.close()


def test_a_timed_out_batch_is_reported_not_resent(store: RedisStore, admin: redis.Redis) -> None:
    """After a timeout nobody knows if the script ran: the store reports it, never resends."""
    exp = new_id()
    admin.client_pause(3000, all=False)  # writes (scripts) wait, then time out
    try:
        started = time.monotonic()
        with pytest.raises(StorageUnavailable, match="TimeoutError"):
            store.record_events([event(exp, "u1", kind="value", value=1.0)])
        assert time.monotonic() - started < 2.9  # one socket timeout, no second attempt
    finally:
        admin.client_unpause()
    counts = store.get_counts(exp, 0)
    assert counts == {} or counts["control"].value_sum == 1.0


def test_a_server_that_never_answered_gives_storage_unavailable(tmp_path: Path) -> None:
    with RedisServer(tmp_path) as own:
        url = own.url
    store = RedisStore.from_url(url)  # connections are opened lazily
    try:
        with pytest.raises(StorageUnavailable, match="ConnectionError"):
            store.ping()
    finally:
        store.close()


def test_an_unreachable_cluster_gives_storage_unavailable(tmp_path: Path) -> None:
    with RedisServer(tmp_path) as own:
        port = own.port
    with pytest.raises(StorageUnavailable, match="Redis Cluster"):
        RedisStore.from_url(f"redis+cluster://127.0.0.1:{port}")


def test_a_stopped_cluster_node_fails_only_its_experiments(tmp_path: Path) -> None:
    with RedisClusterServers(tmp_path) as own:
        store = RedisStore.from_url(own.url)
        try:
            by_port = experiments_per_node(store, len(own.nodes))
            victim = own.nodes[1]
            victim.stop()
            for port, exp in by_port.items():
                if port == victim.port:
                    with pytest.raises(StorageUnavailable):
                        store.record_events([event(exp, "u1")])
                else:
                    assert store.record_events([event(exp, "u1")])[0].new_exposure
        finally:
            store.close()


# --- Redis Cluster -----------------------------------------------------------------------------


def experiments_per_node(store: RedisStore, nodes: int) -> dict[int, str]:
    """An experiment id whose slot is served by each node (by port)."""
    client = store.client
    assert isinstance(client, redis.RedisCluster)
    found: dict[int, str] = {}
    while len(found) < nodes:
        exp = new_id()
        found.setdefault(client.get_node_from_key(keys.counts(exp, 0)).port, exp)
    return found


def test_a_cluster_batch_spans_experiments_on_every_node(
    cluster: RedisClusterServers, cluster_store: RedisStore
) -> None:
    by_port = experiments_per_node(cluster_store, len(cluster.nodes))
    batch = []
    for exp in by_port.values():
        batch += [
            event(exp, "u1", event_id="e1"),
            event(exp, "u1", "treatment", "conversion"),  # mismatch
            event(exp, "u2", "treatment", "value", value=1.5, phase=1),
            event(exp, "u1", event_id="e1"),  # duplicate
        ]
    results = cluster_store.record_events(batch)
    assert [r.outcome for r in results] == [
        "counted", "variant_mismatch", "counted", "duplicate"
    ] * len(by_port)  # fmt: skip
    for port, exp in by_port.items():
        assert cluster_store.get_counts(exp, 0)["control"].samples == 1
        assert cluster_store.get_counts(exp, 1)["treatment"].value_sum == 1.5
        [node] = [n for n in cluster.nodes if n.port == port]
        with node.client() as direct:  # the data lives on the node that serves the slot
            assert direct.hget(keys.exposures(exp, 1), "u2") == "treatment"


def test_cluster_create_save_delete(cluster_store: RedisStore) -> None:
    exp = new_id()
    cluster_store.create_experiment(experiment(exp))
    cluster_store.record_events([event(exp, "u1")])
    cluster_store.save_experiment(experiment(exp).model_copy(update={"version": 1}))
    assert cluster_store.get_experiment(exp).version == 1
    cluster_store.delete_experiment(exp)
    assert cluster_store.get_counts(exp, 0) == {}
    assert exp not in {e.id for e in cluster_store.list_experiments()}


# --- a large batch -----------------------------------------------------------------------------

BATCH = 10_000


def large_batch(exp: str) -> list[Event]:
    """10,000 events of 2,500 users: exposures, then conversions, then two values each."""
    users = BATCH // 4
    events = []
    for i in range(BATCH):
        user, step = f"user-{i % users}", i // users
        variant = "control" if i % 2 == 0 else "treatment"
        kind = ("exposure", "conversion", "value", "value")[step]
        value = float(i % 17) / 4 if kind == "value" else None
        at = T0 + timedelta(seconds=i)
        events.append(
            event(exp, user, variant, kind, value=value, at=at, event_id=f"e{i}", probability=0.5)
        )
    return events


def _pipelined_hincrby(client: redis.Redis | redis.RedisCluster, fields: int) -> float:
    key = f"bench:{{{new_id()}}}:baseline"
    pipe = client.pipeline(transaction=False)
    for i in range(fields):
        pipe.hincrby(key, f"f{i}", 1)
    started = time.perf_counter()
    pipe.execute()
    elapsed = time.perf_counter() - started
    client.delete(key)
    return elapsed


@pytest.mark.parametrize("backend", ["redis", "redis-cluster"])
def test_a_large_batch_in_one_call(
    backend: str, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    """Measured and printed, not asserted: record_events against a pipelined HINCRBY."""
    store: RedisStore = request.getfixturevalue("store" if backend == "redis" else "cluster_store")
    timings, baselines = [], []
    for _ in range(3):
        exp = new_id()
        events = large_batch(exp)
        started = time.perf_counter()
        results = store.record_events(events)
        timings.append(time.perf_counter() - started)
        baselines.append(_pipelined_hincrby(store.client, BATCH))
        assert all(r.outcome == "counted" for r in results)
        counts = store.get_counts(exp, 0)
        assert sum(c.samples for c in counts.values()) == BATCH // 4
        assert sum(c.conversions for c in counts.values()) == BATCH // 4
    best, baseline = min(timings), min(baselines)
    with capsys.disabled():
        print(
            f"\n{backend}: {BATCH:,} events in one record_events call: {best * 1e3:.0f} ms "
            f"({BATCH / best:,.0f} events/s); pipelined HINCRBY of {BATCH:,} fields: "
            f"{baseline * 1e3:.0f} ms ({BATCH / baseline:,.0f}/s); ratio {best / baseline:.1f}"
        )


def test_the_key_table_lists_every_key() -> None:
    built = [keys.EXPERIMENTS, *keys.experiment_keys("x-id", [3], [5])]
    documented = keys.__doc__ or ""
    for key in built:
        pattern = key.replace("{x-id}", "{<id>}").replace(":p3:", ":p<p>:")
        pattern = pattern.replace(":events:5", ":events:<b>")
        assert f"``{pattern}``" in documented, pattern
    assert f"``{keys.lease('<name>')}``" in documented


# --- batches that span experiments -------------------------------------------------------------


def _break(admin: Any, experiment_id: str) -> None:
    """Make the experiment's script call fail inside Redis: its exposures key is a string."""
    admin.set(keys.exposures(experiment_id, 0), "not a hash")


def test_a_batch_over_experiments_says_per_event_what_was_applied(
    any_store: RedisStore, any_admin: Any
) -> None:
    good, bad = new_id(), new_id()
    _break(any_admin, bad)
    results = any_store.record_events(
        [event(good, "u1"), event(bad, "u1"), event(good, "u2", kind="conversion")]
    )
    assert [r.outcome for r in results] == ["counted", "unavailable", "counted"]
    assert any_store.get_counts(good, 0)["control"].samples == 2
    assert any_store.get_counts(bad, 0) == {}


def test_a_batch_that_applies_nothing_raises_without_naming_the_server(
    any_store: RedisStore, any_admin: Any
) -> None:
    bad = new_id()
    _break(any_admin, bad)
    with pytest.raises(StorageUnavailable) as caught:
        any_store.record_events([event(bad, "u1")])
    assert caught.value.public == "the store could not record 1 events"
    assert "127.0.0.1" not in caught.value.public


def test_a_store_that_is_gone_raises_a_public_message_without_the_address() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = RedisStore.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(StorageUnavailable) as caught:
            store.record_events([event(new_id(), "u1")])
    finally:
        store.close()
    assert str(port) in caught.value.message  # the log keeps the detail
    assert str(port) not in caught.value.public and "127.0.0.1" not in caught.value.public
