"""The use cases: create and change experiments, route users, log events, analyse results.

:class:`ExperimentService` takes a :class:`~abscope.storage.base.Store`, a clock and an rng
(both injected, so tests control time and randomness). The HTTP routes, the CLI and the SDK
call it; it calls the pure packages (``assignment``, ``bandits``, ``stats``) and the store.

Routing never reads an experiment's configuration from the store per request: a
:class:`RoutingTable` of the running and paused experiments is rebuilt at most once per
``config_refresh_seconds`` (1 s by default), and at once after a change made through this
process, so every worker sees a change within that interval. Bandit experiments read their
shared per-variant counts at most once per ``bandit_refresh_seconds``.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from abscope import charts, reports, schemas
from abscope.assignment import (
    LayerSlice,
    allocate_layer,
    assign,
)
from abscope.bandits import (
    EpsilonGreedyConfig,
    FixedSplitConfig,
    PolicyConfig,
    ThompsonConfig,
    UCB1Config,
    simulate,
)
from abscope.config import Settings
from abscope.errors import Conflict, InvalidInput, NotFound, StorageUnavailable
from abscope.jsonable import to_jsonable
from abscope.models import (
    ALLOWED_TRANSITIONS,
    VALUE_EVENT_ID_SUFFIX,
    WEIGHT_TOLERANCE,
    AuditEntry,
    Event,
    EventKind,
    Experiment,
    Status,
    Variant,
)
from abscope.routing import CompiledExperiment, RoutingTable, compile_experiment
from abscope.sdk_config import ConfigDocument, config_document
from abscope.serving import STICKY_PHASE, Serving
from abscope.stats.planner import (
    DurationPlan,
    PowerGrid,
    SensitivityCurve,
    plan_duration,
    power_grid,
    sensitivity_curve,
)
from abscope.storage.base import EventResult, Store

__all__ = ["Action", "CheckedBatch", "ExperimentService", "STICKY_PHASE", "batch_result"]


_log = logging.getLogger("abscope.service")
Clock = Callable[[], datetime]
Action = Literal["start", "pause", "resume", "complete", "stop"]

_ACTION_TARGET: dict[str, Status] = {
    "start": Status.RUNNING,
    "pause": Status.PAUSED,
    "resume": Status.RUNNING,
    "complete": Status.COMPLETED,
    "stop": Status.STOPPED,
}
_ACTION_FROM: dict[str, frozenset[Status]] = {
    "start": frozenset({Status.DRAFT}),
    "pause": frozenset({Status.RUNNING}),
    "resume": frozenset({Status.PAUSED}),
    "complete": frozenset({Status.RUNNING, Status.PAUSED}),
    "stop": frozenset({Status.RUNNING, Status.PAUSED}),
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _invalid(error: ValidationError, prefix: str = "") -> InvalidInput:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "body"
    return InvalidInput(f"{prefix}{location}", first["msg"].removeprefix("Value error, "))


@dataclass(frozen=True, slots=True)
class CheckedBatch:
    """A checked ``/events`` batch: the ``events`` that passed, at positions ``slots`` of
    the batch, and the message of each rejected position."""

    size: int
    events: list[Event]
    slots: list[int]
    rejected: dict[int, str]

    def outcomes(self, stored: Sequence[EventResult]) -> list[EventResult | str]:
        """Each position's outcome: the store's result, or the rejection's message."""
        outcomes: list[EventResult | str] = [""] * self.size
        for index, message in self.rejected.items():
            outcomes[index] = message
        for index, result in zip(self.slots, stored, strict=True):
            outcomes[index] = result
        return outcomes

    def response(self, stored: Sequence[EventResult]) -> schemas.BatchResponse:
        """The answer once the store applied ``events`` with ``stored``."""
        results = [
            schemas.BatchResult(status="rejected", error=o)
            if isinstance(o, str)
            else batch_result(o)
            for o in self.outcomes(stored)
        ]
        return schemas.BatchResponse(
            results=results,
            counted=sum(r.status == "counted" for r in results),
            duplicates=sum(r.status == "duplicate" for r in results),
            rejected=sum(r.status in ("rejected", "variant_mismatch") for r in results),
            unavailable=sum(r.status == "unavailable" for r in results),
        )


