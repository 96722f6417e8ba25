"""The chart endpoints: an experiment's four figures with a trace per variant, the planner's
figures beside POST /calculate's numbers, a bandit simulation's regret per policy, and a 422
naming the field for a bad body."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.helpers import MakeClient, TestClient, assert_status, expect_422, route, started

FIGURES = ("conversion", "lift", "samples", "posterior")
POLICIES = ("Epsilon-greedy", "UCB1", "Thompson", "Fixed split")
PLAN = {"baseline_rate": 0.1, "min_relative_lift": 0.1, "daily_traffic": 1000}
VARIANTS = [
    {"name": "control", "model_id": "m1", "weight": 0.4, "is_control": True},
    {"name": "treatment", "model_id": "m2", "weight": 0.3},
    {"name": "v3", "model_id": "m3", "weight": 0.3},
]


def _log_users(client: TestClient, experiment_id: str, users: int) -> dict[str, list[int]]:
    """Route users and log them over three hours, converting every fourth; per variant
    ``[samples, conversions]``."""
    start = datetime.now(UTC).replace(minute=5, second=0, microsecond=0) - timedelta(hours=3)
    tally: dict[str, list[int]] = {}
    for index in range(users):
        user = f"user-{index}"
        variant = route(client, user, experiment_id)["variant_name"]
        converted = index % 4 == 0
        body = {
            "experiment_id": experiment_id,
            "user_id": user,
            "variant_name": variant,
            "converted": converted,
            "timestamp": (start + timedelta(hours=index * 3 // users)).isoformat(),
        }
        assert_status(client.post("/log", json=body), 200)
        counts = tally.setdefault(variant, [0, 0])
        counts[0] += 1
        counts[1] += converted
    return tally


def _traces(figure: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Traces by name; bands and dashed sequences carry a suffix after the variant's name."""
    return {trace["name"]: trace for trace in figure["data"]}


def _charts(client: TestClient, experiment_id: str) -> dict[str, Any]:
    response = client.get(f"/experiments/{experiment_id}/charts")
    assert_status(response, 200)
    body: dict[str, Any] = json.loads(response.text)  # the body is strict JSON: no NaN
    json.dumps(body, allow_nan=False)
    return body


def test_an_experiments_charts_hold_a_trace_per_variant(make_client: MakeClient) -> None:
    # The experiment is created four hours ago on the service's clock, so that its events
    # of the last three hours are not older than it.
    offset = [timedelta(hours=-4)]
    client = make_client(clock=lambda: datetime.now(UTC) + offset[0])
    experiment_id = started(client, control_model_id=None, treatment_model_id=None,
                            control_weight=None, variants=VARIANTS)["id"]  # fmt: skip
    offset[0] = timedelta(0)
    tally = _log_users(client, experiment_id, 90)
    assert set(tally) == {"control", "treatment", "v3"}
    charts = _charts(client, experiment_id)
    assert set(charts) == {*FIGURES, "metrics"}
    assert charts["metrics"] == {}  # no metric declared beside the primary
    for name in FIGURES:
        assert set(charts[name]) >= {"data", "layout"}
        assert "annotations" not in charts[name]["layout"], name
    names = {"control", "treatment", "v3"}
    conversion = _traces(charts["conversion"])
    samples = _traces(charts["samples"])
    posterior = _traces(charts["posterior"])
    assert names <= set(conversion) and {f"{n} CI" for n in names} <= set(conversion)
    assert names == set(samples) == set(posterior)
    assert {"treatment", "v3"} <= set(_traces(charts["lift"]))

    timeseries = client.get(f"/experiments/{experiment_id}/timeseries").json()
    assert len(timeseries["hours"]) == 3
    for name, (n, conversions) in tally.items():
        assert samples[name]["y"] == timeseries["variants"][name]["samples"]
        assert samples[name]["y"][-1] == n
        assert conversion[name]["y"] == timeseries["variants"][name]["value"]
        assert conversion[name]["y"][-1] == pytest.approx(conversions / n)
    assert samples["control"]["line"]["color"] != samples["treatment"]["line"]["color"]
    assert conversion["control"]["line"]["color"] == samples["control"]["line"]["color"]


def test_an_experiment_without_events_has_empty_charts(client: TestClient) -> None:
    experiment_id = started(client)["id"]
    charts = _charts(client, experiment_id)
    for name in FIGURES:
        texts = [a["text"] for a in charts[name]["layout"].get("annotations", [])]
        assert texts == ["No data yet"], name
    assert {"control", "treatment"} <= set(_traces(charts["samples"]))


