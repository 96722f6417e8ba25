"""The embedded default store: one SQLite file in WAL mode, shared by every worker process.

Each :class:`SQLiteStore` holds one connection (usable from any thread, one call at a time)
and writes inside ``BEGIN IMMEDIATE`` transactions, so several worker *processes* on the
same file serialise their writes through SQLite's write lock and wait for one another up
to ``busy_timeout`` seconds. Readers never block writers, nor writers readers (WAL).

Schema (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`)
---------------------------------------------------------
==============  =================================================  ==========================
table           columns                                            primary key
==============  =================================================  ==========================
experiments     id, created_at (µs since the epoch, UTC), status,  id
                version, body (``Experiment.model_dump_json()``)
users           experiment_id, phase, user_id, variant (first      experiment_id, phase,
                exposure), probability, converted (0/1), total     user_id
                (running total of the continuous metric),
                covariate (CUPED; NULL: none)
counts          experiment_id, phase, variant, samples,            experiment_id, phase,
                conversions, value_sum, value_sum_squares,         variant
                inverse_probability_sum,
                inverse_probability_square_sum
hourly          experiment_id, phase, hour (epoch seconds of the   experiment_id, phase,
                UTC hour's start), variant, the counters of        hour, variant
                ``counts`` (increments made in that hour)
event_ids       experiment_id, event_id (ids of counted events),   experiment_id, event_id
                seen_at (epoch seconds when applied; indexed)
assignments     experiment_id, phase, user_id, variant (sticky)    experiment_id, phase,
                                                                   user_id
metric_users    experiment_id, phase, metric, user_id, converted,  experiment_id, phase,
                total, denominator_total (a named metric's per-    metric, user_id
                user state), covariate (the metric's CUPED
                covariate; NULL: none)
metric_counts   experiment_id, phase, metric, variant,             experiment_id, phase,
                conversions, sum, sum_squares, denominator_sum,    metric, variant
                denominator_sum_squares, cross_sum
metric_hourly   experiment_id, phase, hour, metric, variant, the   experiment_id, phase,
                counters of ``metric_counts``                      hour, metric, variant
covariate_      experiment_id, phase, variant, samples, sum,       experiment_id, phase,
counts          sum_squares, conversions, conversion_cross_sum,    variant
                value_sum, value_cross_sum (``CovariateCounts``)
metric_        experiment_id, phase, metric, variant, the         experiment_id, phase,
covariate_      counters of ``covariate_counts`` for a named       metric, variant
counts          metric's outcome
weighted_       experiment_id, phase, variant, samples and the     experiment_id, phase,
counts          probability-weighted sums of ``WeightedCounts``    variant
quantile_       experiment_id, phase, metric, variant, counter     experiment_id, phase,
counts          (a quantile metric's counter name: ``users``,      metric, variant, counter
                ``b:<i>``, ``r<b>:<j>``, see
                :mod:`abscope.stats.quantiles`), count
leases          name, holder, expires_at (µs since the epoch)      name
==============  =================================================  ==========================

Every table but ``experiments`` is ``WITHOUT ROWID``, clustered on its primary key. Event
ids older than the store's ``event_id_window`` are ignored when a batch is checked for
duplicates and deleted (by the ``seen_at`` index) at most once every ``window / 7``, so the
table holds about one window of ids. Version 1 files (no ``seen_at`` and no
``inverse_probability_square_sum``) are migrated when opened: their ids count as seen at
the migration, and their ``Σ 1/p²`` starts at 0. Version 2 files (and version 1 files,
after that step) gain the metric and lease tables, empty; version 3 files gain the users'
``covariate`` column (NULL) and ``covariate_counts``, empty; version 4 files (and older
ones, after those steps) gain ``weighted_counts``, filled from the ``users`` table (each
user's probability, conversion and total are there, so the sums are exact at once);
version 5 files (and older ones, after those steps) gain ``quantile_counts``, empty;
version 6 files gain the ``covariate`` column of ``metric_users`` (NULL) and
``metric_covariate_counts``, empty. Rows
of an experiment that was never created are accepted (the service checks existence);
deleting an experiment removes its rows from every table but ``leases``, which belong to
no experiment.

Numerical precision: ``value_sum``, ``value_sum_squares``, ``inverse_probability_sum``, the
per-user ``total`` and ``denominator_total`` and the sums of ``metric_counts`` are float64
(``REAL``) accumulators. Within one batch the increments
of a counter row are summed in float64 first and then added to the stored value, so results
can differ from a one-event-at-a-time sum in the last bits.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel

from abscope.errors import Conflict, NotFound, StorageUnavailable
from abscope.models import (
    CovariateCounts,
    Event,
    Experiment,
    MetricCounts,
    Status,
    VariantCounts,
    WeightedCounts,
)
from abscope.storage.base import (
    DEFAULT_EVENT_ID_WINDOW,
    Clock,
    CovariateItem,
    CovariateOutcome,
    EventResult,
    HourCounts,
    MetricHourCounts,
    Store,
    covariate_item,
    utc_now,
)

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

SCHEMA_VERSION: Final = 7
"""The schema this module writes; kept in ``PRAGMA user_version`` for future migrations."""

_Counts = TypeVar("_Counts", VariantCounts, MetricCounts, CovariateCounts, WeightedCounts)


def _columns(model: type[BaseModel]) -> str:
    """A counts table's counter columns: the model's fields, in their order."""
    return ", ".join(model.model_fields)


def _adding(model: type[BaseModel]) -> str:
    """The upsert's ``SET`` list that adds each counter of ``model`` to the stored one."""
    return ", ".join(f"{name} = {name} + excluded.{name}" for name in model.model_fields)


