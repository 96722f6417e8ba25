"""``GET /summary``: the list's one request. Each experiment's figures must be those of its
own ``/experiments/{id}/results`` (same counts, same inference mode), on a seeded mix of
experiments: binary and continuous, sequential and fixed-horizon, two to four arms, with and
without a minimum lift or guardrails, a lower-is-better primary, a zero baseline, a draft
and a completed one. The users are checked against the events the test sent."""

from __future__ import annotations

from typing import Any

import numpy as np

from abscope.assignment import assign
from abscope.models import Experiment
from abscope.routing import compile_experiment
from tests.api.helpers import TestClient, assert_status, expect_422

LATENCY = {
    "name": "latency",
    "kind": "mean",
    "role": "guardrail",
    "higher_is_better": False,
    "margin": 0.05,
    "action": "alert",
}


def _variants(arms: int) -> list[dict[str, Any]]:
    names = ["control", *(f"t{i}" for i in range(1, arms))]
    weights = [round(1 / arms, 12)] * arms
    weights[0] = 1 - sum(weights[1:])
    return [
        {"name": n, "model_id": f"m-{n}", "weight": w} for n, w in zip(names, weights, strict=True)
    ]


def _post_events(client: TestClient, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 5_000):
        answer = client.post("/events", json={"events": events[start : start + 5_000]})
        assert_status(answer, 200)
        assert answer.json()["rejected"] == 0, answer.json()


def _seed(client: TestClient) -> dict[str, int]:
    """The mix of experiments, with traffic; the users sent to each."""
    rng = np.random.default_rng(20261201)
    sent: dict[str, int] = {}
    for i in range(14):
        experiment_id = f"sum-{i:02d}"
        arms = 2 + i % 3
        continuous = i % 4 == 3
        body: dict[str, Any] = {
            "id": experiment_id,
            "name": f"Summary {i}",
            "variants": _variants(arms),
            "metric_type": "continuous" if continuous else "binary",
            "sequential": i % 2 == 0,
            "min_relative_lift": 0.1 if i % 3 != 1 else None,
        }
        if i % 5 == 0:
            body["metrics"] = [LATENCY]
        if i == 6:  # a lower-is-better primary: the best arm has the smallest rate
            body["metrics"] = [{"name": "errors", "kind": "binary", "role": "primary",
                                "higher_is_better": False}]  # fmt: skip
        assert_status(client.post("/experiments", json=body), 201)
        if i == 13:
            sent[experiment_id] = 0
            continue  # a draft
        running = client.post(f"/experiments/{experiment_id}/start")
        assert_status(running, 200)
        # The variant each user gets, by the service's own pure hashing (as /route would).
        compiled = compile_experiment(Experiment.model_validate(running.json()))
        users = int(rng.integers(300, 1_000))
        rates = rng.uniform(0.05, 0.25, arms)
        if i == 10:
            rates[0] = 0.0  # a zero baseline: the relative lift is undefined
        events: list[dict[str, Any]] = []
        variants = [v["name"] for v in body["variants"]]  # fmt: skip
        for u in range(users):
            decision = assign(compiled.config, f"u{u}", layer_slice=compiled.layer_slice)
            assert decision.variant is not None
            arm = variants.index(decision.variant)
            base = {"experiment_id": experiment_id, "user_id": f"u{u}",
                    "variant_name": variants[arm]}  # fmt: skip
            events.append({**base, "kind": "exposure"})
            if continuous:
                events.append({**base, "kind": "value", "value": float(rng.exponential(3 + arm))})
            elif rng.random() < rates[arm]:
                events.append({**base, "kind": "conversion"})  # the primary's
            if "metrics" in body and i != 6:
                value = float(rng.normal(100 + 3 * arm, 10))
                events.append({**base, "kind": "value", "value": value, "metric": "latency"})
        _post_events(client, events)
        sent[experiment_id] = users
        if i == 12:
            assert_status(client.post(f"/experiments/{experiment_id}/complete"), 200)
    return sent


def _pair(interval: dict[str, Any] | None) -> list[float] | None:
    return None if interval is None else [interval["lower"], interval["upper"]]


def _expected_best(results: dict[str, Any], higher_is_better: bool) -> dict[str, Any]:
    comparisons = results["comparisons"]
    sign = 1 if higher_is_better else -1
    ranked = [c for c in comparisons if c["absolute"]["estimate"] is not None]
    if not ranked:
        return dict(comparisons[0])
    return dict(max(ranked, key=lambda c: sign * c["absolute"]["estimate"]))


