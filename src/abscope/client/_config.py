"""The server's routing configuration (``GET /sdk/config``, see :mod:`abscope.sdk_config`)
compiled for in-process decisions with the server's own assignment code.

The assignment code lives once, in :mod:`abscope.assignment` (standard library only): this
module builds the same :class:`~abscope.assignment.AssignmentConfig`,
:class:`~abscope.assignment.LayerSlice` and :class:`~abscope.assignment.Router` from the
document that the server builds from its experiments, so the client and the server give
every user the same variant. Pure: no I/O.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from abscope.assignment.config import AssignmentConfig
from abscope.assignment.layers import LayerSlice
from abscope.assignment.router import Router
from abscope.client._decisions import Decision

__all__ = ["SUPPORTED_FORMAT", "LocalConfig", "LocalExperiment", "ServedVariant", "parse_config"]

SUPPORTED_FORMAT = 1

_log = logging.getLogger("abscope.client")


@dataclass(frozen=True, slots=True)
class ServedVariant:
    """A variant and the model it serves."""

    variant_name: str
    model_id: str


@dataclass(frozen=True, slots=True)
class LocalExperiment:
    """One experiment as the client routes it.

    ``serve`` is set while the experiment is not running: everyone gets it, and ``reason``
    says why (``paused``, ``completed``, ``stopped``, ``draft``). A running experiment has a
    ``router`` when its ``mode`` is ``hash``; ``sticky`` and ``bandit`` ones are asked of
    the server.

    Every decision it can give is made once, here (a decision does not name the user):
    ``served`` for everyone while it is not running, ``outside`` for a user outside its
    traffic or slice, and per variant ``queued``, ``already_queued`` and ``not_requested``.
    """

    id: str
    status: str
    phase: int = 0
    mode: str = "hash"
    router: Router | None = None
    models: dict[str, str] = field(default_factory=dict)
    control: ServedVariant | None = None
    outside_reason: str = "not_in_traffic"
    serve: ServedVariant | None = None
    reason: str | None = None
    served: Decision | None = None
    outside: Decision | None = None
    key: tuple[str, int] = ("", 0)  # (id, phase): where the client remembers exposures
    seen: set[str] = field(default_factory=set, compare=False)  # users queued in ``key``
    tags: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # per variant
    queued: dict[str, Decision] = field(default_factory=dict)
    already_queued: dict[str, Decision] = field(default_factory=dict)
    not_requested: dict[str, Decision] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LocalConfig:
    """Every experiment of one configuration version (``etag``), and the running ones in
    the server's ``/route`` order."""

    etag: str | None = None
    experiments: dict[str, LocalExperiment] = field(default_factory=dict)
    running: tuple[LocalExperiment, ...] = ()


def parse_config(
    body: bytes | str,
    etag: str | None = None,
    seen: Callable[[tuple[str, int]], set[str]] | None = None,
) -> LocalConfig:
    """Compile a configuration document; ``seen`` gives the set of users already exposed
    per (experiment, phase), which the experiment then carries (a new set by default).

    An experiment that cannot be compiled (a value this version does not understand) is
    left out with a warning, so the client asks the server about it instead.

    Raises
    ------
    ValueError
        The document is not JSON, or not of a format this client reads.
    """
    try:
        document = json.loads(body)
    except (TypeError, ValueError) as error:
        raise ValueError(f"the routing configuration is not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != SUPPORTED_FORMAT:
        found = document.get("format") if isinstance(document, dict) else None
        raise ValueError(
            f"the routing configuration has format {found!r}; this client reads"
            f" format {SUPPORTED_FORMAT}: upgrade the client"
        )
    experiments: dict[str, LocalExperiment] = {}
    for experiment_id, item in document.get("experiments", {}).items():
        try:
            experiments[experiment_id] = _experiment(experiment_id, item, seen)
        except (KeyError, TypeError, ValueError) as error:
            _log.warning("experiment %s cannot be routed locally (%s)", experiment_id, error)
    running = tuple(experiments[i] for i in document.get("running", ()) if i in experiments)
    return LocalConfig(etag, experiments, running)


def _experiment(
    experiment_id: str,
    item: dict[str, Any],
    seen: Callable[[tuple[str, int]], set[str]] | None,
) -> LocalExperiment:
    status = str(item["status"])
    serve = item.get("serve")
    served = None
    reason = None
    if serve is not None:
        served = ServedVariant(str(serve["variant_name"]), str(serve["model_id"]))
        reason = serve.get("reason")
    if "variants" not in item:  # draft, completed, stopped: the answer only
        if served is None:
            raise ValueError("an inactive experiment without an answer")
        decision = Decision(
            experiment_id, served.variant_name, served.model_id, False, reason, "local"
        )
        return LocalExperiment(experiment_id, status, serve=served, reason=reason, served=decision)
    variants = item["variants"]
    models = {str(v["name"]): str(v["model_id"]) for v in variants}
    control_name = str(item["control"])
    control = ServedVariant(control_name, models[control_name])
    layer = item.get("layer")
    mode = str(item["mode"])
    router = None
    if mode == "hash" and served is None:
        config = AssignmentConfig(
            experiment_id=experiment_id,
            variants=tuple(str(v["name"]) for v in variants),
            weights=tuple(float(v["weight"]) for v in variants),
            traffic_percentage=float(item["traffic_percentage"]),
            gate_seed=int(item["gate_seed"]),
            variant_seed=int(item["variant_seed"]),
            layer=layer,
            forced=dict(item.get("forced") or {}),
        )
        piece = (
            LayerSlice(
                experiment_id,
                tuple((float(lo), float(hi)) for lo, hi in item["layer_intervals"]),
            )
            if layer is not None
            else None
        )
        router = Router(config, layer_slice=piece)
    outside_reason = "not_in_layer_slice" if layer is not None else "not_in_traffic"
    key = (experiment_id, int(item["phase"]))

    def each(exposure: str) -> dict[str, Decision]:
        return {
            name: Decision(experiment_id, name, model, True, None, "local", exposure)
            for name, model in models.items()
        }

    return LocalExperiment(
        experiment_id,
        status,
        phase=int(item["phase"]),
        mode=mode,
        router=router,
        models=models,
        control=control,
        outside_reason=outside_reason,
        key=key,
        seen=seen(key) if seen is not None else set(),
        tags={name: (experiment_id, key[1], name) for name in models},
        serve=served,
        reason=reason,
        served=(
            Decision(experiment_id, served.variant_name, served.model_id, False, reason, "local")
            if served is not None
            else None
        ),
        outside=Decision(
            experiment_id, control.variant_name, control.model_id, False, outside_reason, "local"
        ),
        queued=each("queued"),
        already_queued=each("already_queued"),
        not_requested=each("not_requested"),
    )
