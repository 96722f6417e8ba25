"""The SDK decides exactly as the server: 100,000 users over seven experiments, 0 differences.

A real ``abscope serve`` holds the experiments, set up through its API the way a team would:

* ``two-arms``: 50/50 on all traffic;
* ``ramped``: three arms (0.2/0.3/0.5), started at 10% and ramped to 35%;
* ``layer-a`` and ``layer-b``: mutually exclusive in layer ``search`` (40% and 30% slices),
  and ``layer-a`` ramped from 40% to 55% while ``layer-b`` runs, so its slice is in pieces;
* ``forced``: four arms with 60 forced QA users;
* ``reweighted``: weights changed while running, which opens phase 1 (a new variant salt);
* ``paused``, ``completed`` (with a winner) and ``draft``: everyone gets the same answer.

The client fetches ``/sdk/config`` over HTTP and decides locally. The server's decisions come
from its own routing code (``Serving.plan``, what ``POST /route`` runs) over the same SQLite
file, for all 100,000 users, and from ``POST /route`` itself over HTTP for a sample, so the
comparison covers both the code and the wire. Per user and experiment it compares the
variant, the model, ``in_experiment`` and the reason, and per user the list of running
experiments the user is in (``/route`` without an experiment id).
"""

from __future__ import annotations

import random
from typing import Any

import httpx

from abscope.client import Client
from abscope.config import Settings
from abscope.service import ExperimentService
from abscope.storage.sqlite import SQLiteStore
from tests.fixtures.uvicorn_server import AbscopeServer

USERS = 100_000
HTTP_SAMPLE = 300


def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, f"{response.request.url}: {response.text[:500]}"
    return response.json() if response.content else {}


def _variants(*weights: float) -> list[dict[str, Any]]:
    return [
        {"name": f"arm-{i}", "model_id": f"model-{i}", "weight": w, "is_control": i == 0}
        for i, w in enumerate(weights)
    ]


def _set_up(http: httpx.Client) -> list[str]:
    def create(experiment_id: str, **body: Any) -> None:
        body.setdefault("control_model_id", "m-control")
        body.setdefault("treatment_model_id", "m-treatment")
        if "variants" in body:
            body.pop("control_model_id")
            body.pop("treatment_model_id")
        _ok(
            http.post("/experiments", json={"id": experiment_id, "name": experiment_id, **body}),
            201,
        )

    def act(experiment_id: str, action: str, **body: Any) -> None:
        _ok(http.post(f"/experiments/{experiment_id}/{action}", json=body or None))

    create("two-arms")
    create("ramped", variants=_variants(0.2, 0.3, 0.5), traffic_percentage=10)
    create("layer-a", layer="search", traffic_percentage=40)
    create("layer-b", layer="search", traffic_percentage=30)
    forced = {f"qa-{i}": f"arm-{i % 4}" for i in range(60)}
    create("forced", variants=_variants(0.25, 0.25, 0.25, 0.25), forced_variants=forced)
    create("reweighted", control_weight=0.5)
    create("paused")
    create("completed")
    create("draft")
    for experiment_id in ("two-arms", "ramped", "layer-a", "layer-b", "forced", "reweighted"):
        act(experiment_id, "start")
    for experiment_id in ("paused", "completed"):
        act(experiment_id, "start")
    _ok(http.patch("/experiments/ramped", json={"traffic_percentage": 35}))
    _ok(http.patch("/experiments/layer-a", json={"traffic_percentage": 55}))
    changed = _ok(
        http.patch("/experiments/reweighted", json={"weights": {"control": 0.3, "treatment": 0.7}})
    )
    assert changed["phase"] == 1
    act("paused", "pause")
    act("completed", "complete", winner="treatment")
    return [
        "two-arms", "ramped", "layer-a", "layer-b", "forced", "reweighted",
        "paused", "completed", "draft",
    ]  # fmt: skip


def _users() -> list[str]:
    rng = random.Random(20261201)
    users = [f"user-{rng.getrandbits(64):016x}" for _ in range(USERS - 60)]
    return users + [f"qa-{i}" for i in range(60)]  # the forced users too