class ExperimentService:
    """abscope's use cases over one store. Safe to share between threads."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Clock = _utc_now,
        monotonic: Callable[[], float] | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock
        # Cache ages use a monotonic clock unless the caller injects one: a wall clock that
        # steps back would otherwise freeze the routing snapshot.
        self._monotonic = monotonic or (
            time.monotonic if clock is _utc_now else lambda: clock().timestamp()
        )
        self._rng = rng if rng is not None else np.random.default_rng()
        self.serving = Serving(
            store, settings, clock=clock, monotonic=self._monotonic, rng=self._rng
        )
        self._config_document: tuple[RoutingTable, ConfigDocument] | None = None

    # --- experiments ---------------------------------------------------------------------

    def create(self, request: schemas.CreateExperimentRequest) -> Experiment:
        now = self._clock()
        experiment_id = request.id or self._new_id(request.name)
        try:
            experiment = Experiment(
                id=experiment_id,
                name=request.name,
                description=request.description,
                variants=request.variant_specs(),
                created_at=now,
                updated_at=now,
                traffic_percentage=request.traffic_percentage,
                min_sample_size=request.min_sample_size,
                confidence_level=request.confidence_level,
                metric_type=request.metric_type,
                allocation=request.allocation,
                layer=request.layer,
                sticky=request.sticky,
                sequential=request.sequential,
                min_relative_lift=request.min_relative_lift,
                power=request.power,
                forced_variants=request.forced_variants,
                audit=[AuditEntry(at=now, action="create")],
            )
        except ValidationError as error:
            raise _invalid(error) from None
        self.store.create_experiment(experiment)
        return experiment

    def get(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(experiment_id)

    def list_experiments(self, status: Status | None = None) -> list[Experiment]:
        return self.store.list_experiments(status)

    def patch(self, experiment_id: str, request: schemas.PatchExperimentRequest) -> Experiment:
        current = self.store.get_experiment(experiment_id)
        if current.status in (Status.COMPLETED, Status.STOPPED):
            raise Conflict(f"experiment {experiment_id} is {current.status}; it cannot change")
        changes: dict[str, Any] = {}
        audit: dict[str, Any] = {}
        for name in ("name", "description", "min_sample_size", "confidence_level", "power"):
            value = getattr(request, name)
            if value is not None and value != getattr(current, name):
                changes[name] = value
                audit[name] = {"from": getattr(current, name), "to": value}
        # The pre-registered minimum lift can be cleared by an explicit null.
        if "min_relative_lift" in request.model_fields_set:
            lift = request.min_relative_lift
            if lift != current.min_relative_lift:
                changes["min_relative_lift"] = lift
                audit["min_relative_lift"] = {"from": current.min_relative_lift, "to": lift}
        if request.forced_variants is not None:
            changes["forced_variants"] = request.forced_variants
            audit["forced_variants"] = request.forced_variants
        if request.traffic_percentage is not None:
            if request.traffic_percentage != current.traffic_percentage:
                changes["traffic_percentage"] = request.traffic_percentage
                if current.layer is not None and current.layer_intervals:
                    changes["layer_intervals"] = self._layer_intervals(
                        current, request.traffic_percentage
                    )
                audit["traffic_percentage"] = {
                    "from": current.traffic_percentage,
                    "to": request.traffic_percentage,
                }
        if request.weights is not None:
            variants = self._reweighted(current, request.weights)
            if variants != current.variants:
                changes["variants"] = variants
                audit["weights"] = {"from": current.weights, "to": request.weights}
                if current.status != Status.DRAFT:
                    # A new phase: earlier counts stay readable and are never mixed in.
                    changes["phase"] = current.phase + 1
                    audit["phase"] = {"from": current.phase, "to": current.phase + 1}
        if not changes:
            return current
        updated = self._save(current, changes, "update", audit)
        return updated

    def transition(
        self, experiment_id: str, action: Action, winner: str | None = None
    ) -> Experiment:
        current = self.store.get_experiment(experiment_id)
        target = _ACTION_TARGET[action]
        if current.status not in _ACTION_FROM[action] or target not in ALLOWED_TRANSITIONS.get(
            current.status, frozenset()
        ):
            allowed = sorted(s.value for s in ALLOWED_TRANSITIONS[current.status]) or ["none"]
            raise Conflict(
                f"cannot {action} an experiment that is {current.status.value}; allowed"
                f" transitions from {current.status.value}: {', '.join(allowed)}"
            )
        now = self._clock()
        changes: dict[str, Any] = {"status": target}
        audit: dict[str, Any] = {"status": {"from": current.status.value, "to": target.value}}
        if action == "start":
            changes["started_at"] = now
            if current.layer is not None:
                changes["layer_intervals"] = self._layer_intervals(
                    current, current.traffic_percentage
                )
        if target in (Status.COMPLETED, Status.STOPPED):
            changes["ended_at"] = now
        if winner is not None:
            if action != "complete":
                raise InvalidInput("winner", "a winner is given only when completing")
            if current.variant(winner) is None:
                raise InvalidInput("winner", f"{winner!r} is not a variant of {experiment_id}")
            changes["winner"] = winner
            audit["winner"] = winner
        return self._save(current, changes, action, audit)

    def delete(self, experiment_id: str) -> None:
        current = self.store.get_experiment(experiment_id)
        if current.status != Status.DRAFT:
            raise Conflict(f"only drafts can be deleted; {experiment_id} is {current.status}")
        self.store.delete_experiment(experiment_id)
        self._invalidate()

    # --- routing -------------------------------------------------------------------------

    def route(
        self, user_id: str, experiment_id: str | None = None, *, expose: bool = True
    ) -> schemas.RouteResponse:
        """Assign a user to one experiment, or to every running one they qualify for, and
        record the exposures (one store call). The HTTP layer runs the same steps, with the
        exposures of concurrent requests committed together."""
        plan = self.serving.plan(user_id, experiment_id, expose)
        body = self.serving.answer(plan, self.serving.record(plan))
        return schemas.RouteResponse.model_validate_json(body)

    def explain(self, experiment_id: str, user_id: str) -> dict[str, Any]:
        experiment = self.store.get_experiment(experiment_id)
        compiled = compile_experiment(experiment)
        sticky = (
            self.store.get_assignment(experiment.id, STICKY_PHASE, user_id)
            if experiment.sticky
            else None
        )
        decision = assign(
            compiled.config, user_id, sticky_variant=sticky, layer_slice=compiled.layer_slice
        )
        return {
            "experiment_id": experiment.id,
            "status": experiment.status.value,
            "phase": experiment.phase,
            "user_id": user_id,
            "variant_name": decision.variant,
            "reason": decision.reason,
            "probability": decision.probability,
            "traffic_percentage": experiment.traffic_percentage,
            "gate_bucket": decision.gate_bucket,
            "variant_bucket": decision.variant_bucket,
            "layer": experiment.layer,
            "layer_bucket": decision.layer_bucket,
            "layer_intervals": experiment.layer_intervals,
            "ranges": {
                name: list(bounds)
                for name, bounds in zip(compiled.config.variants, decision.ranges, strict=False)
            },
            "sticky": experiment.sticky,
            "forced": user_id in experiment.forced_variants,
            "allocation": experiment.allocation,
        }

    # --- events --------------------------------------------------------------------------

    def log(self, request: schemas.LogRequest) -> schemas.LogResponse:
        """Record what a user did (and their exposure, if it was not recorded yet)."""
        events = self.log_events(request)
        return self.log_outcome(request, events, self.store.record_events(events))

    def log_events_without_io(self, request: schemas.LogRequest) -> list[Event] | None:
        """:meth:`log_events` when its checks need no I/O (a usable snapshot, a hash-routed
        experiment), else ``None``: the HTTP layer then runs :meth:`log_events` in a thread."""
        table = self.serving.fresh_table()
        compiled = None if table is None else table.by_id.get(request.experiment_id)
        if compiled is None or compiled.experiment.sticky or not compiled.pure:
            return None
        return self.log_events(request)

    def log_events(self, request: schemas.LogRequest) -> list[Event]:
        """The events a ``/log`` call records, once the request is checked against the
        experiment (``Conflict`` when it contradicts the user's assignment)."""
        experiment, probability = self._check_log_target(
            request.experiment_id, request.user_id, request.variant_name
        )
        at = self._event_time(experiment, request.timestamp, "timestamp")
        kind: EventKind = "conversion" if request.converted else "exposure"
        user, variant = request.user_id, request.variant_name
        events = [
            self._event(experiment, user, variant, kind, probability, at, None, request.event_id)
        ]
        if request.value is not None:
            value_id = f"{request.event_id}{VALUE_EVENT_ID_SUFFIX}" if request.event_id else None
            events.append(
                self._event(
                    experiment,
                    request.user_id,
                    request.variant_name,
                    "value",
                    probability,
                    at,
                    request.value,
                    value_id,
                )  # fmt: skip
            )
        return events

    def log_outcome(
        self, request: schemas.LogRequest, events: list[Event], results: list[EventResult]
    ) -> schemas.LogResponse:
        """The answer to a ``/log`` call whose ``events`` the store applied with ``results``
        (a contradiction reads the user's first exposure: I/O). The events of one call
        belong to one experiment and are applied together: ``unavailable`` (a Redis
        Cluster node failed in a batch committed with other calls' events) means that
        none of them was."""
        if any(r.outcome == "unavailable" for r in results):
            raise StorageUnavailable(
                f"the store did not apply the events of a /log call to {request.experiment_id}",
                public="the store could not record the events",
            )
        if any(r.outcome == "variant_mismatch" for r in results):
            first = self.store.get_exposure(request.experiment_id, events[0].phase, request.user_id)
            raise Conflict(
                f"user {request.user_id} was exposed to {first}, not {request.variant_name}"
            )
        duplicate = all(r.outcome == "duplicate" for r in results)
        return schemas.LogResponse(
            status="duplicate" if duplicate else "counted",
            new_exposure=any(r.new_exposure for r in results),
            new_conversion=any(r.new_conversion for r in results),
        )

    def ingest(self, request: schemas.BatchRequest) -> schemas.BatchResponse:
        """Apply a batch: each event is checked, then all valid ones go in one store call."""
        batch = self.check_batch(request)
        return batch.response(self.store.record_events(batch.events))

    def check_batch_without_io(self, request: schemas.BatchRequest) -> CheckedBatch | None:
        """:meth:`check_batch` when it needs no I/O (a usable snapshot on which every event's
        experiment is hash-routed), else ``None``: the HTTP layer then runs
        :meth:`check_batch` in a thread."""
        table = self.serving.fresh_table()
        if table is None:
            return None
        by_id = table.by_id
        for experiment_id in {item.experiment_id for item in request.events}:
            compiled = by_id.get(experiment_id)
            if compiled is None or not compiled.pure:
                return None
        return self.check_batch(request, table)

    def check_batch(
        self, request: schemas.BatchRequest, table: RoutingTable | None = None
    ) -> CheckedBatch:
        """The events of a batch that pass their checks, and why each other one is rejected.

        Each event is checked as ``/log`` checks its call. Events of a hash-routed
        experiment on the snapshot are checked without I/O, at a few microseconds each;
        the rest (a sticky or bandit experiment, one that is not running) by the general
        check, which may read the store.
        """
        if len(request.events) > self.settings.max_batch_size:
            raise InvalidInput("events", f"at most {self.settings.max_batch_size} events per batch")
        now = self._clock()
        if table is None:
            table = self.serving.table()
        events: list[Event] = []
        slots: list[int] = []
        rejected: dict[int, str] = {}
        for index, item in enumerate(request.events):
            try:
                experiment, probability = self._check_log_target(
                    item.experiment_id, item.user_id, item.variant_name, table
                )
                if item.kind == "value" and item.value is None:
                    raise InvalidInput(f"events.{index}.value", "required for a value event")
                if item.kind != "value" and item.value is not None:
                    raise InvalidInput(f"events.{index}.value", f"not allowed for {item.kind}")
                at = now
                if item.timestamp is not None:
                    at = self._event_time(
                        experiment, item.timestamp, f"events.{index}.timestamp", now
                    )
                event = Event.trusted(
                    experiment.id, experiment.phase, item.user_id, item.variant_name, item.kind,
                    item.value, probability, at if at.tzinfo else at.replace(tzinfo=UTC),
                    item.event_id,
                )  # fmt: skip
            except (NotFound, Conflict, InvalidInput) as error:
                rejected[index] = error.message
                continue
            events.append(event)
            slots.append(index)
        return CheckedBatch(len(request.events), events, slots, rejected)

    def routing_config(self) -> ConfigDocument:
        """The SDK's routing configuration (:mod:`abscope.sdk_config`) of the current
        snapshot, built once per snapshot. Served from the last snapshot while the store is
        down, as routing is; ``StorageUnavailable`` only when there is none."""
        table = self.serving.table()
        cached = self._config_document
        if cached is None or cached[0] is not table:
            cached = (table, config_document(table))
            self._config_document = cached
        return cached[1]

    # --- analysis ------------------------------------------------------------------------

    def results(self, experiment_id: str, phase: int | None = None) -> dict[str, Any]:
        """The full analysis of a phase (the current one by default), compatible fields included."""
        experiment = self.store.get_experiment(experiment_id)
        chosen = _phase(experiment, phase)
        counts = self.store.get_counts(experiment.id, chosen)
        return reports.results_view(experiment, chosen, counts, self._clock())

    def timeseries(self, experiment_id: str, phase: int | None = None) -> dict[str, Any]:
        """Hourly cumulative counts, rates with intervals, and lift with its sequence."""
        experiment = self.store.get_experiment(experiment_id)
        chosen = _phase(experiment, phase)
        return reports.timeseries_view(experiment, self.store.get_timeseries(experiment.id, chosen))

    def calculate(self, request: schemas.CalculateRequest) -> dict[str, Any]:
        """The duration plan with the numbers behind its two charts."""
        plan, curve, grid = _plan(request)
        return {
            **to_jsonable(plan),
            "sensitivity": to_jsonable(curve),
            "power_grid": to_jsonable(grid),
        }

    # --- charts --------------------------------------------------------------------------

    def experiment_charts(self, experiment_id: str, phase: int | None = None) -> dict[str, Any]:
        """The detail page's four figures as Plotly JSON.

        The posteriors need only each variant's counts, so no analysis is run here: the page
        fetches the results separately, and analysing twice per page load is waste.
        """
        experiment = self.store.get_experiment(experiment_id)
        chosen = _phase(experiment, phase)
        series = reports.timeseries_view(
            experiment, self.store.get_timeseries(experiment.id, chosen)
        )
        summary = reports.variant_summary(experiment, self.store.get_counts(experiment.id, chosen))
        control = experiment.control.name
        return {
            "conversion": charts.figure_json(
                charts.conversion_over_time(series, experiment.metric_type, control=control)
            ),
            "lift": charts.figure_json(charts.lift_over_time(series, control=control)),
            "samples": charts.figure_json(charts.samples_over_time(series, control=control)),
            "posterior": charts.figure_json(charts.posteriors(summary)),
        }

    def plan_charts(self, request: schemas.CalculateRequest) -> dict[str, Any]:
        """The plan (as :meth:`calculate` gives it) with its sensitivity and power figures."""
        plan, curve, grid = _plan(request)
        return {
            "plan": {
                **to_jsonable(plan),
                "sensitivity": to_jsonable(curve),
                "power_grid": to_jsonable(grid),
            },
            "sensitivity": charts.figure_json(charts.sensitivity_chart(curve)),
            "power": charts.figure_json(
                charts.power_heatmap(grid, planned_samples=plan.control_samples)
            ),
        }

    def simulate_bandits(self, request: schemas.SimulateRequest) -> dict[str, Any]:
        """Regret of each allocation policy on the given true rates (seeded)."""
        policies: dict[str, PolicyConfig] = {
            "Epsilon-greedy": EpsilonGreedyConfig(),
            "UCB1": UCB1Config(),
            "Thompson": ThompsonConfig(),
            "Fixed split": FixedSplitConfig.uniform(len(request.true_rates)),
        }
        results = {
            name: simulate(policy, request.true_rates, request.horizon, request.runs, request.seed)
            for name, policy in policies.items()
        }
        return {
            "regret": charts.figure_json(charts.regret_chart(results)),
            "final_regret": {name: r.final_regret_mean for name, r in results.items()},
            "final_regret_se": {name: r.final_regret_se for name, r in results.items()},
        }

    # --- helpers -------------------------------------------------------------------------

    def _new_id(self, name: str) -> str:
        stem = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48] or "experiment"
        return f"{stem}-{int(self._rng.integers(16**6)):06x}"

    def _reweighted(self, current: Experiment, weights: dict[str, float]) -> list[Variant]:
        names = {v.name for v in current.variants}
        unknown = sorted(set(weights) - names)
        if unknown:
            raise InvalidInput("weights", f"unknown variants: {', '.join(unknown)}")
        missing = sorted(names - set(weights))
        if missing:
            raise InvalidInput("weights", f"a weight is needed for {', '.join(missing)}")
        total = math.fsum(weights.values())
        if not math.isfinite(total) or abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise InvalidInput("weights", f"must sum to 1 (within {WEIGHT_TOLERANCE}), got {total}")
        try:
            return [
                Variant.model_validate(v.model_dump() | {"weight": weights[v.name]})
                for v in current.variants
            ]
        except ValidationError as error:
            raise _invalid(error, "weights.") from None

    def _save(
        self, current: Experiment, changes: dict[str, Any], action: str, audit: dict[str, Any]
    ) -> Experiment:
        now = self._clock()
        data = current.model_dump()
        data.update(changes)
        data["updated_at"] = now
        data["version"] = current.version + 1
        data["audit"] = [*data["audit"], AuditEntry(at=now, action=action, changes=audit)]
        try:
            updated = Experiment.model_validate(data)
        except ValidationError as error:
            raise _invalid(error) from None
        self.store.save_experiment(updated)
        self._invalidate()
        return updated

    def _layer_intervals(
        self, experiment: Experiment, traffic_percentage: float
    ) -> list[tuple[float, float]]:
        """The experiment's slice of its layer at ``traffic_percentage``.

        Every experiment holding a slice (running or paused) passes its stored slice as
        ``previous``, this one included, so a ramp extends its slice and never drops users.
        """
        holders = [
            e
            for e in self.store.list_experiments()
            if e.layer == experiment.layer
            and e.id != experiment.id
            and e.status in (Status.RUNNING, Status.PAUSED)
        ]
        previous = [
            LayerSlice(e.id, tuple(e.layer_intervals))
            for e in [*holders, experiment]
            if e.layer_intervals
        ]
        try:
            slices = allocate_layer(
                [(e.id, e.traffic_percentage) for e in holders]
                + [(experiment.id, traffic_percentage)],
                previous=previous,
            )
        except ValueError as error:
            raise Conflict(f"layer {experiment.layer}: {error}") from None
        return list(slices[-1].intervals)

    def _invalidate(self) -> None:
        self.serving.invalidate()

    def _check_log_target(
        self,
        experiment_id: str,
        user_id: str,
        variant_name: str,
        table: RoutingTable | None = None,
    ) -> tuple[Experiment, float]:
        """The experiment and the assignment probability of an event, once it is checked
        against the user's assignment; ``table`` is the snapshot to check it on (a batch
        passes the one it read once), else the current one."""
        if table is None:
            table = self.serving.table()
        compiled = table.by_id.get(experiment_id)
        if compiled is None:
            status = self.store.get_experiment(experiment_id).status  # NotFound if absent
            raise Conflict(
                f"experiment {experiment_id} is {status.value}; events are accepted only while"
                " it is running or paused"
            )
        experiment = compiled.experiment
        if compiled.pure:
            return experiment, self._hashed_probability(compiled, user_id, variant_name)
        if variant_name not in compiled.answers:
            raise Conflict(f"{variant_name!r} is not a variant of {experiment_id}")
        if experiment.sticky:
            stored = self.store.get_assignment(experiment.id, STICKY_PHASE, user_id)
            if stored is not None:
                if stored != variant_name:
                    raise Conflict(
                        f"user {user_id} is assigned {stored} in {experiment_id},"
                        f" not {variant_name}"
                    )
                return experiment, self.serving.assignment_probability(
                    compiled, user_id, variant_name
                )
        if experiment.allocation == "fixed":
            assigned = compiled.router.choose(user_id)
            if assigned != variant_name:
                where = assigned or "no variant (not in the experiment's traffic)"
                raise Conflict(
                    f"user {user_id} is assigned {where} in {experiment_id}, not {variant_name}"
                )
        # Bandit assignments are random per request: the first exposure decides, and the
        # store refuses a later event for another variant.
        return experiment, self.serving.assignment_probability(compiled, user_id, variant_name)

    @staticmethod
    def _hashed_probability(compiled: CompiledExperiment, user_id: str, variant_name: str) -> float:
        """:meth:`_check_log_target` of a hash-routed experiment (``compiled.pure``): no I/O."""
        if variant_name not in compiled.answers:
            raise Conflict(f"{variant_name!r} is not a variant of {compiled.experiment.id}")
        assigned = compiled.router.choose(user_id)
        if assigned != variant_name:
            where = assigned or "no variant (not in the experiment's traffic)"
            raise Conflict(
                f"user {user_id} is assigned {where} in {compiled.experiment.id},"
                f" not {variant_name}"
            )
        if user_id in compiled.experiment.forced_variants:
            return 1.0
        return compiled.probability[variant_name]

    def _event_time(
        self,
        experiment: Experiment,
        timestamp: datetime | None,
        field: str,
        now: datetime | None = None,
    ) -> datetime:
        """When the event happened: ``timestamp`` (naive means UTC) or now.

        A time after now plus ``max_clock_skew_seconds``, or before the experiment was
        created, is refused: it cannot be the time of a real exposure or conversion, and
        far-future stamps would otherwise sit in the hourly series for good.
        """
        current = now or self._clock()
        if timestamp is None:
            return current
        at = timestamp if timestamp.utcoffset() is not None else timestamp.replace(tzinfo=UTC)
        skew = timedelta(seconds=self.settings.max_clock_skew_seconds)
        try:
            late = at - current > skew
        except OverflowError:  # pragma: no cover - aware datetimes subtract exactly
            late = True
        if late:
            raise InvalidInput(
                field,
                f"{at.isoformat()} is more than {skew.total_seconds():g} s in the future"
                f" (the service's clock says {current.isoformat()})",
            )
        created = experiment.created_at
        if created.utcoffset() is None:
            created = created.replace(tzinfo=UTC)
        if at < created:
            raise InvalidInput(
                field,
                f"{at.isoformat()} is before the experiment was created"
                f" ({experiment.created_at.isoformat()})",
            )
        return at

    def _event(
        self,
        experiment: Experiment,
        user_id: str,
        variant: str,
        kind: EventKind,
        probability: float,
        at: datetime,
        value: float | None,
        event_id: str | None,
    ) -> Event:
        """The event of a validated request's fields (``LogRequest`` or ``BatchEvent``),
        checked against ``experiment`` already: built without validating them again."""
        aware = at if at.tzinfo else at.replace(tzinfo=UTC)
        return Event.trusted(
            experiment.id, experiment.phase, user_id, variant, kind, value, probability, aware,
            event_id,
        )  # fmt: skip