_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS experiments (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        status TEXT NOT NULL,
        version INTEGER NOT NULL,
        body TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS experiments_by_creation ON experiments (created_at, id)",
    """CREATE INDEX IF NOT EXISTS experiments_by_status
        ON experiments (status, created_at, id)""",
    """CREATE TABLE IF NOT EXISTS users (
        experiment_id TEXT NOT NULL,
        phase INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        variant TEXT NOT NULL,
        probability REAL NOT NULL,
        converted INTEGER NOT NULL,
        total REAL NOT NULL,
        covariate REAL,
        PRIMARY KEY (experiment_id, phase, user_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS counts (
        experiment_id TEXT NOT NULL,
        phase INTEGER NOT NULL,
        variant TEXT NOT NULL,
        samples INTEGER NOT NULL,
        conversions INTEGER NOT NULL,
        value_sum REAL NOT NULL,
        value_sum_squares REAL NOT NULL,
        inverse_probability_sum REAL NOT NULL,
        inverse_probability_square_sum REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (experiment_id, phase, variant)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS hourly (
        experiment_id TEXT NOT NULL,
        phase INTEGER NOT NULL,
        hour INTEGER NOT NULL,
        variant TEXT NOT NULL,
        samples INTEGER NOT NULL,
        conversions INTEGER NOT NULL,
        value_sum REAL NOT NULL,
        value_sum_squares REAL NOT NULL,
        inverse_probability_sum REAL NOT NULL,
        inverse_probability_square_sum REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (experiment_id, phase, hour, variant)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS event_ids (
        experiment_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        seen_at INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (experiment_id, event_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS event_ids_by_age ON event_ids (seen_at)",
    """CREATE TABLE IF NOT EXISTS assignments (
        experiment_id TEXT NOT NULL,
        phase INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        variant TEXT NOT NULL,
        PRIMARY KEY (experiment_id, phase, user_id)
    ) WITHOUT ROWID""",
)
_METRIC_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS metric_users (
        experiment_id TEXT NOT NULL,
        phase INTEGER NOT NULL,
        metric TEXT NOT NULL,
        user_id TEXT NOT NULL,
        converted INTEGER NOT NULL,
        total REAL NOT NULL,
        denominator_total REAL NOT NULL,
        PRIMARY KEY (experiment_id, phase, metric, user_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS metric_counts (
        experiment_id TEXT NOT NULL,
        phase INTEGER NOT NULL,
        metric TEXT NOT NULL,
        variant TEXT NOT NULL,
        conversions INTEGER NOT NULL,
        sum REAL NOT NULL,
        sum_squares REAL NOT NULL,
        denominator_sum REAL NOT NULL,
        denominator_sum_squares REAL NOT NULL,
        cross_sum REAL NOT NULL,
        PRIMARY KEY (experiment_id, phase, metric, variant)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS metric_hourly (
        experiment_id TEXT NOT NULL,
        phase INTEGER NOT NULL,
        hour INTEGER NOT NULL,
        metric TEXT NOT NULL,
        variant TEXT NOT NULL,
        conversions INTEGER NOT NULL,
        sum REAL NOT NULL,
        sum_squares REAL NOT NULL,
        denominator_sum REAL NOT NULL,
        denominator_sum_squares REAL NOT NULL,
        cross_sum REAL NOT NULL,
        PRIMARY KEY (experiment_id, phase, hour, metric, variant)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
)
_COVARIATE_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS covariate_counts (
        experiment_id TEXT NOT NULL,
        phase INTEGER NOT NULL,
        variant TEXT NOT NULL,
        samples INTEGER NOT NULL,
        sum REAL NOT NULL,
        sum_squares REAL NOT NULL,
        conversions INTEGER NOT NULL,
        conversion_cross_sum REAL NOT NULL,
        value_sum REAL NOT NULL,
        value_cross_sum REAL NOT NULL,
        PRIMARY KEY (experiment_id, phase, variant)
    ) WITHOUT ROWID""",
)
_WEIGHTED_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS weighted_counts (
        experiment_id TEXT NOT NULL,
        phase INTEGER NOT NULL,
        variant TEXT NOT NULL,
        samples INTEGER NOT NULL,
        inverse_sqrt_probability_sum REAL NOT NULL,
        conversion_inverse_probability_sum REAL NOT NULL,
        conversion_inverse_probability_square_sum REAL NOT NULL,
        conversion_inverse_sqrt_probability_sum REAL NOT NULL,
        value_inverse_probability_sum REAL NOT NULL,
        value_inverse_probability_square_sum REAL NOT NULL,
        value_inverse_sqrt_probability_sum REAL NOT NULL,
        square_inverse_probability_sum REAL NOT NULL,
        square_inverse_probability_square_sum REAL NOT NULL,
        PRIMARY KEY (experiment_id, phase, variant)
    ) WITHOUT ROWID""",
)
_WEIGHTED_COUNTERS: Final = _columns(WeightedCounts)
_ADD_WEIGHTED_COUNTERS: Final = _adding(WeightedCounts)
_UPSERT_WEIGHTED_COUNTS: Final = f"""
    INSERT INTO weighted_counts (experiment_id, phase, variant, {_WEIGHTED_COUNTERS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, variant) DO UPDATE SET {_ADD_WEIGHTED_COUNTERS}"""
_QUANTILE_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS quantile_counts (
        experiment_id TEXT NOT NULL,
        phase INTEGER NOT NULL,
        metric TEXT NOT NULL,
        variant TEXT NOT NULL,
        counter TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (experiment_id, phase, metric, variant, counter)
    ) WITHOUT ROWID""",
)
_UPSERT_QUANTILE_COUNT: Final = """
    INSERT INTO quantile_counts (experiment_id, phase, metric, variant, counter, count)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, metric, variant, counter) DO UPDATE SET
        count = count + excluded.count"""
# From versions 1 to 3: the users' covariate (NULL: none).
_MIGRATE_TO_4: Final = ("ALTER TABLE users ADD COLUMN covariate REAL",)
_COVARIATE_COUNTERS: Final = _columns(CovariateCounts)
_ADD_COVARIATE_COUNTERS: Final = _adding(CovariateCounts)
_UPSERT_COVARIATE_COUNTS: Final = f"""
    INSERT INTO covariate_counts (experiment_id, phase, variant, {_COVARIATE_COUNTERS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, variant) DO UPDATE SET {_ADD_COVARIATE_COUNTERS}"""
