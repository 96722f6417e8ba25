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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from abscope import charts, schemas
from abscope.assignment import (
    Assignment,
    AssignmentConfig,
    LayerSlice,
    Router,
    allocate_layer,
    assign,
    assign_random,
)
from abscope.bandits import (
    EpsilonGreedyConfig,
    FixedSplitConfig,
    PolicyConfig,
    ThompsonConfig,
    UCB1Config,
    allocation_probabilities,
    simulate,
)
from abscope.config import Settings
from abscope.errors import Conflict, InvalidInput, NotFound
from abscope.jsonable import to_jsonable
from abscope.models import (
    ALLOWED_TRANSITIONS,
    WEIGHT_TOLERANCE,
    AuditEntry,
    Event,
    Experiment,
    Status,
    Variant,
    VariantCounts,
)
from abscope.stats import AnalysisOptions, MeanStats, ProportionStats, analyze_experiment
from abscope.stats.means import mean_interval
from abscope.stats.planner import (
    DurationPlan,
    PowerGrid,
    SensitivityCurve,
    plan_duration,
    power_grid,
    sensitivity_curve,
)
from abscope.stats.proportions import relative_lift_ci, wilson_interval
from abscope.stats.sequential import sequential_path
from abscope.storage.base import EventResult, Store

__all__ = ["Action", "ExperimentService", "RoutingTable", "STICKY_PHASE"]

STICKY_PHASE = 0
"""Sticky assignments are kept for the experiment's life, across phases: a later change of
weights (which opens a new phase for the counts) never moves a user already assigned."""

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
class _Compiled:
    """One routable experiment, compiled once per snapshot.

    ``pure`` marks experiments routed by the hash alone (fixed allocation, not sticky):
    routing them needs no store I/O. ``answers`` holds the response entry per variant and
    ``probability`` the assignment probability per variant (weight × traffic share).
    """

    experiment: Experiment
    config: AssignmentConfig
    router: Router
    layer_slice: LayerSlice | None
    pure: bool
    answers: dict[str, schemas.Assignment]
    probability: dict[str, float]


@dataclass
class RoutingTable:
    """A snapshot of the running and paused experiments, compiled for routing.

    ``running`` lists the running ones oldest first, then by id: the documented order of
    ``/route`` without an experiment id.
    """

    built_at: float
    by_id: dict[str, _Compiled] = field(default_factory=dict)
    running: list[_Compiled] = field(default_factory=list)

    @classmethod
    def build(cls, built_at: float, experiments: list[Experiment]) -> RoutingTable:
        by_id = _compile_all(experiments)
        running = [c for c in by_id.values() if c.experiment.status == Status.RUNNING]
        return cls(built_at, by_id, running)


def _compile(experiment: Experiment) -> _Compiled:
    piece = (
        LayerSlice(experiment.id, tuple(experiment.layer_intervals))
        if experiment.layer is not None
        else None
    )
    config = AssignmentConfig(
        experiment_id=experiment.id,
        variants=tuple(v.name for v in experiment.variants),
        weights=tuple(v.weight for v in experiment.variants),
        traffic_percentage=experiment.traffic_percentage,
        variant_seed=experiment.phase,
        layer=experiment.layer,
        forced=dict(experiment.forced_variants),
    )
    share = piece.width if piece is not None else config.traffic_fraction
    return _Compiled(
        experiment=experiment,
        config=config,
        router=Router(config, layer_slice=piece),
        layer_slice=piece,
        pure=experiment.allocation == "fixed" and not experiment.sticky,
        answers={
            v.name: schemas.Assignment(
                experiment_id=experiment.id, variant_name=v.name, model_id=v.model_id
            )
            for v in experiment.variants
        },
        probability={v.name: v.weight * share for v in experiment.variants},
    )


def _compile_all(experiments: list[Experiment]) -> dict[str, _Compiled]:
    """Compile every experiment; one that cannot be routed is logged and left out, so it
    never takes routing down for the others."""
    compiled: dict[str, _Compiled] = {}
    for experiment in experiments:
        try:
            compiled[experiment.id] = _compile(experiment)
        except ValueError:
            _log.exception("experiment %s cannot be routed; it is skipped", experiment.id)
    return compiled