def _expected_underpowered(results: dict[str, Any]) -> bool | None:
    """The list's old rule, read from the results: keep running, and a comparison that is
    not significant has less than the target power (None when power is unknown)."""
    if results["decision"]["verdict"] != "keep_running":
        return False
    undecided = [c for c in results["comparisons"] if not c["primary"]["significant"]]
    if any(c["power"] is not None and c["power"] < results["power"] for c in undecided):
        return True
    if any(c["power"] is None for c in undecided):
        return None
    return False


def test_each_summary_is_its_results(client: TestClient) -> None:
    sent = _seed(client)
    answer = client.get("/summary")
    assert_status(answer, 200)
    lines = {line["id"]: line for line in answer.json()["experiments"]}
    assert set(lines) == set(sent)
    checked_kinds: set[str] = set()
    for experiment_id, line in lines.items():
        assert line["users"] == sent[experiment_id]
        config = client.get(f"/experiments/{experiment_id}").json()
        assert line["name"] == config["name"] and line["status"] == config["status"]
        assert line["variants"] == [v["name"] for v in config["variants"]]
        assert line["inference"] == ("sequential" if config["sequential"] else "fixed_horizon")
        if line["status"] == "draft":
            for field in ("best", "significant", "srm", "underpowered", "verdict",
                          "guardrail_status"):  # fmt: skip
                assert line[field] is None
                assert line["null_reasons"][field] == "not_started"
            checked_kinds.add("draft")
            continue
        results = client.get(f"/experiments/{experiment_id}/results").json()
        assert line["users"] == sum(v["n"] for v in results["variants"])
        expected = _expected_best(results, line["higher_is_better"])
        best = line["best"]
        assert best["variant"] == expected["variant"]
        assert best["relative_lift"] == expected["relative"]["estimate"]
        assert best["absolute_difference"] == expected["absolute"]["estimate"]
        assert best["interval"] == _pair(expected["primary"]["relative_ci"])
        assert best["p_value"] == expected["primary"]["adjusted_p_value"]
        assert best["significant"] == expected["primary"]["significant"]
        assert best["basis"] == results["inference"] == line["inference"]
        assert line["significant"] == any(
            c["primary"]["significant"] for c in results["comparisons"]
        )
        assert line["srm"] == results["srm"]["mismatch"]
        assert line["srm_p_value"] == results["srm"]["p_value"]
        assert line["verdict"] == results["decision"]["verdict"]
        assert line["guardrail_status"] == results["guardrail_status"]
        assert line["underpowered"] == _expected_underpowered(results)
        if line["underpowered"] is None:
            assert line["null_reasons"]["underpowered"] in ("no_min_lift", "zero_baseline")
        if best["relative_lift"] is None:
            assert best["relative_lift_reason"] == "zero_baseline"
            assert best["interval"] is None and best["interval_reason"] is not None
            checked_kinds.add("zero_baseline")
        if not line["higher_is_better"]:
            checked_kinds.add("lower_is_better")
        if line["guardrails"]:
            checked_kinds.add("guardrails")
        checked_kinds.add(line["inference"])
    assert checked_kinds >= {"draft", "zero_baseline", "lower_is_better", "guardrails",
                             "sequential", "fixed_horizon"}  # fmt: skip
    assert lines["sum-12"]["status"] == "completed"


def test_the_status_filter_and_a_bad_status(client: TestClient) -> None:
    for i, start in enumerate((True, False, True)):
        body = {"id": f"filter-{i}", "name": f"Filter {i}", "variants": _variants(2)}
        assert_status(client.post("/experiments", json=body), 201)
        if start:
            assert_status(client.post(f"/experiments/filter-{i}/start"), 200)
    running = client.get("/summary", params={"status": "running"}).json()["experiments"]
    assert {line["id"] for line in running} == {"filter-0", "filter-2"}
    drafts = client.get("/summary", params={"status": "draft"}).json()["experiments"]
    assert [line["id"] for line in drafts] == ["filter-1"]
    assert client.get("/summary", params={"status": "stopped"}).json() == {"experiments": []}
    expect_422(client.get("/summary", params={"status": "finished"}), "status")


def test_no_experiments_is_an_empty_list(client: TestClient) -> None:
    answer = client.get("/summary")
    assert_status(answer, 200)
    assert answer.json() == {"experiments": []}
