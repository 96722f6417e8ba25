"""The results' view over every metric of an experiment, and the deployment gate: pure.

:mod:`abscope.reports` builds the primary metric's full analysis (the compatible fields,
``variants``, ``comparisons``, ``decision``); this module adds, from the same counts and
that same analysis:

``metrics``
    One entry per metric, the primary first (:func:`metrics_view`). Each has its variants'
    values (``users``, ``value``: rate, mean per user or ratio, ``value_reason`` when it is
    null) and one comparison per treatment arm against the control.

    * The **primary** repeats the full analysis' figures, in its inference mode: the lift
      and its interval (the confidence sequence when sequential), the difference and its
      interval, the raw p-value and the p-value adjusted across arms.
    * **Secondaries** get superiority tests: two proportions (pooled z), Welch's t for
      means, the delta method for ratios (:mod:`abscope.stats.ratio`), always-valid when
      the experiment is sequential, else fixed-horizon (``inference``). Their p-values are
      corrected across metrics × arms with ``experiment.metric_correction`` (Holm or
      Benjamini–Hochberg) by :func:`abscope.stats.decision_rule.risk_aware_decision`:
      ``adjusted_p_value``.
    * **Guardrails** are judged by :func:`abscope.metric_analysis.guardrail_checks` only
      (one-sided always-valid non-inferiority tests against their margin), the same checks
      the gate and the monitor read. ``p_value`` is the always-valid p-value of the verdict
      claimed: ``p_breach`` for a breach, else ``p_non_inferior`` (both are given).

    A comparison's ``verdict`` is ``better``, ``worse``, ``no_difference`` (a defined test
    that is not significant) or ``inconclusive`` (the test is undefined: ``reason`` says
    why) for the primary and the secondaries; ``non_inferior``, ``breach`` or
    ``inconclusive`` for guardrails. Undefined values are ``null``, with a reason code.

``decision_rule``
    The risk-aware rule (:mod:`abscope.stats.decision_rule`): ship only when the primary
    wins and every guardrail is shown within its margin; a guardrail in breach blocks, and
    is named in ``blocking`` and in the ``sentence``. A sample-ratio mismatch, or arms below
    the experiment's ``min_sample_size``, keep it from shipping.

``guardrail_status``
    ``failing`` when any guardrail is in breach for any arm, ``passing`` when every one is
    non-inferior for every arm, else ``inconclusive`` (as well with no guardrails).

The gate (:func:`gate_view`) answers the same question for deployment controllers:
``pass``, ``fail`` or ``inconclusive``, with the reasons per guardrail and arm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from abscope.gate import guardrail_status
from abscope.jsonable import interval_pair
from abscope.metric_analysis import ArmStats, MetricCountsByName, arm_stats, guardrail_checks
from abscope.models import Experiment, Metric, Status, VariantCounts
from abscope.quantile_reports import QuantileCountersByName, quantile_metric_entry
from abscope.stats.analysis import Comparison, ExperimentAnalysis
from abscope.stats.decision_rule import (
    GuardrailCheck,
    RiskAwareDecision,
    SecondaryOutcome,
    SuccessMetricResult,
    risk_aware_decision,
)
from abscope.stats.guardrails import DEFAULT_MIN_SAMPLES_PER_ARM, GUARDRAIL_REASONS, GuardrailResult
from abscope.stats.means import mean_difference_ci, relative_mean_lift_ci, welch_ttest
from abscope.stats.proportions import difference_ci, relative_lift_ci, two_proportion_ztest
from abscope.stats.ratio import (
    RatioStats,
    ratio_difference_ci,
    ratio_difference_sequential,
    ratio_difference_ztest,
    ratio_lift_sequential,
    relative_ratio_lift_ci,
)
from abscope.stats.results import REASONS, EffectEstimate, Interval, TestResult
from abscope.stats.sequential import (
    DEFAULT_TUNING_N,
    SequentialReason,
    SequentialResult,
    sequential_test,
)
from abscope.stats.sufficient import MeanStats, ProportionStats

__all__ = [
    "Inference",
    "SecondaryFigures",
    "metrics_view",
    "secondary_figures",
    "variant_values",
]

Inference = Literal["sequential", "fixed"]
# --- secondaries --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecondaryFigures:
    """A superiority test of one metric for one treatment arm, in one inference mode.

    ``relative`` is the lift ``treatment / control − 1`` and ``absolute`` the difference,
    each with the interval of the mode (the confidence sequence when sequential);
    ``p_value`` is that mode's two-sided p-value of "no difference" (always-valid when
    sequential), ``None`` when the test is undefined (``reason`` says why).
    """

    inference: Inference
    relative: float | None
    relative_interval: Interval | None
    absolute: float | None
    absolute_interval: Interval | None
    p_value: float | None
    reason: str | None
    relative_reason: str | None = None


def secondary_figures(
    control: ArmStats, treatment: ArmStats, *, alpha: float, sequential: bool
) -> SecondaryFigures:
    """The superiority test of a secondary metric: two proportions (pooled z-test, Wald
    difference, delta-method lift), two means (Welch) or two ratios (delta method, the user
    as the cluster), always-valid when ``sequential`` (the mixture SPRT of
    :mod:`abscope.stats.sequential` on the difference; its sequence of the lift on the log
    scale when both arms are positive), else fixed-horizon at level ``alpha``.

    Examples
    --------
    >>> f = secondary_figures(ProportionStats(5000, 500), ProportionStats(5000, 600),
    ...                       alpha=0.05, sequential=False)
    >>> round(f.relative, 3), f.p_value < 0.05, f.inference
    (0.2, True, 'fixed')
    """
    level = 1.0 - alpha
    absolute, relative, test = _effects(control, treatment, level)
    n = control.n + treatment.n
    if not sequential:
        return SecondaryFigures(
            "fixed",
            relative.estimate,
            relative.ci,
            absolute.estimate,
            absolute.ci,
            test.p_value,
            test.reason or (None if test.p_value is not None else absolute.reason),
            relative.reason,
        )
    if isinstance(control, RatioStats) and isinstance(treatment, RatioStats):
        seq_abs = ratio_difference_sequential(control, treatment, alpha=alpha)
        seq_rel = ratio_lift_sequential(control, treatment, alpha=alpha)
    else:
        seq_abs = _sequential(absolute, n, alpha, log_scale=False)
        seq_rel = _sequential(relative, n, alpha, log_scale=True)
    return SecondaryFigures(
        "sequential",
        relative.estimate,
        _interval(seq_rel, level),
        absolute.estimate,
        _interval(seq_abs, level),
        seq_abs.p_value,
        seq_abs.reason,
        relative.reason or seq_rel.reason,
    )


def _effects(
    control: ArmStats, treatment: ArmStats, level: float
) -> tuple[EffectEstimate, EffectEstimate, TestResult]:
    if isinstance(control, ProportionStats) and isinstance(treatment, ProportionStats):
        return (
            difference_ci(control, treatment, confidence=level),
            relative_lift_ci(control, treatment, confidence=level),
            two_proportion_ztest(control, treatment),
        )
    if isinstance(control, MeanStats) and isinstance(treatment, MeanStats):
        return (
            mean_difference_ci(control, treatment, confidence=level),
            relative_mean_lift_ci(control, treatment, confidence=level),
            welch_ttest(control, treatment),
        )
    assert isinstance(control, RatioStats) and isinstance(treatment, RatioStats)
    return (
        ratio_difference_ci(control, treatment, confidence=level),
        relative_ratio_lift_ci(control, treatment, confidence=level),
        ratio_difference_ztest(control, treatment),
    )


_SEQUENTIAL_REASONS: dict[str, SequentialReason] = {
    "no_samples": "no_samples",
    "insufficient_samples": "insufficient_samples",
    "zero_variance": "zero_variance",
    "zero_baseline": "zero_baseline",
    "zero_treatment": "zero_treatment",
}


def _sequential(
    effect: EffectEstimate, n: int, alpha: float, *, log_scale: bool
) -> SequentialResult:
    """The always-valid test of an effect; of a lift, on its log scale when it has one."""
    if effect.estimate is None or effect.std_error is None or effect.ci is None:
        reason = _SEQUENTIAL_REASONS.get(effect.reason or "", "zero_variance")
        return SequentialResult(None, None, None, False, alpha, DEFAULT_TUNING_N, reason)
    if log_scale and effect.log_std_error is not None:
        result = sequential_test(
            math.log1p(effect.estimate), effect.log_std_error**2, n, alpha=alpha
        )
        if result.ci_lower is None or result.ci_upper is None:
            return result
        return SequentialResult(
            result.p_value,
            math.expm1(result.ci_lower),
            math.expm1(result.ci_upper),
            result.significant,
            alpha,
            result.tuning_n,
            result.reason,
        )
    return sequential_test(effect.estimate, effect.std_error**2, n, alpha=alpha)


def _interval(result: SequentialResult, level: float) -> Interval | None:
    if result.ci_lower is None or result.ci_upper is None:
        return None
    return Interval(result.ci_lower, result.ci_upper, level)


# --- the view -----------------------------------------------------------------------------


def metrics_view(
    experiment: Experiment,
    counts: Mapping[str, VariantCounts],
    metric_counts: MetricCountsByName,
    analysis: ExperimentAnalysis,
    *,
    default_min_samples: int = DEFAULT_MIN_SAMPLES_PER_ARM,
    quantile_counters: QuantileCountersByName | None = None,
) -> dict[str, Any]:
    """``metrics``, ``decision_rule`` and ``guardrail_status`` of the results body.

    A quantile metric's entry is :func:`abscope.quantile_reports.quantile_metric_entry`
    over ``quantile_counters`` (the store's ``get_quantile_counters``; ``None`` reads as
    no requests yet); it takes part in the decision rule as a guardrail only.

    ``default_min_samples`` is the users per arm a guardrail without its own
    ``min_samples`` needs before a verdict (the service's ``guardrail_min_samples``, which
    the monitor uses too).

    ``analysis`` is the primary's full analysis (:func:`abscope.reports.primary_analysis`)
    of the same ``counts``; its figures are repeated for the primary, never recomputed.
    """
    alpha = 1.0 - experiment.confidence_level
    control = experiment.control.name
    arms = [v.name for v in experiment.variants if v.name != control]
    primary = experiment.primary_metric
    entries: list[dict[str, Any]] = [
        _metric_head(experiment, primary, counts, metric_counts)
        | {"comparisons": [_primary_comparison(c, primary) for c in analysis.comparisons]}
    ]
    primary_results = [_primary_result(c, primary) for c in analysis.comparisons]

    secondary_results: list[SuccessMetricResult] = []
    secondary_figures_of: list[tuple[int, str, SecondaryFigures]] = []
    quantiles = quantile_counters or {}
    checks = guardrail_checks(
        experiment,
        counts,
        metric_counts,
        default_min_samples=default_min_samples,
        quantile_counters=quantiles,
    )
    by_metric: dict[str, list[GuardrailCheck]] = {}
    for check in checks:
        by_metric.setdefault(check.metric, []).append(check)
    for metric in experiment.all_metrics[1:]:
        if metric.kind == "quantile":
            guarding = [
                _guardrail_comparison(c.arm, c.result) for c in by_metric.get(metric.name, [])
            ]
            entries.append(quantile_metric_entry(experiment, metric, quantiles, guarding))
            continue
        head = _metric_head(experiment, metric, counts, metric_counts)
        if metric.role == "guardrail":
            head["comparisons"] = [
                _guardrail_comparison(c.arm, c.result) for c in by_metric[metric.name]
            ]
        else:
            stats = arm_stats(experiment, metric, counts, metric_counts)
            head["comparisons"] = []
            for arm in arms:
                figures = secondary_figures(
                    stats[control], stats[arm], alpha=alpha, sequential=experiment.sequential
                )
                secondary_results.append(
                    SuccessMetricResult(
                        metric.name, arm, figures.relative, figures.p_value, metric.higher_is_better
                    )
                )
                secondary_figures_of.append((len(entries), arm, figures))
        entries.append(head)

    decision = risk_aware_decision(
        primary_results,
        checks,
        secondary_results,
        alpha=alpha,
        correction=experiment.metric_correction,
        final=_final(experiment, analysis),
    )
    for (index, arm, figures), outcome in zip(
        secondary_figures_of, decision.secondaries, strict=True
    ):
        entries[index]["comparisons"].append(_secondary_comparison(arm, figures, outcome))
    return {
        "metrics": entries,
        "decision_rule": _decision_rule(experiment, counts, analysis, decision),
        "guardrail_status": guardrail_status(checks),
    }


def _final(experiment: Experiment, analysis: ExperimentAnalysis) -> bool:
    """The experiment can gather no more evidence: it ended, or its primary reached the
    pre-registered sample without a significant difference."""
    ended = experiment.status in (Status.COMPLETED, Status.STOPPED)
    return ended or analysis.decision.verdict == "no_difference"


def _metric_head(
    experiment: Experiment,
    metric: Metric,
    counts: Mapping[str, VariantCounts],
    metric_counts: MetricCountsByName,
) -> dict[str, Any]:
    stats = arm_stats(experiment, metric, counts, metric_counts)
    return {
        "name": metric.name,
        "kind": metric.kind,
        "role": metric.role,
        "higher_is_better": metric.higher_is_better,
        "margin": metric.margin,
        "action": metric.breach_action if metric.role == "guardrail" else None,
        "variants": {name: _arm_value(s) for name, s in stats.items()},
    }


def variant_values(
    experiment: Experiment,
    counts: Mapping[str, VariantCounts],
    metric_counts: MetricCountsByName,
) -> dict[str, dict[str, float | None]]:
    """Each metric's value per variant (rate, mean per user or ratio; ``None`` when
    undefined), the primary first: what ``/metrics`` exports as estimates. Quantile
    metrics have no one value per variant and are left out."""
    return {
        metric.name: {
            name: _arm_value(s)["value"]
            for name, s in arm_stats(experiment, metric, counts, metric_counts).items()
        }
        for metric in experiment.all_metrics
        if metric.kind != "quantile"
    }


def _arm_value(stats: ArmStats) -> dict[str, Any]:
    value: float | None
    reason: str | None = None
    if stats.n == 0:
        value, reason = None, "no_samples"
    elif isinstance(stats, ProportionStats):
        value = stats.rate
    elif isinstance(stats, MeanStats):
        value = stats.mean
    else:
        value = stats.ratio
        reason = None if value is not None else "zero_denominator"
    return {"users": stats.n, "value": value, "value_reason": reason}


def _reason_text(reason: str | None, fallback: str) -> str:
    if reason is None:
        return fallback
    return REASONS.get(reason) or GUARDRAIL_REASONS.get(reason) or reason


def _success_verdict(
    p_value: float | None,
    significant: bool,
    estimate: float | None,
    higher_is_better: bool,
    reason: str | None,
) -> tuple[str, str | None]:
    """better / worse / no_difference / inconclusive, and the reason code."""
    if p_value is None:
        return "inconclusive", reason or "undefined"
    if significant and estimate is not None and estimate != 0.0:
        return ("better" if (estimate > 0) == higher_is_better else "worse"), None
    if estimate is None:
        return "inconclusive", reason or "undefined"
    return "no_difference", None


_VERDICT_TEXT = {
    "better": "significantly better",
    "worse": "significantly worse",
    "no_difference": "no significant difference at this sample",
}


def _primary_comparison(c: Comparison, metric: Metric) -> dict[str, Any]:
    mode = c.primary
    assert mode is not None
    relative_reason = (
        c.relative.reason if mode.basis == "fixed_horizon" else c.sequential_relative.reason
    )
    direction = c.absolute.estimate
    verdict, reason = _success_verdict(
        mode.adjusted_p_value, mode.significant, direction, metric.higher_is_better, mode.reason
    )
    return {
        "variant": c.variant,
        "estimate": c.relative.estimate,
        "estimate_reason": c.relative.reason,
        "interval": interval_pair(mode.relative_ci),
        "interval_reason": relative_reason if mode.relative_ci is None else None,
        "difference": c.absolute.estimate,
        "difference_interval": interval_pair(mode.absolute_ci),
        "p_value": mode.p_value,
        "adjusted_p_value": mode.adjusted_p_value,
        "verdict": verdict,
        "reason": reason,
        "reason_text": _reason_text(reason, _VERDICT_TEXT.get(verdict, verdict)),
        "inference": "sequential" if mode.basis == "sequential" else "fixed",
    }


def _primary_result(c: Comparison, metric: Metric) -> SuccessMetricResult:
    mode = c.primary
    assert mode is not None
    # The decision rule reads significance from (estimate, p); the p-value is the one the
    # full analysis decides on (adjusted across arms, in its mode).
    return SuccessMetricResult(
        metric.name, c.variant, c.relative.estimate, mode.adjusted_p_value, metric.higher_is_better
    )


def _secondary_comparison(
    arm: str, figures: SecondaryFigures, outcome: SecondaryOutcome
) -> dict[str, Any]:
    verdict, reason = _success_verdict(
        outcome.adjusted_p_value,
        outcome.significant,
        figures.relative,
        outcome.higher_is_better,
        figures.reason,
    )
    if verdict == "inconclusive" and figures.p_value is not None:
        reason = figures.relative_reason or reason  # a test without a defined lift
    return {
        "variant": arm,
        "estimate": figures.relative,
        "interval": interval_pair(figures.relative_interval),
        "difference": figures.absolute,
        "difference_interval": interval_pair(figures.absolute_interval),
        "p_value": figures.p_value,
        "adjusted_p_value": outcome.adjusted_p_value,
        "verdict": verdict,
        "reason": reason,
        "reason_text": _reason_text(reason, _VERDICT_TEXT.get(verdict, verdict)),
        "inference": figures.inference,
    }


def _guardrail_comparison(arm: str, result: GuardrailResult) -> dict[str, Any]:
    p_value = result.p_breach if result.verdict == "breach" else result.p_non_inferior
    return {
        "variant": arm,
        "estimate": result.estimate,
        "interval": interval_pair(result.interval),
        "difference": None,
        "difference_interval": None,
        "p_value": p_value,
        "adjusted_p_value": None,
        "p_non_inferior": result.p_non_inferior,
        "p_breach": result.p_breach,
        "verdict": result.verdict,
        "reason": result.reason,
        "reason_text": result.summary,
        "inference": "sequential",
        "users": {"control": result.n_control, "treatment": result.n_treatment},
        "min_samples": result.min_samples_per_arm,
    }


def _decision_rule(
    experiment: Experiment,
    counts: Mapping[str, VariantCounts],
    analysis: ExperimentAnalysis,
    decision: RiskAwareDecision,
) -> dict[str, Any]:
    outcome, arm, sentence = decision.outcome, decision.arm, decision.sentence
    short = [
        v.name
        for v in experiment.variants
        if counts.get(v.name, VariantCounts()).samples < experiment.min_sample_size
    ]
    if analysis.srm.mismatch:
        outcome, arm = "do_not_ship", None
        sentence = f"Do not ship: {analysis.decision.message} So far: {sentence}"
    elif short and outcome == "ship":
        outcome, arm = "keep_running", None
        sentence = (
            f"Keep running: {', '.join(short)} have fewer than"
            f" {experiment.min_sample_size:,} users, the experiment's minimum sample size."
            f" So far: {sentence}"
        )
    return {
        "outcome": outcome,
        "arm": arm,
        "blocking": list(decision.blocking),
        "sentence": sentence,
        "correction": experiment.metric_correction,
        "alpha": decision.alpha,
        "arms": [
            {
                "arm": d.arm,
                "outcome": d.outcome,
                "blocking": list(d.blocking),
                "pending": list(d.pending),
                "cleared": list(d.cleared),
                "sentence": d.sentence,
            }
            for d in decision.arms
        ],
    }
