"""The embedded default store: one SQLite file in WAL mode, shared by every worker process.

Each :class:`SQLiteStore` holds one connection (usable from any thread, one call at a time)
and writes inside ``BEGIN IMMEDIATE`` transactions, so several worker *processes* on the
same file serialise their writes through SQLite's write lock and wait for one another up
to ``busy_timeout`` seconds. Readers never block writers, nor writers readers (WAL).

The tables, the SQL that writes them and the migrations of older files are in
:mod:`abscope.storage.sqlite_schema` (its docstring is the table of tables); applying a
batch of events is :mod:`abscope.storage.sqlite_events`.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

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
from abscope.storage import sqlite_events, sqlite_schema
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
from abscope.storage.sqlite_schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

_Counts = TypeVar("_Counts", VariantCounts, MetricCounts, CovariateCounts, WeightedCounts)
_MICROSECOND: Final = timedelta(microseconds=1)
_WAL_RETRY_PAUSE: Final = 0.005  # seconds between attempts to switch a new file to WAL

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
            for table in sqlite_schema.DATA_TABLES:
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
        now = math.floor(sqlite_events.utc(self._clock()).timestamp())
        with self._writing("record events") as conn:
            results = sqlite_events.apply_batch(conn, events, now, now - self._window)
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
                f"SELECT hour, variant, {sqlite_schema.COUNTERS} FROM hourly"
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
        return self._metric_totals(
            "get metric counts", "metric_counts", MetricCounts, experiment_id, phase
        )

    def get_metric_timeseries(self, experiment_id: str, phase: int) -> list[MetricHourCounts]:
        with self._reading("get metric timeseries") as conn:
            rows = conn.execute(
                f"SELECT hour, metric, variant, {sqlite_schema.METRIC_COUNTERS} FROM metric_hourly"
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
            for chunk in sqlite_events.padded_chunks(
                list(dict.fromkeys(user for user, _, _ in items))
            ):
                rows = conn.execute(
                    "SELECT user_id, variant, converted, total, covariate FROM users"
                    " WHERE experiment_id = ? AND phase = ?"
                    f" AND user_id IN ({sqlite_events.in_list(len(chunk))})",
                    (experiment_id, phase, *chunk),
                )
                for user_id, variant, converted, total, covariate in rows:
                    users[user_id] = (variant, converted, total, covariate)
            metric_users = sqlite_events.load_metric_states(
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
                        sqlite_events.set_metric_covariate(
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
                for index, increment in enumerate(
                    sqlite_events.covariate_increments(value, converted, total)
                ):
                    row[index] += increment
                updates.append((value, experiment_id, phase, user_id))
                outcomes.append("set")
            conn.executemany(sqlite_schema.SET_COVARIATE, updates)
            conn.executemany(
                sqlite_schema.UPSERT_COVARIATE_COUNTS,
                ((experiment_id, phase, variant, *row) for variant, row in totals.items()),
            )
            sqlite_events.write_metric_covariates(conn, metric_users, metric_totals)
        return outcomes

    def get_covariate_counts(self, experiment_id: str, phase: int) -> dict[str, CovariateCounts]:
        return self._phase_totals(
            "get covariate counts", "covariate_counts", CovariateCounts, experiment_id, phase
        )

    def get_metric_covariate_counts(
        self, experiment_id: str, phase: int
    ) -> dict[str, dict[str, CovariateCounts]]:
        return self._metric_totals(
            "get metric covariate counts",
            "metric_covariate_counts",
            CovariateCounts,
            experiment_id,
            phase,
        )

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
                f"SELECT variant, {sqlite_schema.counter_columns(model)} FROM {table}"
                " WHERE experiment_id = ? AND phase = ? ORDER BY variant",
                (experiment_id, phase),
            ).fetchall()
        return {variant: _counts(model, counters) for variant, *counters in rows}

    def _metric_totals(
        self, action: str, table: str, model: type[_Counts], experiment_id: str, phase: int
    ) -> dict[str, dict[str, _Counts]]:
        """A phase's counters per metric and variant from ``table`` (columns: ``model``'s)."""
        with self._reading(action) as conn:
            rows = conn.execute(
                f"SELECT metric, variant, {sqlite_schema.counter_columns(model)} FROM {table}"
                " WHERE experiment_id = ? AND phase = ? ORDER BY metric, variant",
                (experiment_id, phase),
            ).fetchall()
        out: dict[str, dict[str, _Counts]] = {}
        for metric, variant, *counters in rows:
            out.setdefault(metric, {})[variant] = _counts(model, counters)
        return out

    # --- leases --------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        if not ttl > timedelta(0):
            raise ValueError(f"ttl must be positive, got {ttl!r}")
        now = (sqlite_events.utc(self._clock()) - sqlite_events.EPOCH) // _MICROSECOND
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
            sqlite_schema.create_or_upgrade(
                conn, version, lambda: math.floor(sqlite_events.utc(self._clock()).timestamp())
            )
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


def _experiment_row(experiment: Experiment) -> tuple[str, int, str, int, str]:
    created_at = (sqlite_events.utc(experiment.created_at) - sqlite_events.EPOCH) // _MICROSECOND
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
    """A row's counters (selected in
    :func:`~abscope.storage.sqlite_schema.counter_columns` order) as ``model``."""
    return model(**dict(zip(model.model_fields, counters, strict=True)))
