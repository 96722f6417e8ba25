"""CUPED for named metrics: each binary or mean metric's entry of the results' ``metrics``
list gains a ``cuped`` block, adjusted by that metric's own pre-exposure covariates. Pure.

The block has the shape of the results' ``cuped`` section (the primary's,
:mod:`abscope.cuped_reports`): per treatment, θ (pooled for an equal split, per arm
otherwise, with the reason), the adjusted difference, its standard error, interval,
relative effect and p-value in the experiment's inference mode (both modes given), the
unadjusted figures, the variance reduction and the covariate coverage.

Multiplicity
    A secondary's adjusted p-value shown as ``adjusted_p_value`` is corrected with the
    experiment's ``metric_correction`` (Holm or Benjamini–Hochberg) over the family of the
    *adjusted* secondary tests (every secondary metric with a CUPED block × every
    treatment arm), in the mode shown: the same correction the unadjusted secondaries get
    over their own family. The two families are not mixed (one hypothesis tested twice,
    adjusted and not, is one hypothesis; counting it twice would over-correct, picking the
    smaller of the two would not be corrected at all). ``p_value_correction`` says which
    p-value is corrected, how and over how many tests.
Guardrails
    A guardrail's verdict (``non_inferior`` / ``breach``) and the decision rule stay on the
    unadjusted one-sided always-valid test: no simulation here has shown that judging them
    on the adjusted estimator keeps the false-alarm rate under repeated looks at alpha. A
    guardrail's CUPED block is descriptive; ``verdict_basis`` says so, and its p-values
    are two-sided and uncorrected (labelled).

The block is ``None`` with ``cuped_reason`` (:data:`METRIC_CUPED_NULL_REASONS`) for a
metric without covariates, for adaptively allocated experiments, for ratio and quantile
metrics, and for the primary, whose adjusted figures are the results' ``cuped`` section.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from abscope import schemas
from abscope.cuped_reports import CUPED_METHOD, IMPUTATION_NOTE, cuped_comparison
from abscope.models import CovariateCounts, Experiment, Metric, MetricCounts, VariantCounts
from abscope.stats.cuped import CupedArm, cuped_effect, theta_method_for_split
from abscope.stats.multiple import adjust_p_values

__all__ = [
    "GUARDRAIL_VERDICT_BASIS",
    "METRIC_CUPED_NULL_REASONS",
    "needs_metric_covariates",
    "with_metric_cuped",
]

METRIC_CUPED_NULL_REASONS: Final = {
    "no_covariates": "no exposed user has a covariate of this metric: send covariates:"
    ' {"<metric>": value} on exposure events, or backfill with POST'
    " /experiments/{id}/covariates naming metric",
    "adaptive_allocation": "CUPED is not applied to adaptively allocated (bandit) traffic:"
    " the arms' shares move with the outcomes",
    "not_applicable": schemas.CUPED_NOT_APPLICABLE,
    "primary_in_results_cuped": "the primary's adjusted figures are the results' cuped section",
}
"""Why a metric's ``cuped`` block is null, by reason code."""

GUARDRAIL_VERDICT_BASIS: Final = (
    "descriptive: the guardrail's verdict and the decision rule stay on the unadjusted"
    " one-sided always-valid non-inferiority test (judging them on the adjusted estimate"
    " under repeated looks is not shown to keep the false-alarm rate at alpha); these"
    " adjusted p-values are two-sided and not corrected for multiplicity"
)

CountsByMetric = Mapping[str, Mapping[str, MetricCounts]]
CovariatesByMetric = Mapping[str, Mapping[str, CovariateCounts]]


def _arm(
    metric: Metric,
    counts: VariantCounts | None,
    outcomes: MetricCounts | None,
    covariates: CovariateCounts | None,
) -> CupedArm:
    """A named metric's CUPED sums in one arm: the arm's exposed users, the metric's
    outcome sums over them (0 for users without events) and the covariate sums."""
    users = (counts or VariantCounts()).samples
    m = outcomes or MetricCounts()
    k = covariates or CovariateCounts()
    if metric.kind == "binary":
        converted = float(min(m.conversions, users))
        return CupedArm(
            samples=users,
            outcome_sum=converted,
            outcome_sum_squares=converted,
            covariate_samples=k.samples,
            covariate_sum=k.sum,
            covariate_sum_squares=k.sum_squares,
            covariate_outcome_sum=float(k.conversions),
            cross_sum=k.conversion_cross_sum,
        )
    return CupedArm(
        samples=users,
        outcome_sum=m.sum,
        outcome_sum_squares=m.sum_squares,
        covariate_samples=k.samples,
        covariate_sum=k.sum,
        covariate_sum_squares=k.sum_squares,
        covariate_outcome_sum=k.value_sum,
        cross_sum=k.value_cross_sum,
    )


