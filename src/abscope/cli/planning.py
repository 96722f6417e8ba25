"""``abscope plan`` and ``abscope analyze``: an experiment's duration, and the analysis of
per-variant counts given on the command line.

The statistics (NumPy and SciPy, the ``server`` extra) are imported inside the commands, so
that the rest of the command line runs without them.

Examples::

    abscope plan --baseline-rate 0.1 --min-relative-lift 0.05 --daily-traffic 20000
    abscope plan --baseline-rate 10% --min-absolute-effect 0.5% --arms 3 --daily-traffic 20000
    abscope plan --metric continuous --baseline-mean 42 --std 30 --min-absolute-effect 1.5 \\
        --daily-traffic 5000
    abscope plan --baseline-rate 10% --min-relative-lift 5% --daily-traffic 20000 \\
        --covariate-correlation 0.7
    abscope analyze --counts control=150/1000 treatment=180/1000
    abscope analyze --means control=1000:10.2:3.1 treatment=1000:10.6:3.0 --json
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from abscope.cli.tables import UNDEFINED, json_text, num, p_value, pct, table
from abscope.jsonable import to_jsonable

if TYPE_CHECKING:
    from abscope.stats.analysis import ExperimentAnalysis
    from abscope.stats.planner import DurationPlan
    from abscope.stats.results import Interval
    from abscope.stats.sufficient import MeanStats, ProportionStats

__all__ = [
    "DEFAULT_TUNING_N",
    "analyze",
    "format_analysis",
    "format_plan",
    "parse_counts",
    "parse_fraction",
    "parse_means",
    "parse_weights",
    "plan",
]

DEFAULT_TUNING_N = 5_000
"""``abscope.stats.sequential.DEFAULT_TUNING_N``, repeated here so that the option's default
needs no NumPy at import time (a test checks that the two agree)."""


def _split_spec(spec: str, what: str) -> tuple[str, str]:
    name, sep, value = spec.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise typer.BadParameter(f"expected NAME={what}, got {spec!r}", param_hint="SPECS")
    return name.strip(), value.strip()


def parse_counts(specs: Sequence[str]) -> dict[str, ProportionStats]:
    """Parse ``name=conversions/users`` specs, e.g. ``control=150/1000``."""
    from abscope.stats.sufficient import ProportionStats

    variants: dict[str, ProportionStats] = {}
    for spec in specs:
        name, value = _split_spec(spec, "CONVERSIONS/USERS")
        conversions, sep, users = value.partition("/")
        if not sep:
            raise typer.BadParameter(
                f"expected NAME=CONVERSIONS/USERS, got {spec!r}", param_hint="SPECS"
            )
        try:
            variants[_unique(name, variants)] = ProportionStats(int(users), int(conversions))
        except ValueError as error:
            raise typer.BadParameter(f"{spec!r}: {error}", param_hint="SPECS") from None
    return variants


def parse_means(specs: Sequence[str]) -> dict[str, MeanStats]:
    """Parse ``name=users:mean:std`` specs, e.g. ``control=1000:10.2:3.1``."""
    from abscope.stats.sufficient import MeanStats

    variants: dict[str, MeanStats] = {}
    for spec in specs:
        name, value = _split_spec(spec, "USERS:MEAN:STD")
        parts = value.split(":")
        if len(parts) != 3:
            raise typer.BadParameter(
                f"expected NAME=USERS:MEAN:STD, got {spec!r}", param_hint="SPECS"
            )
        try:
            n, mean, std = int(parts[0]), float(parts[1]), float(parts[2])
            variants[_unique(name, variants)] = MeanStats.from_moments(n, mean, std)
        except ValueError as error:
            raise typer.BadParameter(f"{spec!r}: {error}", param_hint="SPECS") from None
    return variants


def _unique(name: str, seen: dict[str, Any]) -> str:
    if name in seen:
        raise ValueError(f"variant {name!r} is given twice")
    return name


def parse_weights(text: str | None, names: list[str]) -> list[float]:
    """Parse ``0.5,0.5`` or ``control=0.5,treatment=0.5``; equal weights when omitted."""
    if text is None:
        return [1.0 / len(names)] * len(names)
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        if all("=" in item for item in items):
            given = {k.strip(): float(v) for k, v in (item.split("=", 1) for item in items)}
            unknown = sorted(set(given) - set(names))
            if unknown:
                raise ValueError(f"unknown variant(s) {', '.join(unknown)}")
            return [given[name] if name in given else math.nan for name in names]
        return [float(item) for item in items]
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--weights") from None


def parse_fraction(text: str | None, name: str) -> float | None:
    """``"10%"`` or ``"0.1"`` as the fraction 0.1 (``None`` stays ``None``).

    A number with a ``%`` sign is divided by 100 as a decimal (``"7.3%"`` is exactly the float
    nearest 0.073); a plain number is a fraction, as the API takes it.
    """
    if text is None:
        return None
    raw = text.strip()
    try:
        if raw.endswith("%"):
            from decimal import Decimal, InvalidOperation

            try:
                return float(Decimal(raw[:-1].strip()) / 100)
            except InvalidOperation:
                raise ValueError from None
        return float(raw)
    except ValueError:
        raise typer.BadParameter(
            f"expected a number or a percentage such as 10%, got {text!r}", param_hint=name
        ) from None


_PERCENT = " A fraction or a percentage: 0.1 and 10% are the same."


def plan(
    daily_traffic: Annotated[float, typer.Option(help="Eligible users per day.")],
    baseline_rate: Annotated[
        str | None, typer.Option(help="Binary metric: current conversion rate." + _PERCENT)
    ] = None,
    min_relative_lift: Annotated[
        str | None,
        typer.Option(help="Smallest relative lift worth detecting, e.g. 5% (or 0.05)."),
    ] = None,
    min_absolute_effect: Annotated[
        str | None,
        typer.Option(
            help="Smallest absolute effect instead: a difference of rates (1% is one"
            " percentage point) or of means."
        ),
    ] = None,
    metric: Annotated[
        str, typer.Option(help="binary (a conversion rate) or continuous (a mean).")
    ] = "binary",
    baseline_mean: Annotated[
        float | None, typer.Option(help="Continuous metric: the control's mean.")
    ] = None,
    std: Annotated[
        float | None, typer.Option(help="Continuous metric: standard deviation of one user.")
    ] = None,
    arms: Annotated[int, typer.Option(help="Control plus treatments.")] = 2,
    allocation: Annotated[
        str, typer.Option(help="Traffic in the experiment (share of daily traffic)." + _PERCENT)
    ] = "1",
    treatment_share: Annotated[
        str | None,
        typer.Option(help="Share of the tested users in each treatment arm (default: equal)."),
    ] = None,
    power: Annotated[str, typer.Option(help="Chance of detecting the effect.")] = "0.8",
    alpha: Annotated[
        str, typer.Option(help="Significance level, split over the comparisons.")
    ] = "0.05",
    one_sided: Annotated[
        bool, typer.Option("--one-sided", help="One-sided fixed-horizon test.")
    ] = False,
    sequential: Annotated[
        bool,
        typer.Option(
            "--sequential/--fixed-horizon",
            help="Plan for the always-valid sequential test (a new experiment's default) or "
            "the fixed-horizon test read once. Both are shown.",
        ),
    ] = True,
    sequential_tuning_n: Annotated[
        int, typer.Option(help="Tuning of the sequential test (total users).")
    ] = DEFAULT_TUNING_N,
    max_days: Annotated[
        int | None, typer.Option(help="The longest the experiment can run, in days.")
    ] = None,
    covariate_correlation: Annotated[
        float | None,
        typer.Option(
            help="CUPED: expected correlation in [0, 1) of the metric with a covariate sent"
            " with the exposures (the same metric over a pre-period, say). Plans the adjusted"
            " test, variance x (1 - rho^2), and shows the plan without it too."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """How many users and days an experiment needs, for the test the analysis will run."""
    from abscope.stats.planner import plan_duration

    try:
        result = plan_duration(
            baseline_rate=parse_fraction(baseline_rate, "--baseline-rate"),
            min_relative_lift=parse_fraction(min_relative_lift, "--min-relative-lift"),
            daily_traffic=daily_traffic,
            allocation=_fraction(parse_fraction(allocation, "--allocation")),
            treatment_share=parse_fraction(treatment_share, "--treatment-share"),
            power=_fraction(parse_fraction(power, "--power")),
            alpha=_fraction(parse_fraction(alpha, "--alpha")),
            two_sided=not one_sided,
            sequential=sequential,
            sequential_tuning_n=sequential_tuning_n,
            metric_type=metric,
            baseline_mean=baseline_mean,
            standard_deviation=std,
            min_absolute_effect=parse_fraction(min_absolute_effect, "--min-absolute-effect")
            if metric == "binary"
            else _number(min_absolute_effect),
            arms=arms,
            max_days=max_days,
            covariate_correlation=covariate_correlation,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    typer.echo(json_text(to_jsonable(result)) if as_json else format_plan(result))


def _fraction(value: float | None) -> float:
    assert value is not None  # parse_fraction gives None only for None
    return value


def _number(text: str | None) -> float | None:
    """A continuous metric's absolute effect is in its own unit: no percent sign."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise typer.BadParameter(
            f"expected a number in the metric's unit, got {text!r}",
            param_hint="--min-absolute-effect",
        ) from None


