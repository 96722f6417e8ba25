"""``abscope experiments results``' words on named metrics adjusted by their covariates.

One paragraph per binary or mean metric with a ``cuped`` block
(:mod:`abscope.metric_cuped`) and treatment: the adjusted difference with the interval and
p-value of the inference mode (named), the corrected p-value of a secondary and how it is
corrected, the unadjusted difference, the variance removed, θ and the users with a
covariate; a guardrail's says that its verdict stays on the unadjusted test. Metrics
without a block are listed with their reason. A null value is ``n/a (reason)``, never 0.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from abscope.cli.tables import na, num, p_value, pct

__all__ = ["format_metric_cuped", "has_metric_cuped"]

NOTE_WIDTH = 92

Json = Mapping[str, Any]


def has_metric_cuped(results: Json) -> bool:
    """Whether any named metric has a ``cuped`` block (servers before it send none)."""
    return any(m.get("cuped") for m in results.get("metrics") or [])


def _figure(x: float | None, binary: bool, reason: str | None) -> str:
    return pct(x, 2, True, reason=reason) if binary else num(x, True, reason=reason)


def _interval(pair: list[float | None] | None, binary: bool, reason: str | None) -> str:
    if not pair or pair[0] is None or pair[1] is None:
        return na(reason)
    if binary:
        return f"{pair[0] * 100:+.2f}% to {pair[1] * 100:+.2f}%"
    return f"{num(pair[0], True)} to {num(pair[1], True)}"


def _sentence(block: Json, c: Json, level: str) -> str:
    binary = block["outcome"] == "conversion"
    reason = c.get("reason")
    sequential = c["inference"] == "sequential"
    mode = "always-valid (sequential)" if sequential else "fixed-horizon"
    kind = "CS" if sequential else "CI"
    text = (
        f"{block['metric']} ({block['role']}), {c['variant']} vs control: adjusted difference"
        f" {_figure(c.get('difference'), binary, reason)}"
        f" ({level} {kind} {_interval(c.get('difference_interval'), binary, reason)}),"
        f" lift {pct(c.get('relative'), 2, True, reason=reason)},"
        f" {mode} p = {p_value(c.get('p_value'), reason=reason)}"
    )
    if block["role"] == "secondary":
        text += (
            f"; corrected p = {p_value(c.get('adjusted_p_value'), reason=reason)}"
            f" ({c['p_value_correction']})"
        )
    else:
        text += f"; {block['verdict_basis']}"
    text += (
        f". Unadjusted difference {_figure(c.get('unadjusted_difference'), binary, reason)};"
        f" variance removed {pct(c.get('variance_reduction'), 1, reason=reason)};"
        f" {c['theta_method'].replace('_', '-')} θ {num(c.get('theta_treatment'))};"
        f" {block['covariate_users']:,} of {block['users']:,} users have a covariate."
    )
    return text


def _level(results: Json) -> str:
    for variant in results.get("variants") or []:
        ci = variant.get("ci")
        if ci and ci.get("level") is not None:
            return f"{ci['level']:.0%}"
    return "95%"


def format_metric_cuped(results: Json) -> str:
    """The named metrics' adjusted effects in words, then the metrics without them."""
    level = _level(results)
    paragraphs = []
    missing = []
    for metric in results.get("metrics") or []:
        block = metric.get("cuped")
        if block is None:
            reason = metric.get("cuped_reason")
            if reason not in (None, "primary_in_results_cuped"):
                missing.append(f"{metric['name']}: {na(reason)}")
            continue
        for comparison in block["comparisons"]:
            paragraphs.append(textwrap.fill(_sentence(block, comparison, level), NOTE_WIDTH))
    if missing:
        paragraphs.append(textwrap.fill("Not adjusted: " + "; ".join(missing) + ".", NOTE_WIDTH))
    return "\n".join(paragraphs)
