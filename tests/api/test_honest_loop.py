"""The loop a user runs, against a real uvicorn: route, log what happened, read the results.

* ``/route`` counts every routed user exactly once, so logging only the conversions gives
  the right denominators (issue: 100% conversion when only converters existed);
* a paused, completed or stopped experiment still answers ``/route`` with a model to serve;
* a killed Redis leaves routing up (from the last snapshot, fast), makes writes 503 with
  ``Retry-After`` and no address, and the service recovers when Redis is back.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import MakeServer, assert_status, backend_env
from tests.fixtures.redis_servers import RedisServer
from tests.fixtures.uvicorn_server import UvicornServer

USERS = 1200
THREADS = 8


def _create(client: httpx.Client, experiment_id: str, **extra: Any) -> None:
    body = {
        "id": experiment_id,
        "name": experiment_id,
        "control_model_id": "ranker-v1",
        "treatment_model_id": "ranker-v2",
    } | extra
    assert_status(client.post("/experiments", json=body), 201)
    assert_status(client.post(f"/experiments/{experiment_id}/start"), 200)


def _route_all(server: UvicornServer, experiment_id: str, users: list[str]) -> dict[str, str]:
    def one(user: str) -> tuple[str, dict[str, Any]]:
        status, answer = server.post_json(
            "/route", {"user_id": user, "experiment_id": experiment_id}
        )
        assert status == 200, answer
        return user, answer

    with ThreadPoolExecutor(THREADS) as pool:
        answers = dict(pool.map(one, users))
    for answer in answers.values():
        assert answer["exposure_status"] == "recorded" and answer["exposure_recorded"], answer
        assert answer["in_experiment"] and answer["assignments"][0]["exposure_recorded"]
    return {user: answer["variant_name"] for user, answer in answers.items()}


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_routed_users_are_the_samples_and_converters_the_conversions(
    backend: str, make_server: MakeServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = backend_env(backend, tmp_path, request)
    server = make_server(workers=2, **env)
    experiment_id = f"loop-{backend}"
    with server.client() as client:
        _create(client, experiment_id)
    users = [f"user-{i}" for i in range(USERS)]
    variant_of = _route_all(server, experiment_id, users)
    # Routing again (on either worker) counts nobody twice; a decision-only route counts
    # nobody at all.
    again = _route_all(server, experiment_id, users[:300])
    assert again == {u: variant_of[u] for u in users[:300]}
    status, peek = server.post_json(
        "/route", {"user_id": "only-peeking", "experiment_id": experiment_id, "expose": False}
    )
    assert status == 200 and peek["exposure_status"] == "not_requested", peek
    # Only the converters call /log, as the README's example does.
    converters = [u for i, u in enumerate(users) if i % 7 == 0]
    with server.client() as client:
        for user in converters:
            body = {"experiment_id": experiment_id, "user_id": user,
                    "variant_name": variant_of[user], "converted": True}  # fmt: skip
            logged = client.post("/log", json=body)
            assert_status(logged, 200)
            assert logged.json() == {"status": "counted", "new_exposure": False,
                                     "new_conversion": True}  # fmt: skip
        results = client.get(f"/experiments/{experiment_id}/results").json()
    routed = Counter(variant_of.values())
    converted = Counter(variant_of[u] for u in converters)
    assert results["control_samples"] == routed["control"]
    assert results["treatment_samples"] == routed["treatment"]
    assert results["control_samples"] + results["treatment_samples"] == USERS
    by_name = {v["name"]: v for v in results["variants"]}
    assert {name: by_name[name]["conversions"] for name in routed} == dict(converted)
    assert results["control_conversion_rate"] == pytest.approx(
        converted["control"] / routed["control"]
    )


def test_a_paused_completed_or_stopped_experiment_still_serves_a_model(
    make_server: MakeServer, tmp_path: Path
) -> None:
    server = make_server(ABSCOPE_DB_PATH=str(tmp_path / "abscope.db"))
    users = [f"user-{i}" for i in range(200)]

    def answers(experiment_id: str) -> list[dict[str, Any]]:
        with server.client() as client:
            replies = [
                client.post("/route", json={"user_id": u, "experiment_id": experiment_id})
                for u in users
            ]
        for reply in replies:
            assert_status(reply, 200)
        return [reply.json() for reply in replies]

    def samples(client: httpx.Client, experiment_id: str) -> int:
        results = client.get(f"/experiments/{experiment_id}/results").json()
        return int(results["control_samples"] + results["treatment_samples"])

    with server.client() as client:
        for name in ("paused", "won", "ended", "stopped"):
            _create(client, name)
    served = answers("paused")
    assert {a["variant_name"] for a in served} == {"control", "treatment"}
    with server.client() as client:
        assert samples(client, "paused") == len(users)
        assert_status(client.post("/experiments/paused/pause"), 200)
        assert_status(client.post("/experiments/won/complete", json={"winner": "treatment"}), 200)
        assert_status(client.post("/experiments/ended/complete"), 200)
        assert_status(client.post("/experiments/stopped/stop"), 200)
    expected = {
        "paused": ("control", "ranker-v1", "paused"),
        "won": ("treatment", "ranker-v2", "completed"),
        "ended": ("control", "ranker-v1", "completed"),
        "stopped": ("control", "ranker-v1", "stopped"),
    }
    for experiment_id, (variant, model, reason) in expected.items():
        for answer in answers(experiment_id):
            assert (answer["variant_name"], answer["model_id"]) == (variant, model), answer
            assert (answer["in_experiment"], answer["reason"]) == (False, reason), answer
            assert answer["exposure_status"] == "not_in_experiment"
    with server.client() as client:
        # Nobody was counted while the experiment was not running.
        assert samples(client, "paused") == len(users)
        assert samples(client, "won") == 0
        assert_status(client.post("/route", json={"user_id": "u", "experiment_id": "nope"}), 404)
        assert_status(client.post("/experiments/paused/resume"), 200)
    assert all(a["in_experiment"] for a in answers("paused"))


def test_a_killed_redis_leaves_routing_up_and_the_service_recovers(
    make_server: MakeServer, tmp_path: Path
) -> None:
    redis_server = RedisServer(tmp_path / "redis", persistent=True)
    with redis_server:
        server = make_server(ABSCOPE_REDIS_URL=redis_server.url)
        with server.client() as client:
            _create(client, "hashed")
            _create(client, "sticky", sticky=True)
            assert_status(
                client.post("/route", json={"user_id": "warm", "experiment_id": "sticky"}), 200
            )
            before = {
                u: client.post("/route", json={"user_id": u, "experiment_id": "hashed"}).json()
                for u in ("a", "b", "c")
            }
        redis_server.kill()
        host, port = redis_server.url.removeprefix("redis://").split("/")[0].split(":")
        latencies: list[float] = []
        with server.client() as client:
            for i in range(400):
                experiment_id = "hashed" if i % 2 else "sticky"
                began = time.perf_counter()
                reply = client.post(
                    "/route", json={"user_id": f"down-{i}", "experiment_id": experiment_id}
                )
                latencies.append(time.perf_counter() - began)
                assert_status(reply, 200)
                answer = reply.json()
                assert answer["in_experiment"] and answer["model_id"] in ("ranker-v1", "ranker-v2")
                assert answer["exposure_status"] == "store_unavailable", answer
            for user, earlier in before.items():
                again = client.post("/route", json={"user_id": user, "experiment_id": "hashed"})
                assert again.json()["variant_name"] == earlier["variant_name"]
            variant = before["a"]["variant_name"]
            log = {"experiment_id": "hashed", "user_id": "a", "variant_name": variant}
            writes = {
                "/log": log | {"converted": True},
                "/events": {"events": [log | {"kind": "conversion"}]},
                "/experiments": {"name": "x", "control_model_id": "a", "treatment_model_id": "b"},
            }
            for path, body in writes.items():
                failed = client.post(path, json=body)
                assert_status(failed, 503)
                assert failed.headers["retry-after"] == "1", path
                assert host not in failed.text and port not in failed.text, failed.text
        p99 = statistics.quantiles(latencies, n=100)[98]
        assert p99 < 0.050, f"p99 of /route while Redis is down: {p99 * 1e3:.1f} ms"

        redis_server.restart()
        deadline = time.monotonic() + 10
        with server.client() as client:
            while True:
                reply = client.post("/route", json={"user_id": "after", "experiment_id": "hashed"})
                if reply.json().get("exposure_status") == "recorded" or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert reply.json()["exposure_status"] == "recorded", reply.text
            assert_status(client.post("/log", json=writes["/log"]), 200)
            results = client.get("/experiments/hashed/results").json()
        # The three users before the outage and the one after; none of the outage's.
        assert results["control_samples"] + results["treatment_samples"] == 4