_METRIC_COVARIATE_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS metric_covariate_counts (
        experiment_id TEXT NOT NULL,
        phase INTEGER NOT NULL,
        metric TEXT NOT NULL,
        variant TEXT NOT NULL,
        samples INTEGER NOT NULL,
        sum REAL NOT NULL,
        sum_squares REAL NOT NULL,
        conversions INTEGER NOT NULL,
        conversion_cross_sum REAL NOT NULL,
        value_sum REAL NOT NULL,
        value_cross_sum REAL NOT NULL,
        PRIMARY KEY (experiment_id, phase, metric, variant)
    ) WITHOUT ROWID""",
)
# From versions 1 to 6: the named metrics' per-user covariate (NULL: none).
_MIGRATE_TO_7: Final = ("ALTER TABLE metric_users ADD COLUMN covariate REAL",)
_UPSERT_METRIC_COVARIATE_COUNTS: Final = f"""
    INSERT INTO metric_covariate_counts
        (experiment_id, phase, metric, variant, {_COVARIATE_COUNTERS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, metric, variant) DO UPDATE SET
    {_ADD_COVARIATE_COUNTERS}"""
_DATA_TABLES: Final = (
    "users",
    "counts",
    "hourly",
    "event_ids",
    "assignments",
    "metric_users",
    "metric_counts",
    "metric_hourly",
    "covariate_counts",
    "weighted_counts",
    "quantile_counts",
    "metric_covariate_counts",
)
# From version 1: the Σ 1/p² counters and the age of event ids.
_MIGRATE_1_TO_2: Final = (
    "ALTER TABLE counts ADD COLUMN inverse_probability_square_sum REAL NOT NULL DEFAULT 0",
    "ALTER TABLE hourly ADD COLUMN inverse_probability_square_sum REAL NOT NULL DEFAULT 0",
    "ALTER TABLE event_ids ADD COLUMN seen_at INTEGER NOT NULL DEFAULT 0",
    "UPDATE event_ids SET seen_at = :now",
    "CREATE INDEX IF NOT EXISTS event_ids_by_age ON event_ids (seen_at)",
)

_METRIC_COUNTERS: Final = _columns(MetricCounts)
_ADD_METRIC_COUNTERS: Final = _adding(MetricCounts)
_UPSERT_METRIC_COUNTS: Final = f"""
    INSERT INTO metric_counts (experiment_id, phase, metric, variant, {_METRIC_COUNTERS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, metric, variant) DO UPDATE SET {_ADD_METRIC_COUNTERS}"""
_UPSERT_METRIC_HOURLY: Final = f"""
    INSERT INTO metric_hourly (experiment_id, phase, hour, metric, variant, {_METRIC_COUNTERS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, hour, metric, variant) DO UPDATE SET
    {_ADD_METRIC_COUNTERS}"""
_UPSERT_METRIC_USER: Final = """
    INSERT INTO metric_users
        (experiment_id, phase, metric, user_id, converted, total, denominator_total, covariate)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, metric, user_id) DO UPDATE SET
        converted = excluded.converted, total = excluded.total,
        denominator_total = excluded.denominator_total, covariate = excluded.covariate"""

_COUNTERS: Final = _columns(VariantCounts)
_ADD_COUNTERS: Final = _adding(VariantCounts)
_UPSERT_COUNTS: Final = f"""
    INSERT INTO counts (experiment_id, phase, variant, {_COUNTERS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, variant) DO UPDATE SET {_ADD_COUNTERS}"""
_UPSERT_HOURLY: Final = f"""
    INSERT INTO hourly (experiment_id, phase, hour, variant, {_COUNTERS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, hour, variant) DO UPDATE SET {_ADD_COUNTERS}"""
_UPSERT_USER: Final = """
    INSERT INTO users (experiment_id, phase, user_id, variant, probability, converted, total)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, user_id) DO UPDATE SET
        converted = excluded.converted, total = excluded.total"""
# A covariate is set once, so few rows need it: apart from the upsert the primary path makes.
_SET_COVARIATE: Final = (
    "UPDATE users SET covariate = ? WHERE experiment_id = ? AND phase = ? AND user_id = ?"
)

_INSERT_EVENT_ID: Final = """
    INSERT INTO event_ids (experiment_id, event_id, seen_at) VALUES (?, ?, ?)
    ON CONFLICT (experiment_id, event_id) DO UPDATE SET seen_at = excluded.seen_at"""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR: Final = timedelta(hours=1)
_MICROSECOND: Final = timedelta(microseconds=1)
_WAL_RETRY_PAUSE: Final = 0.005  # seconds between attempts to switch a new file to WAL
_MAX_IN_LIST: Final = 256  # ids per prefetch query; shorter lists are padded to a power of two

_DUPLICATE: Final = EventResult("duplicate")
_MISMATCH: Final = EventResult("variant_mismatch")
_COVARIATE_MISMATCH: Final = EventResult("covariate_mismatch")
_COUNTED: Final = {
    (exposure, conversion): EventResult("counted", exposure, conversion)
    for exposure in (False, True)
    for conversion in (False, True)
}

# Codes that mean "the database cannot be used right now", with a hint for the operator.
_HINTS: Final = {
    "SQLITE_BUSY": "the database is locked: another connection held the write lock for"
    " longer than the busy timeout ({timeout:g} s)",
    "SQLITE_LOCKED": "the database is locked by another connection",
    "SQLITE_CANTOPEN": "cannot open the database file (does its directory exist, and is it "
    "writable?)",
    "SQLITE_NOTADB": "the file is not a SQLite database (wrong path or corrupt file)",
    "SQLITE_CORRUPT": "the database file is corrupt",
    "SQLITE_READONLY": "the database is read-only (check the permissions of the file and of "
    "its directory)",
    "SQLITE_FULL": "the disk is full",
    "SQLITE_IOERR": "disk I/O error",
    "SQLITE_PERM": "permission denied",
    "SQLITE_PROTOCOL": "the WAL locking protocol failed (is the file on a network file system?)",
}


class SQLiteStore(Store):
    """A :class:`~abscope.storage.base.Store` in one SQLite file (WAL mode).

    Parameters
    ----------
    path
        The database file; it is created, with its schema, if missing. Its directory must
        exist. ``":memory:"`` is not supported: workers share the data through the file.
    busy_timeout
        Seconds a write waits for another process's write lock before the call raises
        :class:`~abscope.errors.StorageUnavailable`.
    event_id_window
        How long an applied event id is remembered (7 days by default).
    clock
        The current time (UTC), for the age of event ids; injected by tests.

    Notes
    -----
    One connection per object, guarded by a lock: safe to share between threads, and each
    worker process opens its own store (never carry one across ``fork``). Every write is one
    ``BEGIN IMMEDIATE`` transaction, so a failure leaves nothing half-written.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        event_id_window: timedelta = DEFAULT_EVENT_ID_WINDOW,
        clock: Clock = utc_now,
    ) -> None:
        if os.fspath(path) in ("", ":memory:"):
            raise ValueError(f"path must name a database file, got {os.fspath(path)!r}")
        if not busy_timeout >= 0:
            raise ValueError(f"busy_timeout must be >= 0 seconds, got {busy_timeout!r}")
        if not event_id_window >= timedelta(seconds=1):
            raise ValueError(f"event_id_window must be at least 1 s, got {event_id_window!r}")
        self._path = Path(path)
        self._busy_timeout = float(busy_timeout)
        self._window = math.ceil(event_id_window.total_seconds())
        self._clock = clock
        self._next_purge = -math.inf
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        with self._errors("open"):
            conn = sqlite3.connect(
                self._path,
                timeout=self._busy_timeout,
                isolation_level=None,  # autocommit; transactions are explicit
                check_same_thread=False,
            )
            try:
                self._initialise(conn)
            except BaseException:
                conn.close()
                raise
        self._conn = conn

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self._path)!r})"

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    # --- lifecycle -----------------------------------------------------------------------

    def ping(self) -> None:
        with self._reading("ping") as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()

    def close(self) -> None:
        with self._lock, self._errors("close"):
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    # --- experiments ---------------------------------------------------------------------

    def create_experiment(self, experiment: Experiment) -> None:
        with self._writing("create experiment") as conn:
            inserted = conn.execute(
                "INSERT INTO experiments (id, created_at, status, version, body)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                _experiment_row(experiment),
            ).rowcount
            if not inserted:
                raise Conflict(f"experiment {experiment.id!r} already exists")

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._reading("get experiment") as conn:
            row = conn.execute(
                "SELECT body FROM experiments WHERE id = ?", (experiment_id,)
            ).fetchone()
        if row is None:
            raise NotFound(f"experiment {experiment_id!r} does not exist")
        return Experiment.model_validate_json(row[0])

    def list_experiments(self, status: Status | None = None) -> list[Experiment]:
        with self._reading("list experiments") as conn:
            if status is None:
                rows = conn.execute(
                    "SELECT body FROM experiments ORDER BY created_at, id"
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT body FROM experiments WHERE status = ? ORDER BY created_at, id",
                    (Status(status).value,),
                ).fetchall()
        return [Experiment.model_validate_json(body) for (body,) in rows]

    def save_experiment(self, experiment: Experiment) -> None:
        experiment_id, created_at, status, version, body = _experiment_row(experiment)
        with self._writing("save experiment") as conn:
            updated = conn.execute(
                "UPDATE experiments SET created_at = ?, status = ?, version = ?, body = ?"
                " WHERE id = ? AND version = ?",
                (created_at, status, version, body, experiment_id, version - 1),
            ).rowcount
            if updated:
                return
            row = conn.execute(
                "SELECT version FROM experiments WHERE id = ?", (experiment_id,)
            ).fetchone()
        if row is None:
            raise NotFound(f"experiment {experiment_id!r} does not exist")
        raise Conflict(
            f"experiment {experiment_id!r} is at version {row[0]}, so version {version} cannot"
            " replace it (it was changed since it was read)"
        )

    def delete_experiment(self, experiment_id: str) -> None:
        with self._writing("delete experiment") as conn:
            deleted = conn.execute(
                "DELETE FROM experiments WHERE id = ?", (experiment_id,)
            ).rowcount
            if not deleted:
                raise NotFound(f"experiment {experiment_id!r} does not exist")
            for table in _DATA_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE experiment_id = ?", (experiment_id,))

    # --- sticky assignments --------------------------------------------------------------

    def get_assignment(self, experiment_id: str, phase: int, user_id: str) -> str | None:
        with self._reading("get assignment") as conn:
            return _assignment(conn, experiment_id, phase, user_id)

    def assign_if_absent(self, experiment_id: str, phase: int, user_id: str, variant: str) -> str:
        key = (experiment_id, phase, user_id)
        with self._reading("get assignment") as conn:
            stored = _assignment(conn, *key)
        if stored is not None:  # the common case needs no write lock
            return stored
        with self._writing("assign") as conn:
            conn.execute(
                "INSERT INTO assignments (experiment_id, phase, user_id, variant)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (*key, variant),
            )
            stored = _assignment(conn, *key)
        if stored is None:  # pragma: no cover - the row was written in this transaction
            raise AssertionError(f"assignment of {user_id!r} vanished")
        return stored

    # --- events and counts ---------------------------------------------------------------

    def record_events(self, events: Sequence[Event]) -> list[EventResult]:
        """Apply events in order, all in one transaction; one result per event.

        The users and event ids the batch touches are read with a few queries, the events
        are applied in memory, and the changed rows are written back before ``COMMIT``.
        """
        if not events:
            return []
        now = math.floor(_utc(self._clock()).timestamp())
        with self._writing("record events") as conn:
            results = _apply_batch(conn, events, now, now - self._window)
            if now >= self._next_purge:
                conn.execute("DELETE FROM event_ids WHERE seen_at < ?", (now - self._window,))
                self._next_purge = now + max(1, self._window // 7)
            return results

    def get_exposure(self, experiment_id: str, phase: int, user_id: str) -> str | None:
        with self._reading("get exposure") as conn:
            row = conn.execute(
                "SELECT variant FROM users WHERE experiment_id = ? AND phase = ? AND user_id = ?",
                (experiment_id, phase, user_id),
            ).fetchone()
        return None if row is None else str(row[0])

    def get_counts(self, experiment_id: str, phase: int) -> dict[str, VariantCounts]:
        return self._phase_totals("get counts", "counts", VariantCounts, experiment_id, phase)

    def get_timeseries(self, experiment_id: str, phase: int) -> list[HourCounts]:
        with self._reading("get timeseries") as conn:
            rows = conn.execute(
                f"SELECT hour, variant, {_COUNTERS} FROM hourly"
                " WHERE experiment_id = ? AND phase = ? ORDER BY hour, variant",
                (experiment_id, phase),
            ).fetchall()
        series: dict[int, HourCounts] = {}
        for hour, variant, *counters in rows:
            if hour not in series:
                series[hour] = HourCounts(datetime.fromtimestamp(hour, UTC), variants={})
            series[hour].variants[variant] = _counts(VariantCounts, counters)
        return list(series.values())

    def get_metric_counts(
        self, experiment_id: str, phase: int
    ) -> dict[str, dict[str, MetricCounts]]:
        with self._reading("get metric counts") as conn:
            rows = conn.execute(
                f"SELECT metric, variant, {_METRIC_COUNTERS} FROM metric_counts"
                " WHERE experiment_id = ? AND phase = ? ORDER BY metric, variant",
                (experiment_id, phase),
            ).fetchall()
        out: dict[str, dict[str, MetricCounts]] = {}
        for metric, variant, *counters in rows:
            out.setdefault(metric, {})[variant] = _counts(MetricCounts, counters)
        return out

    def get_metric_timeseries(self, experiment_id: str, phase: int) -> list[MetricHourCounts]:
        with self._reading("get metric timeseries") as conn:
            rows = conn.execute(
                f"SELECT hour, metric, variant, {_METRIC_COUNTERS} FROM metric_hourly"
                " WHERE experiment_id = ? AND phase = ? ORDER BY hour, metric, variant",
                (experiment_id, phase),
            ).fetchall()
        series: dict[int, MetricHourCounts] = {}
        for hour, metric, variant, *counters in rows:
            if hour not in series:
                series[hour] = MetricHourCounts(datetime.fromtimestamp(hour, UTC), metrics={})
            series[hour].metrics.setdefault(metric, {})[variant] = _counts(MetricCounts, counters)
        return list(series.values())

    def get_quantile_counters(
        self, experiment_id: str, phase: int
    ) -> dict[str, dict[str, dict[str, int]]]:
        with self._reading("get quantile counters") as conn:
            rows = conn.execute(
                "SELECT metric, variant, counter, count FROM quantile_counts"
                " WHERE experiment_id = ? AND phase = ?",
                (experiment_id, phase),
            ).fetchall()
        out: dict[str, dict[str, dict[str, int]]] = {}
        for metric, variant, counter, count in rows:
            out.setdefault(metric, {}).setdefault(variant, {})[counter] = int(count)
        return out

    def record_covariates(
        self, experiment_id: str, phase: int, covariates: Sequence[CovariateItem]
    ) -> list[CovariateOutcome]:
        """Backfill covariates in one transaction (see :class:`~abscope.storage.base.Store`)."""
        if not covariates:
            return []
        items = [covariate_item(item) for item in covariates]
        with self._writing("record covariates") as conn:
            users: dict[str, tuple[str, int, float, float | None]] = {}
            for chunk in _padded_chunks(list(dict.fromkeys(user for user, _, _ in items))):
                rows = conn.execute(
                    "SELECT user_id, variant, converted, total, covariate FROM users"
                    " WHERE experiment_id = ? AND phase = ?"
                    f" AND user_id IN ({_in_list(len(chunk))})",
                    (experiment_id, phase, *chunk),
                )
                for user_id, variant, converted, total, covariate in rows:
                    users[user_id] = (variant, converted, total, covariate)
            metric_users = _load_metric_states(
                conn,
                {(experiment_id, phase, m, user) for user, _, m in items if m is not None},
            )
            outcomes: list[CovariateOutcome] = []
            totals: dict[str, list[float]] = {}
            metric_totals: dict[tuple[str, int, str, str], list[float]] = {}
            updates: list[tuple[float, str, int, str]] = []
            for user_id, value, metric in items:
                state = users.get(user_id)
                if state is None:
                    outcomes.append("not_exposed")
                    continue
                variant, converted, total, stored = state
                if metric is not None:
                    outcomes.append(
                        _set_metric_covariate(
                            metric_users,
                            metric_totals,
                            experiment_id,
                            phase,
                            metric,
                            user_id,
                            variant,
                            value,
                        )  # fmt: skip
                    )
                    continue
                if stored is not None:
                    outcomes.append("unchanged" if stored == value else "conflict")
                    continue
                users[user_id] = (variant, converted, total, value)
                row = totals.setdefault(variant, [0, 0.0, 0.0, 0, 0.0, 0.0, 0.0])
                for index, increment in enumerate(_covariate_increments(value, converted, total)):
                    row[index] += increment
                updates.append((value, experiment_id, phase, user_id))
                outcomes.append("set")
            conn.executemany(_SET_COVARIATE, updates)
            conn.executemany(
                _UPSERT_COVARIATE_COUNTS,
                ((experiment_id, phase, variant, *row) for variant, row in totals.items()),
            )
            _write_metric_covariates(conn, metric_users, metric_totals)
        return outcomes

    def get_covariate_counts(self, experiment_id: str, phase: int) -> dict[str, CovariateCounts]:
        return self._phase_totals(
            "get covariate counts", "covariate_counts", CovariateCounts, experiment_id, phase
        )

    def get_metric_covariate_counts(
        self, experiment_id: str, phase: int
    ) -> dict[str, dict[str, CovariateCounts]]:
        with self._reading("get metric covariate counts") as conn:
            rows = conn.execute(
                f"SELECT metric, variant, {_COVARIATE_COUNTERS} FROM metric_covariate_counts"
                " WHERE experiment_id = ? AND phase = ? ORDER BY metric, variant",
                (experiment_id, phase),
            ).fetchall()
        out: dict[str, dict[str, CovariateCounts]] = {}
        for metric, variant, *counters in rows:
            out.setdefault(metric, {})[variant] = _counts(CovariateCounts, counters)
        return out

    def get_weighted_counts(self, experiment_id: str, phase: int) -> dict[str, WeightedCounts]:
        return self._phase_totals(
            "get weighted counts", "weighted_counts", WeightedCounts, experiment_id, phase
        )

    def _phase_totals(
        self, action: str, table: str, model: type[_Counts], experiment_id: str, phase: int
    ) -> dict[str, _Counts]:
        """A phase's counters per variant from ``table``, whose columns are ``model``'s."""
        with self._reading(action) as conn:
            rows = conn.execute(
                f"SELECT variant, {_columns(model)} FROM {table}"
                " WHERE experiment_id = ? AND phase = ? ORDER BY variant",
                (experiment_id, phase),
            ).fetchall()
        return {variant: _counts(model, counters) for variant, *counters in rows}

    # --- leases --------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        if not ttl > timedelta(0):
            raise ValueError(f"ttl must be positive, got {ttl!r}")
        now = (_utc(self._clock()) - _EPOCH) // _MICROSECOND
        expires = now + ttl // _MICROSECOND
        with self._writing("acquire lease") as conn:
            conn.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                " expires_at = excluded.expires_at"
                " WHERE leases.holder = excluded.holder OR leases.expires_at <= ?",
                (name, holder, expires, now),
            )
            row = conn.execute("SELECT holder FROM leases WHERE name = ?", (name,)).fetchone()
        return row is not None and row[0] == holder

    def release_lease(self, name: str, holder: str) -> None:
        with self._writing("release lease") as conn:
            conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    # --- connection and errors -----------------------------------------------------------

    def _initialise(self, conn: sqlite3.Connection) -> None:
        """Configure the connection and create or check the schema."""
        conn.execute(f"PRAGMA busy_timeout = {round(self._busy_timeout * 1000)}")
        mode = self._switch_to_wal(conn)
        if str(mode).lower() != "wal":
            raise StorageUnavailable(
                f"SQLite store at {self._path}: cannot switch to WAL journal mode (got {mode!r});"
                " WAL needs a local file system with shared-memory support"
            )
        conn.execute("PRAGMA synchronous = NORMAL")
        if self._schema_version(conn) == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")  # serialise against other processes opening the file
        try:
            version = self._schema_version(conn)
            if version == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
            elif version == 1:
                now = math.floor(_utc(self._clock()).timestamp())
                for statement in _MIGRATE_1_TO_2:
                    conn.execute(statement, {"now": now} if ":now" in statement else {})
            for statement in _METRIC_SCHEMA:  # version 3 (nothing when already there)
                conn.execute(statement)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(users)")}
            if "covariate" not in columns:  # versions 1 to 3
                for statement in _MIGRATE_TO_4:
                    conn.execute(statement)
            for statement in _COVARIATE_SCHEMA:  # version 4
                conn.execute(statement)
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
            if "weighted_counts" not in tables:  # versions 0 to 4
                for statement in _WEIGHTED_SCHEMA:
                    conn.execute(statement)
                _backfill_weighted_counts(conn)  # from the users (none in a new file)
            for statement in _QUANTILE_SCHEMA:  # version 6
                conn.execute(statement)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(metric_users)")}
            if "covariate" not in columns:  # versions 1 to 6
                for statement in _MIGRATE_TO_7:
                    conn.execute(statement)
            for statement in _METRIC_COVARIATE_SCHEMA:  # version 7
                conn.execute(statement)
            if version < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _switch_to_wal(self, conn: sqlite3.Connection) -> object:
        """Set WAL mode; return the journal mode in force.

        Switching needs an exclusive lock and, when several processes open a new file at
        once, SQLite answers ``SQLITE_BUSY`` at once instead of calling the busy handler:
        retry until the busy timeout has passed.
        """
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() >= deadline:
                    raise
            time.sleep(_WAL_RETRY_PAUSE)

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if not 0 <= version <= SCHEMA_VERSION:
            raise StorageUnavailable(
                f"SQLite store at {self._path} has schema version {version}, newer than"
                f" {SCHEMA_VERSION} which this abscope reads; upgrade abscope"
            )
        return int(version)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Wrap SQLite's operational errors in ``StorageUnavailable``; let bugs through."""
        try:
            yield
        except (sqlite3.OperationalError, sqlite3.InternalError) as exc:
            raise self._unavailable(action, exc) from exc
        except sqlite3.DatabaseError as exc:
            # IntegrityError, DataError, ProgrammingError, NotSupportedError: our bugs.
            if type(exc) is not sqlite3.DatabaseError:
                raise
            raise self._unavailable(action, exc) from exc

    def _unavailable(self, action: str, exc: sqlite3.Error) -> StorageUnavailable:
        """The error for the log (path and SQLite's message) and for clients (neither)."""
        code = getattr(exc, "sqlite_errorname", "") or ""
        hint = next(
            (text for prefix, text in _HINTS.items() if code.startswith(prefix)),
            "the database cannot be used",
        ).format(timeout=self._busy_timeout)
        return StorageUnavailable(
            f"SQLite store at {self._path}: {action} failed: {hint} ({code or 'error'}: {exc})",
            public=f"the store could not {action}: {hint}",
        )

    @contextmanager
    def _reading(self, action: str) -> Iterator[sqlite3.Connection]:
        """The connection, for autocommit reads (each statement sees one snapshot)."""
        with self._lock, self._errors(action):
            yield self._open_connection()

    @contextmanager
    def _writing(self, action: str) -> Iterator[sqlite3.Connection]:
        """The connection inside ``BEGIN IMMEDIATE``; ``COMMIT`` on success, else rollback."""
        with self._lock, self._errors(action):
            conn = self._open_connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    def _open_connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageUnavailable(f"SQLite store at {self._path} is closed")
        return self._conn


