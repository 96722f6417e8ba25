"""The risk-aware decision rule: ship, do not ship, keep running, and the sentences."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from abscope.stats.decision_rule import (
    GuardrailCheck,
    SuccessMetricResult,
    risk_aware_decision,
)
from abscope.stats.guardrails import GuardrailResult, noninferiority_test


def _guardrail(
    harm: float, se: float = 0.01, n: int = 4000, margin: float = 0.05
) -> GuardrailResult:
    """A lower-is-better guardrail whose treatment is ``harm`` worse."""
    return noninferiority_test(
        harm, se * se, n_control=n, n_treatment=n, margin=margin, higher_is_better=False
    )


CLEAR = _guardrail(0.0)
BREACH = _guardrail(0.081)
PENDING = _guardrail(0.03)
FEW = _guardrail(0.0, n=50)
WIN = SuccessMetricResult("conversion", "v2", 0.04, 0.01)


def test_the_guardrail_fixtures_have_the_verdicts_they_are_named_for() -> None:
    assert [g.verdict for g in (CLEAR, BREACH, PENDING, FEW)] == [
        "non_inferior",
        "breach",
        "inconclusive",
        "inconclusive",
    ]
    assert FEW.reason == "too_little_data"


def test_ship_when_the_primary_wins_and_every_guardrail_is_non_inferior() -> None:
    d = risk_aware_decision(
        [WIN],
        [GuardrailCheck("latency_ms", "v2", CLEAR), GuardrailCheck("error_rate", "v2", CLEAR)],
    )
    assert (d.outcome, d.arm, d.blocking) == ("ship", "v2", ())
    assert d.arms[0].cleared == ("latency_ms", "error_rate")
    assert d.sentence == (
        "Ship v2: the primary conversion is up 4.0% (p = 0.010) and every guardrail is shown"
        " within its margin (latency_ms, error_rate)."
    )


def test_a_breach_blocks_and_is_named_even_when_the_primary_wins() -> None:
    d = risk_aware_decision(
        [WIN],
        [GuardrailCheck("latency_ms", "v2", BREACH), GuardrailCheck("error_rate", "v2", CLEAR)],
    )
    assert (d.outcome, d.arm, d.blocking) == ("do_not_ship", None, ("latency_ms",))
    assert d.sentence.startswith(
        "Do not ship: guardrail latency_ms is 8.1% worse (margin 5%), significantly beyond"
    )
    assert "error_rate" not in d.sentence


def test_no_alpha_correction_across_guardrails() -> None:
    # Twenty guardrails each just non-inferior at α: the rule takes their verdicts as they
    # are (a Bonferroni correction would have turned several into "inconclusive").
    checks = [GuardrailCheck(f"g{i}", "v2", CLEAR) for i in range(20)]
    assert all(c.result.p_non_inferior is not None for c in checks)
    assert risk_aware_decision([WIN], checks).outcome == "ship"


@pytest.mark.parametrize(
    ("primary", "guardrail", "final", "outcome", "phrase"),
    [
        (SuccessMetricResult("conversion", "v2", 0.01, 0.3), CLEAR, False, "keep_running",
         "Keep running: the primary conversion is up 1.0% (p = 0.300) is not a significant"),
        (WIN, PENDING, False, "keep_running",
         "guardrail latency_ms is 3.0% worse (margin 5%), not yet shown within its margin"),
        (WIN, FEW, False, "keep_running", "guardrail latency_ms: inconclusive, too little data"),
        (WIN, PENDING, True, "do_not_ship", "Do not ship at the end of the experiment:"),
        (SuccessMetricResult("conversion", "v2", -0.05, 0.0004), CLEAR, False, "do_not_ship",
         "Do not ship: the primary conversion is down 5.0% (p < 0.001), significantly worse."),
        (SuccessMetricResult("conversion", "v2", None, None), CLEAR, False, "keep_running",
         "Keep running: the primary conversion cannot be estimated yet."),
    ],
)  # fmt: skip
def test_outcomes_and_their_sentences(
    primary: SuccessMetricResult,
    guardrail: GuardrailResult,
    final: bool,
    outcome: str,
    phrase: str,
) -> None:
    d = risk_aware_decision([primary], [GuardrailCheck("latency_ms", "v2", guardrail)], final=final)
    assert d.outcome == outcome
    assert phrase in d.sentence
    assert d.blocking == ()


def test_lower_is_better_primary_wins_when_it_goes_down() -> None:
    primary = SuccessMetricResult("time_to_answer", "v2", -0.06, 0.02, higher_is_better=False)
    d = risk_aware_decision([primary])
    assert d.outcome == "ship"
    assert "down 6.0%" in d.sentence and "no guardrails" in d.sentence


def test_several_arms_ship_the_best_one_that_may_ship() -> None:
    primary = [
        SuccessMetricResult("conversion", "v2", 0.06, 0.001),  # best, but blocked
        SuccessMetricResult("conversion", "v3", 0.03, 0.01),
        SuccessMetricResult("conversion", "v4", 0.04, 0.02),
    ]
    guardrails = [
        GuardrailCheck("latency_ms", "v2", BREACH),
        GuardrailCheck("latency_ms", "v3", CLEAR),
        GuardrailCheck("latency_ms", "v4", CLEAR),
    ]
    d = risk_aware_decision(primary, guardrails)
    assert (d.outcome, d.arm, d.blocking) == ("ship", "v4", ("latency_ms",))
    assert [a.outcome for a in d.arms] == ["do_not_ship", "ship", "ship"]
    assert d.sentence.startswith("Ship v4:")
    assert d.arms[0].sentence.startswith("Do not ship v2: guardrail latency_ms is 8.1% worse")


def test_several_arms_keep_running_unless_every_arm_is_done() -> None:
    primary = [
        SuccessMetricResult("conversion", "v2", 0.06, 0.001),
        SuccessMetricResult("conversion", "v3", 0.01, 0.4),
    ]
    guardrails = [GuardrailCheck("latency_ms", "v2", BREACH)]
    assert risk_aware_decision(primary, guardrails).outcome == "keep_running"
    done = risk_aware_decision(primary, guardrails, final=True)
    assert done.outcome == "do_not_ship"
    assert "Do not ship v2:" in done.sentence and "Do not ship v3 at the end" in done.sentence


@pytest.mark.parametrize(("correction", "method"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_secondaries_are_corrected_across_metrics_and_arms(correction: str, method: str) -> None:
    rng = np.random.default_rng(3)
    p_values = [0.001, 0.02, 0.04, 0.3, 0.012, 0.6]
    secondaries = [
        SuccessMetricResult(metric, arm, float(rng.normal(0, 0.05)), p)
        for (metric, arm), p in zip(
            [(m, a) for m in ("revenue", "sessions", "tokens") for a in ("v2", "v3")],
            p_values,
            strict=True,
        )
    ]
    primary = [
        SuccessMetricResult("conversion", "v2", 0.01, 0.5),
        SuccessMetricResult("conversion", "v3", 0.01, 0.5),
    ]
    d = risk_aware_decision(primary, secondaries=secondaries, correction=correction)  # type: ignore[arg-type]
    # statsmodels.stats.multitest.multipletests(p_values, method=...)
    reject, expected, _, _ = multipletests(p_values, alpha=0.05, method=method)
    assert [s.adjusted_p_value for s in d.secondaries] == pytest.approx(list(expected))
    assert [s.significant for s in d.secondaries] == list(reject)
    assert d.correction == correction
    assert d.outcome == "keep_running"  # secondaries inform, they never ship
    assert ("Secondary: revenue (v2)" in d.sentence) == bool(reject[0])


def test_secondaries_direction_follows_higher_is_better() -> None:
    worse = SuccessMetricResult("cost", "v2", 0.2, 0.0001, higher_is_better=False)
    d = risk_aware_decision([WIN], secondaries=[worse])
    assert d.secondaries[0].direction == "worse"
    assert "cost (v2) up 20.0%, worse (adjusted p < 0.001)" in d.sentence


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"primary": []}, "primary"),
        ({"primary": [WIN, WIN]}, "primary"),
        (
            {"primary": [WIN, SuccessMetricResult("revenue", "v3", 0.1, 0.01)]},
            "primary",
        ),
        ({"guardrails": [GuardrailCheck("latency_ms", "v9", CLEAR)]}, r"guardrails\[0\]"),
        ({"secondaries": [SuccessMetricResult("x", "v9", 0.1, 0.1)]}, r"secondaries\[0\]"),
        ({"alpha": 1.5}, "alpha"),
        ({"correction": "bonferroni"}, "correction"),
    ],
)
def test_invalid_arguments_name_themselves(kwargs: dict[str, object], name: str) -> None:
    arguments: dict[str, object] = {"primary": [WIN]} | kwargs
    with pytest.raises(ValueError, match=f"^{name}"):
        risk_aware_decision(**arguments)  # type: ignore[arg-type]
