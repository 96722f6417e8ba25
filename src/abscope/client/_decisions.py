"""Decisions: what the client tells its caller to serve, decided in-process or by the server.

Pure: no I/O. :meth:`abscope.client._base.ClientState.local` mirrors the server's ``/route``
for one experiment, from decisions built once per configuration:

=====================  ===================================================================
experiment             decision
=====================  ===================================================================
running, ``hash``      the user's variant by the server's hashing, ramp, layer slice and
                       forced users; outside the traffic or the slice, the control with
                       ``in_experiment`` false (reason ``not_in_traffic`` /
                       ``not_in_layer_slice``); an exposure is queued for users in it
paused, completed,     what the server serves everyone (the control, or a completed
stopped, draft         experiment's winner), with that status as the reason; no exposure
running, ``sticky``    asked of the server: the user's stored variant, or
or ``bandit``          the shared counts, live in the store
unknown id             asked of the server: it may have been created since the last refresh
=====================  ===================================================================

When the server must be asked and cannot answer (unreachable, a timeout, a 5xx), the
decision is the control (the ``default`` for an experiment the client has never seen) with
``fallback`` true and the error; it is never counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the configuration builds decisions; a fallback reads the configuration
    from abscope.client._config import LocalConfig

__all__ = [
    "Decision",
    "Source",
    "fallback_decision",
    "server_decisions",
]

Source = Literal["local", "server", "fallback"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The variant and model to serve one user in one experiment, and where it came from.

    Attributes
    ----------
    experiment_id, variant_name, model_id
        What to serve; ``variant_name`` and ``model_id`` are None only for a fallback in an
        experiment the client has never seen and for which no ``default`` was given.
    in_experiment : bool
        The user counts as a sample of the variant (false outside the traffic, while the
        experiment is not running, and in a fallback).
    reason : str or None
        Why the user is not in the experiment (the server's reasons), ``"fallback"``.
    source : {"local", "server", "fallback"}
        Decided in-process from the cached configuration, by the server, or a fallback.
    exposure : str
        ``queued`` (sent in the background), ``already_queued`` (this user's exposure in
        this phase was queued before), ``not_requested``, ``not_in_experiment``, or the
        server's ``exposure_status`` for a decision the server made.
    error : str or None
        Why the client fell back.
    """

    experiment_id: str
    variant_name: str | None
    model_id: str | None
    in_experiment: bool
    reason: str | None
    source: Source
    exposure: str = "not_in_experiment"
    error: str | None = None

    @property
    def fallback(self) -> bool:
        """The server could not be asked, so the control (or the default) is served."""
        return self.source == "fallback"


def fallback_decision(
    config: LocalConfig, experiment_id: str, error: str, default: str | None = None
) -> Decision:
    """The control of a known experiment (a completed one's winner), else ``default``."""
    experiment = config.experiments.get(experiment_id)
    variant = model = None
    if experiment is not None:
        served = experiment.serve or experiment.control
        if served is not None:
            variant, model = served.variant_name, served.model_id
    elif default is not None:
        variant = default
    return Decision(experiment_id, variant, model, False, "fallback", "fallback", error=error)


def server_decisions(body: Any) -> list[Decision]:
    """The decisions in a ``/route`` answer (its ``assignments``).

    Raises
    ------
    ValueError
        The body is not a ``/route`` answer.
    """
    try:
        return [
            Decision(
                str(item["experiment_id"]),
                str(item["variant_name"]),
                str(item["model_id"]),
                bool(item["in_experiment"]),
                item.get("reason"),
                "server",
                str(item.get("exposure_status", "not_requested")),
            )
            for item in body["assignments"]
        ]
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a /route answer: {error!r}") from None