# --- helpers -------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    """``moment`` as an aware datetime; naive ones are taken to be UTC."""
    return moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment


def _experiment_row(experiment: Experiment) -> tuple[str, int, str, int, str]:
    created_at = (_utc(experiment.created_at) - _EPOCH) // _MICROSECOND
    return (
        experiment.id,
        created_at,
        experiment.status.value,
        experiment.version,
        experiment.model_dump_json(),
    )


def _assignment(
    conn: sqlite3.Connection, experiment_id: str, phase: int, user_id: str
) -> str | None:
    row = conn.execute(
        "SELECT variant FROM assignments WHERE experiment_id = ? AND phase = ? AND user_id = ?",
        (experiment_id, phase, user_id),
    ).fetchone()
    return None if row is None else str(row[0])


def _counts(model: type[_Counts], counters: Sequence[Any]) -> _Counts:
    """A row's counters (selected in :func:`_columns` order) as ``model``."""
    return model(**dict(zip(model.model_fields, counters, strict=True)))


def _covariate_increments(
    covariate: float, converted: int | bool, total: float
) -> tuple[int, float, float, int, float, float, float]:
    """A covariate's first count for a user with outcomes ``converted`` and ``total``:
    ``CovariateCounts``' order (the backfill's ``c·y`` for both outcomes)."""
    conversion = 1 if converted else 0
    return (
        1,
        covariate,
        covariate * covariate,
        conversion,
        covariate * conversion,
        total,
        covariate * total,
    )


