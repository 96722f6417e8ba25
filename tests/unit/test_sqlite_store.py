"""What only the SQLite store has to get right: WAL on a file, reopening, several processes
writing at once, locks held by others, and files it cannot use.

The behaviour every backend shares is checked by ``tests/contract``.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from multiprocessing.context import ForkContext
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from multiprocessing.synchronize import Event as StartSignal
from pathlib import Path

import pytest

from abscope.errors import StorageUnavailable
from abscope.models import Event, MetricCounts, VariantCounts
from abscope.storage.sqlite import SCHEMA_VERSION, SQLiteStore
from tests.fixtures.factories import T0, experiment


def event(user: str, variant: str = "control", kind: str = "exposure", **extra: object) -> Event:
    fields = {"experiment_id": "ranking", "user_id": user, "variant": variant, "kind": kind}
    return Event.model_validate({"at": T0, **fields, **extra})


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "abscope.db"


@pytest.fixture
def store(path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(path)
    try:
        yield opened
    finally:
        opened.close()


def raw(path: Path, timeout: float = 5.0) -> closing[sqlite3.Connection]:
    """A plain connection to the store's file, closed on leaving the ``with`` block."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    return closing(conn)


# --- the file ------------------------------------------------------------------------------


def test_the_file_is_in_wal_mode_with_the_schema_version(store: SQLiteStore, path: Path) -> None:
    store.ping()
    with raw(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert {"experiments", "users", "counts", "hourly", "event_ids", "assignments"} <= tables


def test_data_persists_across_reopening(path: Path) -> None:
    first = SQLiteStore(path)
    try:
        first.create_experiment(experiment("ranking"))
        first.record_events(
            [event("u1"), event("u1", kind="value", value=2.5, event_id="e1"), event("u2")]
        )
        first.assign_if_absent("ranking", 0, "u1", "treatment")
    finally:
        first.close()
    again = SQLiteStore(path)  # the schema is created once; reopening changes nothing
    try:
        assert again.get_experiment("ranking") == experiment("ranking")
        assert again.get_counts("ranking", 0) == {
            "control": VariantCounts(
                samples=2,
                value_sum=2.5,
                value_sum_squares=6.25,
                inverse_probability_sum=2.0,
                inverse_probability_square_sum=2.0,
            )
        }
        assert again.get_assignment("ranking", 0, "u1") == "treatment"
        assert again.get_exposure("ranking", 0, "u2") == "control"
        [retry] = again.record_events([event("u1", kind="value", value=2.5, event_id="e1")])
        assert retry.outcome == "duplicate"
    finally:
        again.close()


def test_two_stores_on_one_file_see_each_others_writes(store: SQLiteStore, path: Path) -> None:
    other = SQLiteStore(path)
    try:
        other.create_experiment(experiment("ranking"))
        store.record_events([event("u1")])
        assert store.get_experiment("ranking") == experiment("ranking")
        assert other.get_counts("ranking", 0)["control"].samples == 1
    finally:
        other.close()


def test_a_newer_schema_is_refused(path: Path) -> None:
    SQLiteStore(path).close()
    with raw(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StorageUnavailable, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        SQLiteStore(path)


def test_hours_are_utc_and_naive_times_are_utc(store: SQLiteStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    store.record_events(
        [
            event("u1", at=datetime(2026, 11, 24, 12, 59, tzinfo=plus_two)),  # 10:59 UTC
            event("u2", at=datetime(2026, 11, 24, 10, 0)),  # naive: 10:00 UTC
            event("u3", at=datetime(2026, 11, 24, 11, 0, tzinfo=UTC)),
        ]
    )
    series = store.get_timeseries("ranking", 0)
    assert [(h.hour, h.hour.utcoffset()) for h in series] == [
        (datetime(2026, 11, 24, 10, tzinfo=UTC), timedelta(0)),
        (datetime(2026, 11, 24, 11, tzinfo=UTC), timedelta(0)),
    ]
    assert [h.variants["control"].samples for h in series] == [2, 1]
    # An event that changes nothing (a repeated exposure) leaves no empty hour behind.
    store.record_events([event("u1", at=T0 + timedelta(hours=5))])
    assert len(store.get_timeseries("ranking", 0)) == 2


def test_experiments_are_ordered_by_instant_whatever_their_offset(store: SQLiteStore) -> None:
    ahead = timezone(timedelta(hours=5))
    nine_utc = datetime(2026, 11, 24, 14, 0, tzinfo=ahead)  # written as 14:00 at +05:00
    eight_utc = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    half_past_nine = datetime(2026, 11, 24, 9, 30)  # naive: UTC
    later_but_written_ahead = experiment("b", created_at=nine_utc, updated_at=nine_utc)
    earlier = experiment("a", created_at=eight_utc, updated_at=eight_utc)
    latest = experiment("c", created_at=half_past_nine, updated_at=half_past_nine)
    for exp in (latest, later_but_written_ahead, earlier):
        store.create_experiment(exp)
    assert [e.id for e in store.list_experiments()] == ["a", "b", "c"]


# --- files it cannot use -------------------------------------------------------------------


def test_a_missing_directory_is_unavailable_with_a_clear_message(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "abscope.db"
    with pytest.raises(StorageUnavailable, match="cannot open the database file") as caught:
        SQLiteStore(missing)
    assert str(missing) in caught.value.message
    assert isinstance(caught.value.__cause__, sqlite3.Error)


def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(StorageUnavailable, match="cannot open"):
        SQLiteStore(tmp_path)


def test_a_corrupt_file_is_unavailable_with_a_clear_message(path: Path) -> None:
    path.write_bytes(b"this is not a SQLite database\n" * 200)
    with pytest.raises(StorageUnavailable, match="not a SQLite database") as caught:
        SQLiteStore(path)
    assert str(path) in caught.value.message


@pytest.mark.parametrize("bad", [":memory:", ""])
def test_a_file_path_is_required(bad: str) -> None:
    with pytest.raises(ValueError, match="path"):
        SQLiteStore(bad)


def test_busy_timeout_must_not_be_negative(path: Path) -> None:
    with pytest.raises(ValueError, match="busy_timeout"):
        SQLiteStore(path, busy_timeout=-1)


def test_a_closed_store_is_unavailable(path: Path) -> None:
    store = SQLiteStore(path)
    store.close()
    store.close()  # closing twice is harmless
    with pytest.raises(StorageUnavailable, match="closed"):
        store.ping()
    with pytest.raises(StorageUnavailable, match="closed"):
        store.record_events([event("u1")])


# --- locks and failures --------------------------------------------------------------------


def test_a_write_waits_for_another_writer(store: SQLiteStore, path: Path) -> None:
    with raw(path) as holder:
        holder.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.3, holder.execute, ["COMMIT"])
        release.start()
        started = time.perf_counter()
        try:
            [result] = store.record_events([event("u1")])
        finally:
            release.join()
        assert time.perf_counter() - started >= 0.2
    assert result.new_exposure
    assert store.get_counts("ranking", 0)["control"].samples == 1


def test_a_lock_held_past_the_busy_timeout_is_unavailable(path: Path) -> None:
    store = SQLiteStore(path, busy_timeout=0.1)
    try:
        store.record_events([event("u1")])
        with raw(path) as holder:
            holder.execute("BEGIN IMMEDIATE")
            holder.execute("DELETE FROM counts")  # uncommitted: invisible to the store
            with pytest.raises(StorageUnavailable, match="locked") as caught:
                store.record_events([event("u2")])
            assert "record events" in caught.value.message
            with pytest.raises(StorageUnavailable, match="locked"):
                store.create_experiment(experiment("ranking"))
            # WAL: readers are not blocked by the writer and see the last commit.
            assert store.get_counts("ranking", 0)["control"].samples == 1
            holder.execute("ROLLBACK")
        [result] = store.record_events([event("u2")])  # usable again once the lock is gone
        assert result.new_exposure
        assert store.get_counts("ranking", 0)["control"].samples == 2
    finally:
        store.close()


def test_a_failure_mid_batch_writes_nothing(store: SQLiteStore, path: Path) -> None:
    store.record_events([event("u1", event_id="e1")])
    before = store.get_counts("ranking", 0)
    with raw(path) as conn:
        conn.execute("DROP TABLE hourly")  # the last write of a batch now fails
    batch = [event("u1", kind="conversion", event_id="e2"), event("u2", event_id="e3")]
    with pytest.raises(StorageUnavailable, match="no such table: hourly"):
        store.record_events(batch)
    assert store.get_counts("ranking", 0) == before
    assert store.get_exposure("ranking", 0, "u2") is None
    with raw(path) as conn:
        assert conn.execute("SELECT event_id FROM event_ids").fetchall() == [("e1",)]
        assert conn.execute("SELECT converted FROM users").fetchall() == [(0,)]


def test_a_constraint_failure_is_a_bug_not_unavailability(store: SQLiteStore, path: Path) -> None:
    with raw(path) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON counts BEGIN SELECT RAISE(ABORT, 'bug'); END"
        )
    with pytest.raises(sqlite3.IntegrityError, match="bug"):
        store.record_events([event("u1", event_id="e1")])
    assert store.get_exposure("ranking", 0, "u1") is None
    with raw(path) as conn:
        conn.execute("DROP TRIGGER refuse")
    [result] = store.record_events([event("u1", event_id="e1")])  # no transaction left open
    assert result.outcome == "counted"


# --- concurrency ---------------------------------------------------------------------------


def test_threads_share_one_store(store: SQLiteStore) -> None:
    def log(worker: int) -> None:
        for i in range(50):
            users = [f"w{worker}-u{i}-{j}" for j in range(10)]
            store.record_events([event(u, kind="conversion") for u in users])

    threads = [threading.Thread(target=log, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = store.get_counts("ranking", 0)["control"]
    assert (counts.samples, counts.conversions) == (4000, 4000)


PROCESSES = 4
EVENTS_PER_PROCESS = 2000
USERS = 1500


def _logical_event(n: int) -> Event:
    """Event number ``n`` of the multi-process test: the same whichever process sends it."""
    user = n % USERS
    kind = ("exposure", "conversion", "value")[n // USERS % 3]
    return event(
        f"u{user}",
        ("control", "treatment")[user % 2],
        kind,
        value=(n % 7 - 3) * 0.25 if kind == "value" else None,  # exact in binary
        probability=(1.0, 0.5, 0.25)[user % 3],  # per user: first exposure is order-free
        at=T0 + timedelta(minutes=n % 240),
        event_id=f"e{n}",
    )


def _hammer(path: Path, worker: int, start: StartSignal, out: Queue[object]) -> None:
    """One worker process: send its share of events in small batches, each batch twice,
    plus a retry of part of the next worker's share."""
    own = range(worker * EVENTS_PER_PROCESS, (worker + 1) * EVENTS_PER_PROCESS)
    neighbour = (worker + 1) % PROCESSES * EVENTS_PER_PROCESS
    numbers = [*own, *range(neighbour, neighbour + EVENTS_PER_PROCESS // 4)]
    start.wait()
    try:
        store = SQLiteStore(path, busy_timeout=60)  # every process creates the schema at once
        counted = 0
        try:
            for first in range(0, len(numbers), 20):
                batch = [_logical_event(n) for n in numbers[first : first + 20]]
                for _attempt in range(2):
                    results = store.record_events(batch)
                    counted += sum(r.outcome == "counted" for r in results)
        finally:
            store.close()
    except Exception as exc:  # reported to the parent, which would otherwise wait
        out.put(f"worker {worker}: {exc!r}")
        raise
    out.put(counted)


def _expected_counts() -> dict[str, VariantCounts]:
    """Order-free totals of the logical events (each counted once)."""
    events = [_logical_event(n) for n in range(PROCESSES * EVENTS_PER_PROCESS)]
    exposed: dict[str, Event] = {}
    converted: set[str] = set()
    totals: dict[str, float] = {}
    for e in events:
        exposed.setdefault(e.user_id, e)
        if e.kind == "conversion":
            converted.add(e.user_id)
        if e.value is not None:
            totals[e.user_id] = totals.get(e.user_id, 0.0) + e.value
    expected: dict[str, VariantCounts] = {}
    for variant in ("control", "treatment"):
        users = [u for u, e in exposed.items() if e.variant == variant]
        expected[variant] = VariantCounts(
            samples=len(users),
            conversions=len(converted.intersection(users)),
            value_sum=sum(totals.get(u, 0.0) for u in users),
            value_sum_squares=sum(totals.get(u, 0.0) ** 2 for u in users),
            inverse_probability_sum=sum(1 / exposed[u].probability for u in users),
            inverse_probability_square_sum=sum(1 / exposed[u].probability ** 2 for u in users),
        )
    return expected


def _fork_context() -> ForkContext:
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.fail("these multi-process tests need the fork start method (Linux): none here")
    return multiprocessing.get_context("fork")


def test_worker_processes_writing_at_once_count_each_event_once(path: Path) -> None:
    context = _fork_context()
    start = context.Event()
    out = context.Queue()
    workers = [
        context.Process(target=_hammer, args=(path, w, start, out)) for w in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    start.set()
    counted = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    out.close()
    out.join_thread()
    assert all(isinstance(c, int) for c in counted), counted
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    # Every logical event was sent at least twice and counted exactly once.
    assert sum(counted) == PROCESSES * EVENTS_PER_PROCESS
    store = SQLiteStore(path)
    try:
        counts = store.get_counts("ranking", 0)
        assert counts == _expected_counts()  # exact: every value is a multiple of 1/4
        hourly = store.get_timeseries("ranking", 0)
        for variant, total in counts.items():
            assert sum(h.variants[variant].samples for h in hourly if variant in h.variants) == (
                total.samples
            )
            assert sum(
                h.variants[variant].conversions for h in hourly if variant in h.variants
            ) == (total.conversions)
    finally:
        store.close()


def _assign(path: Path, worker: int, start: StartSignal, out: Queue[object]) -> None:
    start.wait()
    try:
        store = SQLiteStore(path, busy_timeout=60)
        try:
            answers = [
                store.assign_if_absent("ranking", 0, f"u{i}", f"v{worker}") for i in range(300)
            ]
        finally:
            store.close()
    except Exception as exc:
        out.put(f"worker {worker}: {exc!r}")
        raise
    out.put(answers)


def _open_and_close(path: Path, together: Barrier, out: Queue[object]) -> None:
    try:
        for n in range(50):  # a new file each time: the race is on the first switch to WAL
            together.wait(timeout=30)
            SQLiteStore(path.with_name(f"new-{n}.db"), busy_timeout=60).close()
    except Exception as exc:
        together.abort()  # the others stop waiting for this one
        out.put(repr(exc))
        raise
    out.put("ok")


def test_processes_opening_a_new_file_at_once_all_succeed(path: Path) -> None:
    """Switching a new file to WAL answers SQLITE_BUSY without waiting; the store retries."""
    context = _fork_context()
    together = context.Barrier(6)
    out = context.Queue()
    workers = [
        context.Process(target=_open_and_close, args=(path, together, out)) for _ in range(6)
    ]
    for worker in workers:
        worker.start()
    outcomes = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    out.close()
    out.join_thread()
    assert outcomes == ["ok"] * len(workers)


def test_racing_processes_agree_on_the_first_assignment(path: Path) -> None:
    context = _fork_context()
    start = context.Event()
    out = context.Queue()
    workers = [context.Process(target=_assign, args=(path, w, start, out)) for w in range(4)]
    for worker in workers:
        worker.start()
    start.set()
    answers = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    out.close()
    out.join_thread()
    assert all(isinstance(a, list) for a in answers), answers
    assert [w.exitcode for w in workers] == [0] * 4
    assert all(answer == answers[0] for answer in answers)
    store = SQLiteStore(path)
    try:
        assert [store.get_assignment("ranking", 0, f"u{i}") for i in range(300)] == answers[0]
    finally:
        store.close()


# The tables of schema version 1 whose shape version 2 changed, as version 1 created them.
_VERSION_1_TABLES = (
    """CREATE TABLE counts (experiment_id TEXT NOT NULL, phase INTEGER NOT NULL,
        variant TEXT NOT NULL, samples INTEGER NOT NULL, conversions INTEGER NOT NULL,
        value_sum REAL NOT NULL, value_sum_squares REAL NOT NULL,
        inverse_probability_sum REAL NOT NULL,
        PRIMARY KEY (experiment_id, phase, variant)) WITHOUT ROWID""",
    """CREATE TABLE hourly (experiment_id TEXT NOT NULL, phase INTEGER NOT NULL,
        hour INTEGER NOT NULL, variant TEXT NOT NULL, samples INTEGER NOT NULL,
        conversions INTEGER NOT NULL, value_sum REAL NOT NULL,
        value_sum_squares REAL NOT NULL, inverse_probability_sum REAL NOT NULL,
        PRIMARY KEY (experiment_id, phase, hour, variant)) WITHOUT ROWID""",
    """CREATE TABLE event_ids (experiment_id TEXT NOT NULL, event_id TEXT NOT NULL,
        PRIMARY KEY (experiment_id, event_id)) WITHOUT ROWID""",
)


def test_a_version_1_file_is_migrated_and_keeps_its_counts_and_ids(path: Path) -> None:
    SQLiteStore(path).close()
    with raw(path) as conn:  # turn the new file back into a version 1 file with data
        for table in ("counts", "hourly", "event_ids"):
            conn.execute(f"DROP TABLE {table}")
        for statement in _VERSION_1_TABLES:
            conn.execute(statement)
        conn.execute("INSERT INTO counts VALUES ('ranking', 0, 'control', 3, 1, 0, 0, 6.0)")
        conn.execute("INSERT INTO event_ids VALUES ('ranking', 'old-1')")
        conn.execute("PRAGMA user_version = 1")
    migrated = SQLiteStore(path)
    try:
        counts = migrated.get_counts("ranking", 0)["control"]
        assert (counts.samples, counts.inverse_probability_sum) == (3, 6.0)
        assert counts.inverse_probability_square_sum == 0.0
        [retry] = migrated.record_events([event("u1", kind="conversion", event_id="old-1")])
        assert retry.outcome == "duplicate"  # ids from before the migration are remembered
        assert migrated.get_metric_counts("ranking", 0) == {}  # version 3's tables, empty
    finally:
        migrated.close()
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


_VERSION_3_TABLES = ("metric_users", "metric_counts", "metric_hourly", "leases")


def _tables(path: Path) -> set[str]:
    with raw(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def test_a_version_2_file_gains_the_metric_and_lease_tables_and_keeps_its_data(
    path: Path,
) -> None:
    exp = experiment("ranking")
    with closing(SQLiteStore(path)) as old:
        old.create_experiment(exp)
        old.record_events(
            [
                event("u1", probability=0.5, event_id="old-1"),
                event("u1", kind="conversion", at=T0 + timedelta(hours=1)),
                event("u2", "treatment", kind="value", value=2.5),
            ]
        )
        old.assign_if_absent("ranking", 0, "u3", "treatment")
        before = (
            old.get_experiment("ranking"),
            old.get_counts("ranking", 0),
            old.get_timeseries("ranking", 0),
        )
    with raw(path) as conn:  # version 2 is version 3 without its four tables
        for table in _VERSION_3_TABLES:
            conn.execute(f"DROP TABLE {table}")
        conn.execute("PRAGMA user_version = 2")
    assert _tables(path).isdisjoint(_VERSION_3_TABLES)
    with closing(SQLiteStore(path)) as migrated:
        assert _tables(path) >= set(_VERSION_3_TABLES)
        after = (
            migrated.get_experiment("ranking"),
            migrated.get_counts("ranking", 0),
            migrated.get_timeseries("ranking", 0),
        )
        assert after == before
        assert migrated.get_exposure("ranking", 0, "u1") == "control"
        assert migrated.get_assignment("ranking", 0, "u3") == "treatment"
        assert migrated.get_metric_counts("ranking", 0) == {}
        results = migrated.record_events(
            [
                event("u1", event_id="old-1"),  # remembered across the migration
                event("u1", kind="value", value=4.0, metric="latency", denominator=2.0),
                event("u2", "control", kind="conversion", metric="errors"),  # mismatch
            ]
        )
        assert [r.outcome for r in results] == ["duplicate", "counted", "variant_mismatch"]
        assert migrated.get_metric_counts("ranking", 0) == {
            "latency": {
                "control": MetricCounts(
                    sum=4.0,
                    sum_squares=16.0,
                    denominator_sum=2.0,
                    denominator_sum_squares=4.0,
                    cross_sum=8.0,
                )
            }
        }
        assert migrated.get_counts("ranking", 0) == before[1]  # the user was exposed already
        assert migrated.acquire_lease("monitor", "worker-a", timedelta(seconds=5))
        assert not migrated.acquire_lease("monitor", "worker-b", timedelta(seconds=5))
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_expired_event_ids_are_deleted_from_the_file(path: Path) -> None:
    now = [T0]
    store = SQLiteStore(path, event_id_window=timedelta(hours=7), clock=lambda: now[0])
    try:
        store.record_events([event(f"u{i}", event_id=f"e{i}") for i in range(50)])
        now[0] = T0 + timedelta(hours=8)
        store.record_events([event("late", event_id="late-1")])
    finally:
        store.close()
    with raw(path) as conn:
        assert conn.execute("SELECT event_id FROM event_ids").fetchall() == [("late-1",)]


def test_a_version_3_file_gains_the_covariates_and_keeps_its_users(path: Path) -> None:
    with closing(SQLiteStore(path)) as old:
        old.record_events([event("u1", kind="value", value=3.0)])
    with raw(path) as conn:  # turn it back into a version 3 file: no covariate column
        conn.execute("DROP TABLE covariate_counts")
        conn.execute("ALTER TABLE users DROP COLUMN covariate")
        conn.execute("PRAGMA user_version = 3")
    with closing(SQLiteStore(path)) as migrated:
        assert migrated.get_counts("ranking", 0)["control"].value_sum == 3.0
        assert migrated.record_covariates("ranking", 0, [("u1", 2.0)]) == ["set"]
        counts = migrated.get_covariate_counts("ranking", 0)["control"]
        assert (counts.samples, counts.value_sum, counts.value_cross_sum) == (1, 3.0, 6.0)
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_a_version_4_file_gains_the_weighted_counts_from_its_users(path: Path) -> None:
    events = [
        event("u1", probability=0.25),
        event("u1", kind="value", value=3.0, probability=0.5),
        event("u1", kind="value", value=-1.0),
        event("u1", kind="conversion"),
        event("u2", "treatment", kind="conversion", probability=0.8),
        event("u3", probability=0.5),
    ]
    with closing(SQLiteStore(path)) as old:
        old.record_events(events)
        recorded = old.get_weighted_counts("ranking", 0)
    with raw(path) as conn:  # turn it back into a version 4 file: no weighted counts
        conn.execute("DROP TABLE weighted_counts")
        conn.execute("PRAGMA user_version = 4")
    with closing(SQLiteStore(path)) as migrated:  # filled from the users' table
        backfilled = migrated.get_weighted_counts("ranking", 0)
        assert backfilled.keys() == recorded.keys() == {"control", "treatment"}
        for variant, want in recorded.items():
            have = backfilled[variant].model_dump()
            for name, value in want.model_dump().items():
                assert have[name] == pytest.approx(value, rel=1e-12), (variant, name)
        # later events add to the backfilled sums, weighted by the stored probability
        migrated.record_events([event("u3", kind="value", value=2.0, probability=1.0)])
        after = migrated.get_weighted_counts("ranking", 0)["control"]
        assert after.value_inverse_probability_sum == pytest.approx(
            backfilled["control"].value_inverse_probability_sum + 4.0
        )
    with closing(SQLiteStore(path)) as reopened:  # no second backfill at the next open
        assert reopened.get_weighted_counts("ranking", 0)["control"] == after
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_a_version_5_file_gains_the_quantile_counts_and_keeps_its_data(path: Path) -> None:
    with closing(SQLiteStore(path)) as old:
        old.record_events([event("u1", kind="value", value=3.0, metric="spend")])
    with raw(path) as conn:  # turn it back into a version 5 file: no quantile counts
        conn.execute("DROP TABLE quantile_counts")
        conn.execute("PRAGMA user_version = 5")
    with closing(SQLiteStore(path)) as migrated:
        assert migrated.get_metric_counts("ranking", 0)["spend"]["control"].sum == 3.0
        assert migrated.get_quantile_counters("ranking", 0) == {}
        migrated.record_events(
            [event("u1", kind="value", value=8.0, metric="latency", quantile_increments={"b:3": 1})]
        )
        assert migrated.get_quantile_counters("ranking", 0) == {
            "latency": {"control": {"b:3": 1, "users": 1}}
        }
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (7,)


def test_a_version_6_file_gains_the_metric_covariates_and_keeps_its_data(path: Path) -> None:
    with closing(SQLiteStore(path)) as old:
        old.record_events(
            [
                event("u1", kind="value", value=3.0, metric="spend"),
                event("u1", kind="value", value=2.0, metric="spend"),
                event("u2", "treatment", kind="conversion", metric="spend"),
            ]
        )
    with raw(path) as conn:  # turn it back into a version 6 file: no metric covariates
        conn.execute("DROP TABLE metric_covariate_counts")
        conn.execute("ALTER TABLE metric_users DROP COLUMN covariate")
        conn.execute("PRAGMA user_version = 6")
    with closing(SQLiteStore(path)) as migrated:
        assert migrated.get_metric_counts("ranking", 0)["spend"]["control"].sum == 5.0
        assert migrated.get_metric_covariate_counts("ranking", 0) == {}
        # a backfill after the outcomes counts the user's stored metric total (c·y)
        assert migrated.record_covariates(
            "ranking", 0, [("u1", 4.0, "spend"), ("u2", -1.0, "spend")]
        ) == ["set", "set"]
        migrated.record_events([event("u1", kind="value", value=1.0, metric="spend")])
        sums = migrated.get_metric_covariate_counts("ranking", 0)["spend"]
        assert (sums["control"].value_sum, sums["control"].value_cross_sum) == (6.0, 24.0)
        assert (sums["treatment"].conversions, sums["treatment"].conversion_cross_sum) == (1, -1.0)
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (7,)


def test_a_batch_whose_quantile_write_fails_applies_nothing(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quantile counters are written in the batch's transaction: when their upsert
    fails, neither they nor the batch's exposures and event ids are kept."""
    import abscope.storage.sqlite_schema as sqlite_schema

    batch = [
        event("u1", event_id="e1"),
        event("u2", kind="value", value=8.0, metric="latency", event_id="e2",
              quantile_increments={"b:3": 1}),
    ]  # fmt: skip
    with closing(SQLiteStore(path)) as store:
        monkeypatch.setattr(
            sqlite_schema, "UPSERT_QUANTILE_COUNT", "INSERT INTO nowhere VALUES (?, ?, ?, ?, ?, ?)"
        )
        with pytest.raises(StorageUnavailable):
            store.record_events(batch)
        assert store.get_counts("ranking", 0) == {}
        assert store.get_metric_counts("ranking", 0) == {}
        assert store.get_quantile_counters("ranking", 0) == {}
        monkeypatch.undo()
        assert [r.outcome for r in store.record_events(batch)] == ["counted", "counted"]
        assert store.get_quantile_counters("ranking", 0) == {
            "latency": {"control": {"b:3": 1, "users": 1}}
        }
