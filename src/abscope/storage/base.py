"""The storage interface: the only way abscope reads or writes its data.

Every backend (:mod:`abscope.storage.sqlite`, :mod:`abscope.storage.redis`) implements
:class:`Store` with the same behaviour, checked by one contract test suite
(``tests/contract``). Backend errors are wrapped in :class:`~abscope.errors.StorageUnavailable`.

Counting semantics, the same on every backend
---------------------------------------------
Counts are kept per experiment, per *phase* (a configuration epoch; phases never mix) and per
variant, and again per UTC hour for the time-series charts.

* ``samples`` is the number of unique users exposed to the variant.
* ``conversions`` is the number of unique exposed users who converted, once per user.
* ``value_sum`` / ``value_sum_squares`` are over the per-user *totals* of a continuous
  metric (the user is the unit of analysis). When a user with running total ``t`` logs a
  value ``v``: ``value_sum += v`` and ``value_sum_squares += 2·t·v + v²``, which keeps
  ``Σ total²`` exact without reading every user.
* ``inverse_probability_sum`` adds ``1/p`` and ``inverse_probability_square_sum`` adds
  ``1/p²`` for each new exposure, where ``p`` is the probability with which the user was
  assigned, so adaptive or ramped traffic can be weighted in analysis and its split tested.
* A conversion or value for a user never exposed registers the exposure first (with the
  event's variant and probability), so it is never lost from the denominator.
* A user belongs to the variant of their first exposure in a phase. An event that names
  another variant is refused (``variant_mismatch``) and changes nothing.
* An event with an ``event_id`` already applied to the experiment is a ``duplicate`` and
  changes nothing, so a retried request is counted once. Event ids are remembered for the
  store's ``event_id_window`` (:data:`DEFAULT_EVENT_ID_WINDOW`, 7 days, by default; a
  backend may keep them up to a third longer), measured from when the store applied
  them, as payment APIs keep idempotency keys. Per-user counting does not depend on the
  window: a user is one sample and one conversion for the phase's whole life, so a retry
  that arrives after the window can add a value again, never a user or a conversion.
* :meth:`Store.record_events` applies a batch in order, all or nothing: it raises
  ``StorageUnavailable`` when nothing was applied. The one exception is a batch whose
  experiments live on different Redis Cluster nodes, which cannot share a transaction:
  when some of its experiments were applied and the store then failed, the events of the
  others come back as ``unavailable`` (not applied; retrying them with their event ids is
  safe), so the caller knows exactly what was applied.

* An event naming a ``metric`` counts for that metric, in :class:`MetricCounts` kept per
  metric and variant (the primary's events name none and count in ``VariantCounts``). A
  conversion adds 1 to the metric's ``conversions`` once per user; a value event with
  ``value = dx`` and ``denominator = dy`` (0 when absent) updates the user's totals
  ``(x, y)`` of that metric and the sums by the per-user trick (``MetricCounts``). Such
  an event registers the exposure first, as any other, and is idempotent by its event id.
  Its result's ``new_conversion`` says whether it added the user's conversion of that
  metric. A metric and a variant appear in the counts once an event was counted for them.
  The store does not check the name against the experiment's metrics: the service does.
* A user may carry one pre-exposure *covariate* per phase, for CUPED: sent on an exposure
  event (``Event.covariate``) or backfilled by :meth:`Store.record_covariates` for users
  exposed already. That one adjusts the primary metric.
  The store keeps :class:`~abscope.models.CovariateCounts` per variant over the users with
  a covariate (``Σc``, ``Σc²``, ``Σy``, ``Σc·y``, with ``y`` the user's primary outcome:
  converted 0/1, or the value total) by the per-user update: a user with covariate ``c``
  adding ``dy`` adds ``c·dy`` to ``Σc·y``; a covariate set after outcomes totalling ``y``
  adds ``c·y``. A covariate is set once: the same value again changes nothing
  (``unchanged``), another value is refused (an event: ``covariate_mismatch``, which
  changes nothing, not even its exposure; a backfill: ``conflict``), never replaced. A
  backfill for a user not exposed in the phase is ``not_exposed`` and changes nothing
  (the covariate has no variant to count in; send it with the exposure). Covariate sums
  are phase totals only (no hour buckets).
* A named (binary or mean) metric's covariate works the same way, per (phase, metric,
  user): sent on an exposure (``Event.metric_covariates``, by metric name) or backfilled
  by :meth:`Store.record_covariates` with a metric named in the item. Its
  :class:`~abscope.models.CovariateCounts` are kept per (metric, variant), with ``y`` the
  user's outcome for that metric (converted 0/1, or the metric's value total), by the same
  per-user update (:meth:`Store.get_metric_covariate_counts`). An exposure any of whose
  covariates (the primary's or a metric's) conflicts with a stored one is
  ``covariate_mismatch`` and changes nothing. The store does not check the metric's name
  or kind: the service does.
* For estimates from adaptive (bandit) traffic the store keeps
  :class:`~abscope.models.WeightedCounts` per variant: sums of the primary outcome weighted
  by ``1/p``, ``1/p²`` and ``1/√p``, with ``p`` the probability of the exposure that
  registered the user (remembered per user, so a later conversion or value is weighted by
  the exposure's ``p``, not its own). Both readings of the outcome are kept (converted
  0/1, and the value total), by the per-user update: a conversion adds ``1/p``, ``1/p²``
  and ``1/√p``; a value ``v`` on a total ``t`` adds ``v/p``, ``v/p²``, ``v/√p``,
  ``(2tv + v²)/p`` and ``(2tv + v²)/p²``; an exposure adds 1 to ``samples`` and ``1/√p``.
  They are kept for every experiment (the store does not know the allocation), are
  idempotent and all-or-nothing with the counts they belong to, and are phase totals only
  (no hour buckets). Users exposed before a store kept them are not in them (their
  ``samples`` falls short of the variant's).
* A value event of a quantile metric carries ``quantile_increments``: the counters that
  one request adds to that metric's log-bucket sketch and bootstrap replicates
  (:mod:`abscope.stats.quantiles`). The store adds each to the counter of that name kept
  per (phase, metric, variant), in the same atomic, idempotent step as the rest of the
  event (a duplicate event id adds nothing), and adds 1 to the counter ``users`` on the
  user's first event of that metric in the phase (per-user metric state, as for every
  named metric). Such an event also updates the metric's :class:`MetricCounts` as a mean
  metric's value does. Quantile counters are phase totals only (no hour buckets); an
  event without ``quantile_increments`` never touches them.
* A lease (:meth:`Store.acquire_lease`) elects one holder among workers, for the monitor.
  Leases belong to no experiment: deleting one leaves them alone.

Hour buckets hold the increments made during that hour (by the event's ``at``), so the
cumulative sum of the buckets up to an hour is the state at the end of that hour.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from abscope.models import (
    CovariateCounts,
    Event,
    Experiment,
    MetricCounts,
    Status,
    VariantCounts,
    WeightedCounts,
)

__all__ = [
    "DEFAULT_EVENT_ID_WINDOW",
    "Clock",
    "CovariateItem",
    "CovariateOutcome",
    "EventOutcome",
    "EventResult",
    "HourCounts",
    "MetricHourCounts",
    "Store",
    "covariate_item",
    "utc_now",
]

EventOutcome = Literal[
    "counted", "duplicate", "variant_mismatch", "covariate_mismatch", "unavailable"
]
CovariateOutcome = Literal["set", "unchanged", "conflict", "not_exposed"]
"""What a backfilled covariate did: ``set`` (counted), ``unchanged`` (the user has this very
value already), ``conflict`` (the user has another value: kept, this one refused) or
``not_exposed`` (no exposure in the phase: nothing stored)."""
CovariateItem = tuple[str, float] | tuple[str, float, str | None]
"""A backfilled covariate: ``(user, value)`` for the primary, or ``(user, value, metric)``
for the named metric ``metric`` (``None``: the primary)."""

DEFAULT_EVENT_ID_WINDOW: Final = timedelta(days=7)
"""How long a store remembers an applied event id, by default."""

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, aware, in UTC: the stores' default clock."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class EventResult:
    """What one event did: its outcome and whether it added a user or a conversion."""

    outcome: EventOutcome
    new_exposure: bool = False
    new_conversion: bool = False


@dataclass(frozen=True, slots=True)
class HourCounts:
    """The increments of one UTC hour, per variant."""

    hour: datetime
    variants: dict[str, VariantCounts]


@dataclass(frozen=True, slots=True)
class MetricHourCounts:
    """The increments of one UTC hour, per metric and then per variant."""

    hour: datetime
    metrics: dict[str, dict[str, MetricCounts]]


class Store(ABC):
    """Persistence for experiments, sticky assignments and event counts."""

    # --- lifecycle -----------------------------------------------------------------------

    @abstractmethod
    def ping(self) -> None:
        """Return if the store answers; raise ``StorageUnavailable`` otherwise."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. The store is unusable afterwards."""

    # --- experiments ---------------------------------------------------------------------

    @abstractmethod
    def create_experiment(self, experiment: Experiment) -> None:
        """Store a new experiment; ``Conflict`` if its id is taken."""

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment:
        """The stored experiment; ``NotFound`` if there is none."""

    @abstractmethod
    def list_experiments(self, status: Status | None = None) -> list[Experiment]:
        """All experiments (with ``status``, when given), oldest first, then by id."""

    @abstractmethod
    def save_experiment(self, experiment: Experiment) -> None:
        """Replace an experiment by a newer version (compare-and-set).

        ``experiment.version`` must be exactly one more than the stored version, otherwise
        ``Conflict`` (someone else saved first); ``NotFound`` if it does not exist.
        """

    @abstractmethod
    def delete_experiment(self, experiment_id: str) -> None:
        """Remove an experiment and all its data; ``NotFound`` if there is none."""

    # --- sticky assignments --------------------------------------------------------------

    @abstractmethod
    def get_assignment(self, experiment_id: str, phase: int, user_id: str) -> str | None:
        """The variant stored for a user by :meth:`assign_if_absent`, or ``None``."""

    @abstractmethod
    def assign_if_absent(self, experiment_id: str, phase: int, user_id: str, variant: str) -> str:
        """Store ``variant`` for the user unless one is stored; return the stored one.

        Atomic: when two workers race, both get the first writer's variant.
        """

    # --- events and counts ---------------------------------------------------------------

    @abstractmethod
    def record_events(self, events: Sequence[Event]) -> list[EventResult]:
        """Apply events in order, each atomically; one result per event."""

    async def record_events_async(self, events: Sequence[Event]) -> list[EventResult]:
        """:meth:`record_events` without blocking an event loop, with the same results.

        The default runs it in a thread; a backend with an asyncio client overrides it.
        """
        return await asyncio.to_thread(self.record_events, events)

    async def aclose(self) -> None:
        """Release what :meth:`record_events_async` opened (call it on its event loop).

        The default opened nothing, so there is nothing to release.
        """
        return None

    @abstractmethod
    def get_exposure(self, experiment_id: str, phase: int, user_id: str) -> str | None:
        """The variant the user was first exposed to in the phase, or ``None``."""

    @abstractmethod
    def get_counts(self, experiment_id: str, phase: int) -> dict[str, VariantCounts]:
        """Totals per variant (only variants with data appear)."""

    @abstractmethod
    def get_timeseries(self, experiment_id: str, phase: int) -> list[HourCounts]:
        """Hourly increments, oldest hour first."""

    @abstractmethod
    def get_metric_counts(
        self, experiment_id: str, phase: int
    ) -> dict[str, dict[str, MetricCounts]]:
        """Totals per named metric, then per variant (only those with data appear)."""

    @abstractmethod
    def get_metric_timeseries(self, experiment_id: str, phase: int) -> list[MetricHourCounts]:
        """Hourly increments of the named metrics, oldest hour first (hours with data only)."""

    @abstractmethod
    def get_quantile_counters(
        self, experiment_id: str, phase: int
    ) -> dict[str, dict[str, dict[str, int]]]:
        """Quantile metrics' counters, per metric, then per variant, then counter name
        (only those with data appear; counters are positive integers)."""

    @abstractmethod
    def record_covariates(
        self, experiment_id: str, phase: int, covariates: Sequence[CovariateItem]
    ) -> list[CovariateOutcome]:
        """Backfill ``(user, covariate)`` pairs, or ``(user, covariate, metric)`` triples
        for named metrics, in order, atomically; one outcome each.

        A user named twice in one call is judged against the first value (the second is
        ``unchanged`` or ``conflict``). ``StorageUnavailable`` means nothing was applied.
        """

    @abstractmethod
    def get_covariate_counts(self, experiment_id: str, phase: int) -> dict[str, CovariateCounts]:
        """CUPED sums per variant (only variants with a user with a covariate appear)."""

    @abstractmethod
    def get_metric_covariate_counts(
        self, experiment_id: str, phase: int
    ) -> dict[str, dict[str, CovariateCounts]]:
        """Named metrics' CUPED sums, ``{metric: {variant: CovariateCounts}}`` (only
        metrics and variants with a user with a covariate of that metric appear)."""

    @abstractmethod
    def get_weighted_counts(self, experiment_id: str, phase: int) -> dict[str, WeightedCounts]:
        """Probability-weighted sums per variant (only variants with data appear)."""

    # --- leases --------------------------------------------------------------------------

    @abstractmethod
    def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Hold the lease ``name`` for ``ttl`` from now, atomically, if it is free, expired
        or held by ``holder`` already (which renews it). ``True`` when ``holder`` holds it
        afterwards, ``False`` when another holder does."""

    @abstractmethod
    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up if ``holder`` holds it (otherwise nothing changes)."""


def covariate_item(item: CovariateItem) -> tuple[str, float, str | None]:
    """``(user, value, metric)`` of a backfill item (``metric`` ``None``: the primary).

    >>> covariate_item(("u1", 2.0)), covariate_item(("u1", 2.0, "spend"))
    (('u1', 2.0, None), ('u1', 2.0, 'spend'))
    """
    if len(item) == 3:
        return item[0], item[1], item[2]
    return item[0], item[1], None