def _weighted_conversion(probability: float) -> tuple[float, float, float]:
    """A conversion's increments of ``Σ y/p``, ``Σ y/p²`` and ``Σ y/√p`` (``y`` = 1)."""
    weight = 1.0 / probability
    return weight, weight * weight, 1.0 / math.sqrt(probability)


def _weighted_value(
    probability: float, before: float, value: float
) -> tuple[float, float, float, float, float]:
    """A value ``v`` on a total ``t``: ``v/p, v/p², v/√p, (2tv + v²)/p, (2tv + v²)/p²``."""
    weight = 1.0 / probability
    square = 2 * before * value + value * value
    return (
        value * weight,
        value * weight * weight,
        value / math.sqrt(probability),
        square * weight,
        square * weight * weight,
    )


def _backfill_weighted_counts(conn: sqlite3.Connection) -> None:
    """Fill ``weighted_counts`` from every user's probability, conversion and total (the
    migration to version 5; the table is empty before it)."""
    sums: dict[tuple[str, int, str], list[float]] = {}
    rows = conn.execute(
        "SELECT experiment_id, phase, variant, probability, converted, total FROM users"
    )
    for experiment_id, phase, variant, probability, converted, total in rows:
        row = sums.setdefault((experiment_id, phase, variant), [0, 0.0] + [0.0] * 8)
        row[0] += 1
        row[1] += 1.0 / math.sqrt(probability)
        if converted:
            for index, increment in enumerate(_weighted_conversion(probability), start=2):
                row[index] += increment
        if total:
            for index, increment in enumerate(_weighted_value(probability, 0.0, total), start=5):
                row[index] += increment
    conn.executemany(_UPSERT_WEIGHTED_COUNTS, ((*key, *row) for key, row in sums.items()))