def _server_view(plan: Any) -> list[tuple[Any, ...]]:
    return [
        (a.assignment.experiment_id, a.assignment.variant_name, a.assignment.model_id,
         a.assignment.in_experiment, a.assignment.reason)
        for a, _ in plan.chosen
    ]  # fmt: skip


def test_client_and_server_agree_on_100000_users(server: AbscopeServer, tmp_path: Any) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        experiment_ids = _set_up(http)
        config = _ok(http.get("/sdk/config"))
    layer_b = config["experiments"]["layer-b"]
    assert (
        len(config["experiments"]["layer-a"]["layer_intervals"]) >= 2
        or len(layer_b["layer_intervals"]) >= 1
    )
    users = _users()
    service = ExperimentService(
        SQLiteStore(tmp_path / "abscope.db"), Settings(db_path=tmp_path / "abscope.db")
    )
    differences: list[tuple[str, str, Any, Any]] = []
    decided = 0
    with Client(server.url, timeout=30) as client:
        assert client.stats.config_refreshes == 1
        for user in users:
            for experiment_id in experiment_ids:
                mine = client.route(user, experiment_id, expose=False)
                assert mine.source == "local", mine
                theirs = _server_view(service.serving.plan(user, experiment_id, False))[0]
                ours = (
                    mine.experiment_id, mine.variant_name, mine.model_id,
                    mine.in_experiment, mine.reason,
                )  # fmt: skip
                decided += 1
                if ours != theirs:
                    differences.append((user, experiment_id, ours, theirs))
            everywhere = client.route_all(user, expose=False)
            all_theirs = _server_view(service.serving.plan(user, None, False))
            all_ours = [
                (d.experiment_id, d.variant_name, d.model_id, d.in_experiment, d.reason)
                for d in everywhere
            ]
            if all_ours != all_theirs:
                differences.append((user, "*", all_ours, all_theirs))
        assert client.stats.queued == 0  # expose=False queues nothing
    assert decided == USERS * len(experiment_ids)
    assert differences == [], f"{len(differences)} differences, e.g. {differences[:5]}"

    # The wire: POST /route itself, for a sample of the users.
    sample = random.Random(7).sample(users, HTTP_SAMPLE) + [f"qa-{i}" for i in range(10)]
    wire_differences = []
    with httpx.Client(base_url=server.url, timeout=30) as http, Client(server.url) as client:
        for user in sample:
            for experiment_id in experiment_ids:
                body = {"user_id": user, "experiment_id": experiment_id, "expose": False}
                answer = _ok(http.post("/route", json=body))
                mine = client.route(user, experiment_id, expose=False)
                if (answer["variant_name"], answer["model_id"], answer["in_experiment"],
                        answer["reason"]) != (mine.variant_name, mine.model_id,
                                              mine.in_experiment, mine.reason):  # fmt: skip
                    wire_differences.append((user, experiment_id, answer, mine))
    assert wire_differences == []


def test_the_experiments_cover_every_case(server: AbscopeServer, tmp_path: Any) -> None:
    """The parity set is not trivial: every kind of answer occurs among its users."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        experiment_ids = _set_up(http)
    reasons: set[tuple[str, Any]] = set()
    variants: dict[str, set[str]] = {}
    with Client(server.url) as client:
        for user in _users()[:3000] + [f"qa-{i}" for i in range(60)]:
            for experiment_id in experiment_ids:
                decision = client.route(user, experiment_id, expose=False)
                reasons.add((experiment_id, decision.reason))
                assert decision.variant_name is not None
                variants.setdefault(experiment_id, set()).add(decision.variant_name)
    assert ("ramped", "not_in_traffic") in reasons and ("ramped", None) in reasons
    assert ("layer-a", "not_in_layer_slice") in reasons
    assert ("layer-b", "not_in_layer_slice") in reasons
    assert ("paused", "paused") in reasons and ("draft", "draft") in reasons
    assert variants["completed"] == {"treatment"}
    assert variants["forced"] == {"arm-0", "arm-1", "arm-2", "arm-3"}
    assert variants["ramped"] == {"arm-0", "arm-1", "arm-2"}
