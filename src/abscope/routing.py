"""The routing snapshot: every experiment compiled for fast assignment, with its answers.

:class:`RoutingTable` is what a worker routes from. It is rebuilt from the store at most once
per refresh interval (see :mod:`abscope.service`), so routing never reads an experiment's
configuration per request, and it is kept, however old, while the store cannot be read, so
routing goes on from the last known configuration. Pure: no I/O.

Every answer a route can give is compiled once per snapshot, with its JSON members
(:class:`Answer`), so a request only picks answers and writes their exposure fields.

=====================  =====================================================================
experiment status      what ``/route`` with its id serves
=====================  =====================================================================
running                the user's variant (hash, sticky, bandit or forced); a user outside
                       the traffic or the layer's slice gets the control, ``in_experiment``
                       false, reason ``not_in_traffic`` / ``not_in_layer_slice``
paused                 everyone the control; reason ``paused``
completed              everyone the winner, or the control when none was chosen
stopped, draft         everyone the control
=====================  =====================================================================

Only running experiments count exposures.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from abscope import schemas
from abscope.assignment import AssignmentConfig, LayerSlice, Router
from abscope.bandits import EpsilonGreedyConfig, PolicyConfig, ThompsonConfig, UCB1Config
from abscope.models import Experiment, Metric, Status

__all__ = [
    "Answer",
    "CompiledExperiment",
    "RoutingTable",
    "compile_experiment",
    "fallback_answer",
    "policy_for",
    "route_json",
]

_log = logging.getLogger("abscope.routing")

_FALLBACK_REASON: dict[Status, schemas.NotInExperiment] = {
    Status.PAUSED: "paused",
    Status.COMPLETED: "completed",
    Status.STOPPED: "stopped",
    Status.DRAFT: "draft",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer of an experiment: the assignment, and its JSON members without the
    exposure fields (``"experiment_id":...,"reason":null``), ready to be written out."""

    assignment: schemas.Assignment
    members: bytes

    @classmethod
    def of(
        cls,
        experiment_id: str,
        variant_name: str,
        model_id: str,
        reason: schemas.NotInExperiment | None = None,
    ) -> Answer:
        assignment = schemas.Assignment(
            experiment_id=experiment_id,
            variant_name=variant_name,
            model_id=model_id,
            in_experiment=reason is None,
            reason=reason,
        )
        fields = assignment.model_dump(
            include={"experiment_id", "variant_name", "model_id", "in_experiment", "reason"}
        )
        members = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)[1:-1]
        return cls(assignment, members.encode())


@dataclass(frozen=True, slots=True)
class CompiledExperiment:
    """One routable experiment (running or paused), compiled once per snapshot.

    ``pure`` marks experiments routed by the hash alone (fixed allocation, not sticky):
    routing them needs no store I/O. ``answers`` holds the answer per variant, ``outside``
    the answer for a user outside the traffic, ``fallback`` the answer to everyone while
    the experiment is not running, and ``probability`` the assignment probability per
    variant (weight × traffic share). ``metrics`` holds every metric by name, the primary
    (declared or implicit) included: events naming a metric are checked against it.
    """

    experiment: Experiment
    config: AssignmentConfig
    router: Router
    layer_slice: LayerSlice | None
    pure: bool
    answers: dict[str, Answer]
    outside: Answer
    fallback: Answer | None
    probability: dict[str, float]
    metrics: dict[str, Metric] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.experiment.status == Status.RUNNING


