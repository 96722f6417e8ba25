"""The Redis keyspace of abscope: every key is built here, and this table lists them all.

``<id>`` is an experiment id (a slug, so it never contains ``{``, ``}`` or ``:``) and ``<p>``
a phase number. Every key of one experiment carries the hash tag ``{<id>}``, so all of them
live in one Redis Cluster slot and one Lua script can update them atomically.

====================================  ======  ==================================================
Key                                   Type    Meaning
====================================  ======  ==================================================
``abscope:{config}:experiments``      hash    field ``<id>`` → the experiment's JSON. One key, so
                                              create (HSETNX), list (HVALS) and compare-and-set
                                              save (one Lua script) are single-key atomic.
``abscope:{<id>}:events:<b>``         set     event ids applied to the experiment during
                                              bucket ``<b>`` (see :func:`id_buckets`); each
                                              expires when it leaves the event-id window.
``abscope:{<id>}:phases``             set     phase numbers that have data keys, so deletion
                                              finds every key without SCAN.
``abscope:{<id>}:p<p>:exposures``     hash    field user → variant of the user's first exposure.
``abscope:{<id>}:p<p>:converted``     set     users who converted (counted once per user).
``abscope:{<id>}:p<p>:totals``        hash    field user → the user's running total of the
                                              continuous metric (for Σ total²).
``abscope:{<id>}:p<p>:counts``        hash    field ``<variant>|<metric>`` → the phase's total.
``abscope:{<id>}:p<p>:hourly``        hash    field ``<hour>|<variant>|<metric>`` → increments
                                              made in that UTC hour; ``<hour>`` is the epoch
                                              second at which the hour starts.
``abscope:{<id>}:p<p>:assignments``   hash    field user → sticky variant (assign_if_absent).
====================================  ======  ==================================================

``<metric>`` is one of :data:`METRICS`, the fields of
:class:`~abscope.models.VariantCounts`. Numbers are stored as decimal strings that round-trip
a float64 exactly (Lua formats them with ``%.17g``). ``record_events.lua`` builds the two
field formats itself; :func:`count_field` and :func:`hour_field` here are their reference.

Example
-------
>>> counts("checkout", 2)
'abscope:{checkout}:p2:counts'
>>> hash_tag(applied_events("checkout", 7)) == hash_tag(counts("checkout", 0)) == "checkout"
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache
from typing import Final

from abscope.models import is_slug

__all__ = [
    "EXPERIMENTS",
    "METRICS",
    "BUCKETS_PER_WINDOW",
    "applied_events",
    "assignments",
    "conversions",
    "count_field",
    "counts",
    "experiment_keys",
    "exposures",
    "hash_tag",
    "hour_field",
    "hourly",
    "id_buckets",
    "parse_count_field",
    "parse_hour_field",
    "phase_keys",
    "phases",
    "user_totals",
]

_PREFIX: Final = "abscope"
_SEPARATOR: Final = "|"

EXPERIMENTS: Final = f"{_PREFIX}:{{config}}:experiments"
"""The one hash of experiment configurations (field = id, value = JSON)."""

METRICS: Final = (
    "samples",
    "conversions",
    "value_sum",
    "value_sum_squares",
    "inverse_probability_sum",
    "inverse_probability_square_sum",
)
"""Counter names, in the order of :class:`~abscope.models.VariantCounts`' fields."""


@lru_cache(maxsize=4096)  # every key of every event is built here: validate each id once
def _experiment(experiment_id: str) -> str:
    if not is_slug(experiment_id):
        raise ValueError(f"experiment_id must be a slug, got {experiment_id!r}")
    return f"{_PREFIX}:{{{experiment_id}}}"


@lru_cache(maxsize=4096, typed=True)  # typed: True and 1.0 are refused, not taken for 1
def _phase(experiment_id: str, phase: int) -> str:
    if isinstance(phase, bool) or not isinstance(phase, int) or phase < 0:
        raise ValueError(f"phase must be a non-negative integer, got {phase!r}")
    return f"{_experiment(experiment_id)}:p{phase}"


BUCKETS_PER_WINDOW: Final = 3
"""The event-id window is cut into this many buckets: each new id is looked up in one more
than this many sets, so fewer buckets cost less per event, and an id may be kept up to
``window / BUCKETS_PER_WINDOW`` longer than the window."""


def applied_events(experiment_id: str, bucket: int) -> str:
    """Set of the event ids applied to the experiment during time bucket ``bucket``."""
    return f"{_experiment(experiment_id)}:events:{bucket}"


