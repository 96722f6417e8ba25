"""The routing snapshot: running and paused experiments compiled for fast assignment.

:class:`RoutingTable` is what a worker routes from. It is rebuilt from the store at most once
per refresh interval (see :mod:`abscope.service`), so routing never reads an experiment's
configuration per request. Pure: no I/O.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from abscope import schemas
from abscope.assignment import AssignmentConfig, LayerSlice, Router
from abscope.bandits import EpsilonGreedyConfig, PolicyConfig, ThompsonConfig, UCB1Config
from abscope.models import Experiment, Status

__all__ = [
    "CompiledExperiment",
    "RoutingTable",
    "compile_experiment",
    "policy_for",
    "route_response",
]

_log = logging.getLogger("abscope.routing")


@dataclass(frozen=True, slots=True)
class CompiledExperiment:
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
    by_id: dict[str, CompiledExperiment] = field(default_factory=dict)
    running: list[CompiledExperiment] = field(default_factory=list)

    @classmethod
    def build(cls, built_at: float, experiments: list[Experiment]) -> RoutingTable:
        by_id = _compile_all(experiments)
        running = [c for c in by_id.values() if c.experiment.status == Status.RUNNING]
        return cls(built_at, by_id, running)


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
    return CompiledExperiment(
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


def route_response(chosen: list[schemas.Assignment]) -> schemas.RouteResponse:
    first = chosen[0] if chosen else None
    return schemas.RouteResponse(
        experiment_id=first.experiment_id if first else None,
        variant_name=first.variant_name if first else None,
        model_id=first.model_id if first else None,
        assignments=chosen,
    )
