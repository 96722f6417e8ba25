"""Metric declarations on the command line:
``NAME:KIND[:ROLE[:DIRECTION[:MARGIN[:ACTION[:QUANTILE]]]]]`` specs and JSON files of them,
as ``POST /experiments`` (``metrics``) and ``POST /experiments/{id}/metrics`` take them.

=========  ====================================================  =================
part       values                                                default
=========  ====================================================  =================
NAME       a slug (the name events give in ``metric``)           required
KIND       ``binary``, ``mean``, ``ratio`` or ``quantile``       required
ROLE       ``primary``, ``secondary`` or ``guardrail``           ``secondary``
DIRECTION  ``higher`` or ``lower`` (which way is better)         ``higher``
MARGIN     a guardrail's relative margin (``0.05``: 5% worse)    none
ACTION     a guardrail's breach action, ``pause`` or ``alert``   ``alert``
=========  ====================================================  =================

A ``quantile`` metric (latency: one value event per request) reports p50, p95 and p99
and is lower-is-better unless DIRECTION says otherwise; as a guardrail, add the quantile
it guards after the ACTION, ``latency:quantile:guardrail:lower:0.1:pause:p95`` (or
``0.95``). Other quantiles, or both, take a JSON file (``quantiles``, ``guard_quantile``).
An empty part takes its default (``errors:binary:guardrail::0.5``). The parts' form is
checked here (exit 2); the rules between fields (a guardrail needs a margin, the primary
cannot be a ratio, ...) are the server's, whose 422 names the field.

>>> parse_metric_spec("latency_ms:ratio:guardrail:lower:0.05:pause", "--declare-metric")
{'name': 'latency_ms', 'kind': 'ratio', 'role': 'guardrail', 'higher_is_better': False, \
'margin': 0.05, 'action': 'pause'}
>>> parse_metric_spec("revenue:mean", "--declare-metric")
{'name': 'revenue', 'kind': 'mean'}
>>> parse_metric_spec("latency:quantile:guardrail::0.1::p95", "--declare-metric")
{'name': 'latency', 'kind': 'quantile', 'role': 'guardrail', 'margin': 0.1, \
'guard_quantile': 0.95}
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import typer

__all__ = ["SPEC_HELP", "SPEC_METAVAR", "metrics_file", "parse_metric_spec"]

SPEC_METAVAR = "NAME:KIND[:ROLE[:DIRECTION[:MARGIN[:ACTION[:QUANTILE]]]]]"
SPEC_HELP = (
    "KIND is binary, mean, ratio or quantile; ROLE primary, secondary (the default) or"
    " guardrail; DIRECTION higher (the default; lower for quantile) or lower is better; a"
    " guardrail's MARGIN is relative (0.05: 5% worse) and its ACTION on a breach pause or"
    " alert (the default); a quantile guardrail's QUANTILE is the one it guards (p95 or"
    " 0.95), e.g. latency_ms:ratio:guardrail:lower:0.05:pause, revenue:mean or"
    " latency:quantile:guardrail::0.1:pause:p95."
)

_CHOICES: dict[str, tuple[str, ...]] = {
    "kind": ("binary", "mean", "ratio", "quantile"),
    "role": ("primary", "secondary", "guardrail"),
    "direction": ("higher", "lower"),
    "action": ("pause", "alert"),
}
_PARTS = ("name", "kind", "role", "direction", "margin", "action", "quantile")


def parse_metric_spec(spec: str, option: str) -> dict[str, Any]:
    """The metric of ``spec`` (see the module's table) as a request body's fields.

    Raises
    ------
    typer.BadParameter
        A part is missing, unknown or malformed; the message names it and ``option``.
    """
    parts = spec.split(":")
    if len(parts) > len(_PARTS):
        raise typer.BadParameter(
            f"expected {SPEC_METAVAR}, got {len(parts)} parts in {spec!r}", param_hint=option
        )
    given = dict(zip(_PARTS, (part.strip() for part in parts), strict=False))
    for required in ("name", "kind"):
        if not given.get(required):
            raise typer.BadParameter(
                f"{required.upper()} is required ({SPEC_METAVAR}), got {spec!r}",
                param_hint=option,
            )
    for part, choices in _CHOICES.items():
        if given.get(part) and given[part] not in choices:
            raise typer.BadParameter(
                f"{part.upper()} must be {', '.join(choices[:-1])} or {choices[-1]},"
                f" got {given[part]!r} in {spec!r}",
                param_hint=option,
            )
    metric: dict[str, Any] = {"name": given["name"], "kind": given["kind"]}
    if given.get("role"):
        metric["role"] = given["role"]
    if given.get("direction"):
        metric["higher_is_better"] = given["direction"] == "higher"
    if given.get("margin"):
        try:
            margin = float(given["margin"])
        except ValueError:
            margin = math.nan
        if not math.isfinite(margin):
            raise typer.BadParameter(
                f"MARGIN must be a number such as 0.05, got {given['margin']!r} in {spec!r}",
                param_hint=option,
            )
        metric["margin"] = margin
    if given.get("action"):
        metric["action"] = given["action"]
    if given.get("quantile"):
        metric["guard_quantile"] = _quantile(given["quantile"], spec, option)
    return metric


def _quantile(text: str, spec: str, option: str) -> float:
    """``p95`` or ``0.95`` as 0.95."""
    try:
        q = float(text[1:]) / 100.0 if text.startswith("p") else float(text)
    except ValueError:
        q = math.nan
    if not 0.0 < q < 1.0:
        raise typer.BadParameter(
            f"QUANTILE must be p95 or 0.95 (strictly between 0 and 1), got {text!r} in {spec!r}",
            param_hint=option,
        )
    return q


def metrics_file(path: str, option: str, *, many: bool) -> list[dict[str, Any]]:
    """The metrics of a JSON file (``-``: stdin): a list of metric objects when ``many``,
    else one metric object (given back as a list of one).

    Raises
    ------
    typer.BadParameter
        The file cannot be read, is not JSON, or does not hold the expected shape.
    """
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint=option) from None
    metrics = data if many else [data]
    if not isinstance(metrics, list) or not all(isinstance(m, dict) for m in metrics):
        shape = "a JSON list of metric objects" if many else "one JSON metric object"
        raise typer.BadParameter(f"must hold {shape}", param_hint=option)
    return metrics
