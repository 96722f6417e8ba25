"""The routing configuration that the SDK evaluates locally: the snapshot as a JSON document.

``GET /sdk/config`` serves :func:`config_document` of the worker's routing snapshot, with an
ETag, so a client refreshes it with ``If-None-Match`` and pays a 304 while nothing changed.
The client (:mod:`abscope.client`) builds the same :class:`~abscope.assignment.AssignmentConfig`
and :class:`~abscope.assignment.LayerSlice` from it that :func:`abscope.routing.compile_experiment`
builds, and routes with the same :class:`~abscope.assignment.Router`, so both give the same
variant to every user (``tests/client/test_parity.py`` checks 100,000 users).

The document, format 1::

    {"format": 1,
     "running": ["ranker-v2", ...],          # /route's order without an experiment id
     "experiments": {
       "ranker-v2": {                        # running or paused: everything to route
         "status": "running", "phase": 0,
         "mode": "hash" | "sticky" | "bandit",
         "variants": [{"name": "control", "model_id": "v1", "weight": 0.5}, ...],
         "control": "control",
         "traffic_percentage": 100.0, "gate_seed": 0, "variant_seed": 0,
         "layer": null, "layer_intervals": [[0.0, 0.25]],
         "forced": {"qa-1": "treatment"},
         "serve": null},                     # running: route; else what everyone gets
       "old-test": {"status": "completed",   # draft, completed, stopped: the answer only
         "serve": {"variant_name": "treatment", "model_id": "v2", "reason": "completed"}}}}

Only ``hash`` experiments are evaluated locally; ``sticky`` and ``bandit`` ones need the
store (the user's stored variant, the shared counts), so the client asks the server.
Weights and intervals are written with ``repr`` precision, so they parse back bit for bit.
Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from abscope.routing import Answer, CompiledExperiment, RoutingTable

__all__ = ["CONFIG_FORMAT", "ConfigDocument", "config_document"]

CONFIG_FORMAT = 1


class ConfigDocument:
    """The document's bytes and its strong ETag (a digest of the bytes)."""

    __slots__ = ("body", "etag")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'

    def matches(self, if_none_match: str | None) -> bool:
        """Whether an ``If-None-Match`` header names this version (``*`` matches any)."""
        if not if_none_match:
            return False
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or self.etag in tags


def config_document(table: RoutingTable) -> ConfigDocument:
    """The SDK's routing configuration for a snapshot.

    Examples
    --------
    >>> from tests.fixtures.factories import experiment
    >>> from abscope.models import Status
    >>> table = RoutingTable.build(0.0, [experiment("ranker", status=Status.RUNNING)])
    >>> document = json.loads(config_document(table).body)
    >>> document["running"], document["experiments"]["ranker"]["mode"]
    (['ranker'], 'hash')
    """
    experiments: dict[str, Any] = {}
    for compiled in table.by_id.values():
        experiments[compiled.experiment.id] = _live(compiled)
    for experiment_id, answer in table.inactive.items():
        experiments[experiment_id] = {
            "status": _status_of(answer),
            "serve": _serve(answer),
        }
    body = {
        "format": CONFIG_FORMAT,
        "running": [c.experiment.id for c in table.running],
        "experiments": experiments,
    }
    return ConfigDocument(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())


def _live(compiled: CompiledExperiment) -> dict[str, Any]:
    experiment = compiled.experiment
    config = compiled.config
    if experiment.allocation != "fixed":
        mode = "bandit"
    elif experiment.sticky:
        mode = "sticky"
    else:
        mode = "hash"
    return {
        "status": experiment.status.value,
        "phase": experiment.phase,
        "mode": mode,
        "variants": [
            {"name": v.name, "model_id": v.model_id, "weight": v.weight}
            for v in experiment.variants
        ],
        "control": experiment.control.name,
        "traffic_percentage": config.traffic_percentage,
        "gate_seed": config.gate_seed,
        "variant_seed": config.variant_seed,
        "layer": config.layer,
        "layer_intervals": (
            [list(pair) for pair in compiled.layer_slice.intervals]
            if compiled.layer_slice is not None
            else []
        ),
        "forced": dict(config.forced),
        "serve": None if compiled.fallback is None else _serve(compiled.fallback),
    }


def _serve(answer: Answer) -> dict[str, Any]:
    assignment = answer.assignment
    return {
        "variant_name": assignment.variant_name,
        "model_id": assignment.model_id,
        "reason": assignment.reason,
    }


def _status_of(answer: Answer) -> str:
    # An inactive experiment's answer carries its status as the reason.
    return answer.assignment.reason or "stopped"
