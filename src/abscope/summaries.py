"""What the experiments list shows of each experiment, built from stored counts: pure.

One summary per experiment (:func:`experiment_summary`): its configuration's headline, its
users, the best treatment's lift with its interval and the flags of the list (significant,
sample-ratio mismatch, underpowered, the guardrails' status). Every figure is the one the
results endpoint gives for the same counts (:func:`abscope.reports.results_view`,
:func:`abscope.metric_reports.guardrail_status`), in the experiment's inference mode:

* the analysis is the results' own (:func:`abscope.reports.primary_analysis`) without its
  Bayesian view, which none of these figures reads and which is most of its cost (the
  posterior integrals and the Monte Carlo draws of "probability best");
* the guardrails are judged by the same checks as the results, the gate and the monitor;
  the secondaries' tests, which the list does not show, are not run.

Undefined is null, with the reason in ``null_reasons`` (top-level fields) or beside the
value (``best``). A draft has no analysis: its figures are null with ``not_started``.

The "best" treatment is the one with the largest absolute difference from the control in
the primary metric's good direction (the smallest when lower is better): every comparison
shares the control, so the difference ranks them even where a relative lift is undefined
(a control without conversions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from abscope import reports
from abscope.gate import guardrail_status
from abscope.jsonable import interval_pair, to_jsonable
from abscope.metric_analysis import MetricCountsByName, guardrail_checks
from abscope.models import Experiment, Status, VariantCounts
from abscope.quantile_reports import QuantileCountersByName
from abscope.stats.analysis import Comparison
from abscope.stats.guardrails import DEFAULT_MIN_SAMPLES_PER_ARM

__all__ = ["NOT_STARTED", "experiment_summary"]

NOT_STARTED = "not_started"
"""The reason of a draft's figures: it has no data to analyse."""

_ANALYSED = ("best", "significant", "srm", "underpowered", "verdict", "guardrail_status")


def experiment_summary(
    experiment: Experiment,
    counts: Mapping[str, VariantCounts],
    metric_counts: MetricCountsByName,
    *,
    default_min_samples: int = DEFAULT_MIN_SAMPLES_PER_ARM,
    quantile_counters: QuantileCountersByName | None = None,
) -> dict[str, Any]:
    """One experiment's line in the list (:class:`abscope.schemas.ExperimentSummary`).

    ``counts`` and ``metric_counts`` are those of the current phase; ``default_min_samples``
    the users per arm a guardrail without its own ``min_samples`` needs (the service
    setting). The verdict is the results' (:func:`abscope.reports.experiment_decision`).
    """
    head = _headline(experiment)
    head["users"] = sum(c.samples for c in counts.values())
    if experiment.status == Status.DRAFT:
        nulls = dict.fromkeys((*_ANALYSED, "srm_p_value"))
        return to_jsonable(head | nulls | {"null_reasons": dict.fromkeys(nulls, NOT_STARTED)})  # type: ignore[no-any-return]

    analysis = reports.primary_analysis(experiment, dict(counts), bayesian=False)
    decision = reports.experiment_decision(experiment, analysis)
    checks = guardrail_checks(
        experiment,
        counts,
        metric_counts,
        default_min_samples=default_min_samples,
        quantile_counters=quantile_counters or {},
    )
    underpowered, weak_reason = _underpowered(analysis.comparisons, experiment.power,
                                              decision["verdict"])  # fmt: skip
    srm = analysis.srm
    body = head | {
        "best": _best(analysis.comparisons, experiment.primary_metric.higher_is_better,
                      experiment.confidence_level),
        "significant": any(c.primary is not None and c.primary.significant
                           for c in analysis.comparisons),
        "srm": None if srm.p_value is None else srm.mismatch,
        "srm_p_value": srm.p_value,
        "underpowered": underpowered,
        "verdict": decision["verdict"],
        "guardrail_status": guardrail_status(checks),
    }  # fmt: skip
    reasons = {"srm": srm.reason or "no_samples", "underpowered": weak_reason,
               "srm_p_value": srm.reason or "no_samples"}  # fmt: skip
    body["null_reasons"] = {
        name: reasons.get(name) or "undefined"
        for name in (*_ANALYSED, "srm_p_value")
        if body.get(name, 0) is None
    }
    return to_jsonable(body)  # type: ignore[no-any-return]


def _headline(experiment: Experiment) -> dict[str, Any]:
    """The configuration the list shows and sorts by."""
    guardrails = [m.name for m in experiment.guardrails]
    return {
        "id": experiment.id,
        "name": experiment.name,
        "status": experiment.status.value,
        "phase": experiment.phase,
        "variants": [v.name for v in experiment.variants],
        "control": experiment.control.name,
        "metric_type": experiment.metric_type,
        "primary_metric": experiment.primary_metric.name,
        "higher_is_better": experiment.primary_metric.higher_is_better,
        "inference": "sequential" if experiment.sequential else "fixed_horizon",
        "confidence_level": experiment.confidence_level,
        "allocation": experiment.allocation,
        "traffic_percentage": experiment.traffic_percentage,
        "min_relative_lift": experiment.min_relative_lift,
        "power": experiment.power,
        "guardrails": guardrails,
        "winner": experiment.winner,
        "created_at": experiment.created_at,
        "started_at": experiment.started_at,
        "ended_at": experiment.ended_at,
    }


def _best(
    comparisons: tuple[Comparison, ...], higher_is_better: bool, level: float
) -> dict[str, Any]:
    """The best treatment's lift with its interval, in the mode in force."""
    sign = 1.0 if higher_is_better else -1.0
    ranked = [c for c in comparisons if c.absolute.estimate is not None]
    chosen = (
        max(ranked, key=lambda c: sign * (c.absolute.estimate or 0.0)) if ranked
        else comparisons[0]
    )  # fmt: skip
    mode = chosen.primary
    assert mode is not None
    interval_reason = (
        chosen.relative.reason if mode.basis == "fixed_horizon"
        else chosen.sequential_relative.reason
    )  # fmt: skip
    ci = mode.relative_ci
    return {
        "variant": chosen.variant,
        "relative_lift": chosen.relative.estimate,
        "relative_lift_reason": chosen.relative.reason if chosen.relative.estimate is None
        else None,
        "interval": interval_pair(ci),
        "interval_reason": (interval_reason or "undefined") if ci is None else None,
        "absolute_difference": chosen.absolute.estimate,
        "absolute_difference_reason": chosen.absolute.reason
        if chosen.absolute.estimate is None else None,
        "p_value": mode.adjusted_p_value,
        "p_value_reason": (mode.reason or "undefined") if mode.adjusted_p_value is None
        else None,
        "significant": mode.significant,
        "basis": mode.basis,
        "level": level,
    }  # fmt: skip


def _underpowered(
    comparisons: tuple[Comparison, ...], target: float, verdict: str
) -> tuple[bool | None, str | None]:
    """Whether the experiment is still running short of power for its pre-registered lift.

    ``True`` when the decision is to keep running and a comparison that is not significant
    has less than the target power for the minimum lift, in the mode in force; ``False``
    when the decision is made (a winner, no difference, or invalid data), or every such
    comparison has the power; ``None`` when power cannot be worked out (no minimum lift
    set, an empty arm, a zero baseline...), with that reason.
    """
    if verdict != "keep_running":
        return False, None
    undecided = [c for c in comparisons if c.primary is None or not c.primary.significant]
    if any(c.power is not None and c.power < target for c in undecided):
        return True, None
    unknown = [c for c in undecided if c.power is None]
    if unknown:
        return None, unknown[0].power_reason or "undefined"
    return False, None
