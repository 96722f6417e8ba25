"""Each metric's chart series, from events recorded over several hours in a real SQLite
store: its last point is the results' figure of the same metric (the chart never disagrees
with the table), each earlier point is the results of the data up to that hour, and the
figure draws the guardrail's margin."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from abscope import charts
from abscope.config import Settings
from abscope.metric_series import metric_series
from abscope.models import Event
from abscope.schemas import CreateExperimentRequest
from abscope.service import ExperimentService
from abscope.storage.sqlite import SQLiteStore

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOURS = 4
METRICS = [
    {"name": "latency_ms", "kind": "ratio", "role": "guardrail", "higher_is_better": False,
     "margin": 0.05, "action": "alert"},
    {"name": "revenue", "kind": "mean", "role": "secondary"},
    {"name": "clicked", "kind": "binary", "role": "secondary"},
]  # fmt: skip


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ExperimentService]:
    path = tmp_path / "abscope.db"
    clock = {"now": START + timedelta(hours=HOURS)}
    svc = ExperimentService(
        SQLiteStore(path), Settings(db_path=path, redis_url=None), clock=lambda: clock["now"]
    )
    yield svc
    svc.store.close()


def _seed(service: ExperimentService, hours: int) -> None:
    rng = np.random.default_rng(7)
    events: list[Event] = []
    slow = {"control": 100.0, "treatment": 112.0}
    for hour in range(hours):
        at = START + timedelta(hours=hour, minutes=30)
        for i in range(150):
            user = f"u{hour}-{i}"
            variant = "control" if i % 2 else "treatment"
            common: dict[str, Any] = {
                "experiment_id": "exp", "user_id": user, "variant": variant, "at": at,
            }  # fmt: skip
            events.append(Event(kind="exposure", **common))
            for _ in range(int(rng.integers(1, 4))):
                latency = float(rng.lognormal(0.0, 0.3)) * slow[variant]
                events.append(
                    Event(kind="value", metric="latency_ms", value=latency, denominator=1.0,
                          **common)
                )  # fmt: skip
            events.append(
                Event(kind="value", metric="revenue", value=float(rng.exponential(5.0)), **common)
            )
            if rng.random() < 0.3:
                events.append(Event(kind="conversion", metric="clicked", **common))
    service.store.record_events(events)


def _create(service: ExperimentService) -> None:
    service.create(
        CreateExperimentRequest.model_validate(
            {"id": "exp", "name": "Exp", "control_model_id": "a", "treatment_model_id": "b",
             "metrics": METRICS}
        )
    )  # fmt: skip
    service.transition("exp", "start")


def test_the_last_point_of_each_series_is_the_results_figure(service: ExperimentService) -> None:
    _create(service)
    _seed(service, HOURS)
    store = service.store
    series = metric_series(
        service.get("exp"), store.get_timeseries("exp", 0), store.get_metric_timeseries("exp", 0)
    )
    assert set(series) == {"latency_ms", "revenue", "clicked"}
    results = {m["name"]: m for m in service.results("exp")["metrics"]}
    for name, one in series.items():
        assert len(one["hours"]) == HOURS
        (comparison,) = results[name]["comparisons"]
        last = one["effects"]["treatment"]
        assert last["estimate"][-1] == pytest.approx(comparison["estimate"], rel=1e-12)
        assert [last["lower"][-1], last["upper"][-1]] == pytest.approx(
            comparison["interval"], rel=1e-12
        )
        assert one["inference"] == comparison["inference"]
    assert series["latency_ms"]["threshold"] == 0.05
    assert series["revenue"]["threshold"] is None


def test_each_hour_is_the_results_of_the_data_up_to_it(
    service: ExperimentService, tmp_path: Path
) -> None:
    _create(service)
    _seed(service, HOURS)
    store = service.store
    series = metric_series(
        service.get("exp"), store.get_timeseries("exp", 0), store.get_metric_timeseries("exp", 0)
    )
    # The same events cut at two hours, in a fresh store: its results are the series' 2nd point.
    path = tmp_path / "cut.db"
    cut = ExperimentService(SQLiteStore(path), Settings(db_path=path, redis_url=None))
    try:
        _create(cut)
        _seed(cut, 2)
        results = {m["name"]: m for m in cut.results("exp")["metrics"]}
    finally:
        cut.store.close()
    for name, one in series.items():
        (comparison,) = results[name]["comparisons"]
        assert one["effects"]["treatment"]["estimate"][1] == pytest.approx(
            comparison["estimate"], rel=1e-12
        )


def test_the_figure_draws_the_margin_and_the_intervals(service: ExperimentService) -> None:
    _create(service)
    _seed(service, HOURS)
    figures = service.experiment_charts("exp")["metrics"]
    assert set(figures) == {"latency_ms", "revenue", "clicked"}
    latency = figures["latency_ms"]
    margins = [s for s in latency["layout"]["shapes"] if s.get("y0") == 0.05]
    assert margins, "the guardrail's margin line is missing"
    line = next(t for t in latency["data"] if t.get("name") == "treatment")
    assert line["error_y"]["array"][-1] is not None
    assert "guardrail" in latency["layout"]["title"]["text"]
    # An experiment with no declared metric has no metric figures.
    empty = charts.metric_effect_over_time({"metric": "m", "hours": [], "effects": {}})
    assert empty.layout.annotations[0].text == charts.NO_DATA