def _padded_chunks(items: Sequence[str]) -> Iterator[tuple[str, ...]]:
    """Chunks of at most ``_MAX_IN_LIST`` items, padded (by repeating the last item) to a
    power of two so that only a few distinct statements reach the statement cache."""
    for start in range(0, len(items), _MAX_IN_LIST):
        chunk = list(items[start : start + _MAX_IN_LIST])
        size = 1 << (len(chunk) - 1).bit_length()
        yield (*chunk, *[chunk[-1]] * (size - len(chunk)))


def _in_list(size: int) -> str:
    return ", ".join("?" * size)


class _User:
    """A user's state in one phase, as read at the start of a batch and updated by it."""

    __slots__ = ("variant", "probability", "converted", "total", "covariate", "dirty")

    def __init__(
        self,
        variant: str,
        probability: float,
        converted: bool,
        total: float,
        dirty: bool,
        covariate: float | None = None,
    ) -> None:
        self.variant = variant
        self.probability = probability
        self.converted = converted
        self.total = total
        self.covariate = covariate
        self.dirty = dirty


class _MetricUser:
    """A user's state for one named metric, as read at the start of a batch."""

    __slots__ = ("converted", "total", "denominator", "covariate", "dirty")

    def __init__(
        self,
        converted: bool,
        total: float,
        denominator: float,
        dirty: bool,
        covariate: float | None = None,
    ) -> None:
        self.converted = converted
        self.total = total
        self.denominator = denominator
        self.covariate = covariate
        self.dirty = dirty


_MetricKey = tuple[str, int, str, str]  # (experiment, phase, metric, user)


def _load_metric_states(
    conn: sqlite3.Connection, wanted_keys: Iterable[_MetricKey]
) -> dict[_MetricKey, _MetricUser]:
    """The stored per-metric state of the given (experiment, phase, metric, user)s."""
    wanted: dict[tuple[str, int, str], dict[str, None]] = {}
    for experiment_id, phase, metric, user_id in wanted_keys:
        wanted.setdefault((experiment_id, phase, metric), {})[user_id] = None
    users: dict[_MetricKey, _MetricUser] = {}
    for (experiment_id, phase, metric), user_ids in wanted.items():
        for chunk in _padded_chunks(list(user_ids)):
            rows = conn.execute(
                "SELECT user_id, converted, total, denominator_total, covariate"
                " FROM metric_users WHERE experiment_id = ? AND phase = ? AND metric = ?"
                f" AND user_id IN ({_in_list(len(chunk))})",
                (experiment_id, phase, metric, *chunk),
            )
            for user_id, converted, total, denominator, covariate in rows:
                users[experiment_id, phase, metric, user_id] = _MetricUser(
                    bool(converted), total, denominator, False, covariate
                )
    return users


def _load_metric_users(
    conn: sqlite3.Connection, events: Sequence[Event]
) -> dict[_MetricKey, _MetricUser]:
    """The stored per-metric state of every (user, metric) the batch's metric events
    name, and of those its exposures carry a metric covariate for."""
    wanted: dict[_MetricKey, None] = {}
    for event in events:
        if event.metric is not None:
            wanted[event.experiment_id, event.phase, event.metric, event.user_id] = None
        elif event.metric_covariates:
            for metric in event.metric_covariates:
                wanted[event.experiment_id, event.phase, metric, event.user_id] = None
    if not wanted:
        return {}
    return _load_metric_states(conn, wanted)


