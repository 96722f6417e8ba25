"""The SQLite store's schema: its tables, the statements that write their counters, and
the migrations of files written by older versions (used by :mod:`abscope.storage.sqlite`).

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
import sqlite3
from collections.abc import Callable
from typing import Final

from pydantic import BaseModel

from abscope.models import CovariateCounts, MetricCounts, VariantCounts, WeightedCounts

__all__ = [
    "SCHEMA_VERSION",
    "create_or_upgrade",
    "DATA_TABLES",
    "counter_columns",
    "COUNTERS",
    "METRIC_COUNTERS",
    "COVARIATE_COUNTERS",
    "INSERT_EVENT_ID",
    "UPSERT_USER",
    "UPSERT_COUNTS",
    "UPSERT_HOURLY",
    "SET_COVARIATE",
    "UPSERT_COVARIATE_COUNTS",
    "UPSERT_WEIGHTED_COUNTS",
    "UPSERT_METRIC_USER",
    "UPSERT_METRIC_COUNTS",
    "UPSERT_METRIC_HOURLY",
    "UPSERT_METRIC_COVARIATE_COUNTS",
    "UPSERT_QUANTILE_COUNT",
]

SCHEMA_VERSION: Final = 7
"""The schema this module writes; kept in ``PRAGMA user_version`` for future migrations."""


def counter_columns(model: type[BaseModel]) -> str:
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
_WEIGHTED_COUNTERS: Final = counter_columns(WeightedCounts)
_ADD_WEIGHTED_COUNTERS: Final = _adding(WeightedCounts)
UPSERT_WEIGHTED_COUNTS: Final = f"""
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
UPSERT_QUANTILE_COUNT: Final = """
    INSERT INTO quantile_counts (experiment_id, phase, metric, variant, counter, count)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, metric, variant, counter) DO UPDATE SET
        count = count + excluded.count"""
# From versions 1 to 3: the users' covariate (NULL: none).
_MIGRATE_TO_4: Final = ("ALTER TABLE users ADD COLUMN covariate REAL",)
COVARIATE_COUNTERS: Final = counter_columns(CovariateCounts)
_ADD_COVARIATE_COUNTERS: Final = _adding(CovariateCounts)
UPSERT_COVARIATE_COUNTS: Final = f"""
    INSERT INTO covariate_counts (experiment_id, phase, variant, {COVARIATE_COUNTERS})
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
UPSERT_METRIC_COVARIATE_COUNTS: Final = f"""
    INSERT INTO metric_covariate_counts
        (experiment_id, phase, metric, variant, {COVARIATE_COUNTERS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, metric, variant) DO UPDATE SET
    {_ADD_COVARIATE_COUNTERS}"""
DATA_TABLES: Final = (
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

METRIC_COUNTERS: Final = counter_columns(MetricCounts)
_ADD_METRIC_COUNTERS: Final = _adding(MetricCounts)
UPSERT_METRIC_COUNTS: Final = f"""
    INSERT INTO metric_counts (experiment_id, phase, metric, variant, {METRIC_COUNTERS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, metric, variant) DO UPDATE SET {_ADD_METRIC_COUNTERS}"""
UPSERT_METRIC_HOURLY: Final = f"""
    INSERT INTO metric_hourly (experiment_id, phase, hour, metric, variant, {METRIC_COUNTERS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, hour, metric, variant) DO UPDATE SET
    {_ADD_METRIC_COUNTERS}"""
UPSERT_METRIC_USER: Final = """
    INSERT INTO metric_users
        (experiment_id, phase, metric, user_id, converted, total, denominator_total, covariate)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, metric, user_id) DO UPDATE SET
        converted = excluded.converted, total = excluded.total,
        denominator_total = excluded.denominator_total, covariate = excluded.covariate"""

COUNTERS: Final = counter_columns(VariantCounts)
_ADD_COUNTERS: Final = _adding(VariantCounts)
UPSERT_COUNTS: Final = f"""
    INSERT INTO counts (experiment_id, phase, variant, {COUNTERS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, variant) DO UPDATE SET {_ADD_COUNTERS}"""
UPSERT_HOURLY: Final = f"""
    INSERT INTO hourly (experiment_id, phase, hour, variant, {COUNTERS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, hour, variant) DO UPDATE SET {_ADD_COUNTERS}"""
UPSERT_USER: Final = """
    INSERT INTO users (experiment_id, phase, user_id, variant, probability, converted, total)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (experiment_id, phase, user_id) DO UPDATE SET
        converted = excluded.converted, total = excluded.total"""
# A covariate is set once, so few rows need it: apart from the upsert the primary path makes.
SET_COVARIATE: Final = (
    "UPDATE users SET covariate = ? WHERE experiment_id = ? AND phase = ? AND user_id = ?"
)

INSERT_EVENT_ID: Final = """
    INSERT INTO event_ids (experiment_id, event_id, seen_at) VALUES (?, ?, ?)
    ON CONFLICT (experiment_id, event_id) DO UPDATE SET seen_at = excluded.seen_at"""


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
    conn.executemany(UPSERT_WEIGHTED_COUNTS, ((*key, *row) for key, row in sums.items()))


def create_or_upgrade(
    conn: sqlite3.Connection, version: int, current_time: Callable[[], int]
) -> None:
    """Create the tables of a new file (``version`` 0) or bring a file of an older
    ``version`` to :data:`SCHEMA_VERSION`, inside the caller's write transaction.

    ``current_time`` (epoch seconds) is read only when a version 1 file is migrated: its
    event ids count as seen then."""
    if version == 0:
        for statement in _SCHEMA:
            conn.execute(statement)
    elif version == 1:
        now = current_time()
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
