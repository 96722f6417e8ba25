"""From stored counts to each metric's sufficient statistics and guardrail verdicts.

Pure: it reads the counts a store returned (:class:`~abscope.models.VariantCounts` per
variant, :class:`~abscope.models.MetricCounts` per named metric and variant) and the
experiment's metric declarations, and calls :mod:`abscope.stats`. The results, the gate and
the monitor all judge guardrails here, so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from abscope.models import Experiment, Metric, MetricCounts, VariantCounts
from abscope.quantile_reports import QuantileCountersByName, arm_counters, quantile_guardrail
from abscope.stats.decision_rule import GuardrailCheck
from abscope.stats.guardrails import (
    DEFAULT_MIN_SAMPLES_PER_ARM,
    GuardrailResult,
    mean_guardrail,
    proportion_guardrail,
    ratio_guardrail,
)
from abscope.stats.ratio import RatioStats
from abscope.stats.sufficient import MeanStats, ProportionStats

__all__ = [
    "ArmStats",
    "MetricCountsByName",
    "arm_stats",
    "guardrail_alpha",
    "guardrail_checks",
    "min_samples_of",
]

ArmStats = ProportionStats | MeanStats | RatioStats
MetricCountsByName = Mapping[str, Mapping[str, MetricCounts]]


def arm_stats(
    experiment: Experiment,
    metric: Metric,
    counts: Mapping[str, VariantCounts],
    metric_counts: MetricCountsByName,
) -> dict[str, ArmStats]:
    """Each variant's sufficient statistics for ``metric``, in the experiment's order.

    The primary reads the variant's own counts; a named metric reads its ``MetricCounts``
    over the variant's exposed users (a variant without data has zero sums). A ratio's
    ``x`` is the denominator and ``y`` the numerator, as :class:`RatioStats` has them. A
    quantile metric's ``MetricCounts`` hold its per-user totals like a mean's (its
    quantiles are in :mod:`abscope.quantile_reports`).
    """
    rows = {v.name: counts.get(v.name, VariantCounts()) for v in experiment.variants}
    if metric.role == "primary":
        if metric.kind == "binary":
            return {n: ProportionStats(c.samples, c.conversions) for n, c in rows.items()}
        return {n: MeanStats(c.samples, c.value_sum, c.value_sum_squares) for n, c in rows.items()}
    own = metric_counts.get(metric.name, {})
    out: dict[str, ArmStats] = {}
    for name, row in rows.items():
        m = own.get(name, MetricCounts())
        if metric.kind == "binary":
            out[name] = ProportionStats(row.samples, min(m.conversions, row.samples))
        elif metric.kind in ("mean", "quantile"):
            out[name] = MeanStats(row.samples, m.sum, m.sum_squares)
        else:
            out[name] = RatioStats(
                n=row.samples,
                sum_x=m.denominator_sum,
                sum_y=m.sum,
                sum_xx=m.denominator_sum_squares,
                sum_yy=m.sum_squares,
                sum_xy=m.cross_sum,
            )
    return out


def guardrail_alpha(experiment: Experiment) -> float:
    """A guardrail's one-sided level: the experiment's ``1 − confidence_level``, with no
    correction across guardrails (see :mod:`abscope.stats.decision_rule`)."""
    return 1.0 - experiment.confidence_level


def min_samples_of(metric: Metric, default: int = DEFAULT_MIN_SAMPLES_PER_ARM) -> int:
    """Users per arm before ``metric``'s guardrail gives a verdict."""
    return default if metric.min_samples is None else metric.min_samples


def guardrail_checks(
    experiment: Experiment,
    counts: Mapping[str, VariantCounts],
    metric_counts: MetricCountsByName,
    *,
    default_min_samples: int = DEFAULT_MIN_SAMPLES_PER_ARM,
    quantile_counters: QuantileCountersByName | None = None,
) -> list[GuardrailCheck]:
    """The always-valid non-inferiority test of every guardrail for every treatment arm,
    against the control, in declaration order then variant order.

    A quantile guardrail is judged on ``quantile_counters`` (the store's
    ``get_quantile_counters``) by :func:`abscope.quantile_reports.quantile_guardrail`;
    with ``quantile_counters`` ``None`` (hourly series, which keep no quantile counters)
    quantile guardrails are left out.
    """
    control = experiment.control.name
    alpha = guardrail_alpha(experiment)
    checks: list[GuardrailCheck] = []
    for metric in experiment.guardrails:
        min_samples = min_samples_of(metric, default_min_samples)
        if metric.kind == "quantile":
            if quantile_counters is None:
                continue
            arms = arm_counters(experiment, metric, quantile_counters)
            for variant in experiment.variants:
                if variant.name != control:
                    result = quantile_guardrail(
                        metric, arms[control], arms[variant.name], alpha=alpha,
                        min_samples=min_samples,
                    )  # fmt: skip
                    checks.append(GuardrailCheck(metric.name, variant.name, result))
            continue
        stats = arm_stats(experiment, metric, counts, metric_counts)
        for variant in experiment.variants:
            if variant.name != control:
                result = _judge(stats[control], stats[variant.name], metric, alpha, min_samples)
                checks.append(GuardrailCheck(metric.name, variant.name, result))
    return checks


_GUARDRAIL_TESTS: dict[type, Callable[..., GuardrailResult]] = {
    ProportionStats: proportion_guardrail,
    MeanStats: mean_guardrail,
    RatioStats: ratio_guardrail,
}
"""The guardrail test of each kind of arm statistics (both arms of a metric are alike)."""


def _judge(
    control: ArmStats, treatment: ArmStats, metric: Metric, alpha: float, min_samples: int
) -> GuardrailResult:
    assert metric.margin is not None  # the model requires a guardrail's margin
    assert type(control) is type(treatment)
    return _GUARDRAIL_TESTS[type(control)](
        control,
        treatment,
        margin=metric.margin,
        higher_is_better=metric.higher_is_better,
        alpha=alpha,
        min_samples_per_arm=min_samples,
    )
