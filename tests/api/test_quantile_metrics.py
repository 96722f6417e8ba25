"""Quantile (latency) metrics through the API: declaration, requests in by ``/events`` and
``/log``, and the results' quantile table and guardrail (in process, SQLite).

The expected figures are recomputed here from the raw requests sent, through
``QuantileCounters.from_requests`` (the pure module's recomputation from raw data, not the
store's counters) and ``quantile_comparisons``: any request lost, doubled (a retried event
id), misfiled to another arm or counted without its user's weights changes them.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from abscope.quantile_reports import quantile_config
from abscope.stats.quantiles import QuantileCounters, quantile_comparisons
from tests.api.helpers import TestClient, assert_status, create, expect_422, seed_body, started
from tests.api.test_metric_ingest import _event, _log, _users

LATENCY = {
    "name": "latency",
    "kind": "quantile",
    "role": "guardrail",
    "margin": 0.1,
    "guard_quantile": 0.95,
    "action": "alert",
}
TTFB = {"name": "ttfb", "kind": "quantile", "quantiles": [0.5, 0.9]}


@pytest.mark.parametrize(
    ("metric", "field"),
    [
        ({"name": "latency", "kind": "quantile", "role": "primary"}, "metrics.0.role"),
        ({**LATENCY, "guard_quantile": None}, "metrics.0.guard_quantile"),
        ({**LATENCY, "guard_quantile": 0.9}, "metrics.0.guard_quantile"),
        ({**TTFB, "quantiles": [0.9, 0.5]}, "metrics.0.quantiles"),
        ({**TTFB, "quantiles": [0.5, 1.0]}, "metrics.0.quantiles"),
        ({**TTFB, "quantiles": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}, "metrics.0.quantiles"),
        ({"name": "spend", "kind": "mean", "quantiles": [0.5]}, "metrics.0.quantiles"),
        ({"name": "spend", "kind": "mean", "guard_quantile": 0.5}, "metrics.0.guard_quantile"),
    ],
)
def test_a_bad_quantile_declaration_is_a_422_naming_the_field(
    client: TestClient, metric: dict[str, Any], field: str
) -> None:
    expect_422(client.post("/experiments", json=seed_body(metrics=[metric])), field)
    experiment_id = create(client)["id"]
    expect_422(client.post(f"/experiments/{experiment_id}/metrics", json=metric), field[10:])


def test_a_quantile_metric_is_declared_with_its_defaults(client: TestClient) -> None:
    experiment = create(client, metrics=[LATENCY, TTFB])
    latency, ttfb = experiment["metrics"]
    assert latency["quantiles"] == [0.5, 0.95, 0.99] and latency["higher_is_better"] is False
    assert ttfb["quantiles"] == [0.5, 0.9] and ttfb["guard_quantile"] is None


def test_a_negative_latency_is_refused_naming_value(client: TestClient) -> None:
    experiment_id = started(client, metrics=[LATENCY])["id"]
    user, variant = next((u[0], v) for v, u in _users(client, experiment_id, 1).items())
    expect_422(_log(client, experiment_id, user, variant, metric="latency", value=-1.0), "value")
    answer = client.post(
        "/events",
        json={"events": [_event(experiment_id, user, variant, "value", value=-3.0,
                                metric="latency")]},
    ).json()  # fmt: skip
    assert (answer["rejected"], answer["counted"]) == (1, 0)
    assert ">= 0" in answer["results"][0]["error"]


def test_requests_give_the_quantiles_of_the_raw_data(client: TestClient) -> None:
    experiment = started(client, metrics=[LATENCY, TTFB])
    experiment_id, phase = experiment["id"], experiment["phase"]
    rng = random.Random(7)
    raw: dict[tuple[str, str], list[tuple[str, float]]] = {}
    events = []
    for variant, users in _users(client, experiment_id, 30).items():
        scale = 1.0 if variant == "control" else 1.3
        for user in users:
            for _ in range(rng.randint(1, 8)):
                latency = round(scale * rng.lognormvariate(5.0, 0.6), 2)
                events.append(_event(experiment_id, user, variant, "value", value=latency,
                                     metric="latency"))  # fmt: skip
                raw.setdefault(("latency", variant), []).append((user, latency))
    answer = client.post("/events", json={"events": events}).json()
    assert answer["counted"] == len(events)
    # /log, retried with its event id: counted once.
    user = raw["latency", "control"][0][0]
    for _ in range(2):
        logged = _log(client, experiment_id, user, "control", metric="ttfb", value=12.5,
                      event_id="log-1")  # fmt: skip
        assert_status(logged, 200)
    raw["ttfb", "control"] = [(user, 12.5)]

    results = client.get(f"/experiments/{experiment_id}/results").json()
    entries = {m["name"]: m for m in results["metrics"]}
    config = quantile_config(experiment_id, phase)

    def counters(metric: str, variant: str) -> QuantileCounters:
        requests = raw.get((metric, variant), [])
        return QuantileCounters.from_requests(
            [v for _, v in requests], [u for u, _ in requests], config
        )

    for name, quantiles in (("latency", (0.5, 0.95, 0.99)), ("ttfb", (0.5, 0.9))):
        entry = entries[name]
        assert entry["kind"] == "quantile" and entry["quantile_inference"] == "fixed"
        control, treatment = counters(name, "control"), counters(name, "treatment")
        expected = quantile_comparisons(control, treatment, quantiles)
        assert [row["q"] for row in entry["quantile_results"]] == list(quantiles)
        for row, comparison in zip(entry["quantile_results"], expected, strict=True):
            arms = row["arms"]
            assert arms["control"]["estimate"] == pytest.approx(comparison.control.estimate)
            assert arms["treatment"]["estimate"] == pytest.approx(comparison.treatment.estimate)
            assert arms["control"]["reason"] == comparison.control.reason
            (compared,) = row["comparisons"]
            assert compared["relative"] == pytest.approx(comparison.relative.estimate)
            if comparison.relative.ci is None:
                assert compared["relative_interval"] is None
                assert compared["relative_reason"] is not None
            else:
                assert compared["relative_interval"] == pytest.approx(
                    [comparison.relative.ci.lower, comparison.relative.ci.upper]
                )
            if comparison.control.ci is not None:
                assert arms["control"]["interval"] == pytest.approx(
                    [comparison.control.ci.lower, comparison.control.ci.upper]
                )
        assert entry["variants"]["control"]["requests"] == control.requests
        assert entry["variants"]["control"]["users"] == control.users
    # The guardrail: judged (always-valid) for the one treatment, with 30 users per arm
    # below the default 100: inconclusive, too little data.
    (guard,) = entries["latency"]["comparisons"]
    assert guard["inference"] == "sequential" and guard["verdict"] == "inconclusive"
    assert guard["reason"] == "too_little_data"
    assert entries["ttfb"]["comparisons"] == []
    gate = client.get(f"/experiments/{experiment_id}/gate").json()
    assert [(m["name"], m["verdict"]) for m in gate["metrics"]] == [("latency", "inconclusive")]


def test_a_clear_p95_regression_fails_the_gate(client: TestClient) -> None:
    metric = {**LATENCY, "min_samples": 20}
    experiment_id = started(client, metrics=[metric])["id"]
    rng = random.Random(11)
    events = []
    for variant, users in _users(client, experiment_id, 60).items():
        scale = 1.0 if variant == "control" else 2.0
        for user in users:
            for _ in range(10):
                latency = round(scale * rng.lognormvariate(5.0, 0.4), 2)
                events.append(_event(experiment_id, user, variant, "value", value=latency,
                                     metric="latency"))  # fmt: skip
    assert client.post("/events", json={"events": events}).json()["counted"] == len(events)
    gate = client.get(f"/experiments/{experiment_id}/gate")
    assert_status(gate, 412)
    assert gate.json()["metrics"][0]["verdict"] == "breach"
    assert client.get(f"/experiments/{experiment_id}/results").json()["guardrail_status"] == (
        "failing"
    )