@dataclass
class RoutingTable:
    """A snapshot of every experiment, compiled for routing.

    ``by_id`` holds the running and paused ones, ``inactive`` the answer of each draft,
    completed or stopped one, and ``running`` lists the running ones oldest first, then by
    id: the documented order of ``/route`` without an experiment id.
    """

    built_at: float
    by_id: dict[str, CompiledExperiment] = field(default_factory=dict)
    running: list[CompiledExperiment] = field(default_factory=list)
    inactive: dict[str, Answer] = field(default_factory=dict)

    @classmethod
    def build(cls, built_at: float, experiments: Sequence[Experiment]) -> RoutingTable:
        live = [e for e in experiments if e.status in (Status.RUNNING, Status.PAUSED)]
        by_id = _compile_all(live)
        running = [c for c in by_id.values() if c.running]
        inactive = {
            e.id: fallback_answer(e)
            for e in experiments
            if e.status not in (Status.RUNNING, Status.PAUSED)
        }
        return cls(built_at, by_id, running, inactive)


def fallback_answer(experiment: Experiment) -> Answer:
    """What everyone gets while ``experiment`` is not running: the winner of a completed
    experiment, else the control."""
    chosen = experiment.variant(experiment.winner) if experiment.winner else None
    variant = chosen if chosen is not None and experiment.status == Status.COMPLETED else None
    served = variant or experiment.control
    reason = _FALLBACK_REASON.get(experiment.status, "stopped")
    return Answer.of(experiment.id, served.name, served.model_id, reason)


def compile_experiment(experiment: Experiment) -> CompiledExperiment:
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
    control = experiment.control
    outside_reason: schemas.NotInExperiment = (
        "not_in_layer_slice" if piece is not None else "not_in_traffic"
    )
    return CompiledExperiment(
        experiment=experiment,
        config=config,
        router=Router(config, layer_slice=piece),
        layer_slice=piece,
        pure=experiment.allocation == "fixed" and not experiment.sticky,
        answers={v.name: Answer.of(experiment.id, v.name, v.model_id) for v in experiment.variants},
        outside=Answer.of(experiment.id, control.name, control.model_id, outside_reason),
        fallback=None if experiment.status == Status.RUNNING else fallback_answer(experiment),
        probability={v.name: v.weight * share for v in experiment.variants},
        metrics={m.name: m for m in experiment.all_metrics},
    )


def _compile_all(experiments: list[Experiment]) -> dict[str, CompiledExperiment]:
    """Compile every experiment; one that cannot be routed is logged and left out, so it
    never takes routing down for the others."""
    compiled: dict[str, CompiledExperiment] = {}
    for experiment in experiments:
        try:
            compiled[experiment.id] = compile_experiment(experiment)
        except ValueError:
            _log.exception("experiment %s cannot be routed; it is skipped", experiment.id)
    return compiled


def policy_for(experiment: Experiment) -> PolicyConfig | None:
    if experiment.allocation == "epsilon_greedy":
        return EpsilonGreedyConfig(epsilon=0.1, floor=0.01)
    if experiment.allocation == "ucb1":
        return UCB1Config(floor=0.01)
    if experiment.allocation == "thompson":
        return ThompsonConfig(floor=0.01)
    return None


_RECORDED = {
    status: f',"exposure_recorded":{"true" if status == "recorded" else "false"},'
    f'"exposure_status":"{status}"'.encode()
    for status in ("recorded", "not_requested", "not_in_experiment", "store_unavailable")
}
_NOBODY = (
    b'{"experiment_id":null,"variant_name":null,"model_id":null,"in_experiment":false,'
    b'"reason":null,"exposure_recorded":false,"exposure_status":"not_in_experiment",'
    b'"assignments":[]}'
)


def route_json(chosen: Sequence[tuple[Answer, schemas.ExposureStatus]]) -> bytes:
    """The ``/route`` body (a :class:`~abscope.schemas.RouteResponse`) for these answers:
    the compatible fields from the first, then the list of all of them.

    >>> answer = Answer.of("exp", "control", "m1")
    >>> schemas.RouteResponse.model_validate_json(route_json([(answer, "recorded")])).model_id
    'm1'
    """
    if not chosen:
        return _NOBODY
    first, status = chosen[0]
    items = b",".join(b"{" + a.members + _RECORDED[s] + b"}" for a, s in chosen)
    return b"{" + first.members + _RECORDED[status] + b',"assignments":[' + items + b"]}"
