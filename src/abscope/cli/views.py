"""The management commands' tables, from the server's JSON answers: pure functions.

A value the server sends as ``null`` is printed ``n/a (reason)``, with the reason code the
answer gives beside it (``null_reasons``, a comparison's ``reason`` fields), never as 0. The
codes are those of :mod:`abscope.stats.results` (``no_samples``, ``zero_baseline``,
``no_min_lift``...); this module does not import it, as it runs without NumPy.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from abscope.cli.adaptive_views import format_adaptive
from abscope.cli.tables import fields, na, num, p_value, pct, pct_span, table, when

__all__ = [
    "AUDIT_SHOWN",
    "describe_metric",
    "format_experiment",
    "format_list",
    "format_results",
    "format_transition",
    "total_users",
]

AUDIT_SHOWN = 10
"""The audit entries ``show`` prints, the most recent last."""

NOTE_WIDTH = 92
"""Where the results' notes are wrapped."""

Json = Mapping[str, Any]


def total_users(results: Json) -> int:
    """The users counted in every variant of a results answer (its current phase)."""
    return sum(int(v["n"]) for v in results["variants"])


def format_list(experiments: Sequence[Json], users: Mapping[str, int]) -> str:
    """``abscope experiments list``: one row per experiment. ``users`` maps the id of each
    experiment that has started to its users in the current phase; a draft has none."""
    if not experiments:
        return "No experiments."
    rows = []
    for e in experiments:
        started = when(e.get("started_at"), reason="not started")
        count = users.get(e["id"])
        rows.append(
            [e["id"], e["status"], "/".join(v["name"] for v in e["variants"]),
             _traffic(e["traffic_percentage"]), started,
             f"{count:,}" if count is not None else "0" if e["status"] == "draft" else na(None)]
        )  # fmt: skip
    return table(["id", "status", "variants", "traffic", "started", "users"], rows, "lllrlr")


def _traffic(percentage: float) -> str:
    return f"{percentage:g}%"


def _inference(sequential: bool) -> str:
    return (
        "sequential (always-valid: safe to read at any time)"
        if sequential
        else "fixed-horizon (read once, at the planned size)"
    )


def format_experiment(e: Json) -> str:
    """``abscope experiments show``: the configuration, the variants and the recent audit."""
    lift = e.get("min_relative_lift")
    config = [
        ("name", e["name"]),
        ("status", e["status"] + (f" (winner: {e['winner']})" if e.get("winner") else "")),
        ("phase", str(e["phase"])),
        ("metric", e["metric_type"]),
        ("allocation", e["allocation"]),
        ("traffic", _traffic(e["traffic_percentage"])),
        ("inference", _inference(bool(e["sequential"]))),
        ("confidence level", f"{e['confidence_level']:.0%}"),
        ("min relative lift", pct(lift, 1, True) if lift is not None else na("not set")),
        ("power", f"{e['power']:.0%}"),
        ("min sample size", f"{e['min_sample_size']:,} per variant"),
        ("layer", e.get("layer") or na("none")),
        ("sticky", "yes" if e.get("sticky") else "no"),
        ("forced users", f"{len(e.get('forced_variants') or {}):,}"),
        ("created", when(e.get("created_at"), reason="unknown")),
        ("started", when(e.get("started_at"), reason="not started")),
        ("ended", when(e.get("ended_at"), reason="not ended")),
    ]
    if e.get("description"):
        config.insert(1, ("description", e["description"]))
    arms = e["variants"]
    control = next((v["name"] for v in arms if v.get("is_control")), arms[0]["name"])
    variants = table(
        ["variant", "model", "weight", "control"],
        [[v["name"], v["model_id"], pct(v["weight"], 1), "yes" if v["name"] == control else ""]
         for v in arms],
        "llrl",
    )  # fmt: skip
    declared = list(e.get("metrics") or [])
    if not any(m.get("role") == "primary" for m in declared):
        implicit = _IMPLICIT_PRIMARY.get(e["metric_type"], ("converted", "binary"))
        primary = {"name": implicit[0], "kind": implicit[1], "role": "primary"}
        declared.insert(0, primary)
    metrics = "\n".join(f"  {describe_metric(m)}" for m in declared)
    audit = e.get("audit") or []
    recent = audit[-AUDIT_SHOWN:]
    audit_table = table(
        ["at", "by", "action", "changes"],
        [[when(a["at"], reason="unknown"), (a.get("changes") or {}).get("by", ""), a["action"],
          _changes({k: v for k, v in (a.get("changes") or {}).items() if k != "by"})]
         for a in recent],
        "llll",
    ) if recent else "  (none)"  # fmt: skip
    shown = f"last {len(recent)} of {len(audit)}" if len(audit) > len(recent) else "all"
    return "\n\n".join(
        [
            f"{e['id']}\n{fields(config)}",
            variants,
            f"Metrics:\n{metrics}",
            f"Audit ({shown}, oldest first):\n{audit_table}",
        ]
    )