def test_charts_of_an_unknown_experiment_are_404(client: TestClient) -> None:
    assert_status(client.get("/experiments/nope/charts"), 404)


def test_charts_of_a_phase_that_does_not_exist_are_422(client: TestClient) -> None:
    experiment_id = started(client)["id"]
    response = client.get(f"/experiments/{experiment_id}/charts", params={"phase": 3})
    assert_status(response, 422)


def test_plan_charts_agree_with_calculate(client: TestClient) -> None:
    calculated = client.post("/calculate", json=PLAN)
    assert_status(calculated, 200)
    response = client.post("/charts/plan", json=PLAN)
    assert_status(response, 200)
    body = response.json()
    assert set(body) == {"plan", "sensitivity", "power"}
    assert body["plan"] == calculated.json()
    plan = body["plan"]
    sensitivity = _traces(body["sensitivity"])
    assert sensitivity["Days needed"]["x"] == plan["sensitivity"]["lifts"]
    assert sensitivity["Days needed"]["y"] == plan["sensitivity"]["days"]
    assert sensitivity["Planned lift"]["y"] == [plan["days"]]
    power = _traces(body["power"])
    assert power["Power"]["z"] == plan["power_grid"]["power"]
    assert power["Power"]["x"] == plan["power_grid"]["sample_sizes"]
    assert power["Plan"]["x"] == [plan["control_samples"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"baseline_rate": 1.5}, "baseline_rate"),
        ({"min_relative_lift": 0}, "min_relative_lift"),
        ({"daily_traffic": -5}, "daily_traffic"),
        ({"daily_traffic": "many"}, "daily_traffic"),
        ({"power": 0.01}, "power"),
        ({"beta": 0.2}, "beta"),
    ],
)
def test_bad_plan_input_is_422_naming_the_field(
    client: TestClient, change: dict[str, Any], field: str
) -> None:
    expect_422(client.post("/charts/plan", json={**PLAN, **change}), field)


def test_simulate_draws_regret_per_policy(client: TestClient) -> None:
    body = {"true_rates": [0.05, 0.08], "horizon": 300, "runs": 5, "seed": 7}
    response = client.post("/charts/simulate", json=body)
    assert_status(response, 200)
    answer = response.json()
    assert set(answer) == {"regret", "final_regret", "final_regret_se"}
    traces = _traces(answer["regret"])
    assert tuple(traces) == POLICIES
    assert tuple(answer["final_regret"]) == POLICIES
    for name in POLICIES:
        assert len(traces[name]["y"]) == 300
        assert traces[name]["y"][-1] == pytest.approx(answer["final_regret"][name])
    # A fixed 50/50 split loses half a 0.03 gap on every request, in expectation.
    assert answer["final_regret"]["Fixed split"] == pytest.approx(300 * 0.5 * 0.03, rel=0.2)
    assert client.post("/charts/simulate", json=body).json() == answer  # seeded


def test_simulate_at_the_largest_horizon_answers_a_thinned_curve(client: TestClient) -> None:
    # Its cost is bounded by the request's limits (see SimulateRequest), not timed here.
    body = {"true_rates": [0.05, 0.07], "horizon": 3000, "runs": 50, "seed": 1}
    response = client.post("/charts/simulate", json=body)
    assert_status(response, 200)
    assert all(len(t["x"]) == 500 for t in response.json()["regret"]["data"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"true_rates": [0.1]}, "true_rates"),
        ({"true_rates": [0.1] * 11}, "true_rates"),
        ({"true_rates": [0.1, 1.5]}, "true_rates.1"),
        ({"true_rates": [0.1, -0.2]}, "true_rates.1"),
        ({"horizon": 99}, "horizon"),
        ({"horizon": 3_001}, "horizon"),
        ({"runs": 1}, "runs"),
        ({"runs": 201}, "runs"),
        ({"seed": -1}, "seed"),
        ({"seed": "x"}, "seed"),
        ({"policy": "ucb1"}, "policy"),
    ],
)
def test_bad_simulate_input_is_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    valid = {"true_rates": [0.05, 0.08], "horizon": 100, "runs": 2, "seed": 1}
    expect_422(client.post("/charts/simulate", json={**valid, **body}), field)


def test_simulate_needs_its_rates_and_horizon(client: TestClient) -> None:
    expect_422(client.post("/charts/simulate", json={"horizon": 100}), "true_rates")
    expect_422(client.post("/charts/simulate", json={"true_rates": [0.1, 0.2]}), "horizon")
