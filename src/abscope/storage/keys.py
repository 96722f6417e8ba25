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
``abscope:{<id>}:p<p>:metric_users``  hash    field ``<name>|<user>`` → the user's state for
                                              the named metric ``<name>``:
                                              ``<converted>|<x>|<y>`` (0 or 1, the numerator
                                              total, the denominator total).
``abscope:{<id>}:p<p>:metric_counts`` hash    field ``<name>|<variant>|<counter>`` → the
                                              phase's total of a named metric.
``abscope:{<id>}:p<p>:metric_hourly`` hash    field ``<hour>|<name>|<variant>|<counter>`` →
                                              increments made in that UTC hour.
``abscope:{<id>}:p<p>:quantiles``     hash    field ``<name>|<variant>|<counter>`` → a
                                              quantile metric's integer counter
                                              (``users``, ``b:<i>``, ``r<b>:<j>``: see
                                              :mod:`abscope.stats.quantiles`), HINCRBY only.
``abscope:{<id>}:p<p>:covariates``    hash    field user → the user's pre-exposure covariate
                                              (CUPED), set once.
``abscope:{<id>}:p<p>:covariate_counts``      hash: field ``<variant>|<counter>`` → a CUPED
                                              sum over the variant's users with a covariate
                                              (``<counter>``: :data:`COVARIATE_COUNTERS`).
``abscope:{<id>}:p<p>:metric_covariates``     hash: field ``<name>|<user>`` → the user's
                                              covariate of the named metric, set once.
``abscope:{<id>}:p<p>:metric_covariate_counts`` hash: field ``<name>|<variant>|<counter>``
                                              → a named metric's CUPED sum (counters as
                                              ``covariate_counts``).
