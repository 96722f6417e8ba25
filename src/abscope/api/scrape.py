"""The metrics computed at each scrape of ``GET /metrics``, from the serving worker and the
store (a custom collector, so that nothing is kept between scrapes):

=============================================  =========================  ===============
metric                                         meaning                    labels
=============================================  =========================  ===============
``abscope_routing_snapshot_age_seconds``       age of the routing         (none)
                                               snapshot of the worker
                                               that answered
``abscope_experiments_running``                running experiments        (none)
``abscope_experiment_users``                   users exposed, current     ``experiment``,
                                               phase                      ``variant``
``abscope_experiment_conversions``             users who converted,       ``experiment``,
                                               current phase              ``variant``
``abscope_metric_estimate``                    each metric's value per    ``experiment``,
                                               variant: rate, mean per    ``metric``,
                                               user or ratio (left out    ``variant``
                                               while undefined)
``abscope_guardrail_effect``                   a guardrail's relative     ``experiment``,
                                               change, treatment against  ``metric``,
                                               the control (left out      ``variant``
                                               while undefined)
``abscope_gate_verdict``                       the gate's verdict, a      ``experiment``,
                                               state set: 1 for the       ``verdict``
                                               current one of ``pass``,
                                               ``fail``, ``inconclusive``
                                               and 0 for the others
=============================================  =========================  ===============

The snapshot is refreshed first if it is older than ``config_refresh_seconds`` (as a
request would), so its age stays under that while the store answers, and grows while it
is down. The per-variant gauges are read for at most ``metrics_max_experiments`` running
experiments (the oldest first: the store's order), one store call each; every variant of
each appears, 0 before its first user. They are the counts that
``GET /experiments/{id}/results`` analyses; the estimates, the guardrails' effects and the
verdicts are those of its ``metrics`` and of ``GET /experiments/{id}/gate``, from one more
store call per experiment (its metrics' counts). The series are bounded: at most
``metrics_max_experiments`` experiments × 20 metrics × 32 variants, and three verdicts per
experiment. When the store cannot be read, the gauges that need it are left out of that
scrape (and the store's error is counted).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from abscope.errors import StorageUnavailable
from abscope.gate import GATE_STATUS, gate_view
from abscope.metric_reports import variant_values
from abscope.models import Experiment, MetricCounts, Status, VariantCounts
from abscope.service._quantile_reads import quantile_counters
from abscope.serving import Serving

__all__ = ["ScrapeCollector"]

_log = logging.getLogger("abscope.api")


class ScrapeCollector(Collector):
    """The scrape-time gauges of one worker's ``serving`` (and its store)."""

    def __init__(self, serving: Serving, max_experiments: int) -> None:
        self._serving = serving
        self._max_experiments = max_experiments

    def describe(self) -> Iterator[Metric]:
        return iter(())  # no registration-time collect (it would read the store)

    def collect(self) -> Iterator[Metric]:
        serving = self._serving
        try:
            age: float | None = serving.snapshot_age()
        except StorageUnavailable:
            age = None  # no snapshot at all: no age to give
        if age is not None:
            yield GaugeMetricFamily(
                "abscope_routing_snapshot_age_seconds",
                "Seconds since the routing snapshot of the worker that answered the scrape"
                " was read from the store (refreshed first when due, as a request would).",
                value=age,
            )
        try:
            running = serving.store.list_experiments(Status.RUNNING)
            shown = running[: self._max_experiments]
            counts = [serving.store.get_counts(e.id, e.phase) for e in shown]
            metric_counts = [serving.store.get_metric_counts(e.id, e.phase) for e in shown]
            quantiles = [quantile_counters(serving.store, e, e.phase) for e in shown]
        except StorageUnavailable as error:
            _log.warning("/metrics: the experiments' counts could not be read: %s", error.message)
            return
        yield GaugeMetricFamily(
            "abscope_experiments_running",
            "Experiments running now (the per-variant gauges show at most"
            " metrics_max_experiments of them).",
            value=len(running),
        )
        users = GaugeMetricFamily(
            "abscope_experiment_users",
            "Unique users exposed to the variant in the experiment's current phase.",
            labels=("experiment", "variant"),
        )
        conversions = GaugeMetricFamily(
            "abscope_experiment_conversions",
            "Unique exposed users of the variant who converted, current phase.",
            labels=("experiment", "variant"),
        )
        empty = VariantCounts()
        for experiment, by_variant in zip(shown, counts, strict=True):
            for variant in experiment.variants:
                counted = by_variant.get(variant.name, empty)
                users.add_metric([experiment.id, variant.name], counted.samples)
                conversions.add_metric([experiment.id, variant.name], counted.conversions)
        yield users
        yield conversions
        yield from _metric_gauges(
            shown, counts, metric_counts, quantiles, serving.settings.guardrail_min_samples
        )


def _metric_gauges(
    shown: list[Experiment],
    counts: list[dict[str, VariantCounts]],
    metric_counts: list[dict[str, dict[str, MetricCounts]]],
    quantiles: list[dict[str, dict[str, dict[str, int]]]],
    min_samples: int,
) -> Iterator[Metric]:
    estimates = GaugeMetricFamily(
        "abscope_metric_estimate",
        "Each metric's value per variant, current phase: the rate, the mean per user or"
        " the ratio (left out while undefined), as the results' metrics give it.",
        labels=("experiment", "metric", "variant"),
    )
    effects = GaugeMetricFamily(
        "abscope_guardrail_effect",
        "A guardrail's relative change, treatment / control - 1 (left out while"
        " undefined), as the gate judges it.",
        labels=("experiment", "metric", "variant"),
    )
    verdicts = GaugeMetricFamily(
        "abscope_gate_verdict",
        "The deployment gate's verdict, a state set: 1 for the current verdict, 0 for the others.",
        labels=("experiment", "verdict"),
    )
    rows = zip(shown, counts, metric_counts, quantiles, strict=True)
    for experiment, by_variant, by_metric, by_quantile in rows:
        for metric, values in variant_values(experiment, by_variant, by_metric).items():
            for variant, value in values.items():
                if value is not None:
                    estimates.add_metric([experiment.id, metric, variant], value)
        gate = gate_view(
            experiment,
            by_variant,
            by_metric,
            default_min_samples=min_samples,
            quantile_counters=by_quantile,
        )
        for entry in gate["metrics"]:
            if entry["estimate"] is not None:
                effects.add_metric(
                    [experiment.id, entry["name"], entry["variant"]], entry["estimate"]
                )
        for verdict in GATE_STATUS:
            verdicts.add_metric(
                [experiment.id, verdict], 1.0 if gate["verdict"] == verdict else 0.0
            )
    yield estimates
    yield effects
    yield verdicts
