"""The storage contract for named metrics' CUPED covariates (see abscope.storage.base): every
backend keeps the same :class:`CovariateCounts` per (metric, variant), exactly and
idempotently, whether a metric's covariate comes with an exposure or is backfilled before,
between or after the user's outcomes of that metric.

Random streams are checked against sums computed at the end from raw per-user state (each
user's covariate of each metric, that metric's conversion and value total), a different
route to the numbers than the per-user updates the stores make: with integer values both
are exact, so they must be equal. The primary's covariate sums are checked alongside (a
metric's covariate must not move them, nor the reverse).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abscope.models import CovariateCounts, Event
from abscope.storage.base import CovariateItem, CovariateOutcome, EventResult, Store
from tests.contract.test_covariate_contract import CovariateReference
from tests.contract.test_metric_contract import record
from tests.contract.test_store_contract import event, new_id
from tests.fixtures.factories import experiment

Key = tuple[int, str, str]  # (phase, metric, user)


def _sums(rows: dict[str, list[float]]) -> dict[str, CovariateCounts]:
    names = list(CovariateCounts.model_fields)
    return {
        variant: CovariateCounts(**dict(zip(names, row, strict=True)))
        for variant, row in sorted(rows.items())
    }


@dataclass
class MetricCovariateReference:
    """Raw per-user state of the primary (``CovariateReference``) and of named metrics."""

    primary: CovariateReference = field(default_factory=CovariateReference)
    converted: set[Key] = field(default_factory=set)
    total: dict[Key, float] = field(default_factory=dict)
    covariate: dict[Key, float] = field(default_factory=dict)

    def apply(self, e: Event) -> EventResult:
        p = self.primary
        if e.event_id is not None and e.event_id in p.seen:
            return EventResult("duplicate")
        user_key = (e.phase, e.user_id)
        if user_key in p.exposure and p.exposure[user_key] != e.variant:
            return EventResult("variant_mismatch")
        for metric, c in (e.metric_covariates or {}).items():
            stored = self.covariate.get((e.phase, metric, e.user_id))
            if stored is not None and stored != c:
                return EventResult("covariate_mismatch")
        if e.metric is None:
            result = p.apply(e)
            if result.outcome != "counted":
                return result
            for metric, c in (e.metric_covariates or {}).items():
                self.covariate.setdefault((e.phase, metric, e.user_id), c)
            return result
        if e.event_id is not None:
            p.seen.add(e.event_id)
        new_exposure = user_key not in p.exposure
        p.exposure.setdefault(user_key, e.variant)
        key = (e.phase, e.metric, e.user_id)
        new_conversion = False
        if e.kind == "conversion" and key not in self.converted:
            self.converted.add(key)
            new_conversion = True
        elif e.kind == "value":
            assert e.value is not None
            self.total[key] = self.total.get(key, 0.0) + e.value
        return EventResult("counted", new_exposure, new_conversion)

    def backfill(self, phase: int, items: list[CovariateItem]) -> list[CovariateOutcome]:
        outcomes: list[CovariateOutcome] = []
        for item in items:
            user, value, metric = item[0], item[1], item[2] if len(item) == 3 else None
            if metric is None:
                outcomes.extend(self.primary.backfill(phase, [(user, value)]))
                continue
            key = (phase, metric, user)
            if (phase, user) not in self.primary.exposure:
                outcomes.append("not_exposed")
            elif key in self.covariate:
                outcomes.append("unchanged" if self.covariate[key] == value else "conflict")
            else:
                self.covariate[key] = value
                outcomes.append("set")
        return outcomes

    def counts(self, phase: int) -> dict[str, dict[str, CovariateCounts]]:
        rows: dict[str, dict[str, list[float]]] = {}
        for key, c in self.covariate.items():
            p, metric, user = key
            if p != phase:
                continue
            y = 1 if key in self.converted else 0
            t = self.total.get(key, 0.0)
            variant = self.primary.exposure[(p, user)]
            row = rows.setdefault(metric, {}).setdefault(variant, [0, 0.0, 0.0, 0, 0.0, 0.0, 0.0])
            for index, term in enumerate((1, c, c * c, y, c * y, t, c * t)):
                row[index] += term
        return {metric: _sums(rows[metric]) for metric in sorted(rows)}


USERS = ["u1", "u2", "u3", "u4", "u5"]
METRICS = ["spend", "clicked"]
VALUES = [-3, 0, 2, 7]

steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("event"),
            st.sampled_from(USERS),
            st.sampled_from(["control", "treatment", "treatment"]),
            st.sampled_from(["exposure", "exposure", "conversion", "value"]),
            st.sampled_from([None, None, *METRICS]),
            st.integers(min_value=-20, max_value=20),
            st.sampled_from([None, None, *VALUES]),
            st.dictionaries(st.sampled_from(METRICS), st.sampled_from(VALUES), max_size=2),
            st.sampled_from([None, None, "e1", "e2", "e3"]),
            st.sampled_from([0, 0, 1]),
        ),
        st.tuples(
            st.just("backfill"),
            st.lists(
                st.tuples(
                    st.sampled_from(USERS),
                    st.sampled_from([*VALUES, 11]),
                    st.sampled_from([None, *METRICS]),
                ),
                min_size=1,
                max_size=5,
            ),
            st.sampled_from([0, 0, 1]),
        ),
    ),
    max_size=30,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps, st.integers(min_value=1, max_value=30), st.booleans())
def test_random_metric_covariate_streams_are_counted_exactly(
    store: Store, steps: list[tuple[object, ...]], batch_size: int, use_async: bool
) -> None:
    exp = new_id()
    reference = MetricCovariateReference()
    pending: list[Event] = []

    def flush() -> None:
        expected = [reference.apply(e) for e in pending]
        assert record(store, pending, batch_size, use_async) == expected
        pending.clear()

    for step in steps:
        if step[0] == "event":
            _, user, variant, kind, metric, value, covariate, named, event_id, phase = step
            extra: dict[str, object] = {"event_id": event_id, "phase": phase}
            if kind == "value":
                extra["value"] = float(value)  # type: ignore[arg-type]
            if kind == "exposure":
                if covariate is not None:
                    extra["covariate"] = float(covariate)  # type: ignore[arg-type]
                if named:
                    extra["metric_covariates"] = {
                        m: float(c)
                        for m, c in named.items()  # type: ignore[attr-defined]
                    }
            elif metric is not None:
                extra["metric"] = metric
            pending.append(event(exp, str(user), str(variant), str(kind), **extra))
        else:
            flush()
            _, raw, phase = step
            items: list[CovariateItem] = [
                (user, float(value), metric)
                for user, value, metric in raw  # type: ignore[attr-defined]
            ]
            expected_outcomes = reference.backfill(int(phase), items)  # type: ignore[call-overload]
            assert store.record_covariates(exp, int(phase), items) == expected_outcomes  # type: ignore[call-overload]
    flush()
    for phase in (0, 1):
        assert store.get_metric_covariate_counts(exp, phase) == reference.counts(phase)
        assert store.get_covariate_counts(exp, phase) == reference.primary.counts(phase)


# --- the rules, one at a time --------------------------------------------------------------


def test_a_metric_covariate_before_or_after_its_outcomes_gives_the_same_sums(
    store: Store,
) -> None:
    before, after = new_id(), new_id()
    outcomes = [
        event(before, "u1", "treatment", "value", value=4.0, metric="spend"),
        event(before, "u1", "treatment", "value", value=6.0, metric="spend"),
        event(before, "u2", "treatment", "conversion", metric="spend"),
    ]
    store.record_events(
        [
            event(before, "u1", "treatment", metric_covariates={"spend": 2.0}),
            event(before, "u2", "treatment", metric_covariates={"spend": -1.5}),
            *outcomes,
        ]
    )
    store.record_events(
        [e.model_copy(update={"experiment_id": after}) for e in outcomes]
        + [event(after, "u2", "treatment")]
    )
    assert store.record_covariates(
        after, 0, [("u1", 2.0, "spend"), ("u2", -1.5, "spend"), ("u1", 2.0, "spend")]
    ) == ["set", "set", "unchanged"]
    expected = {
        "spend": {
            "treatment": CovariateCounts(
                samples=2,
                sum=0.5,
                sum_squares=6.25,
                conversions=1,
                conversion_cross_sum=-1.5,
                value_sum=10.0,
                value_cross_sum=20.0,
            )
        }
    }
    assert store.get_metric_covariate_counts(before, 0) == expected
    assert store.get_metric_covariate_counts(after, 0) == expected
    assert store.get_covariate_counts(after, 0) == {}  # the primary has none


def test_an_exposure_with_a_conflicting_metric_covariate_changes_nothing(store: Store) -> None:
    exp = new_id()
    store.create_experiment(experiment(exp))
    store.record_events([event(exp, "u1", "treatment", metric_covariates={"spend": 5.0})])
    before = (
        store.get_metric_covariate_counts(exp, 0),
        store.get_covariate_counts(exp, 0),
        store.get_counts(exp, 0),
    )
    [refused, again] = store.record_events(
        [
            event(
                exp,
                "u1",
                "treatment",
                covariate=1.0,
                metric_covariates={"clicked": 1.0, "spend": 6.0},
                event_id="x1",
            ),
            event(exp, "u1", "treatment", metric_covariates={"spend": 5.0}),
        ]
    )
    assert refused.outcome == "covariate_mismatch" and again.outcome == "counted"
    after = (
        store.get_metric_covariate_counts(exp, 0),
        store.get_covariate_counts(exp, 0),
        store.get_counts(exp, 0),
    )
    assert after == before  # neither the primary's covariate nor the other metric's was set
    assert store.record_covariates(exp, 0, [("u1", 6.0, "spend"), ("u9", 1.0, "spend")]) == [
        "conflict",
        "not_exposed",
    ]
    [retried] = store.record_events([event(exp, "u1", "treatment", event_id="x1")])
    assert retried.outcome == "counted"


def test_delete_removes_the_metric_covariates(store: Store) -> None:
    exp = new_id()
    store.create_experiment(experiment(exp))
    store.record_events([event(exp, "u1", "control", metric_covariates={"spend": 1.0})])
    store.delete_experiment(exp)
    assert store.get_metric_covariate_counts(exp, 0) == {}
    store.record_events([event(exp, "u1", "control")])
    assert store.record_covariates(exp, 0, [("u1", 2.0, "spend")]) == ["set"]


def test_every_backend_gives_results_equal_to_statsmodels_ols(store: Store) -> None:
    """The results read through each backend: a mean metric's adjusted difference and SE
    equal statsmodels OLS ``y ~ T + (c - c̄)`` on the raw per-user data (a covariate
    missing for every fifth user, at the observed mean), some covariates backfilled after
    the outcomes."""
    import numpy as np
    import statsmodels.api as sm

    from abscope.models import Experiment, Metric
    from abscope.service.analysis import Analysis

    base = experiment(new_id(), sequential=False)
    exp = Experiment.model_validate(
        base.model_dump()
        | {"metrics": [Metric(name="spend", kind="mean", role="secondary").model_dump()]}
    )
    store.create_experiment(exp)
    rng = np.random.default_rng(42)
    rows = []
    events: list[Event] = []
    backfill: list[CovariateItem] = []
    for index in range(120):
        user, variant = f"u{index}", ("control", "treatment")[index % 2]
        c = float(rng.integers(0, 20)) if index % 5 else None
        y = float(rng.integers(0, 8)) / 4 + (0.0 if c is None else c / 2)
        rows.append((variant == "treatment", y, c))
        if c is not None and index % 3 == 0:
            backfill.append((user, c, "spend"))
            events.append(event(exp.id, user, variant))
        else:
            named = None if c is None else {"spend": c}
            events.append(event(exp.id, user, variant, metric_covariates=named))
        events.append(event(exp.id, user, variant, "value", value=y, metric="spend"))
    store.record_events(events)
    assert set(store.record_covariates(exp.id, 0, backfill)) == {"set"}
    results = Analysis(store).results(exp.id)
    (entry,) = [m for m in results["metrics"] if m["name"] == "spend"]
    (comparison,) = entry["cuped"]["comparisons"]
    observed = [c for _, _, c in rows if c is not None]
    x = np.array([np.mean(observed) if c is None else c for _, _, c in rows])
    t = np.array([float(treated) for treated, _, _ in rows])
    y = np.array([y for _, y, _ in rows])
    fit = sm.OLS(y, np.column_stack([np.ones_like(y), t, x - x.mean()])).fit()
    assert abs(comparison["difference"] - fit.params[1]) <= 1e-9 * abs(fit.params[1])
    assert abs(comparison["difference_se"] - fit.bse[1]) <= 1e-9 * fit.bse[1]
    assert entry["cuped"]["covariate_users"] == len(observed)