def _inapplicable(experiment: Experiment, metric: Metric) -> str | None:
    """Why ``metric`` gets no CUPED block whatever its covariates, or ``None`` if it can."""
    if metric.role == "primary":
        return "primary_in_results_cuped"
    if metric.kind not in ("binary", "mean"):
        return "not_applicable"
    if experiment.allocation != "fixed":
        return "adaptive_allocation"
    return None


def needs_metric_covariates(experiment: Experiment) -> bool:
    """Whether any metric of ``experiment`` can have a CUPED block: if none can, the
    results need not read the metrics' covariate sums."""
    return any(_inapplicable(experiment, m) is None for m in experiment.all_metrics)


def _block(
    experiment: Experiment,
    metric: Metric,
    counts: Mapping[str, VariantCounts],
    metric_counts: CountsByMetric,
    covariates: Mapping[str, CovariateCounts],
) -> dict[str, Any]:
    control = experiment.control.name
    weights = experiment.weights
    outcomes = metric_counts.get(metric.name, {})

    def arm(name: str) -> CupedArm:
        return _arm(metric, counts.get(name), outcomes.get(name), covariates.get(name))

    control_arm = arm(control)
    comparisons = []
    for variant in experiment.variants:
        if variant.name == control:
            continue
        result = cuped_effect(
            control_arm,
            arm(variant.name),
            theta=theta_method_for_split(weights[control], variant.weight),
            confidence=experiment.confidence_level,
        )
        comparisons.append(cuped_comparison(variant.name, result, experiment.sequential))
    return {
        "metric": metric.name,
        "role": metric.role,
        "outcome": "conversion" if metric.kind == "binary" else "value total",
        "users": sum(counts[v.name].samples for v in experiment.variants if v.name in counts),
        "covariate_users": sum(c.samples for c in covariates.values()),
        "imputation": IMPUTATION_NOTE,
        "method": CUPED_METHOD,
        "verdict_basis": GUARDRAIL_VERDICT_BASIS
        if metric.role == "guardrail"
        else "the adjusted p-value is corrected over the adjusted secondary tests"
        " (p_value_correction); the decision rule reads the unadjusted secondaries",
        "comparisons": comparisons,
    }


def _correct(experiment: Experiment, blocks: list[dict[str, Any]]) -> None:
    """Set each comparison's ``adjusted_p_value`` and ``p_value_correction`` (secondaries:
    the experiment's correction over the adjusted secondary tests; guardrails: none)."""
    family = [c for block in blocks if block["role"] == "secondary" for c in block["comparisons"]]
    method = experiment.metric_correction
    corrected = adjust_p_values([c["p_value"] for c in family], method)
    defined = sum(p is not None for p in corrected)
    names = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no correction"}
    for comparison, adjusted in zip(family, corrected, strict=True):
        comparison["adjusted_p_value"] = adjusted
        comparison["p_value_correction"] = (
            f"{names.get(method, method)} over the {defined} CUPED-adjusted secondary"
            f" test{'' if defined == 1 else 's'}"
            f" (metrics × arms) of the {comparison['inference']} p-value; the unadjusted"
            " secondaries are corrected over their own family"
        )
    for block in blocks:
        if block["role"] == "guardrail":
            for comparison in block["comparisons"]:
                comparison["adjusted_p_value"] = None
                comparison["p_value_correction"] = (
                    "none: a guardrail's adjusted p-value is descriptive (two-sided,"
                    " uncorrected); its verdict is the unadjusted non-inferiority test"
                )


def with_metric_cuped(
    experiment: Experiment,
    view: dict[str, Any],
    counts: Mapping[str, VariantCounts],
    metric_counts: CountsByMetric,
    metric_covariates: CovariatesByMetric,
) -> dict[str, Any]:
    """``view`` (:func:`abscope.metric_reports.metrics_view`'s) with a ``cuped`` block,
    ``cuped_reason`` and ``cuped_reason_text`` on each entry of its ``metrics``.

    ``metric_covariates`` is the store's ``get_metric_covariate_counts`` of the phase.
    """
    by_name = {metric.name: metric for metric in experiment.all_metrics}
    blocks: list[dict[str, Any]] = []
    entries = []
    for entry in view["metrics"]:
        metric = by_name.get(entry["name"])
        block: dict[str, Any] | None = None
        reason = "not_applicable" if metric is None else _inapplicable(experiment, metric)
        if metric is not None and reason is None:
            covered = metric_covariates.get(metric.name, {})
            if any(c.samples for c in covered.values()):
                block = _block(experiment, metric, counts, metric_counts, covered)
                blocks.append(block)
            else:
                reason = "no_covariates"
        entries.append(
            entry
            | {
                "cuped": block,
                "cuped_reason": reason,
                "cuped_reason_text": None if reason is None else METRIC_CUPED_NULL_REASONS[reason],
            }
        )
    _correct(experiment, blocks)
    for entry in entries:
        if entry["cuped"] is not None:
            entry["cuped"] = schemas.MetricCupedView.model_validate(entry["cuped"]).model_dump()
    return view | {"metrics": entries}
