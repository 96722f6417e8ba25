"""The seed's usage example, end to end against a real uvicorn process with two workers, on
SQLite and on our own redis-server; data surviving a restart; and a store that goes away.

Traffic is sent from four threads, so both worker processes serve it and share one store.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pytest

from tests.api.helpers import MakeServer, assert_status, backend_env, route, seed_body
from tests.fixtures.redis_servers import RedisServer
from tests.fixtures.uvicorn_server import UvicornServer

USERS = 2_000
THREADS = 4
# Every 10th control user and every 5th treatment user converts (by the user's index).
CONVERSION_EVERY = {"control": 10, "treatment": 5}
MODELS = {"control": "ranker-v1", "treatment": "ranker-v2"}


def _user(index: int) -> str:
    return f"user-{index:05d}"


def _converts(variant: str, index: int) -> bool:
    return index % CONVERSION_EVERY[variant] == 0


def _drive(server: UvicornServer, experiment_id: str) -> dict[str, list[int]]:
    """Route and log ``USERS`` users as the seed does; the user indices per variant."""

    def work(offset: int) -> list[tuple[int, str]]:
        seen = []
        for index in range(offset, USERS, THREADS):
            status, answer = server.post_json(
                "/route", {"user_id": _user(index), "experiment_id": experiment_id}
            )
            assert status == 200, answer
            variant = answer["variant_name"]
            assert answer["experiment_id"] == experiment_id
            assert answer["model_id"] == MODELS[variant]
            # /route counted the user's exposure; /log adds what happened next.
            assert (answer["exposure_recorded"], answer["exposure_status"]) == (True, "recorded")
            body: dict[str, Any] = {
                "experiment_id": experiment_id,
                "user_id": _user(index),
                "variant_name": variant,
                "converted": _converts(variant, index),
            }
            if body["converted"]:
                body["value"] = 12.5
            status, logged = server.post_json("/log", body)
            assert status == 200, logged
            assert logged == {
                "status": "counted",
                "new_exposure": False,
                "new_conversion": body["converted"],
            }
            seen.append((index, variant))
        return seen

    by_variant: dict[str, list[int]] = {"control": [], "treatment": []}
    with ThreadPoolExecutor(THREADS) as pool:
        for seen in pool.map(work, range(THREADS)):
            for index, variant in seen:
                by_variant[variant].append(index)
    return by_variant


def _pooled_z_p_value(x1: int, n1: int, x2: int, n2: int) -> float:
    # Two-sided pooled two-proportion z-test, as statsmodels' proportions_ztest computes it.
    pooled = (x1 + x2) / (n1 + n2)
    z = (x2 / n2 - x1 / n1) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return math.erfc(abs(z) / math.sqrt(2))


def _wald_interval(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    # Wald interval of p2 - p1, as statsmodels' confint_proportions_2indep(method="wald").
    p1, p2 = x1 / n1, x2 / n2
    half = NormalDist().inv_cdf(0.975) * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return p2 - p1 - half, p2 - p1 + half


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_the_seed_usage_example_end_to_end(
    backend: str, make_server: MakeServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = backend_env(backend, tmp_path, request)
    server = make_server(workers=2, **env)

    with server.client() as client:
        created = client.post("/experiments", json=seed_body())
        assert_status(created, 201)
        experiment = created.json()
        experiment_id = experiment["id"]
        assert experiment["status"] == "draft"
        assert experiment["traffic_percentage"] == 100
        assert [(v["name"], v["model_id"], v["weight"], v["is_control"]) for v in
                experiment["variants"]] == [
            ("control", "ranker-v1", 0.5, True),
            ("treatment", "ranker-v2", 0.5, False),
        ]  # fmt: skip
        start = client.post(f"/experiments/{experiment_id}/start")
        assert_status(start, 200)
        assert start.json()["status"] == "running"

    by_variant = _drive(server, experiment_id)

    n_c, n_t = len(by_variant["control"]), len(by_variant["treatment"])
    x_c = sum(_converts("control", i) for i in by_variant["control"])
    x_t = sum(_converts("treatment", i) for i in by_variant["treatment"])
    assert n_c + n_t == USERS
    assert 850 < n_c < 1150, f"a 50/50 split of {USERS} users gave {n_c} controls"

    with server.client() as client:
        answers = [client.get(f"/experiments/{experiment_id}/results") for _ in range(3)]
    for answer in answers:
        assert_status(answer, 200)
    results = answers[0].json()
    for other in answers[1:]:  # whichever worker answers, it reads the same store
        assert other.json()["variants"] == results["variants"]

    assert results["control_samples"] == n_c
    assert results["treatment_samples"] == n_t
    assert results["control_conversion_rate"] == pytest.approx(x_c / n_c, rel=1e-12)
    assert results["treatment_conversion_rate"] == pytest.approx(x_t / n_t, rel=1e-12)
    assert results["relative_lift"] == pytest.approx((x_t / n_t) / (x_c / n_c) - 1, rel=1e-9)
    # The seed's p_value, is_significant and confidence_interval are the always-valid
    # (sequential) ones, as the experiment is sequential by default; the fixed-horizon test
    # is in the comparison.
    comparison = results["comparisons"][0]
    assert results["inference"] == "sequential"
    assert results["p_value"] == comparison["sequential_adjusted_p_value"]
    assert results["confidence_interval"] == [
        comparison["sequential"]["ci_lower"],
        comparison["sequential"]["ci_upper"],
    ]
    assert comparison["p_value"] == pytest.approx(_pooled_z_p_value(x_c, n_c, x_t, n_t), rel=1e-6)
    wald = _wald_interval(x_c, n_c, x_t, n_t)
    assert [comparison["absolute"]["ci"]["lower"], comparison["absolute"]["ci"]["upper"]] == (
        pytest.approx(list(wald), rel=1e-9)
    )
    low, high = results["confidence_interval"]
    assert low < wald[0] < x_t / n_t - x_c / n_c < wald[1] < high  # a sequence is wider
    # About 10% against 20% on 1,000 users each: z > 5, significant even sequentially.
    assert results["p_value"] < 0.05
    assert results["is_significant"] is True
    assert {v["name"]: (v["n"], v["conversions"]) for v in results["variants"]} == {
        "control": (n_c, x_c),
        "treatment": (n_t, x_t),
    }
    assert [(c["variant"], c["control"]) for c in results["comparisons"]] == [
        ("treatment", "control")
    ]
    assert results["srm"]["observed"] == [n_c, n_t]
    assert results["srm"]["mismatch"] is False
    decision = results["decision"]
    assert {"message", "remaining_days", "daily_users"} <= decision.keys()
    assert (decision["verdict"], decision["winner"], decision["basis"]) == (
        "winner",
        "treatment",
        "sequential",
    )
    assert decision["remaining_samples"] == 0

    with server.client() as client:
        stopped = client.post(f"/experiments/{experiment_id}/stop")
        assert_status(stopped, 200)
        assert stopped.json()["status"] == "stopped"
        # Every worker refuses events within config_refresh_seconds (1 s) of the stop; the
        # worker that stopped it does at once. A late exposure of a known user adds nothing.
        user = _user(by_variant["control"][0])
        late = {"experiment_id": experiment_id, "user_id": user, "variant_name": "control"}
        began = time.monotonic()

        def refused_by_every_worker() -> bool:
            return all(client.post("/log", json=late).status_code == 409 for _ in range(8))

        _eventually(refused_by_every_worker, timeout=5.0)
        assert time.monotonic() - began < 1.0 + 2.0  # the refresh interval, and slack
        after = client.get(f"/experiments/{experiment_id}/results")
        assert_status(after, 200)
        assert after.json()["control_samples"] == n_c
        assert after.json()["status"] == "stopped"


def test_data_survives_a_restart_on_the_same_sqlite_file(
    make_server: MakeServer, tmp_path: Path
) -> None:
    env = {"ABSCOPE_DB_PATH": str(tmp_path / "abscope.db")}
    first = make_server(**env)
    users = [_user(i) for i in range(100)]
    with first.client() as client:
        running = client.post("/experiments", json=seed_body(name="Survives"))
        experiment_id = running.json()["id"]
        assert_status(client.post(f"/experiments/{experiment_id}/start"), 200)
        draft = client.post("/experiments", json=seed_body(name="Still a draft"))
        assert_status(draft, 201)
        variants = {u: route(client, u, experiment_id)["variant_name"] for u in users}
        for index, user in enumerate(users):
            logged = client.post(
                "/log",
                json={
                    "experiment_id": experiment_id,
                    "user_id": user,
                    "variant_name": variants[user],
                    "converted": index % 4 == 0,
                    "event_id": f"log-{index}",
                },
            )
            assert_status(logged, 200)
        listed = client.get("/experiments").json()
        results = client.get(f"/experiments/{experiment_id}/results").json()
    first.stop()

    second = make_server(**env)
    with second.client() as client:
        assert client.get("/experiments").json() == listed
        again = client.get(f"/experiments/{experiment_id}/results").json()
        seed_fields = ["control_samples", "treatment_samples", "control_conversion_rate",
                       "treatment_conversion_rate", "relative_lift", "p_value",
                       "confidence_interval", "variants", "srm"]  # fmt: skip
        assert {k: again[k] for k in seed_fields} == {k: results[k] for k in seed_fields}
        assert again["control_samples"] + again["treatment_samples"] == len(users)
        # Same users, same variants; a retried event id is still known.
        assert {u: route(client, u, experiment_id)["variant_name"] for u in users} == variants
        retried = client.post(
            "/log",
            json={
                "experiment_id": experiment_id,
                "user_id": users[0],
                "variant_name": variants[users[0]],
                "converted": True,
                "event_id": "log-0",
            },
        )
        assert_status(retried, 200)
        assert retried.json()["status"] == "duplicate"


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.05)


def test_an_unreachable_redis_gives_503_with_a_clear_message(
    make_server: MakeServer, tmp_path: Path
) -> None:
    with RedisServer(tmp_path / "redis") as redis_server:  # ours alone: it is stopped below
        server = make_server(
            ABSCOPE_REDIS_URL=redis_server.url, ABSCOPE_CONFIG_REFRESH_SECONDS="0.2"
        )
        with server.client() as client:
            experiment_id = client.post("/experiments", json=seed_body()).json()["id"]
            assert_status(client.post(f"/experiments/{experiment_id}/start"), 200)
            variant = route(client, "user-1", experiment_id)["variant_name"]
            assert client.get("/ready").json() == {"status": "ready"}
    # The redis-server is stopped now; the service stays up and says why it cannot answer.
    log = {"experiment_id": experiment_id, "user_id": "user-1", "variant_name": variant}
    with server.client() as client:
        ready = client.get("/ready")
        assert_status(ready, 503)
        assert ready.json()["detail"].startswith("storage unavailable")
        time.sleep(0.3)  # past config_refresh_seconds: routing must read the store again
        calls = {
            "route": lambda: client.post(
                "/route", json={"user_id": "user-2", "experiment_id": experiment_id}
            ),
            "route all": lambda: client.post("/route", json={"user_id": "user-2"}),
            "log": lambda: client.post("/log", json=log),
            "events": lambda: client.post("/events", json={"events": [log | {"kind": "exposure"}]}),
            "list": lambda: client.get("/experiments"),
            "create": lambda: client.post("/experiments", json=seed_body()),
            "results": lambda: client.get(f"/experiments/{experiment_id}/results"),
        }
        served = {name: calls.pop(name)() for name in ("route", "route all")}
        for name, response in served.items():
            # Routing goes on from the last snapshot; the exposure is not counted.
            assert response.status_code == 200, f"{name}: {response.status_code} {response.text}"
            assert response.json()["exposure_status"] == "store_unavailable", name
        assert served["route"].json()["experiment_id"] == experiment_id
        for name, call in calls.items():
            began = time.monotonic()
            response = call()
            assert response.status_code == 503, f"{name}: {response.status_code} {response.text}"
            assert response.headers["retry-after"] == "1", name
            assert "storage unavailable" in response.json()["detail"], name
            host, port = redis_server.url.removeprefix("redis://").split("/")[0].split(":")
            assert host not in response.text and port not in response.text, response.text
            assert time.monotonic() - began < 10, f"{name} took too long to give up"
        assert client.get("/health").json() == {"status": "ok"}
