"""The deployment gate: ``pass``, ``fail`` or ``inconclusive`` from the guardrails.

A deployment controller asks ``GET /experiments/{id}/gate`` (or ``POST``, as Flagger's
webhooks do) and reads the status or the body: the verdict is ``fail`` when any guardrail
is in breach for any arm, ``pass`` when every guardrail is shown non-inferior for every arm,
else ``inconclusive`` (too little data, or not yet within the margin). Guardrails are judged
by :func:`abscope.metric_analysis.guardrail_checks` only, as the results and the monitor
judge them. Pure: it reads counts a store returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from abscope.jsonable import interval_pair, to_jsonable
from abscope.metric_analysis import MetricCountsByName, guardrail_checks
from abscope.models import Experiment, VariantCounts
from abscope.quantile_reports import QuantileCountersByName
from abscope.stats.decision_rule import GuardrailCheck
from abscope.stats.guardrails import DEFAULT_MIN_SAMPLES_PER_ARM

__all__ = [
    "GATE_STATUS",
    "NO_GUARDRAILS",
    "GateVerdict",
    "gate_status_code",
    "gate_view",
    "guardrail_status",
]

GateVerdict = Literal["pass", "fail", "inconclusive"]

GATE_STATUS: dict[GateVerdict, int] = {"pass": 200, "inconclusive": 202, "fail": 412}
"""The gate's HTTP status per verdict: pass is 200; inconclusive 202 (a 2xx, which a Flagger
``rollout`` webhook does not count as a failure); fail 412."""

NO_GUARDRAILS = "no guardrails declared"


def gate_status_code(verdict: GateVerdict, *, promotion: bool = False, report: bool = False) -> int:
    """The status of a gate's answer: :data:`GATE_STATUS`; with ``promotion`` an
    inconclusive verdict is 412 too (promote only on pass); with ``report`` always 200 (the
    verdict is read from the body, as an Argo Rollouts web metric does).

    Examples
    --------
    >>> gate_status_code("inconclusive"), gate_status_code("inconclusive", promotion=True)
    (202, 412)
    >>> gate_status_code("fail", report=True)
    200
    """
    if report:
        return 200
    if promotion and verdict == "inconclusive":
        return GATE_STATUS["fail"]
    return GATE_STATUS[verdict]


def guardrail_status(
    checks: Sequence[GuardrailCheck],
) -> Literal["passing", "failing", "inconclusive"]:
    """``failing`` on any breach, ``passing`` when every check is non-inferior (and there is
    at least one), else ``inconclusive``."""
    verdicts = [c.result.verdict for c in checks]
    if "breach" in verdicts:
        return "failing"
    if verdicts and all(v == "non_inferior" for v in verdicts):
        return "passing"
    return "inconclusive"


def gate_view(
    experiment: Experiment,
    counts: Mapping[str, VariantCounts],
    metric_counts: MetricCountsByName,
    *,
    default_min_samples: int = DEFAULT_MIN_SAMPLES_PER_ARM,
    quantile_counters: QuantileCountersByName | None = None,
) -> dict[str, Any]:
    """The gate's body: ``verdict`` ``fail`` when any guardrail is in breach for any arm,
    ``pass`` when every guardrail is non-inferior for every arm, else ``inconclusive``
    (with no guardrails, too: a gate with nothing to judge never passes), with one entry
    per guardrail and arm and the reasons in sentences."""
    checks = guardrail_checks(
        experiment,
        counts,
        metric_counts,
        default_min_samples=default_min_samples,
        quantile_counters=quantile_counters or {},
    )
    status = guardrail_status(checks)
    verdict: GateVerdict = {"passing": "pass", "failing": "fail"}.get(status, "inconclusive")  # type: ignore[assignment]
    metrics = [
        {
            "name": c.metric,
            "variant": c.arm,
            "verdict": c.result.verdict,
            "estimate": c.result.estimate,
            "interval": interval_pair(c.result.interval),
            "margin": c.result.margin,
            "reason": c.result.reason,
            "reason_text": c.result.summary,
        }
        for c in checks
    ]
    if not checks:
        reasons = [f"inconclusive: {NO_GUARDRAILS}"]
    else:
        shown = {"fail": ("breach",), "inconclusive": ("inconclusive",)}.get(
            verdict, ("non_inferior",)
        )
        reasons = [
            f"{c.metric} ({c.arm}): {c.result.summary}" for c in checks if c.result.verdict in shown
        ]
    return {
        "experiment_id": experiment.id,
        "verdict": verdict,
        "status": experiment.status.value,
        "metrics": to_jsonable(metrics),
        "reasons": reasons,
    }
