"""What the results and time-series endpoints show, built from stored counts: pure functions.

The service fetches an experiment's counts from the store; these functions turn them into the
JSON-ready views (through :func:`abscope.stats.analyze_experiment` and the interval functions).

The compatible top-level fields of the results body describe the control against the first
treatment. Every interval, p-value and significance flag among them comes from the
experiment's inference mode (``inference``: ``"sequential"`` by default, else
``"fixed_horizon"``); the full analysis under ``comparisons`` carries both modes, each
comparison's ``primary`` (the mode in force) and ``secondary`` (the other, for reference).
A value that is undefined is ``null``, and ``null_reasons`` maps each such top-level field to
its reason code (:data:`abscope.stats.results.REASONS`). See :data:`RESULTS_FIELDS`.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from abscope.jsonable import interval_pair, to_jsonable
from abscope.models import Experiment, Status, VariantCounts
from abscope.stats import AnalysisOptions, MeanStats, ProportionStats, analyze_experiment
from abscope.stats.adaptive_srm import ADAPTIVE_NOTE
from abscope.stats.analysis import ExperimentAnalysis
from abscope.stats.means import mean_interval, relative_mean_lift_ci
from abscope.stats.proportions import relative_lift_ci, wilson_interval
from abscope.stats.results import EffectEstimate
from abscope.stats.sequential import sequential_path
from abscope.stats.sequential_srm import sequential_sample_ratio_mismatch
from abscope.storage.base import HourCounts

__all__ = [
    "RESULTS_FIELDS",
    "experiment_decision",
    "primary_analysis",
    "results_view",
    "timeseries_view",
    "variant_summary",
]

RESULTS_FIELDS: dict[str, str] = {
    "control_samples": "Users in the control.",
    "treatment_samples": "Users in the first treatment.",
    "control_conversion_rate": "The control's conversion rate (or mean); null without users.",
    "treatment_conversion_rate": "The first treatment's rate (or mean); null without users.",
    "absolute_difference": "Absolute effect: treatment rate (or mean) minus control's.",
    "confidence_interval": "Interval of the ABSOLUTE difference, from the mode in force: the"
    " always-valid confidence sequence when inference is sequential, else the fixed-horizon"
    " confidence interval. null when undefined.",
    "relative_lift": "Relative effect: treatment / control - 1 (0.05 is +5%). null when the"
    " control rate is 0.",
    "relative_lift_interval": "Interval of the RELATIVE lift, from the mode in force (never"
    " below -100% for rates). null when undefined.",
    "p_value": "Adjusted p-value of the mode in force (always-valid when sequential). null"
    " when the test is undefined.",
    "is_significant": "p_value < 1 - confidence_level; false when the test is undefined.",
    "inference": '"sequential" or "fixed_horizon": the mode every field above comes from.',
    "min_relative_lift": "The pre-registered minimum relative lift (null until set).",
    "power": "The pre-registered target power.",
    "null_reasons": "For each top-level field that is null, the reason code.",
}
"""What each compatible top-level field of the results body means (absolute or relative)."""


def primary_analysis(
    experiment: Experiment, counts: dict[str, VariantCounts], *, bayesian: bool = True
) -> ExperimentAnalysis:
    """The full analysis of the primary metric (the variants' own counts), in the
    experiment's inference mode and direction (the primary's ``higher_is_better``).
    ``bayesian=False`` leaves out the Bayesian view (``AnalysisOptions.bayesian``), which
    no other figure reads: for summaries."""
    return analyze_experiment(
        _stats(experiment, counts),
        experiment.weights,
        control=experiment.control.name,
        options=AnalysisOptions(
            alpha=1.0 - experiment.confidence_level,
            sequential=experiment.sequential,
            min_relative_lift=experiment.min_relative_lift,
            power=experiment.power,
            higher_is_better=experiment.primary_metric.higher_is_better,
            bayesian=bayesian,
        ),
        propensity=_propensity(experiment, counts),
    )


SEQUENTIAL_SRM_NOT_APPLICABLE = "adaptive_allocation"
"""Why an adaptively allocated experiment has no sequential SRM check: its split is meant
to move, so it is tested against the logged probabilities instead (``srm``)."""


def sequential_srm(experiment: Experiment, counts: dict[str, VariantCounts]) -> dict[str, Any]:
    """The always-valid SRM check of the users per variant against the configured weights
    (:func:`abscope.stats.sequential_srm.sequential_sample_ratio_mismatch`), safe to read at
    every look, next to the chi-square check of ``srm``, which is valid at one look only.

    Stateless: the p-value is ``min(1, 1/BF)`` of the current counts, valid at every look
    (its running minimum, which a caller may keep, is the sequential p-value). An adaptively
    allocated experiment has none: ``applicable`` is false with the reason.
    """
    if experiment.allocation != "fixed":
        return {"applicable": False, "reason": SEQUENTIAL_SRM_NOT_APPLICABLE}
    observed = [counts.get(v.name, VariantCounts()).samples for v in experiment.variants]
    result = sequential_sample_ratio_mismatch(observed, [v.weight for v in experiment.variants])
    return {"applicable": True, **to_jsonable(result)}


def experiment_decision(experiment: Experiment, analysis: ExperimentAnalysis) -> dict[str, Any]:
    """The results' decision (JSON) before the days still needed: the analysis' own, held at
    ``keep_running`` while a variant has fewer users than the experiment's minimum sample
    size, and worded as ended (nothing more needed) once it is completed or stopped."""
    below_minimum = [v.name for v in analysis.variants if v.n < experiment.min_sample_size]
    decision: dict[str, Any] = to_jsonable(analysis.decision)
    if below_minimum and decision["verdict"] in ("winner", "no_difference"):
        # The experiment's own floor: no verdict before every variant has its minimum.
        short = {v.name: experiment.min_sample_size - v.n for v in analysis.variants}
        decision |= {
            "verdict": "keep_running",
            "winner": None,
            "remaining_samples": sum(max(0, n) for n in short.values()),
            "remaining_reason": None,
            "message": f"Keep running: {', '.join(below_minimum)} have fewer than"
            f" {experiment.min_sample_size:,} users, the experiment's minimum sample size."
            f" So far: {analysis.decision.message}",
        }
    if experiment.status in (Status.COMPLETED, Status.STOPPED):
        ended = "Completed" if experiment.status == Status.COMPLETED else "Stopped"
        if experiment.winner:
            ended += f" with {experiment.winner} chosen as the winner"
        decision |= {
            "remaining_samples": None,
            "message": f"{ended}. The analysis at the end: {decision['message']}",
        }
    return decision


def results_view(
    experiment: Experiment,
    chosen: int,
    counts: dict[str, VariantCounts],
    now: datetime,
    analysis: ExperimentAnalysis | None = None,
) -> dict[str, Any]:
    """The results endpoint's body: the compatible fields (:data:`RESULTS_FIELDS`), the full
    analysis and the decision, with the users and days still needed at the observed traffic.
    Power and the users still needed refer to the experiment's pre-registered minimum lift
    and power. ``analysis`` is :func:`primary_analysis` of the same counts, when the caller
    has it already."""
    if analysis is None:
        analysis = primary_analysis(experiment, counts)
    first = analysis.comparisons[0]
    control = analysis.variant(experiment.control.name)
    treatment = analysis.variant(first.variant)
    daily = _daily_users(experiment, counts, now)
    below_minimum = [v.name for v in analysis.variants if v.n < experiment.min_sample_size]
    decision = experiment_decision(experiment, analysis)
    remaining = decision["remaining_samples"]
    mode = first.primary
    assert mode is not None
    compatible: dict[str, Any] = {
        # The compatible fields: the control against the first treatment. p_value,
        # is_significant and both intervals come from the mode in force (RESULTS_FIELDS).
        "control_samples": control.n,
        "treatment_samples": treatment.n,
        "control_conversion_rate": control.mean,
        "treatment_conversion_rate": treatment.mean,
        "absolute_difference": first.absolute.estimate,
        "confidence_interval": interval_pair(mode.absolute_ci),
        "relative_lift": first.relative.estimate,
        "relative_lift_interval": interval_pair(mode.relative_ci),
        "p_value": mode.adjusted_p_value,
        "is_significant": mode.significant,
        "inference": mode.basis,
        "min_relative_lift": experiment.min_relative_lift,
        "power": experiment.power,
    }
    reasons = {
        "control_conversion_rate": "no_samples",
        "treatment_conversion_rate": "no_samples",
        "absolute_difference": first.absolute.reason,
        "confidence_interval": first.absolute.reason if mode.basis == "fixed_horizon"
        else first.sequential.reason,
        "relative_lift": first.relative.reason,
        "relative_lift_interval": first.relative.reason if mode.basis == "fixed_horizon"
        else first.sequential_relative.reason,
        "p_value": mode.reason,
        "min_relative_lift": "no_min_lift",
    }  # fmt: skip
    null_reasons = {
        name: reasons[name] or "undefined"
        for name, value in compatible.items()
        if value is None and name in reasons
    }
    return {
        "experiment_id": experiment.id,
        "status": experiment.status.value,
        "phase": chosen,
        "metric_type": experiment.metric_type,
        **to_jsonable(compatible),
        "null_reasons": null_reasons,
        # The full analysis.
        "variants": to_jsonable(analysis.variants),
        "comparisons": to_jsonable(analysis.comparisons),
        "srm": to_jsonable(analysis.srm),
        "srm_method": "chi_square" if experiment.allocation == "fixed" else "adaptive",
        "srm_sequential": sequential_srm(experiment, counts),
        "adaptive_allocation_note": None if experiment.allocation == "fixed" else ADAPTIVE_NOTE,
        "decision": {
            **decision,
            "remaining_days": (
                0
                if remaining == 0
                else math.ceil(remaining / daily)
                if remaining and daily
                else None
            ),
            "daily_users": daily,
            "below_min_sample_size": below_minimum,
        },
    }


def _propensity(
    experiment: Experiment, counts: dict[str, VariantCounts]
) -> dict[str, tuple[float, float]] | None:
    """Per variant (Σ 1/p, Σ 1/p²) for a bandit experiment: its SRM check uses them."""
    if experiment.allocation == "fixed":
        return None
    empty = VariantCounts()
    return {
        v.name: (
            counts.get(v.name, empty).inverse_probability_sum,
            counts.get(v.name, empty).inverse_probability_square_sum,
        )
        for v in experiment.variants
    }


def timeseries_view(experiment: Experiment, hours: list[HourCounts]) -> dict[str, Any]:
    """Hourly cumulative counts and rates (with intervals) per variant, and the lift of each
    treatment with its CI and confidence sequence."""
    names = [v.name for v in experiment.variants]
    running = {name: VariantCounts() for name in names}
    points: list[dict[str, Any]] = []
    for hour in hours:
        for name, delta in hour.variants.items():
            if name in running:
                running[name] = running[name] + delta
        points.append({"hour": hour.hour.isoformat(), "variants": dict(running)})
    series: dict[str, Any] = {
        "hours": [p["hour"] for p in points],
        "variants": {},
        # The lift chart's axis follows the data once every arm has this many users.
        "min_sample_size": experiment.min_sample_size,
    }
    level = experiment.confidence_level
    for name in names:
        cumulative = [p["variants"][name] for p in points]
        if experiment.metric_type == "binary":
            stats = [ProportionStats(c.samples, c.conversions) for c in cumulative]
            intervals = [wilson_interval(s, confidence=level) for s in stats]
            values = [s.rate if s.n else None for s in stats]
        else:
            means = [MeanStats(c.samples, c.value_sum, c.value_sum_squares) for c in cumulative]
            values = [m.mean if m.n else None for m in means]
            intervals = [mean_interval(m, confidence=level) for m in means]
        series["variants"][name] = {
            "samples": [c.samples for c in cumulative],
            "conversions": [c.conversions for c in cumulative],
            "value": values,
            "ci_lower": [i.lower for i in intervals],
            "ci_upper": [i.upper for i in intervals],
        }
    series["lift"] = _lift_series(experiment, points)
    return to_jsonable(series)  # type: ignore[no-any-return]


def variant_summary(experiment: Experiment, counts: dict[str, VariantCounts]) -> dict[str, Any]:
    """Each variant's users, conversions, mean and std, straight from the counts: what the
    posterior chart reads (the same keys as the results' ``variants``), without an analysis."""
    control = experiment.control.name
    rows = []
    for name, stats in _stats(experiment, counts).items():
        row: dict[str, Any] = {"name": name, "is_control": name == control, "n": stats.n}
        if isinstance(stats, ProportionStats):
            row |= {"conversions": stats.conversions, "mean": stats.rate, "std": None}
        else:
            row |= {"conversions": None, "mean": stats.mean, "std": stats.std}
        rows.append(row)
    return {"metric_type": experiment.metric_type, "variants": to_jsonable(rows)}


def _stats(
    experiment: Experiment, counts: dict[str, VariantCounts]
) -> dict[str, ProportionStats] | dict[str, MeanStats]:
    rows = {v.name: counts.get(v.name, VariantCounts()) for v in experiment.variants}
    if experiment.metric_type == "binary":
        return {n: ProportionStats(c.samples, c.conversions) for n, c in rows.items()}
    return {n: MeanStats(c.samples, c.value_sum, c.value_sum_squares) for n, c in rows.items()}


def _daily_users(
    experiment: Experiment, counts: dict[str, VariantCounts], now: datetime
) -> float | None:
    if experiment.started_at is None:
        return None
    end = experiment.ended_at or now
    days = (end - experiment.started_at).total_seconds() / 86_400
    total = sum(c.samples for c in counts.values())
    if days <= 0 or total == 0:
        return None
    return total / max(days, 1 / 24)


def _lift_series(experiment: Experiment, points: list[dict[str, Any]]) -> dict[str, Any]:
    """Relative lift of each treatment over time, with its CI and confidence sequence.

    Both are built on the log-ratio scale when every defined point allows it (rates, and
    positive means), so neither goes below −100%; otherwise on the linear scale. Undefined
    points are ``None`` with their reason code in ``reason``; the confidence sequence is the
    running intersection over the defined looks (:func:`sequential_path`).
    """
    control = experiment.control.name
    out: dict[str, Any] = {}
    level = experiment.confidence_level
    for variant in experiment.variants:
        if variant.name == control:
            continue
        lifts: list[EffectEstimate] = []
        ns: list[int] = []
        for point in points:
            c, t = point["variants"][control], point["variants"][variant.name]
            if experiment.metric_type == "binary":
                lift = relative_lift_ci(
                    ProportionStats(c.samples, c.conversions),
                    ProportionStats(t.samples, t.conversions),
                    confidence=level,
                )
            else:
                lift = relative_mean_lift_ci(
                    MeanStats(c.samples, c.value_sum, c.value_sum_squares),
                    MeanStats(t.samples, t.value_sum, t.value_sum_squares),
                    confidence=level,
                )
            lifts.append(lift)
            ns.append(c.samples + t.samples)
        defined = [lift for lift in lifts if lift.ci is not None]
        log_scale = all(lift.log_std_error is not None for lift in defined)
        estimates, variances = [], []
        for lift in lifts:
            if lift.ci is None or lift.estimate is None:
                estimates.append(0.0)
                variances.append(0.0)  # an undefined look: it adds nothing to the path
            elif log_scale:
                assert lift.log_std_error is not None
                estimates.append(math.log1p(lift.estimate))
                variances.append(lift.log_std_error**2)
            else:
                assert lift.std_error is not None
                estimates.append(lift.estimate)
                variances.append(lift.std_error**2)
        path = (
            sequential_path(estimates, variances, ns, alpha=1 - experiment.confidence_level)
            if points
            else ()
        )

        out[variant.name] = {
            "lift": [lift.estimate for lift in lifts],
            "ci_lower": [None if lift.ci is None else lift.ci.lower for lift in lifts],
            "ci_upper": [None if lift.ci is None else lift.ci.upper for lift in lifts],
            "cs_lower": [_from_scale(r.ci_lower, log_scale) for r in path],
            "cs_upper": [_from_scale(r.ci_upper, log_scale) for r in path],
            "reason": [lift.reason if lift.ci is None else None for lift in lifts],
            "scale": "log_ratio" if log_scale else "linear",
        }
    return out


def _from_scale(bound: float | None, log_scale: bool) -> float | None:
    """A confidence-sequence bound back on the lift scale: ``exp(b) − 1`` from the log ratio."""
    if bound is None or not log_scale:
        return bound
    return math.expm1(bound)
