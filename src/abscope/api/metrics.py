"""The service's Prometheus metrics: what is counted while serving, and the scrape.

========================================  =========  ===================================
metric                                    type       labels
========================================  =========  ===================================
``abscope_http_requests_total``           counter    ``route``, ``method``, ``status``
``abscope_http_request_duration_seconds`` histogram  ``route``, ``method``, ``status``
``abscope_events_total``                  counter    ``source``, ``kind``, ``outcome``
``abscope_store_operation_duration_seconds`` histogram ``operation``
``abscope_store_errors_total``            counter    ``operation``
========================================  =========  ===================================

and, computed at each scrape by :class:`abscope.api.scrape.ScrapeCollector`, the routing
snapshot's age, the running experiments' users and conversions per variant, each metric's
estimate per variant, the guardrails' effects and the gate's verdicts.

``route`` is the route's template as the app declares it (``/experiments/{experiment_id}``,
a mount as ``/static/{path}``), never the raw path, and ``unmatched`` for a path the app
does not have; ``method`` one of the HTTP methods or ``other``. ``source`` is ``route``
(exposures recorded by ``/route``), ``log`` or ``events``; ``kind`` ``exposure``,
``conversion`` or ``value``; ``outcome`` ``counted``, ``duplicate`` (an ``event_id``
already applied), ``rejected`` (refused: unknown experiment, contradicting the user's
variant, a bad value) or ``unavailable`` (not recorded: the store was down).

With several worker processes (``abscope serve --workers N``), each writes its figures to
files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multi-process mode, chosen by
that variable being set, which the supervisor of :mod:`abscope.api.workers` does) and a
scrape sums every worker's, those of workers that have exited included, so a counter never
goes back when a worker is replaced. In one process, the app's own registry.

Every child the hot paths touch is bound once (an event child per source, kind and outcome
at start; a request child per route, method and status on its first request), so counting
is a dict lookup and an increment.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Final

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics
from prometheus_client import Counter as CounterMetric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from abscope.models import Event, EventKind
from abscope.storage.base import EventResult
from abscope.storage.instrumented import Observe

__all__ = [
    "EVENT_KINDS",
    "EVENT_OUTCOMES",
    "EVENT_SOURCES",
    "MULTIPROCESS_DIR",
    "Metrics",
    "exposition_registry",
    "multiprocess_dir",
]

MULTIPROCESS_DIR: Final = "PROMETHEUS_MULTIPROC_DIR"
"""The variable that holds the directory of the workers' files (prometheus-client's)."""

EVENT_SOURCES: Final = ("route", "log", "events")
EVENT_KINDS: Final[tuple[EventKind, ...]] = ("exposure", "conversion", "value")
EVENT_OUTCOMES: Final = ("counted", "duplicate", "rejected", "unavailable")

_OUTCOME_OF: Final = {
    "counted": "counted",
    "duplicate": "duplicate",
    "variant_mismatch": "rejected",
    "covariate_mismatch": "rejected",
    "unavailable": "unavailable",
}

_KIND: Final = attrgetter("kind")
_OUTCOME: Final = attrgetter("outcome")

REQUEST_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
STORE_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
)  # fmt: skip

EventCount = Callable[[float], None]


def multiprocess_dir() -> str | None:
    """The workers' metrics directory, when this process is one of several workers."""
    return os.environ.get(MULTIPROCESS_DIR) or None


