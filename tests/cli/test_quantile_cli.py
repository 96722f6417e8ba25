"""The CLI's latency-quantile tables (``abscope experiments results``) and metric specs.

The table is checked cell by cell against the results' JSON of a real service (SQLite, the
requests sent through the service's ``/events`` path), so a figure shown under the wrong
arm or quantile, or a null printed as a number, fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer

from abscope import schemas
from abscope.cli.metric_specs import parse_metric_spec
from abscope.cli.metric_views import format_metrics
from abscope.cli.quantile_views import format_quantiles, has_quantiles
from abscope.config import Settings
from abscope.jsonable import to_jsonable
from abscope.service import ExperimentService
from abscope.storage.sqlite import SQLiteStore
from tests.fixtures.guardrail_data import create_request


@pytest.fixture
def results(tmp_path: Path) -> dict[str, object]:
    settings = Settings(db_path=tmp_path / "abscope.db")
    store = SQLiteStore(settings.db_path)
    service = ExperimentService(store, settings)
    guard = {"name": "latency", "kind": "quantile", "role": "guardrail", "margin": 0.1,
             "guard_quantile": 0.95, "action": "pause"}  # fmt: skip
    service.create(create_request("cli-p95", [guard]))  # type: ignore[list-item]
    service.transition("cli-p95", "start")
    rng = np.random.default_rng(4)
    events = []
    for i in range(120):
        user = f"user-{i}"
        (assignment,) = service.route(user, "cli-p95").assignments
        variant = assignment.variant_name
        assert variant is not None
        scale = 1.4 if variant == "treatment" else 1.0
        for latency in scale * rng.lognormal(5.0, 0.5, size=3):
            events.append(schemas.BatchEvent(experiment_id="cli-p95", user_id=user,
                                             variant_name=variant, kind="value",
                                             value=float(latency), metric="latency"))  # fmt: skip
    assert service.ingest(schemas.BatchRequest(events=events)).rejected == 0
    body = json.loads(json.dumps(to_jsonable(service.results("cli-p95"))))
    store.close()
    return body  # type: ignore[no-any-return]


def _cells(line: str) -> list[str]:
    return [cell for cell in line.split("  ") if cell.strip()]


def test_the_table_shows_each_quantile_and_arm_as_the_json_has_them(
    results: dict[str, object],
) -> None:
    assert has_quantiles(results)
    text = format_quantiles(results)
    (metric,) = [m for m in results["metrics"] if m["kind"] == "quantile"]  # type: ignore[attr-defined]
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("quantile"))
    rows = [_cells(line) for line in lines[start + 2 :] if line[:1] == "p"]
    expected = []
    for row in metric["quantile_results"]:
        for arm, figures in row["arms"].items():
            expected.append((row["label"], arm, figures))
    assert len(rows) == len(expected) == 6
    for cells, (label, arm, figures) in zip(rows, expected, strict=True):
        assert cells[0].strip() == label and cells[1].strip() == arm
        assert cells[2].strip() == f"{figures['estimate']:.4g}"
        if figures["interval"] is None:
            assert cells[3].strip() == f"n/a ({figures['reason']})"
        else:
            low, high = figures["interval"]
            assert cells[3].strip() == f"{low:.4g} to {high:.4g}"
    p95 = next(r for r in metric["quantile_results"] if r["label"] == "p95")
    (change,) = p95["comparisons"]
    treatment_row = next(c for c in rows if c[0].strip() == "p95" and c[1].strip() == "treatment")
    assert treatment_row[4].strip() == f"{change['relative']:+.1%}"
    # With 3 requests per user, p99 has fewer than 5 requests above it: no interval.
    p99 = next(r for r in metric["quantile_results"] if r["label"] == "p99")
    assert p99["arms"]["control"]["interval"] is None
    assert "n/a (insufficient_samples)" in text
    # Labelled: the table's intervals fixed-horizon, the guardrail's always-valid.
    assert "fixed-horizon" in text and "bootstrap over users" in text
    (guard,) = metric["comparisons"]
    assert f"treatment: {guard['verdict']}" in text and "always-valid" in text
    assert "p95 may not rise more than 10.0% (pause on a breach)" in text
    # The metrics table does not invent a per-arm value for it.
    assert "see latency table" in format_metrics(results)


def test_a_quantile_guardrail_spec_names_its_quantile() -> None:
    spec = parse_metric_spec("latency:quantile:guardrail::0.1:pause:p95", "--declare-metric")
    assert spec == {"name": "latency", "kind": "quantile", "role": "guardrail",
                    "margin": 0.1, "action": "pause", "guard_quantile": 0.95}  # fmt: skip
    assert parse_metric_spec("ttfb:quantile::::: 0.99", "-m")["guard_quantile"] == 0.99
    for bad in ("latency:quantile:guardrail::0.1::p100", "latency:quantile:guardrail::0.1::x"):
        with pytest.raises(typer.BadParameter, match="QUANTILE"):
            parse_metric_spec(bad, "--declare-metric")
