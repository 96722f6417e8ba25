"""CUPED end to end against a real uvicorn process, on SQLite and on a real redis-server.

Covariates go in over HTTP both ways (on ``/events`` exposures, and backfilled with
``POST /experiments/{id}/covariates`` after some outcomes), with retries, a conflicting
value and users who never get one; the results' ``cuped`` section read back is compared
with :func:`abscope.stats.cuped.cuped_effect` on sums taken directly from what was sent
(every number is a multiple of 0.25 and the sums are far below 2**53 / 16, so they are exact
in any order). The CLI's view of the same answer shows the section.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from abscope.cli.views import format_results
from abscope.stats.cuped import CupedArm, cuped_effect
from tests.api.helpers import MakeServer, assert_status, backend_env

EXPERIMENT = "ranker-v2"
USERS = 300
REL = 1e-9


def _arm(users: dict[str, tuple[float, float | None]]) -> CupedArm:
    """Sums over ``user -> (outcome total, covariate or None)``, straight from the raw data."""
    covered = [(y, c) for y, c in users.values() if c is not None]
    return CupedArm(
        samples=len(users),
        outcome_sum=sum(y for y, _ in users.values()),
        outcome_sum_squares=sum(y * y for y, _ in users.values()),
        covariate_samples=len(covered),
        covariate_sum=sum(c for _, c in covered),
        covariate_sum_squares=sum(c * c for _, c in covered),
        covariate_outcome_sum=sum(y for y, _ in covered),
        cross_sum=sum(c * y for y, c in covered),
    )


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_cuped_results_match_the_raw_data(
    backend: str, make_server: MakeServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = make_server(**backend_env(backend, tmp_path, request))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        created = http.post("/experiments", json={
            "id": EXPERIMENT, "name": "Ranker v2", "control_model_id": "ranker-v1",
            "treatment_model_id": "ranker-v2", "metric_type": "continuous",
        })  # fmt: skip
        assert_status(created, 201)
        early = http.post(
            f"/experiments/{EXPERIMENT}/covariates",
            json={"covariates": [{"user_id": "u", "value": 1.0}]},
        )
        assert_status(early, 409)  # a draft takes no data
        assert_status(http.post(f"/experiments/{EXPERIMENT}/start"), 200)
        empty = http.get(f"/experiments/{EXPERIMENT}/results").json()
        assert empty["cuped"] is None and empty["null_reasons"]["cuped"] == "no_covariates"

        rng = random.Random(2026)
        raw: dict[str, dict[str, list[Any]]] = {"control": {}, "treatment": {}}
        events: list[dict[str, Any]] = []
        backfill: list[dict[str, Any]] = []
        for index in range(USERS):
            user = f"user-{index:04d}"
            status, answer = server.post_json(
                "/route", {"user_id": user, "experiment_id": EXPERIMENT, "expose": False}
            )
            assert status == 200, answer
            variant = answer["variant_name"]
            c = rng.randint(0, 80) / 4
            y = max(
                0.0,
                round(4 * (0.8 * c + rng.gauss(0, 3) + (1 if variant == "treatment" else 0))) / 4,
            )
            base = {"experiment_id": EXPERIMENT, "user_id": user, "variant_name": variant}
            way = index % 3
            if way == 0:  # the covariate with the exposure, then the outcome
                events.append({**base, "kind": "exposure", "covariate": c})
                raw[variant][user] = [y, c]
            elif way == 1:  # the outcome first, the covariate backfilled later
                events.append({**base, "kind": "exposure"})
                backfill.append({"user_id": user, "value": c})
                raw[variant][user] = [y, c]
            else:  # no covariate (one in ten of these), or backfilled
                events.append({**base, "kind": "exposure"})
                if index % 10 == 2:
                    raw[variant][user] = [y, None]
                else:
                    backfill.append({"user_id": user, "value": c})
                    raw[variant][user] = [y, c]
            if y:
                events.append({**base, "kind": "value", "value": y / 2, "event_id": f"{user}-a"})
                events.append({**base, "kind": "value", "value": y / 2, "event_id": f"{user}-b"})
                events.append({**base, "kind": "value", "value": y / 2, "event_id": f"{user}-b"})
        status, answer = server.post_json("/events", {"events": events})
        assert status == 200, answer
        assert answer["rejected"] == 0 and answer["duplicates"] > 0

        # the backfill in two calls, the second retrying half of the first
        half = len(backfill) // 2
        first = http.post(
            f"/experiments/{EXPERIMENT}/covariates", json={"covariates": backfill[:half]}
        )
        assert_status(first, 200)
        assert first.json()["set"] == half
        second = http.post(f"/experiments/{EXPERIMENT}/covariates", json={"covariates": backfill})
        assert (second.json()["set"], second.json()["unchanged"]) == (len(backfill) - half, half)

        # refused, and nothing changes: another value, a stranger, a covariate on a value
        known = backfill[0]
        variant = next(v for v in raw if known["user_id"] in raw[v])
        clash = http.post(f"/experiments/{EXPERIMENT}/covariates", json={"covariates": [
            {"user_id": known["user_id"], "value": known["value"] + 1},
            {"user_id": "stranger", "value": 3.0},
        ]})  # fmt: skip
        assert [r["status"] for r in clash.json()["results"]] == ["conflict", "not_exposed"]
        base = {"experiment_id": EXPERIMENT, "user_id": known["user_id"], "variant_name": variant}
        status, answer = server.post_json("/events", {"events": [
            {**base, "kind": "exposure", "covariate": known["value"] + 1},
            {**base, "kind": "value", "value": 1.0, "covariate": 2.0},
        ]})  # fmt: skip
        assert [r["status"] for r in answer["results"]] == ["covariate_mismatch", "rejected"]
        assert "events.1.covariate" in answer["results"][1]["error"]
        bad = http.post(
            f"/experiments/{EXPERIMENT}/covariates",
            json={"covariates": [{"user_id": "x", "value": "NaN"}]},
        )
        assert_status(bad, 422)
        assert_status(
            http.post(
                "/experiments/nope/covariates", json={"covariates": [{"user_id": "x", "value": 1}]}
            ),
            404,
        )

        results = http.get(f"/experiments/{EXPERIMENT}/results").json()

    cuped = results["cuped"]
    assert cuped is not None and "cuped" not in results["null_reasons"]
    covered = sum(1 for arm in raw.values() for _, c in arm.values() if c is not None)
    assert (cuped["users"], cuped["covariate_users"]) == (USERS, covered)
    arms = {v: _arm({u: (y, c) for u, (y, c) in users.items()}) for v, users in raw.items()}
    expected = cuped_effect(arms["control"], arms["treatment"], theta="pooled")
    [got] = cuped["comparisons"]
    assert got["theta_method"] == "pooled"  # a 50/50 split
    assert got["inference"] == "sequential"
    for name in ("difference", "difference_se", "relative", "variance_reduction", "theta_control"):
        assert got[name] == pytest.approx(getattr(expected, name), rel=REL), name
    assert expected.sequential is not None
    assert got["difference_interval"] == pytest.approx(
        [expected.sequential.ci_lower, expected.sequential.ci_upper], rel=REL
    )
    assert got["fixed"]["p_value"] == pytest.approx(expected.p_value, rel=REL)
    assert expected.variance_reduction is not None and expected.variance_reduction > 0.3
    # the unadjusted difference is the primary's own
    assert got["unadjusted_difference"] == pytest.approx(results["absolute_difference"], rel=REL)
    text = format_results(results)
    assert "CUPED (value adjusted by a pre-exposure covariate)" in text
    assert f"{covered:,} of {USERS:,} users have one" in text
