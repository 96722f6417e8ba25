"""The results' ``cuped`` section: the primary metric adjusted by pre-exposure covariates.

Pure, over counts already read: the variants' :class:`~abscope.models.VariantCounts` and
:class:`~abscope.models.CovariateCounts`. Each treatment is compared with the control by
:func:`abscope.stats.cuped.cuped_effect`, with a pooled θ when the two arms have equal
weights and per-arm θ otherwise (the reason is in the section). The interval and p-value
shown are the experiment's inference mode (the always-valid ones when it is sequential);
both are given.

The section is ``None`` with a reason code (:data:`CUPED_NULL_REASONS`) when no exposed
user has a covariate, and for adaptively allocated (bandit) experiments, whose arms'
shares move with the outcomes, so the adjusted difference of means is not the effect.
"""

from __future__ import annotations

from typing import Any, Final

from abscope.jsonable import to_jsonable
from abscope.models import CovariateCounts, Experiment, VariantCounts
from abscope.stats.cuped import (
    CUPED_REASONS,
    CupedArm,
    CupedResult,
    ThetaMethod,
    cuped_effect,
    theta_method_for_split,
)
from abscope.stats.sequential import SequentialResult

__all__ = [
    "CUPED_METHOD",
    "CUPED_NULL_REASONS",
    "IMPUTATION_NOTE",
    "cuped_comparison",
    "cuped_view",
]

CUPED_NULL_REASONS: Final = {
    "no_covariates": "no exposed user has a covariate: send covariate on exposure events or"
    " backfill with POST /experiments/{id}/covariates",
    "adaptive_allocation": "CUPED is not applied to adaptively allocated (bandit) traffic:"
    " the arms' shares move with the outcomes",
}
"""Why the ``cuped`` section is null, by reason code."""

IMPUTATION_NOTE: Final = (
    "Users without a covariate count with the mean of the observed covariates of both arms"
    " (one constant, a function of pre-exposure data only, so the adjustment stays unbiased;"
    " those users gain no precision, and the variance reduction shows the gain overall)."
)

CUPED_METHOD: Final = (
    "CUPED (Deng, Xu, Kohavi and Walker 2013); the sequential view is the always-valid"
    " mixture test on the adjusted estimate (Lindon, Ham, Tingley and Bojinov,"
    " arXiv:2210.08589)"
)

_THETA_REASONS: Final[dict[ThetaMethod, str]] = {
    "pooled": "pooled θ: the arms have equal weights, so one slope is efficient and its"
    " classical variance is right even when the arms' variances differ",
    "per_arm": "per-arm θ: the arms have unequal weights, where a pooled slope can cost"
    " precision and its classical variance is wrong when the slopes differ (Freedman 2008);"
    " the interacted fit of Lin (2013) is used, one slope and one variance per arm",
}


def _arm(
    experiment: Experiment, counts: VariantCounts | None, covariates: CovariateCounts | None
) -> CupedArm:
    c = counts or VariantCounts()
    k = covariates or CovariateCounts()
    if experiment.metric_type == "binary":
        return CupedArm(
            samples=c.samples,
            outcome_sum=float(c.conversions),
            outcome_sum_squares=float(c.conversions),
            covariate_samples=k.samples,
            covariate_sum=k.sum,
            covariate_sum_squares=k.sum_squares,
            covariate_outcome_sum=float(k.conversions),
            cross_sum=k.conversion_cross_sum,
        )
    return CupedArm(
        samples=c.samples,
        outcome_sum=c.value_sum,
        outcome_sum_squares=c.value_sum_squares,
        covariate_samples=k.samples,
        covariate_sum=k.sum,
        covariate_sum_squares=k.sum_squares,
        covariate_outcome_sum=k.value_sum,
        cross_sum=k.value_cross_sum,
    )


def _interval(sequential: SequentialResult | None) -> list[float] | None:
    if sequential is None or sequential.ci_lower is None or sequential.ci_upper is None:
        return None
    return [sequential.ci_lower, sequential.ci_upper]


def cuped_comparison(variant: str, result: CupedResult, sequential: bool) -> dict[str, Any]:
    """One treatment's adjusted comparison: the figures of ``sequential``'s mode shown
    (``inference``), both modes' intervals and p-values, θ and why, the unadjusted
    figures and the variance reduction."""
    fixed = {
        "difference_interval": to_jsonable(result.difference_interval),
        "relative_interval": to_jsonable(result.relative_interval),
        "p_value": result.p_value,
    }
    always_valid = {
        "difference_interval": _interval(result.sequential),
        "relative_interval": _interval(result.sequential_relative),
        "p_value": None if result.sequential is None else result.sequential.p_value,
    }
    shown = always_valid if sequential else fixed
    return {
        "variant": variant,
        "theta_method": result.theta_method,
        "theta_reason": _THETA_REASONS[result.theta_method],
        "theta_control": result.theta_control,
        "theta_treatment": result.theta_treatment,
        "control_mean": result.control_mean,
        "treatment_mean": result.treatment_mean,
        "difference": result.difference,
        "difference_se": result.difference_se,
        "relative": result.relative,
        **shown,
        "inference": "sequential" if sequential else "fixed",
        "fixed": fixed,
        "sequential": always_valid,
        "unadjusted_difference": result.unadjusted_difference,
        "unadjusted_se": result.unadjusted_se,
        "variance_reduction": result.variance_reduction,
        "covariate_coverage": result.covariate_coverage,
        "imputed_value": result.imputed_value,
        "reason": result.reason,
        "reason_text": None if result.reason is None else CUPED_REASONS[result.reason],
    }


def cuped_view(
    experiment: Experiment,
    counts: dict[str, VariantCounts],
    covariate_counts: dict[str, CovariateCounts],
    *,
    tuning_n: int = 5000,
) -> tuple[dict[str, Any] | None, str | None]:
    """The ``cuped`` section and, when it is ``None``, its reason code.

    ``tuning_n`` is the sequential test's ``N*``, the one the primary analysis uses.
    """
    if experiment.allocation != "fixed":
        return None, "adaptive_allocation"
    if not any(c.samples for c in covariate_counts.values()):
        return None, "no_covariates"
    control = experiment.control.name
    weights = experiment.weights
    control_arm = _arm(experiment, counts.get(control), covariate_counts.get(control))
    comparisons = []
    for variant in experiment.variants:
        if variant.name == control:
            continue
        method = theta_method_for_split(weights[control], variant.weight)
        result = cuped_effect(
            control_arm,
            _arm(experiment, counts.get(variant.name), covariate_counts.get(variant.name)),
            theta=method,
            confidence=experiment.confidence_level,
            tuning_n=tuning_n,
        )
        comparisons.append(cuped_comparison(variant.name, result, experiment.sequential))
    users = sum(counts[v.name].samples for v in experiment.variants if v.name in counts)
    covered = sum(covariate_counts[v].samples for v in covariate_counts)
    return {
        "metric": experiment.primary_metric.name,
        "outcome": "conversion" if experiment.metric_type == "binary" else "value total",
        "users": users,
        "covariate_users": covered,
        "imputation": IMPUTATION_NOTE,
        "method": CUPED_METHOD,
        "comparisons": comparisons,
    }, None
