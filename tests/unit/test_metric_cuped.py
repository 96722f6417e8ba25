"""CUPED for named metrics (abscope.metric_cuped), through a real store and the results.

* Per-user data of a mean secondary and a binary guardrail go into a SQLite store (each
  metric's covariates on the exposure, or backfilled after the outcomes, some users
  without one); the results' ``cuped`` block of each metric is compared with statsmodels
  OLS ``y ~ T + (c - c̄)`` on the raw per-user data (missing covariates at the observed
  mean): the same adjusted difference and standard error to 1e-9 (hypothesis).
* An unequal split uses per-arm θ: the adjusted difference is the treatment coefficient
  of the interacted fit ``y ~ T + (c - c̄) + T (c - c̄)`` (Lin 2013).
* The secondaries' adjusted p-values are Holm- (or BH-) corrected over the adjusted
  family, checked against statsmodels' ``multipletests``; guardrails' are not corrected,
  and say so.
* A seeded A/A simulation of a mean metric with a correlated covariate: the adjusted
  test's false-positive rate stays at alpha, fixed-horizon at one look and always-valid
  over repeated looks.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from abscope.metric_cuped import with_metric_cuped
from abscope.models import (
    CovariateCounts,
    Event,
    Experiment,
    Metric,
    MetricCounts,
    Variant,
    VariantCounts,
)
from abscope.service.analysis import Analysis
from abscope.storage.sqlite import SQLiteStore
from tests.fixtures.factories import T0, experiment

SPEND = Metric(name="spend", kind="mean", role="secondary")
CLICKS = Metric(name="clicks", kind="mean", role="secondary")
ERRORS = Metric(name="errors", kind="binary", role="guardrail", higher_is_better=False, margin=0.5)
LATENCY = Metric(name="latency", kind="ratio", role="guardrail", higher_is_better=False, margin=0.1)


def _experiment(weights: tuple[float, float] = (0.5, 0.5), **changes: Any) -> Experiment:
    base = experiment(sequential=False, confidence_level=0.95)
    return Experiment.model_validate(
        base.model_dump()
        | {
            "metrics": [m.model_dump() for m in (SPEND, CLICKS, ERRORS, LATENCY)],
            "variants": [
                Variant(name="control", model_id="ranker-v1", weight=weights[0]).model_dump(),
                Variant(name="treatment", model_id="ranker-v2", weight=weights[1]).model_dump(),
            ],
        }
        | changes
    )


def _event(exp: str, user: str, variant: str, kind: str = "exposure", **extra: Any) -> Event:
    fields = {"experiment_id": exp, "user_id": user, "variant": variant, "kind": kind, "at": T0}
    return Event.model_validate(fields | extra)


Users = list[tuple[str, float, float | None, int, float | None, int]]
"""Per user: variant, spend total, spend covariate (None: none), errors converted 0/1,
errors covariate, and how the covariates arrive (0: with the exposure, 1: backfilled)."""


def _record(store: SQLiteStore, exp: Experiment, users: Users) -> None:
    events, backfill = [], []
    for index, (variant, spend, c_spend, converted, c_errors, way) in enumerate(users):
        user = f"u{index}"
        named = {name: c for name, c in (("spend", c_spend), ("errors", c_errors)) if c is not None}
        if way == 0:
            events.append(_event(exp.id, user, variant, metric_covariates=named or None))
        else:
            events.append(_event(exp.id, user, variant))
            backfill += [(user, c, name) for name, c in named.items()]
        if spend:
            events.append(_event(exp.id, user, variant, "value", value=spend, metric="spend"))
        if converted:
            events.append(_event(exp.id, user, variant, "conversion", metric="errors"))
    assert all(r.outcome == "counted" for r in store.record_events(events))
    assert set(store.record_covariates(exp.id, 0, backfill)) <= {"set"}


def _ols(users: Users, outcome: int, covariate: int, interacted: bool = False) -> Any:
    """statsmodels on the raw users: y ~ 1 + T + (c - c̄) [+ T (c - c̄)], missing c at the
    mean of the observed ones."""
    y = np.array([float(u[outcome]) for u in users])  # type: ignore[arg-type]
    observed = [u[covariate] for u in users if u[covariate] is not None]
    mean = float(np.mean(observed))  # type: ignore[arg-type]
    c = np.array([mean if u[covariate] is None else u[covariate] for u in users], dtype=float)
    t = np.array([u[0] == "treatment" for u in users], dtype=float)
    centred = c - c.mean()
    columns = [np.ones_like(y), t, centred] + ([t * centred] if interacted else [])
    return sm.OLS(y, np.column_stack(columns)).fit()


def _entry(results: dict[str, Any], name: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(m for m in results["metrics"] if m["name"] == name)
    return entry


user_strategy = st.tuples(
    st.integers(0, 12).map(lambda k: k * 0.5),  # spend total
    st.one_of(st.none(), st.integers(-5, 8).map(float)),  # spend covariate
    st.integers(0, 1),  # errors converted
    st.one_of(st.none(), st.integers(0, 3).map(float)),  # errors covariate
    st.integers(0, 1),  # with the exposure, or backfilled after the outcomes
)


def _with_variants(rows: list[tuple[Any, ...]], treated: list[bool]) -> Users:
    return [
        ("treatment" if t else "control", *row)  # type: ignore[misc]
        for row, t in zip(rows, treated, strict=False)
    ]


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(user_strategy, min_size=24, max_size=60), st.randoms(use_true_random=False))
def test_the_adjusted_difference_and_se_equal_statsmodels_ols(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[Any, ...]], rnd: Any
) -> None:
    treated = [index % 2 == 1 for index in range(len(rows))]
    rnd.shuffle(treated)
    users = _with_variants(rows, treated)
    # keep the covariates informative: at least two distinct values per metric
    for column in (2, 4):
        observed = {u[column] for u in users if u[column] is not None}
        if len(observed) < 2:
            users[0] = (*users[0][:column], 1.0, *users[0][column + 1 :])  # type: ignore[assignment]
            users[1] = (*users[1][:column], 3.0, *users[1][column + 1 :])  # type: ignore[assignment]
    exp = _experiment()
    path = tmp_path_factory.mktemp("store") / "abscope.db"
    store = SQLiteStore(path)
    try:
        store.create_experiment(exp)
        _record(store, exp, users)
        results = Analysis(store).results(exp.id)
    finally:
        store.close()
    for name, outcome, covariate in (("spend", 1, 2), ("errors", 3, 4)):
        entry = _entry(results, name)
        assert entry["cuped_reason"] is None, entry["cuped_reason_text"]
        block = entry["cuped"]
        [comparison] = block["comparisons"]
        assert comparison["theta_method"] == "pooled"
        fit = _ols(users, outcome, covariate)
        if comparison["reason"] == "zero_variance":  # OLS has no residual either
            assert fit.ssr == pytest.approx(0.0, abs=1e-9)
            continue
        assert comparison["reason"] is None, comparison["reason_text"]
        assert comparison["difference"] == pytest.approx(fit.params[1], rel=1e-9, abs=1e-12)
        assert comparison["difference_se"] == pytest.approx(fit.bse[1], rel=1e-9)
        assert block["covariate_users"] == sum(u[covariate] is not None for u in users)
        assert block["users"] == len(users)


def test_an_unequal_split_uses_per_arm_theta_the_interacted_fit(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    users: Users = []
    for index in range(300):
        variant = "treatment" if rng.random() < 0.3 else "control"
        c = float(rng.integers(0, 10))
        spend = float(max(0, round(2 * (c * (1.5 if variant == "treatment" else 1.0)))) / 2)
        users.append(
            (variant, spend, c if index % 5 else None, int(rng.random() < 0.2), None, index % 2)
        )
    exp = _experiment((0.7, 0.3))
    with closing(SQLiteStore(tmp_path / "abscope.db")) as store:
        store.create_experiment(exp)
        _record(store, exp, users)
        results = Analysis(store).results(exp.id)
    [comparison] = _entry(results, "spend")["cuped"]["comparisons"]
    assert comparison["theta_method"] == "per_arm" and "Lin (2013)" in comparison["theta_reason"]
    fit = _ols(users, 1, 2, interacted=True)
    assert comparison["difference"] == pytest.approx(fit.params[1], rel=1e-9)
    # the guardrail without covariates, the ratio and the primary: null with a reason
    assert _entry(results, "errors")["cuped_reason"] == "no_covariates"
    assert _entry(results, "latency")["cuped_reason"] == "not_applicable"
    assert results["metrics"][0]["cuped_reason"] == "primary_in_results_cuped"


# --- multiplicity, pure over counts -------------------------------------------------------


def _arm_counts(
    rng: np.random.Generator, n: int, shift: float, rho: float
) -> tuple[int, MetricCounts, CovariateCounts]:
    c = rng.normal(10.0, 2.0, n)
    y = 5.0 + shift + rho * (c - 10.0) + rng.normal(0.0, 2.0 * np.sqrt(1 - rho**2), n)
    return (
        n,
        MetricCounts(sum=float(y.sum()), sum_squares=float((y * y).sum())),
        CovariateCounts(
            samples=n,
            sum=float(c.sum()),
            sum_squares=float((c * c).sum()),
            value_sum=float(y.sum()),
            value_cross_sum=float((c * y).sum()),
        ),
    )


def _view(exp: Experiment) -> dict[str, Any]:
    return {"metrics": [{"name": m.name} for m in exp.all_metrics]}


def _simulated(
    exp: Experiment, rng: np.random.Generator, n: int, shifts: dict[str, float], rho: float
) -> dict[str, Any]:
    counts: dict[str, VariantCounts] = {}
    metric_counts: dict[str, dict[str, MetricCounts]] = {}
    covariates: dict[str, dict[str, CovariateCounts]] = {}
    for metric in ("spend", "clicks"):
        for variant in ("control", "treatment"):
            shift = shifts.get(metric, 0.0) if variant == "treatment" else 0.0
            users, m, k = _arm_counts(rng, n, shift, rho)
            counts[variant] = VariantCounts(samples=users)
            metric_counts.setdefault(metric, {})[variant] = m
            covariates.setdefault(metric, {})[variant] = k
    return with_metric_cuped(exp, _view(exp), counts, metric_counts, covariates)


@pytest.mark.parametrize("correction", ["holm", "bh"])
def test_secondary_adjusted_p_values_are_corrected_over_the_adjusted_family(
    correction: str,
) -> None:
    exp = _experiment(metric_correction=correction)
    view = _simulated(exp, np.random.default_rng(5), 400, {"spend": 0.4}, 0.8)
    family = [_entry(view, name)["cuped"]["comparisons"][0] for name in ("spend", "clicks")]
    raw = [c["p_value"] for c in family]
    _, expected, _, _ = multipletests(raw, method="holm" if correction == "holm" else "fdr_bh")
    assert [c["adjusted_p_value"] for c in family] == pytest.approx(list(expected), rel=1e-12)
    name = "Holm" if correction == "holm" else "Benjamini-Hochberg"
    assert all(c["p_value_correction"].startswith(f"{name} over the 2 ") for c in family)


def test_a_guardrails_adjusted_p_value_is_labelled_uncorrected() -> None:
    exp = _experiment()
    counts = {"control": VariantCounts(samples=200), "treatment": VariantCounts(samples=200)}
    rng = np.random.default_rng(2)
    outcomes: dict[str, MetricCounts] = {}
    sums: dict[str, CovariateCounts] = {}
    for variant in counts:
        c = rng.integers(0, 4, 200).astype(float)
        y = (rng.random(200) < 0.1 + 0.05 * c).astype(float)
        outcomes[variant] = MetricCounts(conversions=int(y.sum()))
        sums[variant] = CovariateCounts(
            samples=200,
            sum=float(c.sum()),
            sum_squares=float((c * c).sum()),
            conversions=int(y.sum()),
            conversion_cross_sum=float((c * y).sum()),
        )
    view = with_metric_cuped(exp, _view(exp), counts, {"errors": outcomes}, {"errors": sums})
    block = _entry(view, "errors")["cuped"]
    assert block["role"] == "guardrail" and block["verdict_basis"].startswith("descriptive")
    [comparison] = block["comparisons"]
    assert comparison["p_value"] is not None and comparison["adjusted_p_value"] is None
    assert comparison["p_value_correction"].startswith("none:")
    assert _entry(view, "spend")["cuped_reason"] == "no_covariates"


def test_a_bandit_gets_no_metric_cuped() -> None:
    exp = _experiment(allocation="thompson")
    view = _simulated(exp, np.random.default_rng(1), 50, {}, 0.5)
    assert _entry(view, "spend")["cuped"] is None
    assert _entry(view, "spend")["cuped_reason"] == "adaptive_allocation"


# --- A/A calibration ------------------------------------------------------------------------


def test_an_aa_named_metric_with_covariates_keeps_its_false_positive_rate() -> None:
    """300 seeded A/A experiments of 2 x 200 users (rho = 0.7): the fixed-horizon adjusted
    test at its one look, and the always-valid one over 5 looks, reject at most at alpha
    (plus three binomial standard errors: 0.05 + 3 * 0.0126)."""
    rng = np.random.default_rng(20261201)
    alpha, runs, looks, n = 0.05, 300, 5, 200
    fixed = _experiment(confidence_level=1 - alpha)
    sequential = _experiment(confidence_level=1 - alpha, sequential=True)
    fixed_rejections = sequential_rejections = 0
    for _ in range(runs):
        c = rng.normal(10.0, 2.0, (2, n))
        y = 5.0 + 0.7 * (c - 10.0) + rng.normal(0.0, 2.0 * np.sqrt(1 - 0.49), (2, n))
        rejected_any = False
        for look in range(1, looks + 1):
            m = n * look // looks
            counts = {v: VariantCounts(samples=m) for v in ("control", "treatment")}
            outcomes, sums = {}, {}
            for arm, variant in enumerate(("control", "treatment")):
                ya, ca = y[arm, :m], c[arm, :m]
                outcomes[variant] = MetricCounts(sum=float(ya.sum()), sum_squares=float(ya @ ya))
                sums[variant] = CovariateCounts(
                    samples=m,
                    sum=float(ca.sum()),
                    sum_squares=float(ca @ ca),
                    value_sum=float(ya.sum()),
                    value_cross_sum=float(ca @ ya),
                )
            for exp in (sequential,) if look < looks else (sequential, fixed):
                view = with_metric_cuped(
                    exp, _view(exp), counts, {"spend": outcomes}, {"spend": sums}
                )
                [comparison] = _entry(view, "spend")["cuped"]["comparisons"]
                assert comparison["inference"] == ("sequential" if exp.sequential else "fixed")
                if comparison["p_value"] <= alpha:
                    if exp.sequential:
                        rejected_any = True
                    else:
                        fixed_rejections += 1
        sequential_rejections += rejected_any
    bound = alpha + 3 * np.sqrt(alpha * (1 - alpha) / runs)
    assert fixed_rejections / runs <= bound
    assert sequential_rejections / runs <= bound
    assert fixed_rejections > 0  # the test can reject: it is not trivially conservative


def test_metric_covariates_belong_to_exposures() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="metric_covariates belong to an exposure"):
        _event("e", "u1", "control", "conversion", metric="errors", metric_covariates={"x": 1.0})
    with pytest.raises(ValidationError, match="finite"):
        _event("e", "u1", "control", metric_covariates={"spend": float("nan")})
    assert _event("e", "u1", "control", metric_covariates={"spend": 2.0}).metric_covariates == {
        "spend": 2.0
    }