def _set_metric_covariate(
    users: dict[_MetricKey, _MetricUser],
    totals: dict[tuple[str, int, str, str], list[float]],
    experiment_id: str,
    phase: int,
    metric: str,
    user_id: str,
    variant: str,
    value: float,
) -> CovariateOutcome:
    """Set a user's covariate of ``metric`` unless one is stored: count it with the
    user's outcomes of the metric so far (the backfill's ``c·y``)."""
    key = (experiment_id, phase, metric, user_id)
    user = users.get(key)
    if user is None:
        user = users[key] = _MetricUser(False, 0.0, 0.0, dirty=True)
    if user.covariate is not None:
        return "unchanged" if user.covariate == value else "conflict"
    user.covariate, user.dirty = value, True
    row = totals.setdefault(
        (experiment_id, phase, metric, variant), [0, 0.0, 0.0, 0, 0.0, 0.0, 0.0]
    )
    for index, increment in enumerate(_covariate_increments(value, user.converted, user.total)):
        row[index] += increment
    return "set"


def _metric_covariate_conflicts(
    users: dict[_MetricKey, _MetricUser], event: Event, covariates: dict[str, float]
) -> bool:
    """Whether any of an exposure's metric covariates differs from a stored one."""
    for metric, value in covariates.items():
        user = users.get((event.experiment_id, event.phase, metric, event.user_id))
        if user is not None and user.covariate is not None and user.covariate != value:
            return True
    return False


def _write_metric_covariates(
    conn: sqlite3.Connection,
    users: dict[_MetricKey, _MetricUser],
    totals: dict[tuple[str, int, str, str], list[float]],
) -> None:
    """Write back the changed metric users and add the metric covariate sums."""
    conn.executemany(
        _UPSERT_METRIC_USER,
        (
            (*key, int(user.converted), user.total, user.denominator, user.covariate)
            for key, user in users.items()
            if user.dirty
        ),
    )
    conn.executemany(
        _UPSERT_METRIC_COVARIATE_COUNTS,
        ((*key, *increments) for key, increments in totals.items()),
    )


