"""The A/A gate: seeded A/A traffic through a real server, read through the API every day.

Many experiments run at once on one uvicorn process, each splitting users 50/50 between
two identical variants. Every simulated day, a fresh cohort of users is routed with one
``POST /route`` each (no experiment named: the user is routed in every running experiment,
and the exposure is recorded), each routed user converts with the same probability in both
arms (seeded), the conversions go through ``POST /events``, and every experiment's results
are read through ``GET /experiments/{id}/results``. Routing, logging, counting, analysis and
the decision all run for real, end to end.

With sequential (always-valid) inference on, the share of experiments that ever declare a
winner over all daily looks must be at most α plus its Monte Carlo error; and the share
whose always-valid SRM check ever flags a mismatch at most its threshold plus its error.
The daily chi-square SRM check, valid at one look only, is reported beside it (printed,
not asserted). Sized to run within a minute; a larger run:
``AA_GATE_EXPERIMENTS=400 pytest -s tests/api/test_aa_gate.py``.
"""

from __future__ import annotations

import math
import os

import numpy as np

from tests.api.conftest import MakeServer

EXPERIMENTS = int(os.environ.get("AA_GATE_EXPERIMENTS", "40"))
DAYS = 14
USERS_PER_DAY = 120
RATE = 0.10
ALPHA = 0.05
SEED = 20261201


def _monte_carlo_bound(rate: float, runs: int) -> float:
    """``rate`` plus two standard errors of a proportion estimated from ``runs`` runs."""
    return rate + 2.0 * math.sqrt(rate * (1.0 - rate) / runs)


def test_aa_traffic_through_the_real_pipeline_keeps_its_error_rates(
    make_server: MakeServer,
) -> None:
    server = make_server(ABSCOPE_MONITOR="false")
    rng = np.random.default_rng(SEED)
    ids = [f"aa-{i:03d}" for i in range(EXPERIMENTS)]
    winner: set[str] = set()
    srm_sequential: set[str] = set()
    srm_daily: set[str] = set()
    with server.client() as api:
        for experiment_id in ids:
            body = {
                "id": experiment_id,
                "name": experiment_id,
                "control_model_id": "model-a",
                "treatment_model_id": "model-a-copy",
                "confidence_level": 1.0 - ALPHA,
                "sequential": True,
            }
            assert api.post("/experiments", json=body).status_code == 201
            assert api.post(f"/experiments/{experiment_id}/start").status_code == 200
        users_seen = 0
        for day in range(DAYS):
            events = []
            for k in range(USERS_PER_DAY):
                user = f"user-{day:02d}-{k:04d}"
                answer = api.post("/route", json={"user_id": user}).json()
                routed = {a["experiment_id"]: a for a in answer["assignments"]}
                assert set(routed) == set(ids), answer
                converts = rng.random(len(ids)) < RATE
                for experiment_id, converted in zip(ids, converts, strict=True):
                    assignment = routed[experiment_id]
                    assert assignment["exposure_recorded"], assignment
                    if converted:
                        events.append(
                            {
                                "experiment_id": experiment_id,
                                "user_id": user,
                                "variant_name": assignment["variant_name"],
                                "kind": "conversion",
                                "event_id": f"c-{experiment_id}-{user}",
                            }
                        )
            for start in range(0, len(events), 5_000):
                batch = {"events": events[start : start + 5_000]}
                answer = api.post("/events", json=batch).json()
                assert answer["counted"] == len(batch["events"]), answer
            users_seen += USERS_PER_DAY
            for experiment_id in ids:
                results = api.get(f"/experiments/{experiment_id}/results").json()
                assert results["control_samples"] + results["treatment_samples"] == users_seen
                assert results["inference"] == "sequential"
                if results["decision"]["verdict"] == "winner":
                    winner.add(experiment_id)
                if results["srm_sequential"]["mismatch"]:
                    srm_sequential.add(experiment_id)
                if results["srm"]["mismatch"]:
                    srm_daily.add(experiment_id)
        threshold = results["srm_sequential"]["threshold"]

    false_winners = len(winner) / EXPERIMENTS
    sequential_alarms = len(srm_sequential) / EXPERIMENTS
    daily_alarms = len(srm_daily) / EXPERIMENTS
    print(
        f"A/A gate: {EXPERIMENTS} experiments x {DAYS} daily looks, {USERS_PER_DAY} users a"
        f" day: winner declared {false_winners:.3f} (alpha {ALPHA}); always-valid SRM"
        f" alarms {sequential_alarms:.3f}, daily chi-square alarms {daily_alarms:.3f}"
        f" (threshold {threshold})"
    )
    assert false_winners <= _monte_carlo_bound(ALPHA, EXPERIMENTS), sorted(winner)
    assert sequential_alarms <= _monte_carlo_bound(threshold, EXPERIMENTS), sorted(srm_sequential)