def _phase(experiment: Experiment, phase: int | None) -> int:
    chosen = experiment.phase if phase is None else phase
    if not 0 <= chosen <= experiment.phase:
        raise InvalidInput(
            "phase",
            f"must be between 0 and {experiment.phase}",
            location="query",
            kind="phase_out_of_range",
        )
    return chosen


def _plan(request: schemas.CalculateRequest) -> tuple[DurationPlan, SensitivityCurve, PowerGrid]:
    try:
        plan = plan_duration(**request.model_dump())
    except ValueError as error:
        # The planner's messages start with the argument's name.
        raise InvalidInput(str(error).split(" ", 1)[0], str(error)) from None
    return plan, sensitivity_curve(plan), power_grid(plan)


_OUTCOME_ERRORS = {
    "variant_mismatch": "the user was first exposed to another variant",
    "unavailable": "not applied: the store failed after other events of the batch were"
    " applied; send this event again (with its event_id, a retry is counted once)",
}


def batch_result(result: EventResult) -> schemas.BatchResult:
    """The answer for one event the store applied with ``result``."""
    return schemas.BatchResult(
        status=result.outcome,
        error=_OUTCOME_ERRORS.get(result.outcome),
        new_exposure=result.new_exposure,
        new_conversion=result.new_conversion,
    )