_IMPLICIT_PRIMARY = {"binary": ("converted", "binary"), "continuous": ("value", "mean")}
"""The primary of an experiment that declares none: its conversions, or its values."""


def describe_metric(m: Json) -> str:
    """One metric in a line: ``latency_ms: ratio guardrail, lower is better, margin 5.0%,
    pause on breach``."""
    role = m.get("role") or "secondary"
    better = "higher" if m.get("higher_is_better", True) else "lower"
    text = f"{m['name']}: {m['kind']} {role}, {better} is better"
    if m.get("quantiles"):
        text += ", " + "/".join(f"p{round(q * 100, 6):g}" for q in m["quantiles"])
    if m.get("guard_quantile") is not None:
        text += f", guards p{round(m['guard_quantile'] * 100, 6):g}"
    if role == "guardrail":
        text += f", margin {pct(m['margin'], 1)}" if m.get("margin") is not None else ""
        text += f", {m.get('action') or 'alert'} on breach"
        if m.get("min_samples") is not None:
            text += f", acts from {m['min_samples']:,} users per arm"
    return text


def _changes(changes: Json) -> str:
    parts = []
    for name, change in changes.items():
        if isinstance(change, Mapping) and {"name", "kind"} <= set(change):
            parts.append(f"{name} {describe_metric(change)}")
        elif isinstance(change, Mapping) and set(change) == {"from", "to"}:
            parts.append(f"{name}: {_compact(change['from'])} -> {_compact(change['to'])}")
        else:
            parts.append(f"{name}: {_compact(change)}")
    text = "; ".join(parts)
    return text if len(text) <= 100 else text[:99] + "\u2026"


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def format_transition(e: Json, action: str) -> str:
    """One line after ``start``, ``pause``, ``resume``, ``complete`` or ``stop``."""
    line = f"{e['id']}: {e['status']}"
    if action == "complete":
        line += f", serving {e['winner']} to everyone" if e.get("winner") else ""
    if action == "start" and e.get("started_at"):
        line += f" since {when(e['started_at'], reason='unknown')}"
    return line


def format_results(results: Json) -> str:
    """``abscope experiments results``: the variants, each treatment against the control in
    the experiment's inference mode, the sample-ratio check and the decision."""
    binary = results["metric_type"] == "binary"
    sequential = results["inference"] == "sequential"
    variants = results["variants"]
    level = _level(results)
    head = (
        f"{results['experiment_id']}: {results['status']}, phase {results['phase']},"
        f" {results['metric_type']} metric; inference: {_inference(sequential)}"
    )
    anyone = any(v["n"] for v in variants)
    variant_rows = [_variant_row(v, binary, anyone) for v in variants]
    variant_table = table(
        ["variant", "users", "conversions" if binary else "std", "rate" if binary else "mean",
         f"{level} CI", "weight", "share"],
        variant_rows,
    )  # fmt: skip
    comparisons = results.get("comparisons") or []
    many = len(comparisons) > 1
    p_label = ("always-valid p" if sequential else "p-value") + (" (adj.)" if many else "")
    control = next((v["name"] for v in variants if v["is_control"]), "control")
    comparison_rows = [_comparison_row(c, sequential) for c in comparisons]
    comparison_table = table(
        [f"vs {control}", "lift", f"{level} {'CS' if sequential else 'CI'} of the lift",
         p_label, "chance to beat", "power"],
        comparison_rows,
    )  # fmt: skip
    lines = [head, variant_table, comparison_table]
    if "cuped" in results:  # servers before CUPED send none
        lines.append(_cuped_block(results, level, sequential))
    if results.get("adaptive_estimates") is not None:  # bandits only
        lines.append(format_adaptive(results["adaptive_estimates"], results["metric_type"]))
    lines.append(_srm_line(results))
    if "srm_sequential" in results:  # servers before the sequential check send none
        lines.append(_sequential_srm_line(results["srm_sequential"]))
    if results.get("adaptive_allocation_note"):
        lines.append(textwrap.fill(str(results["adaptive_allocation_note"]), NOTE_WIDTH))
    lines.append(_decision_line(results.get("decision") or {}))
    return "\n\n".join(lines)


def _level(results: Json) -> str:
    for v in results["variants"]:
        ci = v.get("ci")
        if ci and ci.get("level") is not None:
            return f"{ci['level']:.0%}"
    return "95%"


def _variant_row(v: Json, binary: bool, anyone: bool) -> list[str]:
    """One variant's cells; its share of the users is undefined while there are none (the
    answer says 0)."""
    label = v["name"] + (" (control)" if v["is_control"] and v["name"] != "control" else "")
    ci = v.get("ci") or {}
    lower, upper = ci.get("lower"), ci.get("upper")
    if not v["n"]:
        value = interval = na("no_samples")
    elif binary:
        value = pct(v.get("mean"), 2, reason="undefined")
        interval = pct_span(lower, upper, 1, signed=False, reason="undefined")
    else:
        value = num(v.get("mean"), reason="undefined")
        interval = (
            f"{num(lower)} to {num(upper)}"
            if lower is not None and upper is not None
            else na("undefined")
        )
    extra = f"{v['conversions']:,}" if binary else num(v.get("std"), reason="insufficient_samples")
    share = pct(v.get("observed_share") if anyone else None, 1, reason="no_samples")
    return [label, f"{v['n']:,}", extra, value, interval, pct(v.get("weight"), 1), share]