def id_buckets(now: float, window_seconds: int) -> tuple[list[int], int]:
    """The event-id buckets to look in at epoch second ``now``, current first, and the
    seconds the current bucket must live.

    A bucket spans ``w = ceil(window / 3)`` seconds; bucket ``b`` holds the ids applied in
    ``[b w, (b + 1) w)``. Looking in the current bucket and the 3 before it covers at least
    the last ``3 w >= window`` seconds, so an id is remembered for at least the window and
    at most ``window + w``; the current bucket expires when it leaves that range.

    >>> id_buckets(100.0, 60)
    ([5, 4, 3, 2], 80)
    """
    width = max(1, math.ceil(window_seconds / BUCKETS_PER_WINDOW))
    current = math.floor(now / width)
    buckets = [current - back for back in range(BUCKETS_PER_WINDOW + 1)]
    ttl = math.ceil((current + BUCKETS_PER_WINDOW + 1) * width - now)
    return buckets, ttl


def phases(experiment_id: str) -> str:
    """Set of the phases of the experiment that have data keys."""
    return f"{_experiment(experiment_id)}:phases"


def exposures(experiment_id: str, phase: int) -> str:
    """Hash user → variant of the first exposure in the phase."""
    return f"{_phase(experiment_id, phase)}:exposures"


def conversions(experiment_id: str, phase: int) -> str:
    """Set of the users who converted in the phase."""
    return f"{_phase(experiment_id, phase)}:converted"


def user_totals(experiment_id: str, phase: int) -> str:
    """Hash user → running total of the continuous metric in the phase."""
    return f"{_phase(experiment_id, phase)}:totals"


def counts(experiment_id: str, phase: int) -> str:
    """Hash ``variant|metric`` → total in the phase."""
    return f"{_phase(experiment_id, phase)}:counts"


def hourly(experiment_id: str, phase: int) -> str:
    """Hash ``hour|variant|metric`` → increments made during that UTC hour."""
    return f"{_phase(experiment_id, phase)}:hourly"


def assignments(experiment_id: str, phase: int) -> str:
    """Hash user → sticky variant in the phase."""
    return f"{_phase(experiment_id, phase)}:assignments"


def phase_keys(experiment_id: str, phase: int) -> tuple[str, str, str, str, str]:
    """The keys ``record_events.lua`` takes for one phase, in the script's order.

    ``(exposures, conversions, user_totals, counts, hourly)``.
    """
    return (
        exposures(experiment_id, phase),
        conversions(experiment_id, phase),
        user_totals(experiment_id, phase),
        counts(experiment_id, phase),
        hourly(experiment_id, phase),
    )


def experiment_keys(
    experiment_id: str, phase_numbers: Iterable[int], buckets: Iterable[int]
) -> list[str]:
    """Every data key of the experiment with data in ``phase_numbers`` and event ids in
    ``buckets`` (not the config); older buckets expire by themselves.

    The experiment-wide keys come first: ``[phases, <event-id buckets>, <per phase keys>...]``.
    """
    keys = [phases(experiment_id), *(applied_events(experiment_id, b) for b in buckets)]
    for phase in sorted(set(phase_numbers)):
        keys.extend(phase_keys(experiment_id, phase))
        keys.append(assignments(experiment_id, phase))
    return keys


def hash_tag(key: str) -> str:
    """The part of ``key`` Redis Cluster hashes: the text between the first ``{`` and ``}``."""
    start = key.find("{")
    end = key.find("}", start + 1)
    if start == -1 or end <= start + 1:
        return key
    return key[start + 1 : end]


def count_field(variant: str, metric: str) -> str:
    """Field of the counts hash, e.g. ``control|samples``."""
    return f"{variant}{_SEPARATOR}{metric}"


def hour_field(hour: int, variant: str, metric: str) -> str:
    """Field of the hourly hash, e.g. ``1700000000|control|samples`` (hour = epoch seconds)."""
    return f"{hour}{_SEPARATOR}{variant}{_SEPARATOR}{metric}"


def parse_count_field(field: str) -> tuple[str, str]:
    """``(variant, metric)`` of a counts field."""
    variant, metric = field.split(_SEPARATOR)
    return variant, metric


def parse_hour_field(field: str) -> tuple[int, str, str]:
    """``(hour, variant, metric)`` of an hourly field."""
    hour, variant, metric = field.split(_SEPARATOR)
    return int(hour), variant, metric
