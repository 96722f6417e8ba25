"""Serving: route users from the routing snapshot, and record their exposures.

:class:`Serving` is the routing half of the service. It keeps, per worker process:

* the :class:`~abscope.routing.RoutingTable`, rebuilt from the store at most once per
  ``config_refresh_seconds`` (and at once after a change made through this process);
* each bandit experiment's allocation, recomputed from the shared counts at most once per
  ``bandit_refresh_seconds``;
* a bounded set of the users whose exposure it has recorded, so a returning user costs no
  store call;
* the store's health: after a failed store call, routing stops calling the store; every
  ``store_retry_seconds`` a background ping asks whether it is back, so the service
  recovers by itself and no request waits on a dead store.

A route is decided in two steps, so that the HTTP layer can commit the exposures of many
concurrent requests in one store call (group commit): :meth:`Serving.plan` (or
:meth:`Serving.plan_without_io`, on the event loop) decides and lists the exposures to
record; :meth:`Serving.record` writes them; :meth:`Serving.answer` writes the body.

When the store is down
----------------------
Routing answers from the last snapshot it has, however old, and never waits on the store
again until ``store_retry_seconds`` have passed. Hash-routed experiments are served as
usual. A sticky user whose stored variant cannot be read gets the variant the hash gives
with the current weights (the same as the stored one unless the weights changed since the
user was first assigned), and nothing is stored. A bandit experiment draws from the last
allocation this worker computed (the configured weights if it has none). None of these
users is counted (``exposure_status: store_unavailable``). Only a worker that has never read
the configuration answers 503.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from abscope import schemas
from abscope.assignment import Assignment, assign, assign_random
from abscope.bandits import PolicyConfig, allocation_probabilities
from abscope.config import Settings
from abscope.errors import StorageUnavailable
from abscope.models import Event, Experiment, VariantCounts
from abscope.routing import Answer, CompiledExperiment, RoutingTable, policy_for, route_json
from abscope.storage.base import EventResult, Store

__all__ = ["EXPOSED_CACHE_SIZE", "RoutePlan", "STICKY_PHASE", "Serving"]

STICKY_PHASE = 0
"""Sticky assignments are kept for the experiment's life, across phases: a later change of
weights (which opens a new phase for the counts) never moves a user already assigned."""

EXPOSED_CACHE_SIZE = 200_000
"""Users per worker whose recorded exposure is remembered (the set is emptied when full)."""

_log = logging.getLogger("abscope.serving")


@dataclass(slots=True)
class RoutePlan:
    """A routing decision before its exposures are recorded.

    ``chosen`` holds each answer with its exposure status so far; ``exposures`` the events
    to record and ``slots`` the index in ``chosen`` of each.
    """

    chosen: list[tuple[Answer, schemas.ExposureStatus]] = field(default_factory=list)
    exposures: list[Event] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)
    compiled: list[CompiledExperiment] = field(default_factory=list)


class Serving:
    """Routing and exposure recording over one store. Safe to share between threads."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float],
        rng: np.random.Generator,
    ) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock
        self._monotonic = monotonic
        self._rng = rng
        self._lock = threading.Lock()
        self._table: RoutingTable | None = None
        self._dirty = True
        self._down = False
        self._down_until = -float("inf")
        self._probing = False
        self._bandit_cache: dict[tuple[str, int], tuple[float, list[float]]] = {}
        self._exposed: dict[tuple[str, int, str], str] = {}

    # --- the store's health --------------------------------------------------------------

    def store_available(self) -> bool:
        """False from a failed store call until the store answers again.

        Requests never wait on a store that failed: every ``store_retry_seconds`` one probe
        (a ping, in a thread of its own) asks whether it is back.
        """
        if not self._down:
            return True
        if self._monotonic() >= self._down_until and not self._probing:
            self._probing = True
            threading.Thread(target=self._probe, name="abscope-store-probe", daemon=True).start()
        return False

    def store_failed(self, error: StorageUnavailable) -> None:
        if not self._down:
            _log.warning("the store failed; serving from the last snapshot: %s", error.message)
        self._down = True
        self._down_until = self._monotonic() + self.settings.store_retry_seconds

    def store_answered(self) -> None:
        if self._down:
            _log.warning("the store answers again")
        self._down = False

    def _probe(self) -> None:
        try:
            self.store.ping()
        except StorageUnavailable:
            self._down_until = self._monotonic() + self.settings.store_retry_seconds
        else:
            self.store_answered()
        finally:
            self._probing = False

    # --- the snapshot --------------------------------------------------------------------

    def invalidate(self) -> None:
        """Rebuild the snapshot on the next request (a change was made here)."""
        self._dirty = True

    def fresh_table(self) -> RoutingTable | None:
        """The snapshot when it can be used without reading the store, else ``None``."""
        table = self._table
        if table is None:
            return None
        if (
            self._dirty
            or self._monotonic() - table.built_at >= self.settings.config_refresh_seconds
        ):
            return None if self.store_available() else table
        return table

    def table(self) -> RoutingTable:
        """The snapshot, rebuilt when it is older than the refresh interval.

        While the store cannot be read, the last snapshot is returned however old; with none
        at all, ``StorageUnavailable`` is raised.
        """
        table = self.fresh_table()
        if table is not None:
            return table
        with self._lock:
            table = self.fresh_table()
            if table is not None:
                return table
            try:
                experiments = self.store.list_experiments()
            except StorageUnavailable as error:
                self.store_failed(error)
                if self._table is None:
                    raise
                return self._table
            self.store_answered()
            self._dirty = False
            self._table = RoutingTable.build(self._monotonic(), experiments)
            return self._table

    def snapshot_age(self) -> float:
        """Seconds since the snapshot was read from the store, once it is refreshed when
        due, as :meth:`table` does; ``StorageUnavailable`` when there is none."""
        table = self.table()
        return max(0.0, self._monotonic() - table.built_at)

    # --- routing -------------------------------------------------------------------------

    def plan_without_io(
        self, user_id: str, experiment_id: str | None, expose: bool
    ) -> RoutePlan | None:
        """:meth:`plan` when it needs no I/O at all, else ``None``.

        That is when the snapshot can be used as it is and every candidate is routed by the
        hash alone (or not running). The HTTP layer answers such requests on the event loop
        and sends the rest (a stale snapshot, sticky or bandit experiments, unknown ids) to
        the thread pool.
        """
        table = self.fresh_table()
        if table is None:
            return None
        if experiment_id is not None:
            compiled = table.by_id.get(experiment_id)
            if compiled is None:
                inactive = table.inactive.get(experiment_id)
                if inactive is None:
                    return None
                return RoutePlan(chosen=[(inactive, "not_in_experiment")])
            if compiled.running and not compiled.pure:
                return None
            plan = RoutePlan()
            self._add(plan, compiled, user_id, expose, keep_outside=True)
            return plan
        plan = RoutePlan()
        for compiled in table.running:
            if not compiled.pure:
                return None
            self._add(plan, compiled, user_id, expose, keep_outside=False)
        return plan

    def plan(self, user_id: str, experiment_id: str | None, expose: bool) -> RoutePlan:
        """Decide a route: one experiment's answer, or every running one the user is in.

        ``NotFound`` for an unknown experiment id; ``StorageUnavailable`` only when the
        worker has no snapshot at all.
        """
        table = self.table()
        if experiment_id is not None:
            compiled = table.by_id.get(experiment_id)
            if compiled is None:
                inactive = table.inactive.get(experiment_id)
                if inactive is None:
                    # Created (or started) in another worker since the snapshot, or unknown.
                    experiment = self.store.get_experiment(experiment_id)  # NotFound if absent
                    self.invalidate()
                    table = self.table()
                    compiled = table.by_id.get(experiment.id)
                    inactive = table.inactive.get(experiment.id)
                if compiled is None:
                    assert inactive is not None
                    return RoutePlan(chosen=[(inactive, "not_in_experiment")])
            candidates = [compiled]
        else:
            candidates = table.running
        plan = RoutePlan()
        for compiled in candidates:
            if compiled.pure or not compiled.running:
                self._add(plan, compiled, user_id, expose, keep_outside=experiment_id is not None)
                continue
            decision, degraded = self._decide(compiled, user_id)
            if decision.variant is None:
                if experiment_id is not None:
                    plan.chosen.append((compiled.outside, "not_in_experiment"))
                continue
            variant = decision.variant
            if degraded:
                plan.chosen.append((compiled.answers[variant], "store_unavailable"))
                continue
            probability = (
                decision.probability
                if decision.reason == "bandit" and decision.probability is not None
                else self.assignment_probability(compiled, user_id, variant)
            )
            self._expose(plan, compiled, user_id, variant, probability, expose)
        return plan

    def record(self, plan: RoutePlan) -> list[str | None] | None:
        """Record the plan's exposures; see :meth:`record_exposures`."""
        return self.record_exposures(plan.exposures) if plan.exposures else []

    def record_exposures(self, events: Sequence[Event]) -> list[str | None] | None:
        """Write exposures in one store call: per event, the variant the user is recorded
        in (the event's, or the one of the user's first exposure), or ``None`` for an event
        the store did not apply. ``None`` for all of them when the store is down."""
        if not events:
            return []
        if not self.store_available():
            return None
        try:
            results = self.store.record_events(events)
        except StorageUnavailable as error:
            self.store_failed(error)
            return None
        return self._recorded(events, results, self._first_exposure)

    async def record_exposures_async(self, events: Sequence[Event]) -> list[str | None] | None:
        """:meth:`record_exposures` on the event loop (the store's asyncio client, or a
        thread for a store without one)."""
        if not events:
            return []
        if not self.store_available():
            return None
        try:
            results = await self.store.record_events_async(events)
        except StorageUnavailable as error:
            self.store_failed(error)
            return None
        mismatched = [
            e for e, r in zip(events, results, strict=True) if r.outcome == "variant_mismatch"
        ]
        firsts = {}
        if mismatched:  # rare: two requests for a new bandit user drew different arms
            found = await asyncio.to_thread(lambda: [self._first_exposure(e) for e in mismatched])
            firsts = {id(e): v for e, v in zip(mismatched, found, strict=True)}
        return self._recorded(events, results, lambda e: firsts.get(id(e)))

    def _first_exposure(self, event: Event) -> str | None:
        try:
            return self.store.get_exposure(event.experiment_id, event.phase, event.user_id)
        except StorageUnavailable:
            return None

    def _recorded(
        self,
        events: Sequence[Event],
        results: Sequence[EventResult],
        first_exposure: Callable[[Event], str | None],
    ) -> list[str | None]:
        self.store_answered()
        recorded: list[str | None] = []
        for event, result in zip(events, results, strict=True):
            variant: str | None = event.variant
            if result.outcome == "variant_mismatch":
                variant = first_exposure(event)  # the first exposure won
            elif result.outcome == "unavailable":
                variant = None
            if variant is not None:
                self._remember(event.experiment_id, event.phase, event.user_id, variant)
            recorded.append(variant)
        return recorded

    def answer(self, plan: RoutePlan, recorded: list[str | None] | None) -> bytes:
        """The ``/route`` body once the plan's exposures were recorded (or not)."""
        chosen = list(plan.chosen)
        for number, slot in enumerate(plan.slots):
            variant = None if recorded is None else recorded[number]
            answer, _ = chosen[slot]
            if variant is None:
                chosen[slot] = (answer, "store_unavailable")
                continue
            if variant != answer.assignment.variant_name:
                answers = plan.compiled[number].answers
                answer = answers.get(variant, answer)
            chosen[slot] = (answer, "recorded")
        return route_json(chosen)

    # --- decisions -----------------------------------------------------------------------

    def _add(
        self,
        plan: RoutePlan,
        compiled: CompiledExperiment,
        user_id: str,
        expose: bool,
        *,
        keep_outside: bool,
    ) -> None:
        """Route a hash-routed (or not running) experiment."""
        if compiled.fallback is not None:
            plan.chosen.append((compiled.fallback, "not_in_experiment"))
            return
        variant = compiled.router.choose(user_id)
        if variant is None:
            if keep_outside:
                plan.chosen.append((compiled.outside, "not_in_experiment"))
            return
        forced = compiled.experiment.forced_variants
        probability = 1.0 if forced and user_id in forced else compiled.probability[variant]
        self._expose(plan, compiled, user_id, variant, probability, expose)

    def _expose(
        self,
        plan: RoutePlan,
        compiled: CompiledExperiment,
        user_id: str,
        variant: str,
        probability: float,
        expose: bool,
    ) -> None:
        answer = compiled.answers[variant]
        if not expose:
            plan.chosen.append((answer, "not_requested"))
            return
        experiment = compiled.experiment
        if self._exposed.get((experiment.id, experiment.phase, user_id)) == variant:
            plan.chosen.append((answer, "recorded"))
            return
        plan.slots.append(len(plan.chosen))
        plan.chosen.append((answer, "not_requested"))
        plan.compiled.append(compiled)
        plan.exposures.append(
            Event.exposure(
                experiment.id,
                experiment.phase,
                user_id,
                variant,
                max(probability, 1e-9),
                self._clock(),
            )
        )

    def _remember(self, experiment_id: str, phase: int, user_id: str, variant: str) -> None:
        if len(self._exposed) >= EXPOSED_CACHE_SIZE:
            self._exposed.clear()
        self._exposed[experiment_id, phase, user_id] = variant

    def _decide(self, compiled: CompiledExperiment, user_id: str) -> tuple[Assignment, bool]:
        """A sticky or bandit decision, and whether the store failed on the way."""
        experiment = compiled.experiment
        policy = policy_for(experiment)
        config, piece = compiled.config, compiled.layer_slice
        known: str | None = None
        degraded = False
        if experiment.sticky or policy is not None:
            known = self._exposed.get((experiment.id, experiment.phase, user_id))
        if known is None and self.store_available():
            try:
                if experiment.sticky:
                    known = self.store.get_assignment(experiment.id, STICKY_PHASE, user_id)
                elif policy is not None:
                    # A bandit user keeps the variant of their first exposure in the phase.
                    known = self.store.get_exposure(experiment.id, experiment.phase, user_id)
            except StorageUnavailable as error:
                self.store_failed(error)
                degraded = True
        elif known is None:
            degraded = True
        if policy is None or known is not None:
            decision = assign(config, user_id, sticky_variant=known, layer_slice=piece)
        else:
            allocation = self._bandit_allocation(experiment, policy)
            decision = assign_random(config, user_id, self._rng, allocation, layer_slice=piece)
        if experiment.sticky and decision.variant is not None and known is None and not degraded:
            try:
                stored = self.store.assign_if_absent(
                    experiment.id, STICKY_PHASE, user_id, decision.variant
                )
            except StorageUnavailable as error:
                self.store_failed(error)
                return decision, True
            if stored != decision.variant:
                decision = assign(config, user_id, sticky_variant=stored, layer_slice=piece)
        return decision, degraded

    def _bandit_allocation(self, experiment: Experiment, policy: PolicyConfig) -> list[float]:
        """The policy's allocation for the shared counts, recomputed at most once a refresh.

        Thompson sampling's exact allocation is a numerical integral (milliseconds), so it is
        computed once per snapshot of the counts, not per request. While the store is down
        the last allocation is kept (the configured weights when there is none).
        """
        now = self._monotonic()
        key = (experiment.id, experiment.phase)
        cached = self._bandit_cache.get(key)
        if cached is not None and now - cached[0] < self.settings.bandit_refresh_seconds:
            return cached[1]
        fallback = cached[1] if cached is not None else [v.weight for v in experiment.variants]
        if not self.store_available():
            return fallback
        try:
            counts = self.store.get_counts(experiment.id, experiment.phase)
        except StorageUnavailable as error:
            self.store_failed(error)
            return fallback
        names = [v.name for v in experiment.variants]
        pulls = np.array([counts.get(n, VariantCounts()).samples for n in names], float)
        rewards = np.array([counts.get(n, VariantCounts()).conversions for n in names], float)
        probabilities = [float(p) for p in allocation_probabilities(policy, pulls, rewards)]
        self._bandit_cache[key] = (now, probabilities)
        return probabilities

    def assignment_probability(
        self, compiled: CompiledExperiment, user_id: str, variant: str
    ) -> float:
        """The probability with which the user was given ``variant``, recorded with the
        exposure so that analysis can weight adaptive or ramped traffic.

        1 for a forced user; weight × traffic share for hash routing; for a bandit, the
        allocation in force (the same shared snapshot routing uses, at most a second old)
        times the traffic share.
        """
        experiment = compiled.experiment
        if user_id in experiment.forced_variants:
            return 1.0
        policy = policy_for(experiment)
        if policy is None:
            return compiled.probability[variant]
        share = compiled.probability[variant] / experiment.weights[variant]
        allocation = self._bandit_allocation(experiment, policy)
        index = compiled.config.variants.index(variant)
        return max(allocation[index] * share, 1e-9)  # the floor keeps it above 0 anyway
