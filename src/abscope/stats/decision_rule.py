"""The risk-aware decision over a primary, secondary and guardrail metrics.

Spotify's rule (Schultzberg, Ankargren & Frånberg, 2024), with one primary metric:

* **ship** a treatment only when its primary metric wins (a superiority test significant in
  the better direction) *and* every guardrail is shown non-inferior;
* **do not ship** when any guardrail is in breach (significantly worse than its margin: it
  blocks, and is named), or the primary is significantly worse, or — once the experiment is
  ``final`` (its planned sample reached) — the ship condition still does not hold;
* otherwise **keep running**.

Guardrails get no α correction: the rule needs *every* guardrail to be non-inferior (an
intersection-union test), so each already controls the risk of shipping a harmful change at
its own α. Their β is corrected instead, at planning time
(:func:`abscope.stats.guardrail_power.beta_corrected_power`). Secondary metrics inform and
never block; their p-values are corrected for multiplicity across metrics × arms (Holm by
default, Benjamini–Hochberg as an option) with :func:`abscope.stats.multiple.adjust_p_values`.

With several treatment arms the primary's p-values are expected already adjusted across
arms (as :func:`abscope.stats.analysis.analyze_experiment` adjusts them); each arm is
decided on its own, and of the arms that may ship, the one with the best primary estimate
is named.

References
----------
.. [1] M. Schultzberg, S. Ankargren and M. Frånberg, "Risk-aware product decisions in A/B
   tests with multiple metrics", arXiv:2402.11609 (2024).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from abscope.stats._validate import check_alpha
from abscope.stats.guardrails import GuardrailResult
from abscope.stats.multiple import Correction, adjust_p_values

__all__ = [
    "ArmDecision",
    "GuardrailCheck",
    "Outcome",
    "RiskAwareDecision",
    "SecondaryOutcome",
    "SuccessMetricResult",
    "risk_aware_decision",
]

Outcome = Literal["ship", "do_not_ship", "keep_running"]


@dataclass(frozen=True, slots=True)
class SuccessMetricResult:
    """A superiority test of one metric for one treatment arm (the primary or a secondary).

    ``estimate`` is the relative lift (``None`` when undefined) and ``p_value`` the test's
    p-value (two-sided or one-sided superiority; for the primary, adjusted across arms;
    ``None`` when undefined, which never wins).
    """

    metric: str
    arm: str
    estimate: float | None
    p_value: float | None
    higher_is_better: bool = True


@dataclass(frozen=True, slots=True)
class GuardrailCheck:
    """The guardrail test of ``metric`` for the treatment ``arm``."""

    metric: str
    arm: str
    result: GuardrailResult


@dataclass(frozen=True, slots=True)
class SecondaryOutcome:
    """A secondary metric with its multiplicity-adjusted p-value.

    ``direction`` is ``"better"`` or ``"worse"`` when ``significant``, else ``None``.
    """

    metric: str
    arm: str
    estimate: float | None
    p_value: float | None
    adjusted_p_value: float | None
    significant: bool
    direction: Literal["better", "worse"] | None
    higher_is_better: bool = True


@dataclass(frozen=True, slots=True)
class ArmDecision:
    """The decision for one treatment arm.

    ``blocking`` names the guardrails in breach, ``pending`` those not yet shown
    non-inferior (inconclusive), ``cleared`` those shown non-inferior.
    """

    arm: str
    outcome: Outcome
    primary_wins: bool
    primary_loses: bool
    blocking: tuple[str, ...]
    pending: tuple[str, ...]
    cleared: tuple[str, ...]
    sentence: str


@dataclass(frozen=True, slots=True)
class RiskAwareDecision:
    """The decision for the experiment.

    Attributes
    ----------
    outcome : {"ship", "do_not_ship", "keep_running"}
    arm : str or None
        The arm to ship (``None`` unless ``outcome == "ship"``).
    blocking : tuple of str
        Guardrails in breach, in any arm (each named once).
    arms : tuple of ArmDecision
        One per treatment arm, in the order of the primary results.
    secondaries : tuple of SecondaryOutcome
    sentence : str
        A plain-language summary naming what blocks or ships.
    alpha : float
        Level of the primary's and secondaries' tests.
    correction : {"holm", "bh", "none"}
        Correction of the secondaries across metrics × arms.
    """

    outcome: Outcome
    arm: str | None
    blocking: tuple[str, ...]
    arms: tuple[ArmDecision, ...]
    secondaries: tuple[SecondaryOutcome, ...]
    sentence: str
    alpha: float
    correction: Correction


def _percent(x: float) -> str:
    return f"{abs(x) * 100:.1f}%"


def _margin(x: float) -> str:
    return f"{x * 100:.3g}%"


def _change(estimate: float | None) -> str:
    if estimate is None:
        return "undefined"
    if estimate == 0.0:
        return "unchanged"
    return f"{'up' if estimate > 0 else 'down'} {_percent(estimate)}"


def _p(p: float | None) -> str:
    if p is None:
        return "p undefined"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _significant(result: SuccessMetricResult, alpha: float) -> Literal["better", "worse"] | None:
    if result.p_value is None or result.estimate is None or result.p_value >= alpha:
        return None
    if result.estimate == 0.0:
        return None
    return "better" if (result.estimate > 0) == result.higher_is_better else "worse"


def _guardrail_text(check: GuardrailCheck) -> str:
    r = check.result
    harm = r.harm
    margin = _margin(r.margin)
    if harm is None:
        return f"guardrail {check.metric} is undefined (margin {margin})"
    how = "worse" if harm > 0 else "better"
    return f"guardrail {check.metric} is {_percent(harm)} {how} (margin {margin})"


def _decide_arm(
    primary: SuccessMetricResult,
    guardrails: list[GuardrailCheck],
    alpha: float,
    final: bool,
    named: bool,
) -> ArmDecision:
    label = f" {primary.arm}" if named else ""
    direction = _significant(primary, alpha)
    wins, loses = direction == "better", direction == "worse"
    breaches = [g for g in guardrails if g.result.verdict == "breach"]
    pending = [g for g in guardrails if g.result.verdict == "inconclusive"]
    cleared = [g for g in guardrails if g.result.verdict == "non_inferior"]
    if primary.estimate is None:
        headline = f"{primary.metric} cannot be estimated yet"
    else:
        headline = f"{primary.metric} is {_change(primary.estimate)} ({_p(primary.p_value)})"
    outcome: Outcome
    if breaches:
        outcome = "do_not_ship"
        parts = [_guardrail_text(g) + ", significantly beyond its margin" for g in breaches]
        sentence = f"Do not ship{label}: " + "; ".join(parts) + f". The primary {headline}."
    elif loses:
        outcome = "do_not_ship"
        sentence = f"Do not ship{label}: the primary {headline}, significantly worse."
    elif wins and not pending:
        outcome = "ship"
        within = (
            " and every guardrail is shown within its margin ("
            + ", ".join(g.metric for g in cleared)
            + ")"
            if cleared
            else " and there are no guardrails"
        )
        sentence = f"Ship {primary.arm}: the primary {headline}{within}."
    else:
        outcome = "do_not_ship" if final else "keep_running"
        reasons = []
        if primary.estimate is None:
            reasons.append(f"the primary {headline}")
        elif not wins:
            reasons.append(f"the primary {headline} is not a significant win")
        for g in pending:
            if g.result.reason == "too_little_data":
                reasons.append(f"guardrail {g.metric}: inconclusive, too little data")
            elif g.result.reason is not None:
                reasons.append(f"guardrail {g.metric}: inconclusive ({g.result.reason})")
            else:
                reasons.append(_guardrail_text(g) + ", not yet shown within its margin")
        lead = "Do not ship" if final else "Keep running"
        tail = " at the end of the experiment" if final else ""
        sentence = f"{lead}{label}{tail}: " + "; ".join(reasons) + "."
    return ArmDecision(
        arm=primary.arm,
        outcome=outcome,
        primary_wins=wins,
        primary_loses=loses,
        blocking=tuple(g.metric for g in breaches),
        pending=tuple(g.metric for g in pending),
        cleared=tuple(g.metric for g in cleared),
        sentence=sentence,
    )


def _secondaries(
    secondaries: Sequence[SuccessMetricResult], alpha: float, correction: Correction
) -> tuple[SecondaryOutcome, ...]:
    adjusted = adjust_p_values([s.p_value for s in secondaries], correction)
    out = []
    for s, q in zip(secondaries, adjusted, strict=True):
        probe = SuccessMetricResult(s.metric, s.arm, s.estimate, q, s.higher_is_better)
        direction = _significant(probe, alpha)
        out.append(
            SecondaryOutcome(
                s.metric,
                s.arm,
                s.estimate,
                s.p_value,
                q,
                direction is not None,
                direction,
                s.higher_is_better,
            )
        )
    return tuple(out)


def risk_aware_decision(
    primary: Sequence[SuccessMetricResult],
    guardrails: Sequence[GuardrailCheck] = (),
    secondaries: Sequence[SuccessMetricResult] = (),
    *,
    alpha: float = 0.05,
    correction: Correction = "holm",
    final: bool = False,
) -> RiskAwareDecision:
    """Combine the primary's, the secondaries' and the guardrails' results into a decision.

    Parameters
    ----------
    primary : sequence of SuccessMetricResult
        The primary metric's superiority test, one per treatment arm (distinct arms, one
        metric).
    guardrails : sequence of GuardrailCheck
        Guardrail verdicts; each names an arm of ``primary``.
    secondaries : sequence of SuccessMetricResult
        Secondary metrics × arms, with raw p-values: they are adjusted here, as one family.
    alpha : float, default 0.05
        Level of the primary's and secondaries' tests (the guardrails carry their own).
    correction : {"holm", "bh", "none"}, default "holm"
    final : bool, default False
        The experiment reached its planned sample: an arm that cannot ship yet is then "do
        not ship" rather than "keep running".

    Returns
    -------
    RiskAwareDecision
        ``ship`` names the arm to ship; a breach anywhere is named in ``blocking``.

    Notes
    -----
    Per arm: any guardrail in ``breach`` → do not ship; primary significantly worse → do
    not ship; primary wins and every guardrail ``non_inferior`` → ship; else keep running
    (do not ship when ``final``). The experiment ships the shippable arm with the best
    primary estimate; it is "do not ship" when every arm is, else "keep running".

    References
    ----------
    Schultzberg, Ankargren & Frånberg (2024), arXiv:2402.11609, section 4 (the decision
    rule with success and guardrail metrics).

    Examples
    --------
    >>> from abscope.stats.guardrails import noninferiority_test
    >>> latency = noninferiority_test(0.081, 0.01**2, n_control=4000, n_treatment=4000,
    ...                               margin=0.05, higher_is_better=False)
    >>> d = risk_aware_decision(
    ...     [SuccessMetricResult("conversion", "v2", 0.04, 0.01)],
    ...     [GuardrailCheck("latency_ms", "v2", latency)],
    ... )
    >>> d.outcome, d.blocking
    ('do_not_ship', ('latency_ms',))
    >>> print(d.sentence)  # doctest: +NORMALIZE_WHITESPACE
    Do not ship: guardrail latency_ms is 8.1% worse (margin 5%), significantly beyond its
    margin. The primary conversion is up 4.0% (p = 0.010).
    """
    level = check_alpha(alpha)
    if correction not in ("holm", "bh", "none"):
        raise ValueError(f"correction must be one of holm, bh, none; got {correction!r}")
    if not primary:
        raise ValueError("primary must hold at least one result (one per treatment arm)")
    arms = [p.arm for p in primary]
    if len(set(arms)) != len(arms):
        raise ValueError(f"primary must hold one result per arm, got arms {arms}")
    if len({p.metric for p in primary}) != 1:
        raise ValueError("primary must be one metric, got " + ", ".join(p.metric for p in primary))
    for i, g in enumerate(guardrails):
        if g.arm not in arms:
            raise ValueError(f"guardrails[{i}].arm {g.arm!r} is not an arm of primary {arms}")
    for i, s in enumerate(secondaries):
        if s.arm not in arms:
            raise ValueError(f"secondaries[{i}].arm {s.arm!r} is not an arm of primary {arms}")
    decisions = tuple(
        _decide_arm(p, [g for g in guardrails if g.arm == p.arm], level, final, len(primary) > 1)
        for p in primary
    )
    blocking = tuple(dict.fromkeys(m for d in decisions for m in d.blocking))
    outcome: Outcome
    chosen: str | None = None
    shippable = [(p, d) for p, d in zip(primary, decisions, strict=True) if d.outcome == "ship"]
    if shippable:
        outcome = "ship"

        def goodness(item: tuple[SuccessMetricResult, ArmDecision]) -> float:
            estimate = item[0].estimate or 0.0
            return estimate if item[0].higher_is_better else -estimate

        best = max(shippable, key=goodness)
        chosen = best[1].arm
        sentence = best[1].sentence
    elif all(d.outcome == "do_not_ship" for d in decisions):
        outcome = "do_not_ship"
        sentence = " ".join(d.sentence for d in decisions)
    else:
        outcome = "keep_running"
        sentence = " ".join(d.sentence for d in decisions)
    extras = _secondaries(secondaries, level, correction)
    notable = [s for s in extras if s.significant]
    if notable:
        sentence += (
            " Secondary: "
            + "; ".join(
                f"{s.metric} ({s.arm}) {_change(s.estimate)}, {s.direction}"
                f" (adjusted {_p(s.adjusted_p_value)})"
                for s in notable
            )
            + "."
        )
    return RiskAwareDecision(
        outcome, chosen, blocking, decisions, extras, sentence, level, correction
    )
