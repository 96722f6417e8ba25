"""``GET /metrics`` in one process: what each request, event and store call adds, the
scrape-time gauges, the read key (either header), metrics turned off, and request ids.

Counts are read back through prometheus-client's parser (:mod:`tests.fixtures.scrape`).
Several workers: ``tests/api/test_metrics_workers.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from abscope.api.request_id import MAX_LENGTH
from tests.api.helpers import MakeClient, TestClient, assert_status, route, started
from tests.fixtures.guardrails import SCENARIOS, guarded_body, latency_traffic
from tests.fixtures.redis_servers import RedisServer
from tests.fixtures.scrape import Scrape

READ = "metrics-read-key-5c1e9a"
INGEST = "metrics-ingest-key-77b0d2"
ADMIN = "metrics-admin-key-a91f04"


def _scrape(client: TestClient, **headers: str) -> Scrape:
    response = client.get("/metrics", headers=headers)
    assert_status(response, 200)
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


def _variant(client: TestClient, experiment_id: str, user: str) -> str:
    variant: str = route(client, user, experiment_id)["variant_name"]
    return variant


def _expose(client: TestClient, experiment_id: str, user: str) -> None:
    body = {"user_id": user, "experiment_id": experiment_id}
    assert_status(client.post("/route", json=body), 200)


def test_requests_are_counted_by_route_template_method_and_status(client: TestClient) -> None:
    experiment = started(client)["id"]
    for user in ("a", "b", "c"):  # the fast path answers these
        _expose(client, experiment, user)
    assert_status(client.post("/route", json={"user": "no user_id"}), 422)  # FastAPI's
    assert_status(client.get(f"/experiments/{experiment}"), 200)
    assert_status(client.get("/experiments/no-such-id"), 404)
    assert_status(client.get("/no/such/path/42"), 404)
    assert_status(client.get("/no/such/path/43"), 404)
    assert_status(client.request("BREW", "/experiments"), 405)
    assert_status(client.get("/static/no-such-file.js"), 404)
    scrape = _scrape(client)
    requests = "abscope_http_requests_total"
    assert scrape.value(requests, route="/route", method="POST", status="200") == 3
    assert scrape.value(requests, route="/route", method="POST", status="422") == 1
    template = "/experiments/{experiment_id}"
    assert scrape.value(requests, route=template, method="GET", status="200") == 1
    assert scrape.value(requests, route=template, method="GET", status="404") == 1
    # Unknown paths are one label value; unknown methods another: never the raw path.
    assert scrape.value(requests, route="unmatched", method="GET", status="404") == 2
    assert scrape.value(requests, route="/experiments", method="other", status="405") == 1
    assert scrape.value(requests, route="/static/{path}", method="GET", status="404") == 1
    routes = {labels["route"] for labels in scrape.labelled(requests)}
    assert not any("no-such" in r or "/42" in r or experiment in r for r in routes), routes
    duration = "abscope_http_request_duration_seconds_count"
    assert scrape.value(duration, route="/route", method="POST", status="200") == 3
    assert scrape.value("abscope_http_request_duration_seconds_sum", route="/route",
                        method="POST", status="200") > 0  # fmt: skip
    # The /metrics scrape itself is counted once it has answered: the next scrape shows it.
    again = _scrape(client)
    assert again.value(requests, route="/metrics", method="GET", status="200") == 1


def test_events_are_counted_by_source_kind_and_outcome(client: TestClient) -> None:
    experiment = started(client)["id"]
    users = [f"user-{i}" for i in range(4)]
    variants = {user: _variant(client, experiment, user) for user in users}  # expose: false
    for user in users[:3]:  # three exposures recorded by /route
        _expose(client, experiment, user)
    log = {"experiment_id": experiment, "user_id": users[0], "variant_name": variants[users[0]]}
    conversion = {**log, "converted": True, "event_id": "conv-1"}
    assert_status(client.post("/log", json=conversion), 200)
    assert client.post("/log", json=conversion).json()["status"] == "duplicate"
    other = "treatment" if variants[users[0]] == "control" else "control"
    assert_status(client.post("/log", json={**log, "variant_name": other, "value": 2.0}), 409)
    assert_status(client.post("/log", json={**log, "experiment_id": "nope"}), 404)
    batch = [
        {"experiment_id": experiment, "user_id": users[3], "variant_name": variants[users[3]],
         "kind": "exposure"},
        {"experiment_id": experiment, "user_id": users[3], "variant_name": variants[users[3]],
         "kind": "value", "value": 1.5, "event_id": "v-1"},
        {"experiment_id": experiment, "user_id": users[3], "variant_name": variants[users[3]],
         "kind": "value", "value": 1.5, "event_id": "v-1"},
        {"experiment_id": "nope", "user_id": users[3], "variant_name": "control",
         "kind": "conversion"},
    ]  # fmt: skip
    answer = client.post("/events", json={"events": batch}).json()
    assert (answer["counted"], answer["duplicates"], answer["rejected"]) == (2, 1, 1)
    scrape = _scrape(client)
    events = "abscope_events_total"
    expected = {
        ("route", "exposure", "counted"): 3,
        ("log", "conversion", "counted"): 1,
        ("log", "conversion", "duplicate"): 1,
        ("log", "exposure", "rejected"): 2,  # the 409 (with its value) and the 404
        ("log", "value", "rejected"): 1,
        ("events", "exposure", "counted"): 1,
        ("events", "value", "counted"): 1,
        ("events", "value", "duplicate"): 1,
        ("events", "conversion", "rejected"): 1,
    }
    seen = {
        (labels["source"], labels["kind"], labels["outcome"]): scrape.value(events, **labels)
        for labels in scrape.labelled(events)
    }
    # Every source, kind and outcome is there from the start (0 until counted).
    assert len(seen) == 3 * 3 * 4
    assert {key: count for key, count in seen.items() if count} == expected


def test_the_scrape_reads_the_running_experiments_counts_and_the_snapshots_age(
    make_client: MakeClient,
) -> None:
    client = make_client(config_refresh_seconds=30.0)
    running = started(client)["id"]
    draft = client.post("/experiments", json={"name": "draft", "control_model_id": "a",
                                              "treatment_model_id": "b"}).json()["id"]  # fmt: skip
    for i in range(6):
        user = f"u{i}"
        variant = _variant(client, running, user)
        converted = i % 2 == 0
        body = {"experiment_id": running, "user_id": user, "variant_name": variant,
                "converted": converted}  # fmt: skip
        assert_status(client.post("/log", json=body), 200)
    scrape = _scrape(client)
    results = client.get(f"/experiments/{running}/results").json()
    assert scrape.value("abscope_experiments_running") == 1
    by_variant = {v["name"]: v for v in results["variants"]}
    for name, analysed in by_variant.items():
        labels = {"experiment": running, "variant": name}
        assert scrape.value("abscope_experiment_users", **labels) == analysed["n"]
        assert scrape.value("abscope_experiment_conversions", **labels) == analysed["conversions"]
    assert scrape.total("abscope_experiment_users", experiment=running) == 6
    assert scrape.total("abscope_experiment_conversions", experiment=running) == 3
    shown = sorted(labels["variant"] for labels in scrape.labelled("abscope_experiment_users"))
    assert shown == sorted(by_variant) == ["control", "treatment"]
    assert not any(labels["experiment"] == draft for labels in scrape.labelled(
        "abscope_experiment_users"))  # fmt: skip
    age = scrape.value("abscope_routing_snapshot_age_seconds")
    assert 0.0 <= age < 30.0  # refreshed at most config_refresh_seconds ago


def test_the_per_experiment_gauges_are_bounded(make_client: MakeClient) -> None:
    client = make_client(metrics_max_experiments=2)
    ids = [started(client)["id"] for _ in range(3)]
    scrape = _scrape(client)
    assert scrape.value("abscope_experiments_running") == 3
    shown = {labels["experiment"] for labels in scrape.labelled("abscope_experiment_users")}
    assert shown == set(ids[:2])  # the oldest first


def test_store_calls_are_timed_and_their_failures_counted(
    make_client: MakeClient, tmp_path: Path
) -> None:
    with RedisServer(tmp_path / "redis") as redis_server:  # ours alone: it is stopped below
        client = make_client(redis_url=redis_server.url, config_refresh_seconds=60.0)
        experiment = started(client)["id"]
        variant = _variant(client, experiment, "u1")
        body = {"experiment_id": experiment, "user_id": "u1", "variant_name": variant}
        assert_status(client.post("/log", json=body), 200)
        before = _scrape(client)
        redis_server.stop()
        assert_status(client.post("/log", json={**body, "converted": True}), 503)
        failed = _scrape(client)  # answers: the gauges that need the store are left out
        after = _scrape(client)  # counters are collected before the gauges: this shows both
    assert before.value("abscope_store_operation_duration_seconds_count",
                        operation="create_experiment") == 1  # fmt: skip
    assert before.value("abscope_store_operation_duration_seconds_count",
                        operation="record_events_async") == 1  # fmt: skip
    assert before.value("abscope_store_errors_total", operation="record_events_async") == 0
    assert after.value("abscope_store_errors_total", operation="record_events_async") == 1
    assert after.value("abscope_store_errors_total", operation="list_experiments") == 1
    assert after.value("abscope_events_total", source="log", kind="conversion",
                       outcome="unavailable") == 1  # fmt: skip
    assert after.value("abscope_http_requests_total", route="/log", method="POST",
                       status="503") == 1  # fmt: skip
    assert before.value("abscope_experiments_running") == 1
    assert "abscope_experiments_running" not in failed.families


def test_metrics_need_the_read_key_in_x_api_key_or_a_bearer_header(
    make_client: MakeClient,
) -> None:
    client = make_client(read_api_key=READ, ingest_api_key=INGEST, admin_api_key=ADMIN)
    assert_status(client.get("/metrics"), 401)
    assert_status(client.get("/metrics", headers={"X-API-Key": INGEST}), 403)
    assert_status(client.get("/metrics", headers={"Authorization": f"Bearer {INGEST}"}), 403)
    assert_status(client.get("/metrics", headers={"Authorization": f"Bearer {READ}x"}), 401)
    assert_status(client.get("/metrics", headers={"Authorization": READ}), 401)  # no scheme
    for headers in (
        {"X-API-Key": READ},
        {"X-API-Key": ADMIN},
        {"Authorization": f"Bearer {READ}"},
        {"Authorization": f"bearer {ADMIN}"},
    ):
        assert_status(client.get("/metrics", headers=headers), 200)
    # X-API-Key is the one checked when both are given.
    both = {"X-API-Key": INGEST, "Authorization": f"Bearer {READ}"}
    assert_status(client.get("/metrics", headers=both), 403)
    scrape = _scrape(client, Authorization=f"Bearer {READ}")
    assert scrape.value("abscope_http_requests_total", route="/metrics", method="GET",
                        status="401") == 3  # fmt: skip


def test_every_metric_is_named_for_abscope_with_its_unit_and_a_help_string(
    client: TestClient,
) -> None:
    started(client)
    scrape = _scrape(client)
    assert set(scrape.families) >= {
        "abscope_http_requests",
        "abscope_http_request_duration_seconds",
        "abscope_events",
        "abscope_store_operation_duration_seconds",
        "abscope_store_errors",
        "abscope_routing_snapshot_age_seconds",
        "abscope_experiments_running",
        "abscope_experiment_users",
        "abscope_experiment_conversions",
        "abscope_metric_estimate",
        "abscope_guardrail_effect",
        "abscope_gate_verdict",
    }
    for name, documentation in scrape.families.items():
        assert name.startswith("abscope_"), name
        assert len(documentation) > 20, name
    assert "_created" not in scrape.text


def test_metrics_off_serves_and_counts_nothing(make_client: MakeClient) -> None:
    client = make_client(metrics=False)
    experiment = started(client)["id"]
    assert_status(client.post("/route", json={"user_id": "u", "experiment_id": experiment}), 200)
    assert_status(client.get("/metrics"), 404)
    assert client.app.state.metrics is None  # type: ignore[attr-defined]
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("trace-4f2a.b_c:1", True),
        ("x" * MAX_LENGTH, True),
        ("x" * (MAX_LENGTH + 1), False),
        ("tab\there", False),
        ("é-not-ascii".encode(), False),
        (None, False),
    ],
)
def test_the_request_id_is_the_clients_when_sane_else_a_new_one(
    make_client: MakeClient, given: str | bytes | None, kept: bool
) -> None:
    client = make_client(read_api_key=READ)
    headers: dict[str, str | bytes] = {} if given is None else {"X-Request-ID": given}
    for path, status in (("/health", 200), ("/experiments", 401)):  # the key's 401 too
        response = client.get(path, headers=headers)
        assert_status(response, status)
        echoed = response.headers["x-request-id"]
        if kept:
            assert echoed == given
        else:
            assert len(echoed) == 32 and int(echoed, 16) >= 0, echoed
    fresh = {client.get("/health").headers["x-request-id"] for _ in range(3)}
    assert len(fresh) == 3


def test_the_scrape_exports_each_metrics_estimates_and_the_gate_verdicts(
    make_client: MakeClient,
) -> None:
    client = make_client(metrics_max_experiments=2)
    verdicts = {}
    for name in ("fail", "pass", "inconclusive"):  # the third is beyond the bound
        assert_status(client.post("/experiments", json=guarded_body(f"gate-{name}")), 201)
        assert_status(client.post(f"/experiments/gate-{name}/start"), 200)
        scenario = SCENARIOS[name]
        store = client.app.state.service.store  # type: ignore[attr-defined]
        store.record_events(
            latency_traffic(f"gate-{name}", scenario.users, scenario.treatment_latency,
                            datetime.now(UTC))
        )  # fmt: skip
        verdicts[name] = client.get(f"/experiments/gate-{name}/gate?report=true").json()
    scrape = _scrape(client)
    for name in ("fail", "pass"):
        experiment = f"gate-{name}"
        results = client.get(f"/experiments/{experiment}/results").json()
        for metric in results["metrics"]:
            for variant, figures in metric["variants"].items():
                labels = {"experiment": experiment, "metric": metric["name"], "variant": variant}
                assert scrape.value("abscope_metric_estimate", **labels) == figures["value"]
        (gate,) = verdicts[name]["metrics"]
        effect = {"experiment": experiment, "metric": "latency_ms", "variant": "treatment"}
        assert scrape.value("abscope_guardrail_effect", **effect) == gate["estimate"]
        states = {
            verdict: scrape.value("abscope_gate_verdict", experiment=experiment, verdict=verdict)
            for verdict in ("pass", "fail", "inconclusive")
        }
        assert states == {v: float(v == verdicts[name]["verdict"]) for v in states}
        assert verdicts[name]["verdict"] == name
    shown = {labels["experiment"] for labels in scrape.labelled("abscope_gate_verdict")}
    assert shown == {"gate-fail", "gate-pass"}  # metrics_max_experiments, the oldest first
    assert len(scrape.labelled("abscope_gate_verdict")) == 2 * 3
