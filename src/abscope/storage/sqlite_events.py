"""Applying a batch of events to the SQLite store, inside the caller's write transaction.

The users, metric users and event ids a batch names are read with a few padded ``IN``
queries, the events are applied in memory in order, and the changed rows and the summed
counter increments are written back with the statements of
:mod:`abscope.storage.sqlite_schema` (whose docstring describes the tables). Also here:
the covariate helpers :class:`~abscope.storage.sqlite.SQLiteStore` shares with a batch.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from abscope.models import Event
from abscope.storage import sqlite_schema
from abscope.storage.base import CovariateOutcome, EventResult

__all__ = [
    "apply_batch",
    "load_metric_states",
    "set_metric_covariate",
    "write_metric_covariates",
    "covariate_increments",
    "padded_chunks",
    "in_list",
    "utc",
    "EPOCH",
]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR: Final = timedelta(hours=1)
_MAX_IN_LIST: Final = 256  # ids per prefetch query; shorter lists are padded to a power of two

_DUPLICATE: Final = EventResult("duplicate")
_MISMATCH: Final = EventResult("variant_mismatch")
_COVARIATE_MISMATCH: Final = EventResult("covariate_mismatch")
_COUNTED: Final = {
    (exposure, conversion): EventResult("counted", exposure, conversion)
    for exposure in (False, True)
    for conversion in (False, True)
}


def utc(moment: datetime) -> datetime:
    """``moment`` as an aware datetime; naive ones are taken to be UTC."""
    return moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment


def covariate_increments(
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


def padded_chunks(items: Sequence[str]) -> Iterator[tuple[str, ...]]:
    """Chunks of at most ``_MAX_IN_LIST`` items, padded (by repeating the last item) to a
    power of two so that only a few distinct statements reach the statement cache."""
    for start in range(0, len(items), _MAX_IN_LIST):
        chunk = list(items[start : start + _MAX_IN_LIST])
        size = 1 << (len(chunk) - 1).bit_length()
        yield (*chunk, *[chunk[-1]] * (size - len(chunk)))


def in_list(size: int) -> str:
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


def load_metric_states(
    conn: sqlite3.Connection, wanted_keys: Iterable[_MetricKey]
) -> dict[_MetricKey, _MetricUser]:
    """The stored per-metric state of the given (experiment, phase, metric, user)s."""
    wanted: dict[tuple[str, int, str], dict[str, None]] = {}
    for experiment_id, phase, metric, user_id in wanted_keys:
        wanted.setdefault((experiment_id, phase, metric), {})[user_id] = None
    users: dict[_MetricKey, _MetricUser] = {}
    for (experiment_id, phase, metric), user_ids in wanted.items():
        for chunk in padded_chunks(list(user_ids)):
            rows = conn.execute(
                "SELECT user_id, converted, total, denominator_total, covariate"
                " FROM metric_users WHERE experiment_id = ? AND phase = ? AND metric = ?"
                f" AND user_id IN ({in_list(len(chunk))})",
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
    return load_metric_states(conn, wanted)


def set_metric_covariate(
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
    for index, increment in enumerate(covariate_increments(value, user.converted, user.total)):
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


def write_metric_covariates(
    conn: sqlite3.Connection,
    users: dict[_MetricKey, _MetricUser],
    totals: dict[tuple[str, int, str, str], list[float]],
) -> None:
    """Write back the changed metric users and add the metric covariate sums."""
    conn.executemany(
        sqlite_schema.UPSERT_METRIC_USER,
        (
            (*key, int(user.converted), user.total, user.denominator, user.covariate)
            for key, user in users.items()
            if user.dirty
        ),
    )
    conn.executemany(
        sqlite_schema.UPSERT_METRIC_COVARIATE_COUNTS,
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
        for chunk in padded_chunks(list(user_ids)):
            rows = conn.execute(
                "SELECT user_id, variant, probability, converted, total, covariate FROM users"
                f" WHERE experiment_id = ? AND phase = ? AND user_id IN ({in_list(len(chunk))})",
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
        for chunk in padded_chunks(list(event_ids)):
            rows = conn.execute(
                "SELECT event_id FROM event_ids WHERE experiment_id = ? AND seen_at >= ?"
                f" AND event_id IN ({in_list(len(chunk))})",
                (experiment_id, cutoff, *chunk),
            )
            seen.update((experiment_id, event_id) for (event_id,) in rows)
    return seen


def apply_batch(
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
        hour = ((utc(event.at) - EPOCH) // _HOUR) * 3600
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
                set_metric_covariate(
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
                covariate_increments(covariate, user.converted, user.total)
            ):
                row[index] += increment
        if event_id is not None:
            seen.add((experiment_id, event_id))
            new_ids.append((experiment_id, event_id, now))
        results.append(_COUNTED[new_exposure, new_conversion])

    conn.executemany(sqlite_schema.INSERT_EVENT_ID, new_ids)
    conn.executemany(
        sqlite_schema.UPSERT_USER,
        (
            (*key, user.variant, user.probability, int(user.converted), user.total)
            for key, user in users.items()
            if user.dirty
        ),
    )
    if covariate_totals:
        conn.executemany(sqlite_schema.SET_COVARIATE, covariates_set)
        conn.executemany(
            sqlite_schema.UPSERT_COVARIATE_COUNTS,
            ((*key, *increments) for key, increments in covariate_totals.items()),
        )
    conn.executemany(
        sqlite_schema.UPSERT_WEIGHTED_COUNTS,
        ((*key, *increments) for key, increments in weighted.items() if any(increments)),
    )
    conn.executemany(
        sqlite_schema.UPSERT_COUNTS,
        ((*key, *increments) for key, increments in totals.items() if any(increments)),
    )
    conn.executemany(
        sqlite_schema.UPSERT_HOURLY,
        ((*key, *increments) for key, increments in hourly.items() if any(increments)),
    )
    if metric_users:
        write_metric_covariates(conn, metric_users, metric_covariate_totals)
        conn.executemany(
            sqlite_schema.UPSERT_METRIC_COUNTS,
            ((*key, *increments) for key, increments in metric_totals.items()),
        )
        conn.executemany(
            sqlite_schema.UPSERT_METRIC_HOURLY,
            ((*key, *increments) for key, increments in metric_hourly.items()),
        )
    if quantiles:
        conn.executemany(
            sqlite_schema.UPSERT_QUANTILE_COUNT, ((*key, count) for key, count in quantiles.items())
        )
    return results