def _comparison_row(c: Json, sequential: bool) -> list[str]:
    primary = c.get("primary") or {}
    relative = c.get("relative") or {}
    interval = primary.get("relative_ci")
    interval_reason = (
        (c.get("sequential_relative") or {}).get("reason") if sequential else relative.get("reason")
    ) or primary.get("reason")
    bayesian = c.get("bayesian") or {}
    return [
        c["variant"],
        pct(relative.get("estimate"), 2, True, reason=relative.get("reason")),
        pct_span(interval["lower"], interval["upper"], 1) if interval else na(interval_reason),
        p_value(primary.get("adjusted_p_value"), reason=primary.get("reason")),
        pct(bayesian.get("chance_to_beat_control"), 1, reason=bayesian.get("reason")),
        pct(c.get("power"), 1, reason=c.get("power_reason")),
    ]


def _cuped_block(results: Json, level: str, sequential: bool) -> str:
    """The primary adjusted by the users' covariates: per treatment the adjusted
    difference and lift with the interval of the inference mode, the θ used and the
    variance removed; ``n/a (reason)`` without covariates."""
    cuped = results.get("cuped")
    if cuped is None:
        return f"CUPED: {na((results.get('null_reasons') or {}).get('cuped'))}"
    binary = results["metric_type"] == "binary"
    rows = []
    for c in cuped["comparisons"]:
        reason = c.get("reason")
        interval = c.get("difference_interval")
        relative_interval = c.get("relative_interval")
        if binary:
            difference = pct(c.get("difference"), 2, True, reason=reason)
            span = pct_span(interval[0], interval[1], 2) if interval else na(reason)
        else:
            difference = num(c.get("difference"), True, reason=reason)
            span = f"{num(interval[0])} to {num(interval[1])}" if interval else na(reason)
        rows.append(
            [
                c["variant"],
                f"{c['theta_method'].replace('_', '-')} {num(c.get('theta_treatment'))}",
                difference,
                span,
                pct(c.get("relative"), 2, True, reason=reason),
                pct_span(relative_interval[0], relative_interval[1], 1)
                if relative_interval
                else na(reason),
                p_value(c.get("p_value"), reason=reason),
                pct(c.get("variance_reduction"), 1, reason=reason),
            ]
        )
    kind = "CS" if sequential else "CI"
    adjusted = table(
        ["vs control", "θ", "difference", f"{level} {kind}", "lift", f"{level} {kind} of the lift",
         "always-valid p" if sequential else "p-value", "variance removed"],
        rows,
    )  # fmt: skip
    head = (
        f"CUPED ({cuped['metric']} adjusted by a pre-exposure covariate):"
        f" {cuped['covariate_users']:,} of {cuped['users']:,} users have one"
    )
    notes = {c["theta_reason"] for c in cuped["comparisons"]}
    wrapped = [textwrap.fill(note, NOTE_WIDTH) for note in sorted(notes)]
    return "\n".join([head, adjusted, *wrapped])


def _srm_line(results: Json) -> str:
    srm = results.get("srm") or {}
    method = results.get("srm_method", "chi_square")
    against = "the weights" if method == "chi_square" else "the logged assignment probabilities"
    verdict = (
        f"MISMATCH: the users are not split as {against} say"
        if srm.get("mismatch")
        else f"consistent with {against}"
    )
    method = method.replace("_", "-")
    if srm.get("p_value") is None:
        return f"Sample ratio ({method}): {na(srm.get('reason'))}"
    return f"Sample ratio ({method}): p = {p_value(srm['p_value'])}, {verdict}"


def _sequential_srm_line(srm: Json) -> str:
    """The always-valid SRM check in words: valid however often the results are read."""
    head = "Sample ratio (always-valid, Dirichlet-multinomial)"
    if not srm.get("applicable", True):
        return f"{head}: not applicable ({srm.get('reason')}: the split is meant to move)"
    if srm.get("p_value") is None:
        return f"{head}: {na(srm.get('reason'))}"
    verdict = (
        "MISMATCH: the users are not split as the weights say"
        if srm.get("mismatch")
        else "consistent with the weights"
    )
    return (
        f"{head}: p = {p_value(srm['p_value'])} (alarm below {srm['threshold']:g}, valid at"
        f" every look), {verdict}"
    )


def _decision_line(decision: Json) -> str:
    line = f"Decision: {decision.get('message', na(None))}"
    days, daily = decision.get("remaining_days"), decision.get("daily_users")
    if days and daily:
        line += f" About {days:,} more days at {daily:,.0f} users a day."
    return line
