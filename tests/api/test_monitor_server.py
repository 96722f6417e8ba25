"""The guardrail monitor in a real uvicorn process: a degraded treatment is paused by itself,
routing then serves the control, the audit says why, and a signed webhook notice arrives at
a real HTTP receiver; with ``abscope serve --workers 2`` on one store, one worker acts.

The latency traffic is written to the server's SQLite file by the test's own store (another
process on the same file, as a second worker would be): ingest of named metrics over HTTP is
tested with the ingest routes, not here.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from abscope.models import Experiment
from abscope.storage.sqlite import SQLiteStore
from tests.fixtures.guardrail_data import LATENCY, seed_latency
from tests.fixtures.uvicorn_server import ABSCOPE_APP, AbscopeServer, UvicornServer
from tests.fixtures.webhook_receiver import Receiver
from tests.unit.test_webhooks import SECRET, _check

GUARDRAIL = {
    "name": LATENCY,
    "kind": "ratio",
    "role": "guardrail",
    "higher_is_better": False,
    "margin": 0.05,
    "action": "pause",
}


def _env(db: Path, receiver: Receiver, interval: float) -> dict[str, str]:
    return {
        "ABSCOPE_DB_PATH": str(db),
        "ABSCOPE_MONITOR_INTERVAL_SECONDS": str(interval),
        "ABSCOPE_WEBHOOK_URL": receiver.url,
        "ABSCOPE_WEBHOOK_SECRET": SECRET,
        "ABSCOPE_METRICS": "false",
    }


def _start(client: httpx.Client, experiment_id: str) -> Experiment:
    created = client.post(
        "/experiments",
        json={
            "id": experiment_id,
            "name": "Ranker v2",
            "control_model_id": "ranker-v1",
            "treatment_model_id": "ranker-v2",
            "metrics": [GUARDRAIL],
        },
    )
    assert created.status_code == 201, created.text
    started = client.post(f"/experiments/{experiment_id}/start")
    assert started.status_code == 200, started.text
    return Experiment.model_validate(started.json())


def _wait_for_status(client: httpx.Client, experiment_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/experiments/{experiment_id}").json()
        if body["status"] == status:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{experiment_id} never became {status}: {body['status']}")


def _degrade(db: Path, experiment: Experiment) -> None:
    store = SQLiteStore(db)
    try:
        now = datetime.now(UTC)
        seed_latency(store, experiment, "control", 300, at=now)
        seed_latency(store, experiment, "treatment", 300, at=now, scale=1.3)
    finally:
        store.close()


def test_a_degraded_treatment_is_paused_and_the_webhook_is_signed(tmp_path: Path) -> None:
    db = tmp_path / "abscope.db"
    with Receiver() as receiver:
        server = UvicornServer(
            ABSCOPE_APP,
            tmp_path / "uvicorn.log",
            env=_env(db, receiver, 0.2),
            health_path="/health",
        )
        with server, server.client() as client:
            healthy = _start(client, "ranker-healthy")
            experiment = _start(client, "ranker-latency")
            seed_latency_store = SQLiteStore(db)
            now = datetime.now(UTC)
            for variant in ("control", "treatment"):  # the same latency in both arms
                seed_latency(seed_latency_store, healthy, variant, 300, at=now, seed=3)
            seed_latency_store.close()
            _degrade(db, experiment)

            paused = _wait_for_status(client, experiment.id, "paused")
            (notice,) = receiver.wait_for(1)
            routed = client.post(
                "/route", json={"user_id": "new-user", "experiment_id": experiment.id}
            )
            time.sleep(1.0)  # five more looks: nothing more happens
            healthy_now = client.get(f"/experiments/{healthy.id}").json()
            final = client.get(f"/experiments/{experiment.id}").json()
        assert "Application shutdown complete" in server.log_tail()  # the loop stopped

    assert routed.status_code == 200
    assert (routed.json()["variant_name"], routed.json()["reason"]) == ("control", "paused")
    breach, pause = paused["audit"][-2:]
    assert breach["action"] == "guardrail_breach" and pause["action"] == "pause"
    changes = breach["changes"]
    assert (changes["metric"], changes["variant"], changes["action"]) == (
        LATENCY,
        "treatment",
        "pause",
    )
    assert changes["margin"] == 0.05 and changes["p_value"] < 0.05
    low, high = changes["interval"]
    assert 0.05 < low < changes["estimate"] < high  # at least 5% worse: beyond the margin
    assert pause["changes"] == {"status": {"from": "running", "to": "paused"}, "by": "monitor"}
    assert final["audit"] == paused["audit"]
    assert healthy_now["status"] == "running"
    assert "guardrail_breach" not in [e["action"] for e in healthy_now["audit"]]

    assert len(receiver.received) == 1
    headers = notice.headers
    assert _check(
        SECRET, headers["X-Abscope-Timestamp"], notice.body, headers["X-Abscope-Signature"]
    )
    body = notice.json()
    assert body["type"] == "guardrail_breach" and body["status"] == "paused"
    assert (body["experiment_id"], body["metric"], body["variant"]) == (
        experiment.id,
        LATENCY,
        "treatment",
    )
    for key in ("estimate", "interval", "margin", "action", "p_value"):
        assert body[key] == changes[key]


def test_with_two_workers_on_one_store_one_worker_acts(tmp_path: Path) -> None:
    db = tmp_path / "abscope.db"
    ids = [f"ranker-pair-{i}" for i in range(3)]
    with Receiver() as receiver:
        server = AbscopeServer(
            tmp_path / "serve.log",
            env=_env(db, receiver, 0.5),
            workers=2,
            health_path="/health",
        )
        with server, server.client() as client:
            experiments = [_start(client, i) for i in ids]
            for experiment in experiments:  # a look or more apart
                _degrade(db, experiment)
                time.sleep(0.6)
            audits = [_wait_for_status(client, i, "paused")["audit"] for i in ids]
            notices = receiver.wait_for(len(ids))
            time.sleep(1.5)  # three more looks by each worker
            later = [client.get(f"/experiments/{i}").json()["audit"] for i in ids]
        assert server.returncode == 0, server.log_tail()

    assert later == audits
    breaches = [e for audit in audits for e in audit if e["action"] == "guardrail_breach"]
    assert sorted(e["changes"]["metric"] for e in breaches) == [LATENCY] * len(ids)
    assert len({e["changes"]["holder"] for e in breaches}) == 1  # the lease holder alone
    assert sorted(n.json()["experiment_id"] for n in notices) == ids
    assert len(receiver.received) == len(ids)