def _apply_metric(
    event: Event,
    metric: str,
    users: dict[tuple[str, int, str, str], _MetricUser],
    totals: dict[tuple[str, int, str, str], list[float]],
    hourly: dict[tuple[str, int, int, str, str], list[float]],
    hour: int,
    quantiles: dict[tuple[str, int, str, str, str], int],
    covariate_totals: dict[tuple[str, int, str, str], list[float]],
) -> bool:
    """Count a named metric's conversion or value; return whether it is a new conversion.

    Increments are ``[conversions, Σx, Σx², Σy, Σy², Σxy]`` (``MetricCounts``' order). A
    quantile metric's request adds its ``quantile_increments`` to ``quantiles``, and 1 to
    ``users`` on the user's first event of the metric. A user with a covariate ``c`` of the
    metric adds ``1`` and ``c`` (a new conversion) or ``dx`` and ``c·dx`` (a value) to the
    metric's covariate sums (``CovariateCounts``' order).
    """
    experiment_id, phase, variant = event.experiment_id, event.phase, event.variant
    key = (experiment_id, phase, metric, event.user_id)
    user = users.get(key)
    first = user is None
    if user is None:
        user = users[key] = _MetricUser(False, 0.0, 0.0, dirty=True)
    increments_of_request = event.quantile_increments
    if increments_of_request is not None:
        prefix = (experiment_id, phase, metric, variant)
        if first:
            quantiles[(*prefix, "users")] = quantiles.get((*prefix, "users"), 0) + 1
        for counter, amount in increments_of_request.items():
            slot = (*prefix, counter)
            quantiles[slot] = quantiles.get(slot, 0) + amount
    increments = [0, 0.0, 0.0, 0.0, 0.0, 0.0]
    new_conversion = False
    if event.kind == "conversion":
        if user.converted:
            return False
        user.converted = user.dirty = new_conversion = True
        increments[0] = 1
        if user.covariate is not None:
            row = covariate_totals.setdefault(
                (experiment_id, phase, metric, variant), [0, 0.0, 0.0, 0, 0.0, 0.0, 0.0]
            )
            row[3] += 1
            row[4] += user.covariate
    elif event.value is not None:
        dx = event.value
        dy = 0.0 if event.denominator is None else event.denominator
        x, y = user.total, user.denominator
        increments[1:] = [
            dx,
            2 * x * dx + dx * dx,
            dy,
            2 * y * dy + dy * dy,
            x * dy + y * dx + dx * dy,
        ]
        user.total, user.denominator, user.dirty = x + dx, y + dy, True
        if user.covariate is not None:
            row = covariate_totals.setdefault(
                (experiment_id, phase, metric, variant), [0, 0.0, 0.0, 0, 0.0, 0.0, 0.0]
            )
            row[5] += dx
            row[6] += user.covariate * dx
    else:
        return False
    for row in (
        totals.setdefault((experiment_id, phase, metric, variant), [0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        hourly.setdefault(
            (experiment_id, phase, hour, metric, variant), [0, 0.0, 0.0, 0.0, 0.0, 0.0]
        ),
    ):
        for index, increment in enumerate(increments):
            row[index] += increment
    return new_conversion


def _load_users(
    conn: sqlite3.Connection, events: Sequence[Event]
) -> dict[tuple[str, int, str], _User]:
    """The stored state of every user the batch names."""
    wanted: dict[tuple[str, int], dict[str, None]] = {}
    for event in events:
        wanted.setdefault((event.experiment_id, event.phase), {})[event.user_id] = None
    users: dict[tuple[str, int, str], _User] = {}
    for (experiment_id, phase), user_ids in wanted.items():
        for chunk in _padded_chunks(list(user_ids)):
            rows = conn.execute(
                "SELECT user_id, variant, probability, converted, total, covariate FROM users"
                f" WHERE experiment_id = ? AND phase = ? AND user_id IN ({_in_list(len(chunk))})",
                (experiment_id, phase, *chunk),
            )
            for user_id, variant, probability, converted, total, covariate in rows:
                users[experiment_id, phase, user_id] = _User(
                    variant, probability, bool(converted), total, False, covariate
                )
    return users


def _load_event_ids(
    conn: sqlite3.Connection, events: Sequence[Event], cutoff: int
) -> set[tuple[str, str]]:
    """The ids among the batch's event ids that were counted since ``cutoff``."""
    wanted: dict[str, dict[str, None]] = {}
    for event in events:
        if event.event_id is not None:
            wanted.setdefault(event.experiment_id, {})[event.event_id] = None
    seen: set[tuple[str, str]] = set()
    for experiment_id, event_ids in wanted.items():
        for chunk in _padded_chunks(list(event_ids)):
            rows = conn.execute(
                "SELECT event_id FROM event_ids WHERE experiment_id = ? AND seen_at >= ?"
                f" AND event_id IN ({_in_list(len(chunk))})",
                (experiment_id, cutoff, *chunk),
            )
            seen.update((experiment_id, event_id) for (event_id,) in rows)
    return seen


def _apply_batch(
    conn: sqlite3.Connection, events: Sequence[Event], now: int, cutoff: int
) -> list[EventResult]:
    """Apply ``events`` in order inside the caller's write transaction.

    Event ids applied since ``cutoff`` are duplicates; new ones are stored as seen at ``now``.
    """
    users = _load_users(conn, events)
    metric_users = _load_metric_users(conn, events)
    metric_totals: dict[tuple[str, int, str, str], list[float]] = {}
    metric_hourly: dict[tuple[str, int, int, str, str], list[float]] = {}
    quantiles: dict[tuple[str, int, str, str, str], int] = {}
    metric_covariate_totals: dict[tuple[str, int, str, str], list[float]] = {}
    seen = _load_event_ids(conn, events, cutoff)
    new_ids: list[tuple[str, str, int]] = []
    # Increments per (experiment, phase, variant) and per (experiment, phase, hour, variant):
    # [samples, conversions, value_sum, value_sum_squares, Σ 1/p, Σ 1/p²].
    totals: dict[tuple[str, int, str], list[float]] = {}
    hourly: dict[tuple[str, int, int, str], list[float]] = {}
    # CovariateCounts' increments per (experiment, phase, variant), when any.
    covariate_totals: dict[tuple[str, int, str], list[float]] = {}
    covariates_set: list[tuple[float, str, int, str]] = []
    # WeightedCounts' increments per (experiment, phase, variant).
    weighted: dict[tuple[str, int, str], list[float]] = {}
    results: list[EventResult] = []
    for event in events:
        experiment_id, event_id = event.experiment_id, event.event_id
        if event_id is not None and (experiment_id, event_id) in seen:
            results.append(_DUPLICATE)
            continue
        phase, variant = event.phase, event.variant
        user_key = (experiment_id, phase, event.user_id)
        user = users.get(user_key)
        if user is not None and user.variant != variant:
            results.append(_MISMATCH)
            continue
        covariate = event.covariate
        if covariate is not None and user is not None and user.covariate is not None:
            if user.covariate != covariate:
                results.append(_COVARIATE_MISMATCH)
                continue
            covariate = None  # the same value again: nothing to set
        named = event.metric_covariates
        if named and _metric_covariate_conflicts(metric_users, event, named):
            results.append(_COVARIATE_MISMATCH)
            continue
        hour = ((_utc(event.at) - _EPOCH) // _HOUR) * 3600
        total = totals.setdefault((experiment_id, phase, variant), [0, 0, 0.0, 0.0, 0.0, 0.0])
        in_hour = hourly.setdefault(
            (experiment_id, phase, hour, variant), [0, 0, 0.0, 0.0, 0.0, 0.0]
        )
        sums = weighted.get((experiment_id, phase, variant))
        if sums is None:
            sums = weighted[experiment_id, phase, variant] = [0, 0.0] + [0.0] * 8
        new_exposure = user is None
        if user is None:
            user = users[user_key] = _User(variant, event.probability, False, 0.0, dirty=True)
            weight = 1.0 / event.probability
            sums[0] += 1
            sums[1] += 1.0 / math.sqrt(event.probability)
            total[0] += 1
            total[4] += weight
            total[5] += weight * weight
            in_hour[0] += 1
            in_hour[4] += weight
            in_hour[5] += weight * weight
        if event.metric is not None:
            new_conversion = _apply_metric(
                event, event.metric, metric_users, metric_totals, metric_hourly, hour, quantiles,
                metric_covariate_totals,
            )  # fmt: skip
        elif new_conversion := event.kind == "conversion" and not user.converted:
            user.converted = user.dirty = True
            total[1] += 1
            in_hour[1] += 1
            weight = 1.0 / user.probability
            sums[2] += weight
            sums[3] += weight * weight
            sums[4] += 1.0 / math.sqrt(user.probability)
            if user.covariate is not None:
                row = covariate_totals.setdefault(
                    (experiment_id, phase, variant), [0, 0.0, 0.0, 0, 0.0, 0.0, 0.0]
                )
                row[3] += 1
                row[4] += user.covariate
        elif event.kind == "value" and event.value is not None:
            value, before = event.value, user.total
            square_increment = 2 * before * value + value**2
            user.total = before + value
            user.dirty = True
            total[2] += value
            total[3] += square_increment
            in_hour[2] += value
            in_hour[3] += square_increment
            weight = 1.0 / user.probability
            sums[5] += value * weight
            sums[6] += value * weight * weight
            sums[7] += value / math.sqrt(user.probability)
            sums[8] += square_increment * weight
            sums[9] += square_increment * weight * weight
            if user.covariate is not None:
                row = covariate_totals.setdefault(
                    (experiment_id, phase, variant), [0, 0.0, 0.0, 0, 0.0, 0.0, 0.0]
                )
                row[5] += value
                row[6] += user.covariate * value
        if named:  # an exposure setting the user's covariates of named metrics
            for metric, given in named.items():
                _set_metric_covariate(
                    metric_users, metric_covariate_totals, experiment_id, phase, metric,
                    event.user_id, variant, given,
                )  # fmt: skip
        if covariate is not None and event.kind == "exposure":  # sets the user's covariate
            user.covariate = covariate
            covariates_set.append((covariate, *user_key))
            row = covariate_totals.setdefault(
                (experiment_id, phase, variant), [0, 0.0, 0.0, 0, 0.0, 0.0, 0.0]
            )
            for index, increment in enumerate(
                _covariate_increments(covariate, user.converted, user.total)
            ):
                row[index] += increment
        if event_id is not None:
            seen.add((experiment_id, event_id))
            new_ids.append((experiment_id, event_id, now))
        results.append(_COUNTED[new_exposure, new_conversion])

    conn.executemany(_INSERT_EVENT_ID, new_ids)
    conn.executemany(
        _UPSERT_USER,
        (
            (*key, user.variant, user.probability, int(user.converted), user.total)
            for key, user in users.items()
            if user.dirty
        ),
    )
    if covariate_totals:
        conn.executemany(_SET_COVARIATE, covariates_set)
        conn.executemany(
            _UPSERT_COVARIATE_COUNTS,
            ((*key, *increments) for key, increments in covariate_totals.items()),
        )
    conn.executemany(
        _UPSERT_WEIGHTED_COUNTS,
        ((*key, *increments) for key, increments in weighted.items() if any(increments)),
    )
    conn.executemany(
        _UPSERT_COUNTS,
        ((*key, *increments) for key, increments in totals.items() if any(increments)),
    )
    conn.executemany(
        _UPSERT_HOURLY,
        ((*key, *increments) for key, increments in hourly.items() if any(increments)),
    )
    if metric_users:
        _write_metric_covariates(conn, metric_users, metric_covariate_totals)
        conn.executemany(
            _UPSERT_METRIC_COUNTS,
            ((*key, *increments) for key, increments in metric_totals.items()),
        )
        conn.executemany(
            _UPSERT_METRIC_HOURLY,
            ((*key, *increments) for key, increments in metric_hourly.items()),
        )
    if quantiles:
        conn.executemany(
            _UPSERT_QUANTILE_COUNT, ((*key, count) for key, count in quantiles.items())
        )
    return results