``abscope:{<id>}:p<p>:probabilities`` hash    field user → ``p``, the probability of the
                                              exposure that registered the user (weights
                                              the user's later conversion and values).
``abscope:{<id>}:p<p>:weighted_counts``       hash: field ``<variant>|<counter>`` → a
                                              probability-weighted sum of the variant's
                                              users (``<counter>``:
                                              :data:`WEIGHTED_COUNTERS`), for estimates
                                              from adaptive traffic.
``abscope:{lease:<name>}``            string  the holder of the lease ``<name>``, with a
                                              server-side expiry (PX). The hash tag starts
                                              with ``lease:``, which no experiment id can
                                              (``:`` is not in a slug).
====================================  ======  ==================================================

``<metric>`` is one of :data:`METRICS`, the fields of
:class:`~abscope.models.VariantCounts`, and ``<counter>`` one of :data:`METRIC_COUNTERS`, the
fields of :class:`~abscope.models.MetricCounts`; a metric's ``<name>`` and a variant are
slugs, so they never contain ``|``. The metric keys exist only for experiments whose events
name a metric: a batch of the primary's events takes none of them. Numbers are stored as
decimal strings that round-trip a float64 exactly (Lua formats them with ``%.17g``).
``record_events.lua`` builds the field formats itself; :func:`count_field`,
:func:`hour_field`, :func:`metric_count_field` and :func:`metric_hour_field` here are their
reference.

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
    "METRIC_COUNTERS",
    "BUCKETS_PER_WINDOW",
    "COVARIATE_COUNTERS",
    "WEIGHTED_COUNTERS",
    "covariate_counts",
    "covariates",
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
    "lease",
    "metric_count_field",
    "metric_counts",
    "metric_hour_field",
    "metric_hourly",
    "metric_covariate_counts",
    "metric_covariates",
    "metric_phase_keys",
    "metric_users",
    "parse_count_field",
    "parse_hour_field",
    "parse_metric_count_field",
    "parse_metric_hour_field",
    "phase_keys",
    "phases",
    "probabilities",
    "quantiles",
    "user_totals",
    "weighted_counts",
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

COVARIATE_COUNTERS: Final = (
    "samples",
    "sum",
    "sum_squares",
    "conversions",
    "conversion_cross_sum",
    "value_sum",
    "value_cross_sum",
)
"""CUPED counter names, in the order of :class:`~abscope.models.CovariateCounts`' fields."""

WEIGHTED_COUNTERS: Final = (
    "samples",
    "inverse_sqrt_probability_sum",
    "conversion_inverse_probability_sum",
    "conversion_inverse_probability_square_sum",
    "conversion_inverse_sqrt_probability_sum",
    "value_inverse_probability_sum",
    "value_inverse_probability_square_sum",
    "value_inverse_sqrt_probability_sum",
    "square_inverse_probability_sum",
    "square_inverse_probability_square_sum",
)
"""Probability-weighted counter names, in the order of :class:`~abscope.models.WeightedCounts`'
fields."""

METRIC_COUNTERS: Final = (
    "conversions",
    "sum",
    "sum_squares",
    "denominator_sum",
    "denominator_sum_squares",
    "cross_sum",
)
"""Counter names of a named metric, in the order of :class:`~abscope.models.MetricCounts`'
fields."""


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


def metric_users(experiment_id: str, phase: int) -> str:
    """Hash ``metric|user`` → ``converted|x|y``, a user's state for a named metric."""
    return f"{_phase(experiment_id, phase)}:metric_users"


def metric_counts(experiment_id: str, phase: int) -> str:
    """Hash ``metric|variant|counter`` → a named metric's total in the phase."""
    return f"{_phase(experiment_id, phase)}:metric_counts"


def metric_hourly(experiment_id: str, phase: int) -> str:
    """Hash ``hour|metric|variant|counter`` → increments made during that UTC hour."""
    return f"{_phase(experiment_id, phase)}:metric_hourly"


def quantiles(experiment_id: str, phase: int) -> str:
    """Hash ``metric|variant|counter`` → a quantile metric's counter in the phase.

    One hash per phase (not one per metric and variant), so that deletion and the
    script's keys stay a fixed list per phase, with no index of the metrics seen."""
    return f"{_phase(experiment_id, phase)}:quantiles"


def covariates(experiment_id: str, phase: int) -> str:
    """Hash user → the user's covariate in the phase."""
    return f"{_phase(experiment_id, phase)}:covariates"


def covariate_counts(experiment_id: str, phase: int) -> str:
    """Hash ``variant|counter`` → a CUPED sum of the phase."""
    return f"{_phase(experiment_id, phase)}:covariate_counts"


def probabilities(experiment_id: str, phase: int) -> str:
    """Hash user → the probability of the user's first exposure in the phase."""
    return f"{_phase(experiment_id, phase)}:probabilities"


def weighted_counts(experiment_id: str, phase: int) -> str:
    """Hash ``variant|counter`` → a probability-weighted sum of the phase."""
    return f"{_phase(experiment_id, phase)}:weighted_counts"


def metric_phase_keys(experiment_id: str, phase: int) -> tuple[str, str, str, str, str, str]:
    """The named metrics' keys ``record_events.lua`` takes for one phase, in its order.

    ``(metric_users, metric_counts, metric_hourly, quantiles, metric_covariates,
    metric_covariate_counts)``; only batches with metric events or metric covariates pass
    them.
    """
    return (
        metric_users(experiment_id, phase),
        metric_counts(experiment_id, phase),
        metric_hourly(experiment_id, phase),
        quantiles(experiment_id, phase),
        metric_covariates(experiment_id, phase),
        metric_covariate_counts(experiment_id, phase),
    )


def metric_covariates(experiment_id: str, phase: int) -> str:
    """Hash ``metric|user`` → the user's covariate of a named metric in the phase."""
    return f"{_phase(experiment_id, phase)}:metric_covariates"


def metric_covariate_counts(experiment_id: str, phase: int) -> str:
    """Hash ``metric|variant|counter`` → a named metric's CUPED sum of the phase."""
    return f"{_phase(experiment_id, phase)}:metric_covariate_counts"


def lease(name: str) -> str:
    """String holding the holder of the lease ``name`` (expiring on the server).

    >>> lease("monitor")
    'abscope:{lease:monitor}'
    >>> hash_tag(lease("monitor"))
    'lease:monitor'
    """
    if not name:
        raise ValueError("a lease needs a name")
    return f"{_PREFIX}:{{lease:{name}}}"


def phase_keys(
    experiment_id: str, phase: int
) -> tuple[str, str, str, str, str, str, str, str, str]:
    """The keys ``record_events.lua`` takes for one phase, in the script's order.

    ``(exposures, conversions, user_totals, counts, hourly, covariates, covariate_counts,
    probabilities, weighted_counts)``.
    """
    return (
        exposures(experiment_id, phase),
        conversions(experiment_id, phase),
        user_totals(experiment_id, phase),
        counts(experiment_id, phase),
        hourly(experiment_id, phase),
        covariates(experiment_id, phase),
        covariate_counts(experiment_id, phase),
        probabilities(experiment_id, phase),
        weighted_counts(experiment_id, phase),
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
        keys.extend(metric_phase_keys(experiment_id, phase))
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


def metric_count_field(metric: str, variant: str, counter: str) -> str:
    """Field of the metric counts hash, e.g. ``latency_ms|control|cross_sum``."""
    return f"{metric}{_SEPARATOR}{variant}{_SEPARATOR}{counter}"


def metric_hour_field(hour: int, metric: str, variant: str, counter: str) -> str:
    """Field of the metric hourly hash, e.g. ``1700000000|latency_ms|control|sum``."""
    return f"{hour}{_SEPARATOR}{metric}{_SEPARATOR}{variant}{_SEPARATOR}{counter}"


def parse_metric_count_field(field: str) -> tuple[str, str, str]:
    """``(metric, variant, counter)`` of a field of the metric counts, metric covariate
    counts or quantiles hash (all ``<metric>|<variant>|<counter>``)."""
    metric, variant, counter = field.split(_SEPARATOR)
    return metric, variant, counter


def parse_metric_hour_field(field: str) -> tuple[int, str, str, str]:
    """``(hour, metric, variant, counter)`` of a metric hourly field."""
    hour, metric, variant, counter = field.split(_SEPARATOR)
    return int(hour), metric, variant, counter
