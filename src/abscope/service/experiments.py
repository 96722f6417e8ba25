"""The experiments' use cases: create, read, list, change, add a metric, move through their
life, delete.

A draft changes in every field it was created with; once started, only the fields of a
running experiment (name, description, traffic, weights, design, forced variants) do.

A change is saved with its audit entry and a new version; ``on_change`` is called after
every change the store accepted, so that this process's routing snapshot is rebuilt at
once (the facade passes :meth:`abscope.serving.Serving.invalidate`). An experiment in a
layer holds a slice of it from its start (computed by ``allocate_layer``), extended
and never moved when its traffic is ramped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ValidationError

from abscope import schemas
from abscope.assignment import LayerSlice, allocate_layer
from abscope.errors import Conflict, InvalidInput
from abscope.models import (
    ALLOWED_TRANSITIONS,
    WEIGHT_TOLERANCE,
    AuditEntry,
    Experiment,
    Metric,
    MetricType,
    Status,
    Variant,
)
from abscope.service._clock import Clock, utc_now
from abscope.storage.base import Store

__all__ = ["Action", "Experiments"]

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


def _invalid(error: ValidationError, prefix: str = "") -> InvalidInput:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "body"
    return InvalidInput(f"{prefix}{location}", first["msg"].removeprefix("Value error, "))


def _unchanged() -> None:
    """The default ``on_change``: nothing caches experiments."""


class Experiments:
    """The experiments' use cases over one store. Safe to share between threads.

    Parameters
    ----------
    store
        Where experiments live.
    clock
        The wall clock of ``created_at``, ``updated_at``, ``started_at`` and the audit.
    rng
        Draws the suffix of a generated experiment id.
    on_change
        Called after each change the store accepted (a save or a delete).
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock = utc_now,
        rng: np.random.Generator | None = None,
        on_change: Callable[[], None] = _unchanged,
    ) -> None:
        self.store = store
        self._clock = clock
        self._rng = rng if rng is not None else np.random.default_rng()
        self._on_change = on_change

    def create(
        self, request: schemas.CreateExperimentRequest, *, by: str | None = None
    ) -> Experiment:
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
                metric_type=_metric_type(request),
                allocation=request.allocation,
                layer=request.layer,
                sticky=request.sticky,
                sequential=request.sequential,
                min_relative_lift=request.min_relative_lift,
                power=request.power,
                forced_variants=request.forced_variants,
                metrics=request.metrics or [],
                metric_correction=request.metric_correction,
                audit=[AuditEntry(at=now, action="create", changes=_by(by))],
            )
        except ValidationError as error:
            raise _invalid(error) from None
        self.store.create_experiment(experiment)
        return experiment

    def get(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(experiment_id)

    def list_experiments(self, status: Status | None = None) -> list[Experiment]:
        return self.store.list_experiments(status)

    def patch(
        self,
        experiment_id: str,
        request: schemas.PatchExperimentRequest,
        *,
        by: str | None = None,
    ) -> Experiment:
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
        if request.forced_variants is not None and request.forced_variants != (
            current.forced_variants
        ):
            changes["forced_variants"] = request.forced_variants
            audit["forced_variants"] = request.forced_variants
        self._draft_changes(current, request, changes, audit)
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
        updated = self._save(current, changes, "update", audit | _by(by))
        return updated

    def _draft_changes(
        self,
        current: Experiment,
        request: schemas.PatchExperimentRequest,
        changes: dict[str, Any],
        audit: dict[str, Any],
    ) -> None:
        """Add the draft-only fields of ``request`` that differ from ``current`` to
        ``changes`` and ``audit`` (each as ``{"from", "to"}``, in JSON form).

        Raises
        ------
        Conflict
            One is given and ``current`` is no longer a draft.
        """
        given = [
            name
            for name in _DRAFT_ONLY
            if getattr(request, name) is not None
            or (name == "layer" and name in request.model_fields_set)
        ]
        if given and current.status != Status.DRAFT:
            raise Conflict(
                f"{', '.join(given)} can change only in draft; {current.id} is"
                f" {current.status.value}"
            )
        for name in given:
            value = getattr(request, name)
            if value == getattr(current, name):
                continue
            changes[name] = value
            audit[name] = {
                "from": _plain(getattr(current, name)),
                "to": _plain(value),
            }

    def add_metric(
        self, experiment_id: str, metric: Metric, *, by: str | None = None
    ) -> Experiment:
        """Declare a secondary or guardrail metric, in draft, running or paused.

        Audited as ``metric_added`` with the metric; saved as every change is (a concurrent
        change is a ``Conflict``). Its counts start with its first event: events sent
        before it was declared were refused, not kept.

        Raises
        ------
        InvalidInput
            ``role`` is primary: the primary is fixed at creation.
        Conflict
            The experiment has ended, or already has a metric of that name (the implicit
            primary's ``converted`` or ``value`` included).
        """
        if metric.role == "primary":
            raise InvalidInput(
                "role",
                "a metric added later is secondary or guardrail: the primary metric is"
                " declared when the experiment is created",
            )
        current = self.store.get_experiment(experiment_id)
        if current.status in (Status.COMPLETED, Status.STOPPED):
            raise Conflict(
                f"experiment {experiment_id} is {current.status.value}; metrics can be added"
                " in draft, running or paused"
            )
        if current.metric(metric.name) is not None:
            raise Conflict(f"experiment {experiment_id} has a metric named {metric.name!r}")
        declared = metric.model_dump(mode="json")
        return self._save(
            current,
            {"metrics": [*current.metrics, metric]},
            "metric_added",
            {"metric": declared} | _by(by),
        )

    def transition(
        self,
        experiment_id: str,
        action: Action,
        winner: str | None = None,
        *,
        by: str | None = None,
    ) -> Experiment:
        """Move the experiment by ``action``; ``by`` names who did it in the audit entry
        (the role of the API key that asked, when keys are set)."""
        current = self.store.get_experiment(experiment_id)
        changes, audit = self._transition(current, action, winner)
        return self._save(current, changes, action, audit | _by(by))

    def record(
        self,
        current: Experiment,
        entries: Sequence[tuple[str, dict[str, Any]]],
        *,
        action: Action | None = None,
        by: str | None = None,
    ) -> Experiment:
        """Append audit ``entries`` (action, changes) to ``current`` as it was read, then
        move it by ``action`` if given, in one save.

        The save is a compare-and-set on ``current.version``: ``Conflict`` when the
        experiment changed since it was read (re-read it and decide again). ``by`` names who
        made the transition in its audit entry (the guardrail monitor).
        """
        now = self._clock()
        extra = [AuditEntry(at=now, action=name, changes=dict(c)) for name, c in entries]
        if action is None:
            if not extra:
                return current
            return self._save(current, {}, extra[-1].action, extra[-1].changes, before=extra[:-1])
        changes, audit = self._transition(current, action, None)
        if by is not None:
            audit["by"] = by
        return self._save(current, changes, action, audit, before=extra)

    def _transition(
        self, current: Experiment, action: Action, winner: str | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The changes and audit of ``action`` on ``current``; ``Conflict`` if not allowed."""
        experiment_id = current.id
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
        return changes, audit

    def delete(self, experiment_id: str) -> None:
        current = self.store.get_experiment(experiment_id)
        if current.status != Status.DRAFT:
            raise Conflict(f"only drafts can be deleted; {experiment_id} is {current.status}")
        self.store.delete_experiment(experiment_id)
        self._on_change()

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
        self,
        current: Experiment,
        changes: dict[str, Any],
        action: str,
        audit: dict[str, Any],
        *,
        before: Sequence[AuditEntry] = (),
    ) -> Experiment:
        now = self._clock()
        data = current.model_dump()
        data.update(changes)
        data["updated_at"] = now
        data["version"] = current.version + 1
        entry = AuditEntry(at=now, action=action, changes=audit)
        data["audit"] = [*data["audit"], *before, entry]
        try:
            updated = Experiment.model_validate(data)
        except ValidationError as error:
            raise _invalid(error) from None
        self.store.save_experiment(updated)
        self._on_change()
        return updated


_DRAFT_ONLY = ("variants", "metric_type", "allocation", "layer", "sticky", "sequential", "metrics")
"""Fields of a patch that a draft alone may change: the rest of what the create form sets."""


def _plain(value: object) -> object:
    """``value`` as it is written in the audit (models and lists of them as JSON data)."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def _metric_type(request: schemas.CreateExperimentRequest) -> MetricType:
    """The request's metric type; with metrics and none given, the primary's."""
    if request.metrics and "metric_type" not in request.model_fields_set:
        primary = next((m for m in request.metrics if m.role == "primary"), None)
        if primary is not None:
            return "continuous" if primary.kind == "mean" else "binary"
    return request.metric_type


def _by(actor: str | None) -> dict[str, Any]:
    """An audit entry's ``by``: who made the change, when it is known."""
    return {} if actor is None else {"by": actor}