def _policy(experiment: Experiment) -> PolicyConfig | None:
    if experiment.allocation == "epsilon_greedy":
        return EpsilonGreedyConfig(epsilon=0.1, floor=0.01)
    if experiment.allocation == "ucb1":
        return UCB1Config(floor=0.01)
    if experiment.allocation == "thompson":
        return ThompsonConfig(floor=0.01)
    return None


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
        self._lock = threading.Lock()
        self._table: RoutingTable | None = None
        self._bandit_cache: dict[tuple[str, int], tuple[float, list[float]]] = {}

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
        for name in ("name", "description", "min_sample_size", "confidence_level"):
            value = getattr(request, name)
            if value is not None and value != getattr(current, name):
                changes[name] = value
                audit[name] = {"from": getattr(current, name), "to": value}
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

    def route(self, user_id: str, experiment_id: str | None = None) -> schemas.RouteResponse:
        """Assign a user to one experiment, or to every running one they qualify for."""
        table = self._routing_table()
        if experiment_id is not None:
            compiled = table.by_id.get(experiment_id)
            if compiled is None or compiled.experiment.status != Status.RUNNING:
                status = self.store.get_experiment(experiment_id).status  # NotFound if absent
                raise Conflict(f"experiment {experiment_id} is {status.value}, not running")
            candidates = [compiled]
        else:
            candidates = table.running
        chosen = []
        for compiled in candidates:
            if compiled.pure:
                variant = compiled.router.choose(user_id)
            else:
                variant = self._decide(compiled, user_id).variant
            if variant is not None:
                chosen.append(compiled.answers[variant])
        return _route_response(chosen)

    def route_without_io(
        self, user_id: str, experiment_id: str | None = None
    ) -> schemas.RouteResponse | None:
        """:meth:`route` when it needs no I/O at all, else ``None``.

        That is when the routing snapshot is fresh and every candidate is routed by the hash
        alone. The HTTP layer answers such requests on the event loop and sends the rest
        (a stale snapshot, sticky or bandit experiments, errors) to the thread pool.
        """
        table = self._table
        if (
            table is None
            or self._monotonic() - table.built_at >= self.settings.config_refresh_seconds
        ):
            return None
        if experiment_id is not None:
            compiled = table.by_id.get(experiment_id)
            if (
                compiled is None
                or not compiled.pure
                or compiled.experiment.status != Status.RUNNING
            ):
                return None
            variant = compiled.router.choose(user_id)
            return _route_response([] if variant is None else [compiled.answers[variant]])
        chosen = []
        for compiled in table.running:
            if not compiled.pure:
                return None
            variant = compiled.router.choose(user_id)
            if variant is not None:
                chosen.append(compiled.answers[variant])
        return _route_response(chosen)

    def explain(self, experiment_id: str, user_id: str) -> dict[str, Any]:
        experiment = self.store.get_experiment(experiment_id)
        compiled = _compile(experiment)
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
        experiment, probability = self._check_log_target(
            request.experiment_id, request.user_id, request.variant_name
        )
        at = request.timestamp or self._clock()
        kind = "conversion" if request.converted else "exposure"
        user, variant = request.user_id, request.variant_name
        events = [
            self._event(experiment, user, variant, kind, probability, at, None, request.event_id)
        ]
        if request.value is not None:
            value_id = f"{request.event_id}#value" if request.event_id else None
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
        results = self.store.record_events(events)
        if any(r.outcome == "variant_mismatch" for r in results):
            first = self.store.get_exposure(experiment.id, experiment.phase, request.user_id)
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
        if len(request.events) > self.settings.max_batch_size:
            raise InvalidInput("events", f"at most {self.settings.max_batch_size} events per batch")
        now = self._clock()
        prepared: list[tuple[int, Event]] = []
        results: list[schemas.BatchResult | None] = [None] * len(request.events)
        for index, item in enumerate(request.events):
            try:
                experiment, probability = self._check_log_target(
                    item.experiment_id, item.user_id, item.variant_name
                )
                if item.kind == "value" and item.value is None:
                    raise InvalidInput(f"events.{index}.value", "required for a value event")
                if item.kind != "value" and item.value is not None:
                    raise InvalidInput(f"events.{index}.value", f"not allowed for {item.kind}")
                event = self._event(
                    experiment, item.user_id, item.variant_name, item.kind, probability,
                    item.timestamp or now, item.value, item.event_id,
                )  # fmt: skip
            except (NotFound, Conflict, InvalidInput) as error:
                results[index] = schemas.BatchResult(status="rejected", error=error.message)
                continue
            prepared.append((index, event))
        stored = self.store.record_events([event for _, event in prepared])
        for (index, _), outcome in zip(prepared, stored, strict=True):
            results[index] = _batch_result(outcome)
        final = [r for r in results if r is not None]
        return schemas.BatchResponse(
            results=final,
            counted=sum(r.status == "counted" for r in final),
            duplicates=sum(r.status == "duplicate" for r in final),
            rejected=sum(r.status in ("rejected", "variant_mismatch") for r in final),
        )

    # --- analysis ------------------------------------------------------------------------

    def results(self, experiment_id: str, phase: int | None = None) -> dict[str, Any]:
        experiment = self.store.get_experiment(experiment_id)
        chosen = experiment.phase if phase is None else phase
        if not 0 <= chosen <= experiment.phase:
            raise InvalidInput("phase", f"must be between 0 and {experiment.phase}")
        counts = self.store.get_counts(experiment.id, chosen)
        analysis = analyze_experiment(
            self._stats(experiment, counts),
            experiment.weights,
            control=experiment.control.name,
            options=AnalysisOptions(
                alpha=1.0 - experiment.confidence_level, sequential=experiment.sequential
            ),
        )
        first = analysis.comparisons[0]
        control = analysis.variant(experiment.control.name)
        treatment = analysis.variant(first.variant)
        daily = self._daily_users(experiment, counts)
        remaining = analysis.decision.remaining_samples
        below_minimum = [v.name for v in analysis.variants if v.n < experiment.min_sample_size]
        decision = to_jsonable(analysis.decision)
        if below_minimum and decision["verdict"] in ("winner", "no_difference"):
            # The experiment's own floor: no verdict before every variant has its minimum.
            short = {v.name: experiment.min_sample_size - v.n for v in analysis.variants}
            remaining = sum(max(0, n) for n in short.values())
            decision |= {
                "verdict": "keep_running",
                "winner": None,
                "remaining_samples": remaining,
                "message": f"Keep running: {', '.join(below_minimum)} have fewer than"
                f" {experiment.min_sample_size:,} users, the experiment's minimum sample size."
                f" So far: {analysis.decision.message}",
            }
        if experiment.status in (Status.COMPLETED, Status.STOPPED):
            ended = "Completed" if experiment.status == Status.COMPLETED else "Stopped"
            if experiment.winner:
                ended += f" with {experiment.winner} chosen as the winner"
            decision |= {
                "remaining_samples": None,
                "message": f"{ended}. The analysis at the end: {decision['message']}",
            }
            remaining = None
        if experiment.sequential:
            seed_p = first.sequential_adjusted_p_value
            seed_significant = first.sequential_significant
            seed_interval = [first.sequential.ci_lower, first.sequential.ci_upper]
        else:
            seed_p = first.adjusted_p_value
            seed_significant = first.significant
            seed_interval = [first.absolute.ci.lower, first.absolute.ci.upper]
        return {
            "experiment_id": experiment.id,
            "status": experiment.status.value,
            "phase": chosen,
            "metric_type": experiment.metric_type,
            # The seed's fields: the control against the first treatment.
            "control_samples": control.n,
            "treatment_samples": treatment.n,
            "control_conversion_rate": control.mean,
            "treatment_conversion_rate": treatment.mean,
            "relative_lift": first.relative.estimate,
            # p_value, is_significant and confidence_interval agree with each other: with
            # sequential testing on they are the always-valid p-value and confidence
            # sequence of the absolute difference; otherwise the fixed-horizon ones.
            "p_value": seed_p,
            "is_significant": seed_significant,
            "confidence_interval": seed_interval,
            "inference": "sequential" if experiment.sequential else "fixed_horizon",
            # The full analysis.
            "variants": to_jsonable(analysis.variants),
            "comparisons": to_jsonable(analysis.comparisons),
            "srm": to_jsonable(analysis.srm),
            "decision": {
                **decision,
                "remaining_days": (
                    0
                    if remaining == 0
                    else math.ceil(remaining / daily)
                    if remaining and daily
                    else None
                ),
                "daily_users": daily,
                "below_min_sample_size": below_minimum,
            },
        }

    def timeseries(self, experiment_id: str, phase: int | None = None) -> dict[str, Any]:
        experiment = self.store.get_experiment(experiment_id)
        chosen = experiment.phase if phase is None else phase
        hours = self.store.get_timeseries(experiment.id, chosen)
        names = [v.name for v in experiment.variants]
        running = {name: VariantCounts() for name in names}
        points: list[dict[str, Any]] = []
        for hour in hours:
            for name, delta in hour.variants.items():
                if name in running:
                    running[name] = _add(running[name], delta)
            points.append({"hour": hour.hour.isoformat(), "variants": dict(running)})
        series: dict[str, Any] = {"hours": [p["hour"] for p in points], "variants": {}}
        level = experiment.confidence_level
        for name in names:
            cumulative = [p["variants"][name] for p in points]
            if experiment.metric_type == "binary":
                stats = [ProportionStats(c.samples, c.conversions) for c in cumulative]
                intervals = [wilson_interval(s, confidence=level) for s in stats]
                values = [s.rate for s in stats]
            else:
                means = [MeanStats(c.samples, c.value_sum, c.value_sum_squares) for c in cumulative]
                values = [m.mean for m in means]
                intervals = [mean_interval(m, confidence=level) for m in means]
            series["variants"][name] = {
                "samples": [c.samples for c in cumulative],
                "conversions": [c.conversions for c in cumulative],
                "value": values,
                "ci_lower": [i.lower for i in intervals],
                "ci_upper": [i.upper for i in intervals],
            }
        series["lift"] = self._lift_series(experiment, points)
        return to_jsonable(series)  # type: ignore[no-any-return]

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
        """The detail page's four figures as Plotly JSON."""
        results = self.results(experiment_id, phase)  # checks the phase
        series = self.timeseries(experiment_id, phase)
        control = next(v["name"] for v in results["variants"] if v["is_control"])
        return {
            "conversion": charts.figure_json(
                charts.conversion_over_time(series, results["metric_type"], control=control)
            ),
            "lift": charts.figure_json(charts.lift_over_time(series, control=control)),
            "samples": charts.figure_json(charts.samples_over_time(series, control=control)),
            "posterior": charts.figure_json(charts.posteriors(results)),
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
        with self._lock:
            self._table = None

    def _routing_table(self) -> RoutingTable:
        now = self._monotonic()
        table = self._table
        if table is not None and now - table.built_at < self.settings.config_refresh_seconds:
            return table
        with self._lock:
            table = self._table
            if table is None or now - table.built_at >= self.settings.config_refresh_seconds:
                live = [
                    e
                    for e in self.store.list_experiments()
                    if e.status in (Status.RUNNING, Status.PAUSED)
                ]
                table = RoutingTable.build(now, live)
                self._table = table
            return table

    def _decide(self, compiled: _Compiled, user_id: str) -> Assignment:
        experiment = compiled.experiment
        policy = _policy(experiment)
        if policy is None and not experiment.sticky:
            variant = compiled.router.choose(user_id)
            share = compiled.config.traffic_fraction
            if compiled.layer_slice is not None:
                share = compiled.layer_slice.width
            chosen = experiment.variant(variant) if variant is not None else None
            return Assignment(
                experiment_id=experiment.id,
                user_id=user_id,
                variant=variant,
                index=compiled.config.variants.index(variant) if variant is not None else None,
                reason="hash" if variant is not None else "not_in_traffic",
                probability=chosen.weight * share if chosen is not None else None,
                traffic_share=share,
            )
        sticky = (
            self.store.get_assignment(experiment.id, STICKY_PHASE, user_id)
            if experiment.sticky
            else None
        )
        if policy is None or sticky is not None:
            decision = assign(
                compiled.config, user_id, sticky_variant=sticky, layer_slice=compiled.layer_slice
            )
        else:
            decision = assign_random(
                compiled.config, user_id, self._rng, self._bandit_probabilities(experiment, policy),
                layer_slice=compiled.layer_slice,
            )  # fmt: skip
        if experiment.sticky and decision.variant is not None and sticky is None:
            stored = self.store.assign_if_absent(
                experiment.id, STICKY_PHASE, user_id, decision.variant
            )
            if stored != decision.variant:
                decision = assign(
                    compiled.config, user_id, sticky_variant=stored,
                    layer_slice=compiled.layer_slice,
                )  # fmt: skip
        return decision

    def _bandit_probabilities(self, experiment: Experiment, policy: PolicyConfig) -> list[float]:
        """The policy's allocation for the shared counts, recomputed at most once a refresh.

        Thompson sampling's exact allocation is a numerical integral (milliseconds), so it is
        computed once per snapshot of the counts, not per request.
        """
        now = self._monotonic()
        key = (experiment.id, experiment.phase)
        cached = self._bandit_cache.get(key)
        if cached is None or now - cached[0] >= self.settings.bandit_refresh_seconds:
            counts = self.store.get_counts(experiment.id, experiment.phase)
            names = [v.name for v in experiment.variants]
            pulls = np.array([counts.get(n, VariantCounts()).samples for n in names], float)
            rewards = np.array([counts.get(n, VariantCounts()).conversions for n in names], float)
            probabilities = [float(p) for p in allocation_probabilities(policy, pulls, rewards)]
            cached = (now, probabilities)
            self._bandit_cache[key] = cached
        return cached[1]

    def _check_log_target(
        self, experiment_id: str, user_id: str, variant_name: str
    ) -> tuple[Experiment, float]:
        table = self._routing_table()
        compiled = table.by_id.get(experiment_id)
        if compiled is None:
            status = self.store.get_experiment(experiment_id).status  # NotFound if absent
            raise Conflict(
                f"experiment {experiment_id} is {status.value}; events are accepted only while"
                " it is running or paused"
            )
        experiment = compiled.experiment
        if experiment.variant(variant_name) is None:
            raise Conflict(f"{variant_name!r} is not a variant of {experiment_id}")
        if experiment.sticky:
            stored = self.store.get_assignment(experiment.id, STICKY_PHASE, user_id)
            if stored is not None:
                if stored != variant_name:
                    raise Conflict(
                        f"user {user_id} is assigned {stored} in {experiment_id},"
                        f" not {variant_name}"
                    )
                return experiment, 1.0
        if experiment.allocation != "fixed":
            # Bandit assignments are random per request: the first exposure decides, and the
            # store refuses a later event for another variant.
            return experiment, 1.0
        assigned = compiled.router.choose(user_id)
        if assigned != variant_name:
            where = assigned or "no variant (not in the experiment's traffic)"
            raise Conflict(
                f"user {user_id} is assigned {where} in {experiment_id}, not {variant_name}"
            )
        return experiment, compiled.probability[variant_name]

    def _event(
        self,
        experiment: Experiment,
        user_id: str,
        variant: str,
        kind: str,
        probability: float,
        at: datetime,
        value: float | None,
        event_id: str | None,
    ) -> Event:
        try:
            return Event.model_validate(
                {
                    "experiment_id": experiment.id,
                    "phase": experiment.phase,
                    "user_id": user_id,
                    "variant": variant,
                    "kind": kind,
                    "value": value,
                    "probability": probability,
                    "at": at if at.tzinfo else at.replace(tzinfo=UTC),
                    "event_id": event_id,
                }
            )
        except ValidationError as error:
            raise _invalid(error) from None

    def _stats(
        self, experiment: Experiment, counts: dict[str, VariantCounts]
    ) -> dict[str, ProportionStats] | dict[str, MeanStats]:
        rows = {v.name: counts.get(v.name, VariantCounts()) for v in experiment.variants}
        if experiment.metric_type == "binary":
            return {n: ProportionStats(c.samples, c.conversions) for n, c in rows.items()}
        return {n: MeanStats(c.samples, c.value_sum, c.value_sum_squares) for n, c in rows.items()}

    def _daily_users(
        self, experiment: Experiment, counts: dict[str, VariantCounts]
    ) -> float | None:
        if experiment.started_at is None:
            return None
        end = experiment.ended_at or self._clock()
        days = (end - experiment.started_at).total_seconds() / 86_400
        total = sum(c.samples for c in counts.values())
        if days <= 0 or total == 0:
            return None
        return total / max(days, 1 / 24)

    def _lift_series(self, experiment: Experiment, points: list[dict[str, Any]]) -> dict[str, Any]:
        """Relative lift of each treatment over time, with its CI and confidence sequence."""
        control = experiment.control.name
        out: dict[str, Any] = {}
        for variant in experiment.variants:
            if variant.name == control or experiment.metric_type != "binary":
                continue
            estimates, variances, ns, lows, highs = [], [], [], [], []
            for point in points:
                c, t = point["variants"][control], point["variants"][variant.name]
                pc, pt = (
                    ProportionStats(c.samples, c.conversions),
                    ProportionStats(t.samples, t.conversions),
                )
                lift = relative_lift_ci(pc, pt, confidence=experiment.confidence_level)
                ok = lift.reason is None
                estimates.append(lift.estimate)
                variances.append(lift.std_error**2 if ok else 0.0)
                ns.append(c.samples + t.samples)
                lows.append(lift.ci.lower)
                highs.append(lift.ci.upper)
            path = (
                sequential_path(estimates, variances, ns, alpha=1 - experiment.confidence_level)
                if points
                else ()
            )
            out[variant.name] = {
                "lift": estimates,
                "ci_lower": lows,
                "ci_upper": highs,
                "cs_lower": [r.ci_lower for r in path],
                "cs_upper": [r.ci_upper for r in path],
            }
        return out


def _plan(request: schemas.CalculateRequest) -> tuple[DurationPlan, SensitivityCurve, PowerGrid]:
    try:
        plan = plan_duration(**request.model_dump())
    except ValueError as error:
        # The planner's messages start with the argument's name.
        raise InvalidInput(str(error).split(" ", 1)[0], str(error)) from None
    return plan, sensitivity_curve(plan), power_grid(plan)


def _route_response(chosen: list[schemas.Assignment]) -> schemas.RouteResponse:
    first = chosen[0] if chosen else None
    return schemas.RouteResponse(
        experiment_id=first.experiment_id if first else None,
        variant_name=first.variant_name if first else None,
        model_id=first.model_id if first else None,
        assignments=chosen,
    )


def _add(a: VariantCounts, b: VariantCounts) -> VariantCounts:
    return VariantCounts(
        samples=a.samples + b.samples,
        conversions=a.conversions + b.conversions,
        value_sum=a.value_sum + b.value_sum,
        value_sum_squares=a.value_sum_squares + b.value_sum_squares,
        inverse_probability_sum=a.inverse_probability_sum + b.inverse_probability_sum,
    )


def _batch_result(result: EventResult) -> schemas.BatchResult:
    return schemas.BatchResult(
        status=result.outcome,
        error=(
            "the user was first exposed to another variant"
            if result.outcome == "variant_mismatch"
            else None
        ),
        new_exposure=result.new_exposure,
        new_conversion=result.new_conversion,
    )
