"""Each declared metric's effect by hour: what its chart on the detail page draws.

Pure: it cumulates the hourly increments a store returned (the variants' users from
:class:`~abscope.storage.base.HourCounts`, the metric's sums from
:class:`~abscope.storage.base.MetricHourCounts`) and judges each hour's totals with the
same functions as the results, so a chart never disagrees with the table above it:

* a **guardrail**'s effect and interval come from
  :func:`abscope.metric_analysis.guardrail_checks` (the one-sided always-valid tests; the
  interval is their two-sided ``1 − 2α`` sequence), with its margin as the threshold line;
* a **secondary**'s from :func:`abscope.metric_reports.secondary_figures`, in the
  experiment's inference mode (the confidence sequence when sequential).

The primary metric has its own lift chart already and is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from abscope.metric_analysis import arm_stats, guardrail_checks
from abscope.metric_reports import secondary_figures
from abscope.models import Experiment, Metric, MetricCounts, VariantCounts
from abscope.stats.guardrails import DEFAULT_MIN_SAMPLES_PER_ARM
from abscope.storage.base import HourCounts, MetricHourCounts

__all__ = ["metric_series"]


def metric_series(
    experiment: Experiment,
    hours: Sequence[HourCounts],
    metric_hours: Sequence[MetricHourCounts],
    *,
    default_min_samples: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Per non-primary metric: ``hours`` (ISO, UTC) and, per treatment, the relative effect
    with its interval at the end of each hour (``None`` where undefined, with the reason).

    Returns
    -------
    dict
        ``{metric: {"metric", "role", "kind", "higher_is_better", "inference", "threshold",
        "hours", "effects": {variant: {"estimate", "lower", "upper", "reason"}}}}``, where
        ``threshold`` is a guardrail's relative effect at its margin (``+m`` when lower is
        better, ``−m`` otherwise; ``None`` for a secondary) and ``inference`` is
        ``"sequential"`` or ``"fixed"``.
    """
    # The primary first: its own lift chart has it. Quantile metrics keep no hourly
    # counters: their figures are the results' quantile table, not a series.
    metrics = [m for m in experiment.all_metrics[1:] if m.kind != "quantile"]
    if not metrics:
        return {}
    moments = sorted({h.hour for h in hours} | {h.hour for h in metric_hours})
    samples_by_hour = {h.hour: h.variants for h in hours}
    sums_by_hour = {h.hour: h.metrics for h in metric_hours}
    treatments = [v.name for v in experiment.variants if v.name != experiment.control.name]
    out = {m.name: _empty(experiment, m, treatments) for m in metrics}
    counts: dict[str, VariantCounts] = {}
    sums: dict[str, dict[str, MetricCounts]] = {}
    minimum = DEFAULT_MIN_SAMPLES_PER_ARM if default_min_samples is None else default_min_samples
    for moment in moments:
        for variant, increment in samples_by_hour.get(moment, {}).items():
            counts[variant] = counts.get(variant, VariantCounts()) + increment
        for name, by_variant in sums_by_hour.get(moment, {}).items():
            own = sums.setdefault(name, {})
            for variant, delta in by_variant.items():
                own[variant] = own.get(variant, MetricCounts()) + delta
        checks = {
            (c.metric, c.arm): c.result
            for c in guardrail_checks(experiment, counts, sums, default_min_samples=minimum)
        }
        for metric in metrics:
            series = out[metric.name]
            series["hours"].append(moment.isoformat())
            if metric.role == "guardrail":
                points = {
                    arm: _point(
                        checks[metric.name, arm].estimate,
                        checks[metric.name, arm].interval,
                        checks[metric.name, arm].reason,
                    )
                    for arm in treatments
                }
            else:
                stats = arm_stats(experiment, metric, counts, sums)
                control = stats[experiment.control.name]
                points = {}
                for arm in treatments:
                    f = secondary_figures(
                        control,
                        stats[arm],
                        alpha=1.0 - experiment.confidence_level,  # as the results' view
                        sequential=experiment.sequential,
                    )
                    points[arm] = _point(
                        f.relative, f.relative_interval, f.relative_reason or f.reason
                    )
            for arm, (estimate, lower, upper, reason) in points.items():
                effect = series["effects"][arm]
                effect["estimate"].append(estimate)
                effect["lower"].append(lower)
                effect["upper"].append(upper)
                effect["reason"].append(reason)
    return out


def _empty(experiment: Experiment, metric: Metric, treatments: Sequence[str]) -> dict[str, Any]:
    threshold = None
    if metric.role == "guardrail" and metric.margin is not None:
        threshold = -metric.margin if metric.higher_is_better else metric.margin
    return {
        "metric": metric.name,
        "role": metric.role,
        "kind": metric.kind,
        "higher_is_better": metric.higher_is_better,
        "inference": "sequential"
        if metric.role == "guardrail" or experiment.sequential
        else "fixed",
        "threshold": threshold,
        "hours": [],
        "effects": {
            arm: {"estimate": [], "lower": [], "upper": [], "reason": []} for arm in treatments
        },
    }


def _point(
    estimate: float | None, interval: Any, reason: str | None
) -> tuple[float | None, float | None, float | None, str | None]:
    lower = None if interval is None else interval.lower
    upper = None if interval is None else interval.upper
    return estimate, lower, upper, reason
