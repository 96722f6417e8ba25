"""What the results and time-series endpoints show, built from stored counts: pure functions.

The service fetches an experiment's counts from the store; these functions turn them into the
JSON-ready views (through :func:`abscope.stats.analyze_experiment` and the interval functions).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from abscope.jsonable import to_jsonable
from abscope.models import Experiment, Status, VariantCounts
from abscope.stats import AnalysisOptions, MeanStats, ProportionStats, analyze_experiment
from abscope.stats.adaptive_srm import ADAPTIVE_NOTE
from abscope.stats.means import mean_interval, relative_mean_lift_ci
from abscope.stats.proportions import relative_lift_ci, wilson_interval
from abscope.stats.sequential import sequential_path
from abscope.storage.base import HourCounts

__all__ = ["results_view", "timeseries_view", "variant_summary"]


def results_view(
    experiment: Experiment, chosen: int, counts: dict[str, VariantCounts], now: datetime
) -> dict[str, Any]:
    """The results endpoint's body: the seed's fields, the full analysis and the decision,
    with the users and days still needed at the observed traffic."""
    analysis = analyze_experiment(
        _stats(experiment, counts),
        experiment.weights,
        control=experiment.control.name,
        options=AnalysisOptions(
            alpha=1.0 - experiment.confidence_level, sequential=experiment.sequential
        ),
        propensity=_propensity(experiment, counts),
    )
    first = analysis.comparisons[0]
    control = analysis.variant(experiment.control.name)
    treatment = analysis.variant(first.variant)
    daily = _daily_users(experiment, counts, now)
    remaining = analysis.decision.remaining_samples
    below_minimum = [v.name for v in analysis.variants if v.n < experiment.min_sample_size]
    decision = to_jsonable(analysis.decision)
    if below_minimum and decision["verdict"] in ("winner", "no_difference"):
        # The experiment's own floor: no verdict before every variant has its minimum.
        short = {v.name: experiment.min_sample_size - v.n for v in analysis.variants}
        remaining = sum(max(0, n) for n in short.values())
        decision |= {
            "verdict": "keep_running",
            "winner": None,
            "remaining_samples": remaining,
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
        remaining = None
    if experiment.sequential:
        seed_p = first.sequential_adjusted_p_value
        seed_significant = first.sequential_significant
        seed_interval = [first.sequential.ci_lower, first.sequential.ci_upper]
    else:
        seed_p = first.adjusted_p_value
        seed_significant = first.significant
        seed_interval = [first.absolute.ci.lower, first.absolute.ci.upper]
    return {
        "experiment_id": experiment.id,
        "status": experiment.status.value,
        "phase": chosen,
        "metric_type": experiment.metric_type,
        # The seed's fields: the control against the first treatment.
        "control_samples": control.n,
        "treatment_samples": treatment.n,
        "control_conversion_rate": control.mean,
        "treatment_conversion_rate": treatment.mean,
        "relative_lift": first.relative.estimate,
        # p_value, is_significant and confidence_interval agree with each other: with
        # sequential testing on they are the always-valid p-value and confidence
        # sequence of the absolute difference; otherwise the fixed-horizon ones.
        "p_value": seed_p,
        "is_significant": seed_significant,
        "confidence_interval": seed_interval,
        "inference": "sequential" if experiment.sequential else "fixed_horizon",
        # The full analysis.
        "variants": to_jsonable(analysis.variants),
        "comparisons": to_jsonable(analysis.comparisons),
        "srm": to_jsonable(analysis.srm),
        "srm_method": "chi_square" if experiment.allocation == "fixed" else "adaptive",
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
                running[name] = _add(running[name], delta)
        points.append({"hour": hour.hour.isoformat(), "variants": dict(running)})
    series: dict[str, Any] = {"hours": [p["hour"] for p in points], "variants": {}}
    level = experiment.confidence_level
    for name in names:
        cumulative = [p["variants"][name] for p in points]
        if experiment.metric_type == "binary":
            stats = [ProportionStats(c.samples, c.conversions) for c in cumulative]
            intervals = [wilson_interval(s, confidence=level) for s in stats]
            values = [s.rate for s in stats]
        else:
            means = [MeanStats(c.samples, c.value_sum, c.value_sum_squares) for c in cumulative]
            values = [m.mean for m in means]
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
    """Relative lift of each treatment over time, with its CI and confidence sequence."""
    control = experiment.control.name
    out: dict[str, Any] = {}
    level = experiment.confidence_level
    for variant in experiment.variants:
        if variant.name == control:
            continue
        estimates, variances, ns, lows, highs = [], [], [], [], []
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
            ok = lift.reason is None
            estimates.append(lift.estimate)
            variances.append(lift.std_error**2 if ok else 0.0)
            ns.append(c.samples + t.samples)
            lows.append(lift.ci.lower)
            highs.append(lift.ci.upper)
        path = (
            sequential_path(estimates, variances, ns, alpha=1 - experiment.confidence_level)
            if points
            else ()
        )
        out[variant.name] = {
            "lift": estimates,
            "ci_lower": lows,
            "ci_upper": highs,
            "cs_lower": [r.ci_lower for r in path],
            "cs_upper": [r.ci_upper for r in path],
        }
    return out


def _add(a: VariantCounts, b: VariantCounts) -> VariantCounts:
    return VariantCounts(
        samples=a.samples + b.samples,
        conversions=a.conversions + b.conversions,
        value_sum=a.value_sum + b.value_sum,
        value_sum_squares=a.value_sum_squares + b.value_sum_squares,
        inverse_probability_sum=a.inverse_probability_sum + b.inverse_probability_sum,
        inverse_probability_square_sum=(
            a.inverse_probability_square_sum + b.inverse_probability_square_sum
        ),
    )