class Metrics:
    """The counters and histograms of one app, registered in :attr:`registry`."""

    def __init__(self) -> None:
        # No ``*_created`` series: multi-process mode has none, and one process shows the same.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = CounterMetric(
            "abscope_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
            registry=registry,
        )
        self.request_seconds = Histogram(
            "abscope_http_request_duration_seconds",
            "Time from a request's arrival to its answer's end, by route template, method"
            " and status.",
            ("route", "method", "status"),
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.events = CounterMetric(
            "abscope_events",
            "Events received by /route (its exposures), /log and /events, by kind and"
            " outcome: counted, duplicate, rejected, or unavailable (not recorded: the store"
            " was down).",
            ("source", "kind", "outcome"),
            registry=registry,
        )
        self.store_seconds = Histogram(
            "abscope_store_operation_duration_seconds",
            "Duration of the store's calls, by operation (failed ones included).",
            ("operation",),
            buckets=STORE_BUCKETS,
            registry=registry,
        )
        self.store_errors = CounterMetric(
            "abscope_store_errors",
            "Store calls that failed (the store unavailable), by operation.",
            ("operation",),
            registry=registry,
        )
        self._events: dict[tuple[str, str, str], EventCount] = {
            (source, kind, outcome): self.events.labels(source, kind, outcome).inc
            for source in EVENT_SOURCES
            for kind in EVENT_KINDS
            for outcome in EVENT_OUTCOMES
        }
        self._requests: dict[tuple[str, str, int], tuple[EventCount, EventCount]] = {}

    # --- requests ------------------------------------------------------------------------

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        children = self._requests.get((route, method, status))
        if children is None:
            code = str(status)
            children = self._requests[(route, method, status)] = (
                self.requests.labels(route, method, code).inc,
                self.request_seconds.labels(route, method, code).observe,
            )
        children[0](1)
        children[1](seconds)

    # --- events --------------------------------------------------------------------------

    def exposures(self, events: Sequence[Event], recorded: Sequence[str | None] | None) -> None:
        """Count the exposures of ``/route``: each recorded in a variant, or not (``None``:
        the store did not apply it, or was down for all)."""
        if recorded is None:
            self._events["route", "exposure", "unavailable"](len(events))
            return
        missing = sum(variant is None for variant in recorded)
        if missing:
            self._events["route", "exposure", "unavailable"](missing)
        if len(recorded) - missing:
            self._events["route", "exposure", "counted"](len(recorded) - missing)

    def stored(self, source: str, events: Sequence[Event], results: Sequence[EventResult]) -> None:
        """Count ``events`` by kind and the outcome the store gave each (the pairs counted
        in C: a tenth of a microsecond per event)."""
        pairs = Counter(zip(map(_KIND, events), map(_OUTCOME, results), strict=True))
        for (kind, outcome), count in pairs.items():
            self._events[source, kind, _OUTCOME_OF[outcome]](count)

    def unavailable(self, source: str, events: Sequence[Event]) -> None:
        """Count ``events`` as not recorded: the store call failed."""
        self.refused(source, [event.kind for event in events], "unavailable")

    def rejected(self, source: str, kinds: Sequence[str]) -> None:
        """Count events of these kinds as refused before any was written."""
        self.refused(source, kinds, "rejected")

    def refused(self, source: str, kinds: Sequence[str], outcome: str) -> None:
        """Count events of these kinds, none written, with ``outcome`` (``rejected`` or
        ``unavailable``)."""
        for kind, count in Counter(kinds).items():
            self._events[source, kind, outcome](count)

    # --- the store -----------------------------------------------------------------------

    def store_operation(self, operation: str) -> Observe:
        """The function that counts a call of ``operation`` (see
        :class:`abscope.storage.instrumented.StoreObserver`)."""
        observe = self.store_seconds.labels(operation).observe
        fail = self.store_errors.labels(operation).inc

        def record(seconds: float, failed: bool) -> None:
            observe(seconds)
            if failed:
                fail(1)

        return record


def exposition_registry(metrics: Metrics, scrape: Collector) -> CollectorRegistry:
    """The registry that scrapes render (build it once per app): the workers' files,
    summed at each scrape (multi-process mode), or ``metrics``' own registry; and beside
    them the scrape-time collector ``scrape``."""
    directory = multiprocess_dir()
    if directory is None:
        metrics.registry.register(scrape)
        return metrics.registry
    registry = CollectorRegistry()
    MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
    registry.register(scrape)
    return registry
