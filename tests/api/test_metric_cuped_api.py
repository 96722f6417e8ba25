"""Named metrics' covariates over HTTP (in process): ``covariates`` on ``/events`` exposures
and ``metric`` on ``POST /experiments/{id}/covariates``, their checks (an undeclared metric,
a ratio, a covariate on a conversion: refused naming the field, nothing stored), set-once
semantics, and the results' per-metric ``cuped`` block compared with
:func:`abscope.stats.cuped.cuped_effect` on sums taken straight from what was sent (every
number a multiple of 0.25: the sums are exact in any order).
"""

from __future__ import annotations

from typing import Any

import pytest

from abscope.cli.metric_cuped_views import format_metric_cuped
from abscope.cli.tables import num, p_value, pct
from abscope.stats.cuped import CupedArm, cuped_effect
from tests.api.helpers import MakeClient, TestClient, assert_status, expect_422, started
from tests.api.test_metric_ingest import ERRORS, LATENCY, REVENUE, _users


def _running(client: TestClient) -> str:
    exp = started(client, metrics=[LATENCY, REVENUE, ERRORS], sequential=False)
    return str(exp["id"])


def _events(client: TestClient, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = client.post("/events", json={"events": events})
    assert_status(response, 200)
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def _metric_entry(client: TestClient, exp: str, name: str) -> dict[str, Any]:
    results = client.get(f"/experiments/{exp}/results")
    assert_status(results, 200)
    return next(m for m in results.json()["metrics"] if m["name"] == name)


def test_named_metric_covariates_are_checked_and_set_once(make_client: MakeClient) -> None:
    client = make_client()
    exp = _running(client)
    users = _users(client, exp, 2)
    c0, c1 = users["control"]
    base = {"experiment_id": exp, "user_id": c0, "variant_name": "control"}
    refused = _events(client, [
        {**base, "kind": "exposure", "covariates": {"latency_ms": 1.0}},
        {**base, "kind": "exposure", "covariates": {"nope": 1.0}},
        {**base, "kind": "conversion", "metric": "errors", "covariates": {"errors": 1.0}},
    ])  # fmt: skip
    assert [r["status"] for r in refused] == ["rejected"] * 3
    assert "events.0.covariates.latency_ms" in refused[0]["error"]
    assert "numerator" in refused[0]["error"] and "denominator" in refused[0]["error"]
    assert "events.1.covariates.nope" in refused[1]["error"]
    assert "events.2.covariates" in refused[2]["error"]
    [first] = _events(client, [{**base, "kind": "exposure", "covariates": {"revenue": 2.5}}])
    assert first["status"] == "counted"
    [clash] = _events(client, [{**base, "kind": "exposure", "covariates": {"revenue": 3.0}}])
    assert clash["status"] == "covariate_mismatch"
    # a backfill naming a ratio is a 422 naming the item, and stores nothing of the call
    bad = client.post(f"/experiments/{exp}/covariates", json={"covariates": [
        {"user_id": c0, "value": 1.0, "metric": "errors"},
        {"user_id": c0, "value": 1.0, "metric": "latency_ms"},
    ]})  # fmt: skip
    expect_422(bad, "covariates.1.metric")
    assert "ratio" in bad.text
    assert _metric_entry(client, exp, "errors")["cuped_reason"] == "no_covariates"
    _events(client, [{**base, "user_id": c1, "kind": "exposure"}])
    answer = client.post(f"/experiments/{exp}/covariates", json={"covariates": [
        {"user_id": c0, "value": 2.5, "metric": "revenue"},
        {"user_id": c0, "value": 9.0, "metric": "revenue"},
        {"user_id": c1, "value": 1.0, "metric": "errors"},
        {"user_id": "stranger", "value": 1.0, "metric": "errors"},
        {"user_id": c1, "value": 4.0},
    ]})  # fmt: skip
    assert_status(answer, 200)
    statuses = [r["status"] for r in answer.json()["results"]]
    assert statuses == ["unchanged", "conflict", "set", "not_exposed", "set"]
    # the primary's name in covariates is the primary's covariate; twice, it must agree
    t0 = users["treatment"][0]
    fresh = {"experiment_id": exp, "user_id": t0, "variant_name": "treatment"}
    primary = client.get(f"/experiments/{exp}").json()["metrics"]
    name = next((m["name"] for m in primary if m["role"] == "primary"), "converted")
    both = _events(client, [
        {**fresh, "kind": "exposure", "covariate": 1.0, "covariates": {name: 2.0}},
    ])  # fmt: skip
    assert both[0]["status"] == "rejected" and f"events.0.covariates.{name}" in both[0]["error"]
    assert "send it once" in both[0]["error"]
    [alone] = _events(client, [{**fresh, "kind": "exposure", "covariates": {name: 2.0}}])
    assert alone["status"] == "counted"
    assert client.get(f"/experiments/{exp}/results").json()["cuped"]["covariate_users"] == 2
    not_finite = client.post(
        f"/experiments/{exp}/covariates",
        json={"covariates": [{"user_id": c0, "value": 1e13, "metric": "revenue"}]},
    )
    expect_422(not_finite, "covariates.0.value")


def test_the_results_adjust_each_named_metric_by_its_own_covariates(
    make_client: MakeClient,
) -> None:
    client = make_client()
    exp = _running(client)
    users = _users(client, exp, 30)
    raw: dict[str, dict[str, dict[str, tuple[float, float | None]]]] = {
        "revenue": {},
        "errors": {},
    }
    events: list[dict[str, Any]] = []
    backfill: list[dict[str, Any]] = []
    for variant, names in users.items():
        for index, user in enumerate(names):
            base = {"experiment_id": exp, "user_id": user, "variant_name": variant}
            c_revenue = (index % 7) * 0.5
            y_revenue = c_revenue * 2 + (index % 3) * 0.25 + (0.5 if variant == "treatment" else 0)
            c_errors = float(index % 4) if index % 6 else None
            y_errors = 1.0 if (index * 7 + len(variant)) % 5 < 2 else 0.0
            named = {"revenue": c_revenue} | ({} if c_errors is None else {"errors": c_errors})
            if index % 2:
                events.append({**base, "kind": "exposure", "covariates": named})
            else:  # outcomes first, the covariates backfilled afterwards
                events.append({**base, "kind": "exposure"})
                backfill += [{"user_id": user, "value": v, "metric": m} for m, v in named.items()]
            events.append({**base, "kind": "value", "metric": "revenue", "value": y_revenue})
            if y_errors:
                events.append({**base, "kind": "conversion", "metric": "errors"})
            raw["revenue"].setdefault(variant, {})[user] = (y_revenue, c_revenue)
            raw["errors"].setdefault(variant, {})[user] = (y_errors, c_errors)
    assert {r["status"] for r in _events(client, events)} == {"counted"}
    answer = client.post(f"/experiments/{exp}/covariates", json={"covariates": backfill})
    assert_status(answer, 200)
    assert answer.json()["set"] == len(backfill)
    for name in ("revenue", "errors"):
        entry = _metric_entry(client, exp, name)
        block = entry["cuped"]
        assert entry["cuped_reason"] is None and block["metric"] == name

        def arm(variant: str, metric: str = name) -> CupedArm:
            per_user = raw[metric][variant]
            covered = [(y, c) for y, c in per_user.values() if c is not None]
            return CupedArm(
                samples=len(per_user),
                outcome_sum=sum(y for y, _ in per_user.values()),
                outcome_sum_squares=sum(y * y for y, _ in per_user.values()),
                covariate_samples=len(covered),
                covariate_sum=sum(c for _, c in covered),
                covariate_sum_squares=sum(c * c for _, c in covered),
                covariate_outcome_sum=sum(y for y, _ in covered),
                cross_sum=sum(c * y for y, c in covered),
            )

        expected = cuped_effect(arm("control"), arm("treatment"), theta="pooled")
        [comparison] = block["comparisons"]
        assert comparison["difference"] == pytest.approx(expected.difference, rel=1e-9)
        assert comparison["difference_se"] == pytest.approx(expected.difference_se, rel=1e-9)
        assert comparison["p_value"] == pytest.approx(expected.p_value, rel=1e-9)
        assert comparison["variance_reduction"] == pytest.approx(
            expected.variance_reduction, rel=1e-9
        )
        assert comparison["inference"] == "fixed"
    assert _metric_entry(client, exp, "errors")["cuped"]["verdict_basis"].startswith("descriptive")
    assert _metric_entry(client, exp, "latency_ms")["cuped_reason"] == "not_applicable"
    # the CLI's words: each adjusted figure as the API gives it, labelled with its mode
    results = client.get(f"/experiments/{exp}/results").json()
    text = " ".join(format_metric_cuped(results).split())
    [revenue] = _metric_entry(client, exp, "revenue")["cuped"]["comparisons"]
    [errors] = _metric_entry(client, exp, "errors")["cuped"]["comparisons"]
    lead = "treatment vs control: adjusted difference"
    assert f"revenue (secondary), {lead} {num(revenue['difference'], True)}" in text
    assert f"errors (guardrail), {lead} {pct(errors['difference'], 2, True)}" in text
    assert f"fixed-horizon p = {p_value(revenue['p_value'])}" in text
    assert f"corrected p = {p_value(revenue['adjusted_p_value'])} (Holm over the 1 " in text
    assert "descriptive: the guardrail's verdict" in text
    assert "Not adjusted: latency_ms: n/a (not_applicable)." in text
