"""The results over every metric and the gate, end to end from stored events.

Each test creates its experiment through the service (with ``metrics``), records events in
a real SQLite store (``store.record_events``, as ``/log`` and ``/events`` do) and reads the
service's results or gate. The figures are checked against references computed here from the
raw per-user data: the delta method written out per user for ratios, scipy's Welch test and
statsmodels' pooled z-test for the secondaries, statsmodels' ``multipletests`` for the
corrections, and the guardrail checks of :mod:`abscope.metric_analysis` (the one judge).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from abscope.config import Settings
from abscope.gate import gate_status_code
from abscope.metric_analysis import guardrail_checks
from abscope.metric_reports import secondary_figures
from abscope.models import Event
from abscope.schemas import CreateExperimentRequest
from abscope.service import ExperimentService
from abscope.stats.sequential import DEFAULT_TUNING_N
from abscope.stats.sufficient import ProportionStats
from abscope.storage.sqlite import SQLiteStore

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
Z975 = float(scipy_stats.norm.ppf(0.975))


def _clock() -> datetime:
    return NOW


def _service(path: Path) -> ExperimentService:
    settings = Settings(db_path=path, redis_url=None)
    return ExperimentService(SQLiteStore(path), settings, clock=_clock)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ExperimentService]:
    svc = _service(tmp_path / "abscope.db")
    yield svc
    svc.store.close()


def _create(service: ExperimentService, metrics: list[dict[str, Any]], **body: Any) -> str:
    spec: dict[str, Any] = {
        "id": "exp",
        "name": "Model v2",
        "control_model_id": "v1",
        "treatment_model_id": "v2",
        "metrics": metrics,
    }
    spec.update(body)
    experiment = service.create(CreateExperimentRequest(**spec))
    service.transition(experiment.id, "start")
    return experiment.id


def _event(user: str, variant: str, kind: str, **fields: Any) -> Event:
    return Event(experiment_id="exp", user_id=user, variant=variant, kind=kind, at=NOW, **fields)  # type: ignore[arg-type]


def _ratio_events(
    variant: str, users: Sequence[Sequence[tuple[int, int]]], metric: str
) -> list[Event]:
    """Every user exposed, then their (numerator, denominator) increments, one event each."""
    events = []
    for i, increments in enumerate(users):
        user = f"{variant}-{i}"
        events.append(_event(user, variant, "exposure"))
        for value, denominator in increments:
            events.append(
                _event(user, variant, "value", value=float(value), metric=metric,
                       denominator=float(denominator))
            )  # fmt: skip
    return events


def _metric(results: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in results["metrics"] if m["name"] == name)


# --- ratios against the delta method on raw per-user data -------------------------------


def _delta(users: Sequence[Sequence[tuple[int, int]]]) -> tuple[float, float]:
    """The ratio Σy/Σx of per-user totals and its delta-method variance, written per user:
    Var = Σ(y_i − r x_i)² / ((n − 1) n x̄²)."""
    y = np.array([sum(v for v, _ in u) for u in users], dtype=float)
    x = np.array([sum(d for _, d in u) for u in users], dtype=float)
    n = len(users)
    r = y.sum() / x.sum()
    residual = y - r * x
    return r, float(np.sum(residual**2) / ((n - 1) * n * x.mean() ** 2))


def _sequential_p(estimate: float, variance: float, n: int, alpha: float = 0.05) -> float:
    """The mixture SPRT's always-valid p-value (Johari et al. 2022, the normal mixture with
    ρ² tuned for N* users), from its closed form."""
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / DEFAULT_TUNING_N
    x = n * rho2
    return min(1.0, math.sqrt(1 + x) * math.exp(-(estimate**2 / variance) * x / (2 * (1 + x))))


USER = st.lists(
    st.tuples(st.integers(0, 2_000), st.integers(1, 4)), min_size=1, max_size=4
)  # a user's (latency ms, requests) per event
ARM = st.lists(USER, min_size=3, max_size=25)


@settings(max_examples=40, deadline=None)
@given(control=ARM, treatment=ARM, sequential=st.booleans())
def test_ratio_results_match_the_delta_method_on_raw_users(
    control: list[list[tuple[int, int]]], treatment: list[list[tuple[int, int]]], sequential: bool
) -> None:
    rc, vc = _delta(control)
    rt, vt = _delta(treatment)
    assume(rc > 0 and rt > 0 and vc > 0 and vt > 0)
    with tempfile.TemporaryDirectory() as directory:
        svc = _service(Path(directory) / "abscope.db")
        try:
            metrics = [
                {"name": "latency_ms", "kind": "ratio", "role": "secondary",
                 "higher_is_better": False},
                {"name": "latency_guard", "kind": "ratio", "role": "guardrail",
                 "higher_is_better": False, "margin": 0.1},
            ]  # fmt: skip
            _create(svc, metrics, sequential=sequential)
            svc.store.record_events(
                _ratio_events("control", control, "latency_ms")
                + _ratio_events("treatment", treatment, "latency_ms")
                + _ratio_events("control", control, "latency_guard")
                + _ratio_events("treatment", treatment, "latency_guard")
            )
            results = svc.results("exp")
        finally:
            svc.store.close()
    entry = _metric(results, "latency_ms")
    assert entry["variants"]["control"]["value"] == pytest.approx(rc, rel=1e-9)
    assert entry["variants"]["treatment"]["value"] == pytest.approx(rt, rel=1e-9)
    (comparison,) = entry["comparisons"]
    difference, se = rt - rc, math.sqrt(vc + vt)
    lift, log_se = rt / rc - 1, math.sqrt(vt / rt**2 + vc / rc**2)
    assert comparison["difference"] == pytest.approx(difference, rel=1e-9, abs=1e-12)
    assert comparison["estimate"] == pytest.approx(lift, rel=1e-9, abs=1e-12)
    n = len(control) + len(treatment)
    if sequential:
        assert comparison["inference"] == "sequential"
        expected_p = _sequential_p(difference, se**2, n)
    else:
        assert comparison["inference"] == "fixed"
        expected_p = 2 * scipy_stats.norm.sf(abs(difference) / se)
        lower, upper = comparison["difference_interval"]
        assert lower == pytest.approx(difference - Z975 * se, rel=1e-9, abs=1e-9)
        assert upper == pytest.approx(difference + Z975 * se, rel=1e-9, abs=1e-9)
        centre = math.log(rt / rc)
        lo, hi = comparison["interval"]
        assert lo == pytest.approx(math.expm1(centre - Z975 * log_se), rel=1e-9, abs=1e-12)
        assert hi == pytest.approx(math.expm1(centre + Z975 * log_se), rel=1e-9, abs=1e-12)
    assert comparison["p_value"] == pytest.approx(expected_p, rel=1e-9, abs=1e-300)
    # One secondary, one arm: the correction leaves the p-value as it is.
    assert comparison["adjusted_p_value"] == comparison["p_value"]
    # The guardrail on the same data: the lift and the delta method's log-scale error.
    (guard,) = _metric(results, "latency_guard")["comparisons"]
    assert guard["estimate"] == pytest.approx(lift, rel=1e-9, abs=1e-12)
    assert guard["inference"] == "sequential"
    assert guard["verdict"] in ("non_inferior", "breach", "inconclusive")
    assert guard["reason"] == "too_little_data"  # at most 25 users per arm, 100 needed


# --- secondaries: the tests and the correction -----------------------------------------


def _seeded_secondaries(service: ExperimentService, correction: str) -> dict[str, Any]:
    """Three arms, a binary primary, three secondaries (binary, mean, ratio), fixed horizon,
    seeded data; returns the results and the raw per-user data by metric and arm."""
    variants = [
        {"name": "control", "model_id": "v1", "weight": 0.34, "is_control": True},
        {"name": "b", "model_id": "v2", "weight": 0.33},
        {"name": "c", "model_id": "v3", "weight": 0.33},
    ]
    metrics = [
        {"name": "clicked", "kind": "binary", "role": "primary"},
        {"name": "purchased", "kind": "binary", "role": "secondary"},
        {"name": "revenue", "kind": "mean", "role": "secondary"},
        {"name": "tokens_per_s", "kind": "ratio", "role": "secondary"},
    ]
    spec: dict[str, Any] = {
        "id": "exp", "name": "Three arms", "variants": variants, "metrics": metrics,
        "sequential": False, "metric_correction": correction,
    }  # fmt: skip
    service.create(CreateExperimentRequest(**spec))
    service.transition("exp", "start")
    rng = np.random.default_rng(12)
    raw: dict[str, dict[str, Any]] = {"purchased": {}, "revenue": {}, "tokens_per_s": {}}
    events: list[Event] = []
    shifts = {"control": 0.0, "b": 0.08, "c": 0.25}
    for arm, shift in shifts.items():
        n = 400
        purchased = rng.random(n) < 0.2 * (1 + shift)
        revenue = np.round(rng.gamma(2.0, 5.0 * (1 + shift / 2), n), 2)
        seconds = rng.integers(1, 6, n)
        tokens = rng.poisson(40 * (1 + shift) * seconds)
        raw["purchased"][arm] = purchased
        raw["revenue"][arm] = revenue
        raw["tokens_per_s"][arm] = (tokens, seconds)
        for i in range(n):
            user = f"{arm}-{i}"
            events.append(_event(user, arm, "exposure"))
            if rng.random() < 0.1:
                events.append(_event(user, arm, "conversion"))
            if purchased[i]:
                events.append(_event(user, arm, "conversion", metric="purchased"))
            events.append(_event(user, arm, "value", value=float(revenue[i]), metric="revenue"))
            events.append(
                _event(user, arm, "value", value=float(tokens[i]), metric="tokens_per_s",
                       denominator=float(seconds[i]))
            )  # fmt: skip
    service.store.record_events(events)
    return {"results": service.results("exp"), "raw": raw}


@pytest.mark.parametrize(("correction", "method"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_secondaries_are_tested_and_corrected_across_metrics_and_arms(
    service: ExperimentService, correction: str, method: str
) -> None:
    seeded = _seeded_secondaries(service, correction)
    results, raw = seeded["results"], seeded["raw"]
    raw_p: list[float] = []
    adjusted: list[float] = []
    for name in ("purchased", "revenue", "tokens_per_s"):
        entry = _metric(results, name)
        assert entry["role"] == "secondary"
        assert [c["variant"] for c in entry["comparisons"]] == ["b", "c"]
        for comparison in entry["comparisons"]:
            arm = comparison["variant"]
            assert comparison["inference"] == "fixed"
            if name == "purchased":
                # statsmodels: the pooled two-proportion z-test.
                counts = [raw[name][arm].sum(), raw[name]["control"].sum()]
                _, expected = proportions_ztest(counts, [raw[name][arm].size] * 2)
            elif name == "revenue":
                # scipy: Welch's t-test on the raw per-user values.
                expected = scipy_stats.ttest_ind(
                    raw[name][arm], raw[name]["control"], equal_var=False
                ).pvalue
            else:
                (tc, sc), (tt, st_) = raw[name]["control"], raw[name][arm]
                users_c = [[(int(a), int(b))] for a, b in zip(tc, sc, strict=True)]
                users_t = [[(int(a), int(b))] for a, b in zip(tt, st_, strict=True)]
                (r_c, v_c), (r_t, v_t) = _delta(users_c), _delta(users_t)
                expected = 2 * scipy_stats.norm.sf(abs(r_t - r_c) / math.sqrt(v_c + v_t))
            assert comparison["p_value"] == pytest.approx(expected, rel=1e-9, abs=0.0)
            raw_p.append(comparison["p_value"])
            adjusted.append(comparison["adjusted_p_value"])
    _, reference, _, _ = multipletests(raw_p, method=method)
    assert adjusted == pytest.approx(list(reference), rel=1e-12, abs=0.0)
    # The large effects are significant after correction, and the verdict says which way.
    tokens = _metric(results, "tokens_per_s")["comparisons"][1]
    assert tokens["adjusted_p_value"] < 0.05 and tokens["verdict"] == "better"
    assert results["decision_rule"]["correction"] == correction


def test_secondary_figures_name_the_inference_and_undefined_values() -> None:
    empty = secondary_figures(ProportionStats(0, 0), ProportionStats(10, 2), alpha=0.05,
                              sequential=True)  # fmt: skip
    assert empty.inference == "sequential"
    assert empty.p_value is None and empty.reason == "no_samples"
    zero = secondary_figures(ProportionStats(100, 0), ProportionStats(100, 5), alpha=0.05,
                             sequential=False)  # fmt: skip
    assert zero.relative is None and zero.relative_reason == "zero_baseline"
    assert zero.absolute == pytest.approx(0.05)


# --- the primary, the guardrails, the decision and the gate ------------------------------


def _latency_events(
    variant: str, n: int, mean: float, rng: np.random.Generator, metric: str = "latency_ms"
) -> list[Event]:
    events = []
    for i in range(n):
        user = f"{variant}-{i}"
        events.append(_event(user, variant, "exposure"))
        for _ in range(3):
            value = float(max(rng.normal(mean, 15.0), 1.0))
            events.append(
                _event(user, variant, "value", value=value, metric=metric, denominator=1.0)
            )
    return events


def _conversions(variant: str, n: int, rate: float, rng: np.random.Generator) -> list[Event]:
    return [
        _event(f"{variant}-{i}", variant, "conversion") for i in range(n) if rng.random() < rate
    ]


GUARDED = [
    {"name": "converted", "kind": "binary", "role": "primary"},
    {"name": "latency_ms", "kind": "ratio", "role": "guardrail", "higher_is_better": False,
     "margin": 0.05, "action": "pause"},
]  # fmt: skip


@pytest.mark.parametrize(
    ("latency", "outcome", "status", "verdict"),
    [
        (100.0, "ship", "passing", "pass"),
        (130.0, "do_not_ship", "failing", "fail"),
    ],
)
def test_the_risk_aware_decision_and_the_gate_follow_the_guardrail(
    service: ExperimentService, latency: float, outcome: str, status: str, verdict: str
) -> None:
    _create(service, GUARDED)
    rng = np.random.default_rng(3)
    n = 3000
    service.store.record_events(
        _latency_events("control", n, 100.0, rng)
        + _latency_events("treatment", n, latency, rng)
        + _conversions("control", n, 0.10, rng)
        + _conversions("treatment", n, 0.16, rng)
    )
    results = service.results("exp")
    gate = service.gate("exp")
    # The primary's entry repeats the full analysis' figures, in its mode.
    (primary,) = _metric(results, "converted")["comparisons"]
    assert primary["estimate"] == results["relative_lift"]
    assert primary["interval"] == results["relative_lift_interval"]
    assert primary["difference_interval"] == results["confidence_interval"]
    assert primary["adjusted_p_value"] == results["p_value"]
    assert primary["inference"] == "sequential" and primary["verdict"] == "better"
    # The guardrail is judged by metric_analysis, and the results and the gate agree.
    experiment = service.get("exp")
    counts = service.store.get_counts("exp", 0)
    (check,) = guardrail_checks(experiment, counts, service.store.get_metric_counts("exp", 0))
    (guard,) = _metric(results, "latency_ms")["comparisons"]
    assert guard["verdict"] == check.result.verdict == gate["metrics"][0]["verdict"]
    assert guard["estimate"] == check.result.estimate == gate["metrics"][0]["estimate"]
    assert guard["estimate"] == pytest.approx(latency / 100.0 - 1.0, abs=0.02)
    rule = results["decision_rule"]
    assert rule["outcome"] == outcome
    assert results["guardrail_status"] == status
    assert gate["verdict"] == verdict
    if outcome == "ship":
        assert rule["arm"] == "treatment" and rule["blocking"] == []
        assert "latency_ms" in rule["sentence"] and rule["sentence"].startswith("Ship treatment")
    else:
        assert rule["blocking"] == ["latency_ms"]
        assert rule["sentence"].startswith("Do not ship: guardrail latency_ms is")
        assert gate["reasons"][0].startswith("latency_ms (treatment): breach:")


def test_too_little_data_is_inconclusive_never_a_failure(service: ExperimentService) -> None:
    _create(service, GUARDED)
    rng = np.random.default_rng(4)
    service.store.record_events(
        _latency_events("control", 40, 100.0, rng) + _latency_events("treatment", 40, 200.0, rng)
    )
    results = service.results("exp")
    gate = service.gate("exp")
    assert gate["verdict"] == "inconclusive" and results["guardrail_status"] == "inconclusive"
    assert gate["metrics"][0]["reason"] == "too_little_data"
    assert gate["reasons"] == [
        "latency_ms (treatment): inconclusive: too little data (40 users in the smaller arm,"
        " 100 needed)"
    ]
    assert results["decision_rule"]["outcome"] == "keep_running"
    assert "inconclusive, too little data" in results["decision_rule"]["sentence"]


def test_no_guardrails_never_pass_and_undefined_values_are_null(
    service: ExperimentService,
) -> None:
    _create(service, [{"name": "spend", "kind": "mean", "role": "secondary"}])
    gate = service.gate("exp")
    assert gate == {
        "experiment_id": "exp",
        "verdict": "inconclusive",
        "status": "running",
        "metrics": [],
        "reasons": ["inconclusive: no guardrails declared"],
    }
    results = service.results("exp")
    assert [m["name"] for m in results["metrics"]] == ["converted", "spend"]
    assert results["metrics"][0]["role"] == "primary"  # the implicit primary
    spend = results["metrics"][1]
    assert spend["variants"]["control"] == {"users": 0, "value": None, "value_reason": "no_samples"}
    (comparison,) = spend["comparisons"]
    assert comparison["p_value"] is None and comparison["adjusted_p_value"] is None
    assert comparison["verdict"] == "inconclusive" and comparison["reason"] == "no_samples"
    assert results["guardrail_status"] == "inconclusive"


def test_gate_status_codes() -> None:
    assert [gate_status_code(v) for v in ("pass", "inconclusive", "fail")] == [200, 202, 412]
    assert [gate_status_code(v, promotion=True) for v in ("pass", "inconclusive", "fail")] == [
        200, 412, 412,
    ]  # fmt: skip
    assert {gate_status_code(v, report=True) for v in ("pass", "inconclusive", "fail")} == {200}


def test_a_breach_in_one_arm_fails_the_gate_and_blocks_that_arm_only(
    service: ExperimentService,
) -> None:
    variants = [
        {"name": "control", "model_id": "v1", "weight": 0.34, "is_control": True},
        {"name": "fast", "model_id": "v2", "weight": 0.33},
        {"name": "slow", "model_id": "v3", "weight": 0.33},
    ]
    _create(service, GUARDED, variants=variants, control_model_id=None, treatment_model_id=None)
    rng = np.random.default_rng(8)
    n = 3000
    service.store.record_events(
        _latency_events("control", n, 100.0, rng)
        + _latency_events("fast", n, 100.0, rng)
        + _latency_events("slow", n, 130.0, rng)
        + _conversions("control", n, 0.10, rng)
        + _conversions("fast", n, 0.16, rng)
        + _conversions("slow", n, 0.16, rng)
    )
    gate = service.gate("exp")
    assert gate["verdict"] == "fail"
    assert [(m["variant"], m["verdict"]) for m in gate["metrics"]] == [
        ("fast", "non_inferior"), ("slow", "breach"),
    ]  # fmt: skip
    assert len(gate["reasons"]) == 1 and gate["reasons"][0].startswith("latency_ms (slow): breach")
    rule = service.results("exp")["decision_rule"]
    assert (rule["outcome"], rule["arm"], rule["blocking"]) == ("ship", "fast", ["latency_ms"])
    arms = {a["arm"]: a for a in rule["arms"]}
    assert arms["slow"]["outcome"] == "do_not_ship" and arms["slow"]["blocking"] == ["latency_ms"]
    assert arms["fast"]["cleared"] == ["latency_ms"]


def test_a_primary_where_lower_is_better_wins_by_going_down(service: ExperimentService) -> None:
    metrics = [{"name": "churned", "kind": "binary", "role": "primary", "higher_is_better": False}]
    _create(service, metrics)
    rng = np.random.default_rng(9)
    n = 4000
    exposures = [
        _event(f"{v}-{i}", v, "exposure") for v in ("control", "treatment") for i in range(n)
    ]
    service.store.record_events(
        exposures + _conversions("control", n, 0.20, rng) + _conversions("treatment", n, 0.14, rng)
    )
    results = service.results("exp")
    (primary,) = results["metrics"][0]["comparisons"]
    assert primary["estimate"] < 0 and primary["verdict"] == "better"
    assert results["decision"]["verdict"] == "winner"
    assert results["decision"]["winner"] == "treatment"
    rule = results["decision_rule"]
    assert (rule["outcome"], rule["arm"]) == ("ship", "treatment")
    assert rule["sentence"].startswith("Ship treatment: the primary churned is down")
