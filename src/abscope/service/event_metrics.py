"""Which metric an event of ``/log`` or ``/events`` counts for, checked against the
experiment's declared metrics (no I/O: the metrics come from the routing snapshot).

=======================================  ==================================================
the event                                answer
=======================================  ==================================================
no ``metric``                            the primary's event (``Event.metric`` None), as
                                         before metrics existed
``metric`` names the primary             the same: the primary's event
``metric`` names no declared metric      422 naming ``metric``
an exposure naming another metric        422 naming ``metric`` (an exposure counts for
                                         every metric)
a conversion for a mean or ratio metric  422 naming ``converted`` (``/log``) or ``kind``
a value for a binary metric              422 naming ``value`` (``/log``) or ``kind``
``denominator`` on anything but a value  422 naming ``denominator``
event of a ratio metric
a ratio metric's value, no denominator   ``denominator`` 1: "one more request"
a quantile metric's value below 0        422 naming ``value`` (a latency is never negative)
=======================================  ==================================================

A value event of a quantile metric is ONE request (its ``value`` the request's latency,
say), not a per-user total: :func:`quantile_increments` turns it into the counters it adds
(:func:`abscope.stats.quantiles.request_increments`, the salt fixed per experiment and
phase by :func:`abscope.quantile_reports.quantile_config`), carried by the event to the
store.

A ``/log`` call naming a metric other than the primary carries one outcome: ``converted``
for a binary metric, ``value`` for a mean or ratio one (the kind rules above refuse the
other, and both together).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NoReturn

from abscope.errors import InvalidInput
from abscope.models import EventKind, Metric
from abscope.quantile_reports import quantile_config
from abscope.stats.quantiles import request_increments

__all__ = ["event_metric", "log_metric", "quantile_increments"]

_RATIO_DEFAULT_DENOMINATOR = 1.0


def _declared(metrics: Mapping[str, Metric], name: str, experiment_id: str, field: str) -> Metric:
    metric = metrics.get(name)
    if metric is None:
        names = ", ".join(sorted(metrics))
        raise InvalidInput(
            field, f"{name!r} is not a metric of {experiment_id} (its metrics: {names})"
        )
    return metric


def _no_denominator(metric: Metric | None, field: str) -> NoReturn:
    where = "an event without a metric" if metric is None else f"metric {metric.name!r}"
    kind = "" if metric is None else f" ({metric.kind})"
    raise InvalidInput(
        field,
        f"{where}{kind} takes no denominator: it belongs to value events of a ratio metric,"
        " named in metric",
    )


def log_metric(
    metrics: Mapping[str, Metric],
    experiment_id: str,
    name: str | None,
    converted: bool,
    value: float | None,
    denominator: float | None,
) -> tuple[str | None, float | None]:
    """The ``metric`` and ``denominator`` of a ``/log`` call's events: ``(None, None)``
    for the primary's.

    Raises
    ------
    InvalidInput
        The call does not fit the metric it names (see the module's table); ``field`` is
        ``metric``, ``converted``, ``value`` or ``denominator``.
    """
    metric = None if name is None else _declared(metrics, name, experiment_id, "metric")
    if metric is None or metric.role == "primary":
        if denominator is not None:
            _no_denominator(metric, "denominator")
        return None, None
    if metric.kind == "binary":
        if value is not None:
            raise InvalidInput(
                "value",
                f"metric {metric.name!r} is binary: it counts conversions (converted: true),"
                " not values",
            )
        if not converted:
            raise InvalidInput(
                "converted", f"metric {metric.name!r} is binary: log converted: true for it"
            )
    else:
        if converted:
            raise InvalidInput(
                "converted",
                f"metric {metric.name!r} is {metric.kind}: it counts values, not conversions"
                " (log a conversion in its own call)",
            )
        if value is None:
            raise InvalidInput("value", f"metric {metric.name!r} is {metric.kind}: give a value")
    return metric.name, _denominator(metric, denominator, "denominator")


def event_metric(
    metrics: Mapping[str, Metric],
    experiment_id: str,
    name: str | None,
    kind: EventKind,
    denominator: float | None,
    prefix: str,
) -> tuple[str | None, float | None]:
    """The ``metric`` and ``denominator`` of one ``/events`` event (``prefix`` is its
    position, ``events.3.``): ``(None, None)`` for the primary's.

    Raises
    ------
    InvalidInput
        The event does not fit the metric it names (see the module's table); ``field`` is
        the event's ``metric``, ``kind`` or ``denominator``.
    """
    metric = None if name is None else _declared(metrics, name, experiment_id, f"{prefix}metric")
    if metric is None or metric.role == "primary":
        if denominator is not None:
            _no_denominator(metric, f"{prefix}denominator")
        return None, None
    if kind == "exposure":
        raise InvalidInput(
            f"{prefix}metric",
            "an exposure names no metric: the user's exposure counts for every metric",
        )
    if metric.kind == "binary" and kind != "conversion":
        raise InvalidInput(
            f"{prefix}kind",
            f"metric {metric.name!r} is binary: it takes conversion events, not {kind}",
        )
    if metric.kind != "binary" and kind != "value":
        raise InvalidInput(
            f"{prefix}kind",
            f"metric {metric.name!r} is {metric.kind}: it takes value events, not {kind}",
        )
    return metric.name, _denominator(metric, denominator, f"{prefix}denominator")


def _denominator(metric: Metric, denominator: float | None, field: str) -> float | None:
    """A ratio metric's denominator increment (1 when none is given); none for the others."""
    if metric.kind == "ratio":
        return _RATIO_DEFAULT_DENOMINATOR if denominator is None else denominator
    if denominator is not None:
        _no_denominator(metric, field)
    return None


def quantile_increments(
    metric: Metric | None,
    experiment_id: str,
    phase: int,
    user_id: str,
    value: float | None,
    field: str,
) -> dict[str, int] | None:
    """The counters a value event of a quantile metric adds (``None`` for any other event).

    ``users`` is left out: the store adds it on the user's first request of the metric in
    the phase, which only it knows.

    Raises
    ------
    InvalidInput
        ``value`` is negative (``field`` names it).
    """
    if metric is None or metric.kind != "quantile" or value is None:
        return None
    if value < 0.0:
        raise InvalidInput(
            field,
            f"metric {metric.name!r} is a quantile metric: each value is one request's"
            f" measurement (e.g. latency in ms) and must be >= 0, got {value!r}",
        )
    config = quantile_config(experiment_id, phase)
    return request_increments(value, user_id, config, first_request=False)