def analyze(
    specs: Annotated[
        list[str],
        typer.Argument(
            help="One spec per variant, control first: NAME=CONVERSIONS/USERS with --counts"
            " (the default) or NAME=USERS:MEAN:STD with --means.",
            show_default=False,
        ),
    ],
    counts: Annotated[
        bool, typer.Option("--counts", help="Specs are conversions/users (binary metric).")
    ] = False,
    means: Annotated[
        bool, typer.Option("--means", help="Specs are users:mean:std (continuous metric).")
    ] = False,
    weights: Annotated[
        str | None,
        typer.Option(help="Configured split, e.g. 0.5,0.5 or control=0.5,treatment=0.5."),
    ] = None,
    control: Annotated[str | None, typer.Option(help="Control variant (default: first).")] = None,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    correction: Annotated[str, typer.Option(help="holm, bh or none.")] = "holm",
    min_relative_lift: Annotated[
        float | None,
        typer.Option(
            help="Pre-registered smallest relative lift worth detecting (0.05 is +5%). Without"
            " it power and the users still needed are not computed."
        ),
    ] = None,
    power: Annotated[float, typer.Option(help="Target power for that lift.")] = 0.8,
    sequential: Annotated[
        bool, typer.Option(help="Decide on always-valid p-values (safe to peek).")
    ] = True,
    lower_is_better: Annotated[
        bool, typer.Option("--lower-is-better", help="For latency-like metrics.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Analyse an experiment from its per-variant counts or moments."""
    from abscope.stats.analysis import AnalysisOptions, analyze_experiment
    from abscope.stats.multiple import Correction

    if counts and means:
        raise typer.BadParameter("give --counts or --means, not both")
    variants: dict[str, ProportionStats] | dict[str, MeanStats]
    variants = parse_means(specs) if means else parse_counts(specs)
    names = list(variants)
    if correction not in ("holm", "bh", "none"):
        raise typer.BadParameter("must be holm, bh or none", param_hint="--correction")
    method: Correction = "holm" if correction == "holm" else "bh" if correction == "bh" else "none"
    try:
        options = AnalysisOptions(
            alpha=alpha,
            correction=method,
            min_relative_lift=min_relative_lift,
            power=power,
            sequential=sequential,
            higher_is_better=not lower_is_better,
        )
        result = analyze_experiment(
            variants, parse_weights(weights, names), control=control, options=options
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    typer.echo(json_text(to_jsonable(result)) if as_json else format_analysis(result))


# --- output -------------------------------------------------------------------------------


def _span(interval: Interval | None, digits: int = 1) -> str:
    if interval is None:
        return UNDEFINED
    return f"{pct(interval.lower, digits, True)} to {pct(interval.upper, digits, True)}"


def format_plan(plan: DurationPlan) -> str:
    """A readable summary of a duration plan."""
    sides = "two-sided" if plan.two_sided else "one-sided"
    other = plan.fixed_horizon if plan.sequential else plan.always_valid
    mode = (
        f"sequential (always-valid, tuning {plan.sequential_tuning_n:,})"
        if plan.sequential
        else f"fixed-horizon ({sides}, read once)"
    )
    if plan.unadjusted is not None:
        mode += ", CUPED-adjusted"
    other_mode = "fixed-horizon" if plan.sequential else "sequential"
    binary = plan.metric_type == "binary"
    relative = (
        UNDEFINED if plan.min_relative_lift is None else pct(plan.min_relative_lift, signed=True)
    )
    if binary:
        assert plan.baseline_rate is not None and plan.treatment_rate is not None
        absolute = f"{plan.min_absolute_effect * 100:+.4g} percentage points"
        metric_rows = [
            ["baseline rate", pct(plan.baseline_rate)],
            ["minimum effect", f"{relative} ({absolute})"],
            ["treatment rate to detect", pct(plan.treatment_rate)],
        ]
    else:
        assert plan.baseline_mean is not None and plan.treatment_mean is not None
        metric_rows = [
            ["baseline mean / std", f"{plan.baseline_mean:,.6g} / {plan.standard_deviation:,.6g}"],
            ["minimum effect", f"{relative} ({plan.min_absolute_effect:+,.6g} absolute)"],
            ["treatment mean to detect", f"{plan.treatment_mean:,.6g}"],
        ]
    if plan.comparisons > 1:
        arms_rows = [
            ["arms", f"{plan.arms}: alpha {plan.alpha_per_comparison:.4g} per comparison (Holm)"],
            ["share of each treatment", pct(plan.treatment_share, 1)],
        ]
    else:
        arms_rows = [["split (treatment share)", pct(plan.treatment_share, 0)]]
    rows = [
        ["planned for", mode],
        *metric_rows,
        ["power / alpha", f"{plan.power:.0%} / {plan.alpha:g}"],
        *arms_rows,
        ["users in test per day", f"{plan.daily_users_in_test:,.0f}"],
        ["control samples", f"{plan.control_samples:,}"],
        ["treatment samples" + (" per arm" if plan.comparisons > 1 else ""),
         f"{plan.treatment_samples:,}"],
        ["total samples", f"{plan.total_samples:,}"],
        ["days", f"{plan.days:,}"],
        [f"{other_mode} instead", f"{other.total_samples:,} samples, {other.days:,} days"],
        *_cuped_rows(plan),
    ]  # fmt: skip
    width = max(len(label) for label, _ in rows)
    text = "Duration plan\n" + "\n".join(
        f"  {label.ljust(width)}  {value}" for label, value in rows
    )
    for warning in plan.warnings:
        text += f"\nWarning ({warning.code}): {warning.message}"
    return text


def _cuped_rows(plan: DurationPlan) -> list[list[str]]:
    """The CUPED correlation and the plan without it, when the plan has a correlation."""
    if plan.covariate_correlation is None:
        return []
    rho = f"{plan.covariate_correlation:g}"
    if plan.unadjusted is None:
        return [["CUPED correlation", f"{rho} (no adjustment)"]]
    without = plan.unadjusted
    return [
        ["CUPED correlation", f"{rho}: variance x {plan.variance_factor:.4g}"
         " (the figures above are with CUPED)"],
        ["without CUPED", f"{without.control_samples:,} control, {without.total_samples:,}"
         f" samples, {without.days:,} days"],
    ]  # fmt: skip


def format_analysis(result: ExperimentAnalysis) -> str:
    """A readable report of an experiment analysis."""
    from abscope.stats.results import REASONS

    binary = result.metric == "binary"
    level = f"{1 - result.options.alpha:.0%}"
    variant_rows = []
    for v in result.variants:
        shown = pct if binary else num
        interval = f"{shown(v.ci.lower)} to {shown(v.ci.upper)}"
        extra = f"{v.conversions:,}" if v.conversions is not None else num(v.std)
        label = v.name + (" (control)" if v.is_control and v.name != "control" else "")
        variant_rows.append(
            [label, f"{v.n:,}", extra, shown(v.mean), interval, pct(v.observed_share, 1),
             pct(v.prob_best, 1)]
        )  # fmt: skip
    variant_table = table(
        ["variant", "users", "conversions" if binary else "std", "rate" if binary else "mean",
         f"{level} CI", "share", "P(best)"],
        variant_rows,
    )  # fmt: skip
    sequential = result.options.sequential
    mode, other = ("sequential", "fixed-horizon") if sequential else ("fixed-horizon", "sequential")
    comparison_rows = []
    notes: list[str] = []
    for c in result.comparisons:
        primary, secondary = c.primary, c.secondary
        assert primary is not None and secondary is not None
        comparison_rows.append(
            [c.variant, pct(c.relative.estimate, signed=True), _span(primary.relative_ci),
             p_value(primary.adjusted_p_value), _span(secondary.relative_ci),
             p_value(secondary.adjusted_p_value), pct(c.bayesian.chance_to_beat_control, 1),
             pct(c.power, 0)]
        )  # fmt: skip
        undefined = {
            "lift": c.relative.reason if c.relative.estimate is None else None,
            f"{mode} interval": (c.sequential_relative if sequential else c.relative).reason
            if primary.relative_ci is None
            else None,
            f"{mode} p": primary.reason if primary.adjusted_p_value is None else None,
            "power": c.power_reason if c.power is None else None,
        }
        for what, reason in undefined.items():
            if reason:
                text = REASONS.get(reason, reason)
                notes.append(f"  {c.variant} {what}: {UNDEFINED} ({reason}: {text})")
    comparison_table = table(
        ["vs " + result.control, "lift", f"{level} {'CS' if sequential else 'CI'}",
         "adj p", f"{other} CI", f"{other} p", "P(beat)", "power"],
        comparison_rows,
    )  # fmt: skip
    mode_line = (
        f"Inference: {mode} (intervals are relative lifts;"
        + (" always-valid, safe to peek)" if sequential else " read once, at the planned size)")
        + f"; {other} figures for reference only."
    )
    comparison_table = mode_line + "\n" + comparison_table
    if notes:
        comparison_table += "\nUndefined values:\n" + "\n".join(notes)
    srm = result.srm
    srm_line = (
        f"Sample ratio: p = {p_value(srm.p_value)}"
        + (f" ({srm.reason})" if srm.reason else "")
        + (" - MISMATCH" if srm.mismatch else " (consistent with the weights)")
    )
    return "\n\n".join(
        [variant_table, comparison_table, srm_line, f"Decision: {result.decision.message}"]
    )
