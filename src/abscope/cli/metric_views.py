"""The management commands' views of several metrics and of the gate: pure functions.

``abscope experiments results`` prints :func:`format_metrics` under the primary's tables
when the experiment declares metrics beyond its primary: one row per metric and treatment
(its role and kind, the control's and the treatment's value, the relative change with its
interval, the p-value and the verdict), the guardrails' status and the risk-aware
decision. ``abscope experiments gate`` prints :func:`format_gate` and exits with
:data:`GATE_EXIT_CODES`: 0 pass, 1 fail, 3 inconclusive (2 is a usage error, and 1 also any
other error, as for every command).

As in :mod:`abscope.cli.views`, a null value is ``n/a (reason)``, never 0.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from abscope.cli.tables import na, num, p_value, pct, pct_span, table

__all__ = ["GATE_EXIT_CODES", "format_gate", "format_metrics", "has_metrics"]

GATE_EXIT_CODES: dict[str, int] = {"pass": 0, "fail": 1, "inconclusive": 3}
"""``abscope experiments gate``'s exit status per verdict."""

NOTE_WIDTH = 92
"""Where the notes under the table are wrapped."""

Json = Mapping[str, Any]


def has_metrics(results: Json) -> bool:
    """Whether the results hold metrics beyond the primary (the primary's own tables show
    that one already)."""
    return len(results.get("metrics") or []) > 1


def _value(value: float | None, kind: str, reason: str | None) -> str:
    if kind == "quantile":
        return "see latency table"
    if kind == "binary":
        return pct(value, 2, reason=reason or "undefined")
    return num(value, reason=reason or "undefined")


def _verdict(comparison: Json, metric: Json) -> str:
    verdict = str(comparison.get("verdict"))
    if metric["role"] == "guardrail":
        return f"{verdict} (margin {metric['margin'] * 100:.3g}%)"
    if verdict == "inconclusive" and comparison.get("reason"):
        return f"inconclusive ({comparison['reason']})"
    return verdict


def _p(comparison: Json, metric: Json) -> str:
    reason = comparison.get("reason") or "undefined"
    if metric["role"] == "guardrail":
        return p_value(comparison.get("p_value"), reason=reason)
    return p_value(comparison.get("adjusted_p_value"), reason=reason)


def format_metrics(results: Json) -> str:
    """Every metric against the control, the guardrails' status and the decision rule."""
    variants = results["variants"]
    control = next((v["name"] for v in variants if v["is_control"]), variants[0]["name"])
    rows = []
    for metric in results["metrics"]:
        values = metric["variants"]
        for comparison in metric["comparisons"]:
            arm = comparison["variant"]
            interval = comparison.get("interval")
            reason = comparison.get("interval_reason") or comparison.get("reason")
            rows.append(
                [
                    metric["name"],
                    metric["role"],
                    metric["kind"],
                    arm,
                    _value(values[control]["value"], metric["kind"],
                           values[control]["value_reason"]),
                    _value(values[arm]["value"], metric["kind"], values[arm]["value_reason"]),
                    pct(comparison.get("estimate"), 2, True,
                        reason=comparison.get("estimate_reason") or comparison.get("reason")),
                    pct_span(interval[0], interval[1], 1) if interval else na(reason),
                    _p(comparison, metric),
                    _verdict(comparison, metric),
                ]
            )  # fmt: skip
    headers = ["metric", "role", "kind", "arm", control, "arm value", "change", "interval",
               "p", "verdict"]  # fmt: skip
    rule = results.get("decision_rule") or {}
    correction = {"holm": "Holm", "bh": "Benjamini-Hochberg"}.get(rule.get("correction", ""), "")
    notes = [
        textwrap.fill(
            "Intervals and p-values are those of each test's inference (sequential:"
            " confidence sequences and always-valid p); secondaries' p are adjusted across"
            " metrics x arms" + (f" ({correction})" if correction else "") + "; guardrails'"
            " are one-sided non-inferiority tests against their margin.",
            NOTE_WIDTH,
        ),
        f"Guardrails: {results.get('guardrail_status', na(None))}",
        f"Decision rule: {rule.get('sentence', na(None))}",
    ]
    return "\n".join([table(headers, rows, "llll" + "r" * 5 + "l"), "", *notes])


def format_gate(gate: Json) -> str:
    """``abscope experiments gate``: the verdict, then one line per reason."""
    head = f"{gate['experiment_id']}: {gate['verdict']} ({gate['status']})"
    return "\n".join([head, *(f"  {reason}" for reason in gate.get("reasons") or [])])
