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
from dataclasses import dataclass, field
from typing import Any

from abscope.assignment.config import AssignmentConfig
from abscope.assignment.layers import LayerSlice
from abscope.assignment.router import Router

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


@dataclass(frozen=True, slots=True)
class LocalConfig:
    """Every experiment of one configuration version (``etag``), and the running ones in
    the server's ``/route`` order."""

    etag: str | None = None
    experiments: dict[str, LocalExperiment] = field(default_factory=dict)
    running: tuple[LocalExperiment, ...] = ()


def parse_config(body: bytes | str, etag: str | None = None) -> LocalConfig:
    """Compile a configuration document.

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
            experiments[experiment_id] = _experiment(experiment_id, item)
        except (KeyError, TypeError, ValueError) as error:
            _log.warning("experiment %s cannot be routed locally (%s)", experiment_id, error)
    running = tuple(experiments[i] for i in document.get("running", ()) if i in experiments)
    return LocalConfig(etag, experiments, running)


def _experiment(experiment_id: str, item: dict[str, Any]) -> LocalExperiment:
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
        return LocalExperiment(experiment_id, status, serve=served, reason=reason)
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
    return LocalExperiment(
        experiment_id,
        status,
        phase=int(item["phase"]),
        mode=mode,
        router=router,
        models=models,
        control=control,
        outside_reason="not_in_layer_slice" if layer is not None else "not_in_traffic",
        serve=served,
        reason=reason,
    )
