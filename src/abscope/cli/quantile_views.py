"""``abscope experiments results``' tables of quantile (latency) metrics: pure functions.

One table per quantile metric, under the metrics table: per quantile (p50, p95, ...) each
arm's estimate with its interval, and each treatment's relative difference from the
control with its interval, in words in the notes: which intervals they are (fixed-horizon,
from a bootstrap over users), the users and requests per arm, and, for a guardrail, the
guarded quantile, its margin and its always-valid verdict. As everywhere in the CLI, a
null value is ``n/a (reason)``, never 0.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from abscope.cli.tables import na, num, pct, pct_span, table

__all__ = ["format_quantiles", "has_quantiles"]

Json = Mapping[str, Any]

_WIDTH = 92


def has_quantiles(results: Json) -> bool:
    """Whether the results hold a quantile metric."""
    return any(m.get("kind") == "quantile" for m in results.get("metrics") or [])


def _span(interval: list[float | None] | None, reason: str | None) -> str:
    if not interval or interval[0] is None or interval[1] is None:
        return na(reason)
    return f"{num(interval[0])} to {num(interval[1])}"


def _metric_table(metric: Json) -> str:
    rows = []
    for row in metric["quantile_results"]:
        changes = {c["variant"]: c for c in row["comparisons"]}
        for arm, figures in row["arms"].items():
            change = changes.get(arm)
            if change is None:
                relative, interval = "(control)", ""
            else:
                reason = change.get("relative_reason")
                relative = pct(change.get("relative"), 1, True, reason=reason)
                bounds = change.get("relative_interval")
                interval = pct_span(bounds[0], bounds[1], 1) if bounds else na(reason)
            rows.append(
                [
                    row["label"],
                    arm,
                    num(figures["estimate"], reason=figures.get("reason")),
                    _span(figures.get("interval"), figures.get("reason")),
                    relative,
                    interval,
                ]
            )
    headers = ["quantile", "arm", "estimate", "interval", "vs control", "interval"]
    return table(headers, rows, "llrrrr")


def _guardrail_lines(metric: Json) -> list[str]:
    if metric["role"] != "guardrail":
        return []
    label = f"p{round(metric['guard_quantile'] * 100, 6):g}"
    direction = "rise" if not metric.get("higher_is_better") else "fall"
    lines = [
        f"Guardrail: {label} may not {direction} more than {pct(metric['margin'], 1)}"
        f" ({metric.get('action') or 'alert'} on a breach), judged by an always-valid"
        " (sequential) test:"
    ]
    for c in metric.get("comparisons") or []:
        bounds = c.get("interval")
        span = pct_span(bounds[0], bounds[1], 1) if bounds else na(c.get("reason"))
        lines.append(
            f"  {c['variant']}: {c['verdict']}, change"
            f" {pct(c.get('estimate'), 1, True, reason=c.get('reason'))}, always-valid"
            f" bounds {span}"
        )
    return lines


def format_quantiles(results: Json) -> str:
    """Every quantile metric's table and notes (empty text when there is none)."""
    blocks = []
    for metric in results.get("metrics") or []:
        if metric.get("kind") != "quantile":
            continue
        level = f"{metric.get('confidence_level', 0.95) * 100:g}%"
        better = "higher" if metric.get("higher_is_better") else "lower"
        arms = ", ".join(
            f"{name} {v['users']:,} users and {v['requests']:,} requests"
            for name, v in metric["variants"].items()
        )
        note = textwrap.fill(
            f"{metric['name']} ({metric['role']}, {better} is better): {level} intervals,"
            " fixed-horizon (valid at one look), from a bootstrap over users, so they hold"
            f" when users make many requests. Counted: {arms}.",
            _WIDTH,
        )
        blocks.append("\n".join([note, _metric_table(metric), *_guardrail_lines(metric)]))
    return "\n\n".join(blocks)
