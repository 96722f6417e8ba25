"""The client never raises into the caller's request path, and never waits on a server
that just failed: it serves the control with ``fallback`` true.

Real servers where the behaviour is the server's (unreachable, killed, sticky and bandit
experiments asked of it); an ``httpx.MockTransport`` where a test needs an answer a healthy
abscope never gives (a 500, a body that is not JSON).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from abscope.client import ApiError, Client, ServerUnavailable
from tests.client.conftest import MakeServer, create_running, samples
from tests.fixtures.uvicorn_server import free_port

_CONFIG = {
    "format": 1,
    "running": ["sticky"],
    "experiments": {
        "sticky": {
            "status": "running", "phase": 0, "mode": "sticky", "control": "control",
            "variants": [
                {"name": "control", "model_id": "m1", "weight": 0.5},
                {"name": "treatment", "model_id": "m2", "weight": 0.5},
            ],
            "traffic_percentage": 100.0, "gate_seed": 0, "variant_seed": 0, "layer": None,
            "layer_intervals": [], "forced": {}, "serve": None,
        }
    },
}  # fmt: skip


def _transport(
    route_status: int, route_body: bytes = b"{}"
) -> tuple[httpx.MockTransport, list[str]]:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/sdk/config":
            return httpx.Response(200, json=_CONFIG, headers={"ETag": '"v1"'})
        if request.url.path == "/route":
            return httpx.Response(route_status, content=route_body)
        return httpx.Response(404, json={"detail": "no such path"})

    return httpx.MockTransport(handle), seen


def test_unreachable_server_gives_the_default_at_once() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens
    with Client(url, timeout=0.5, retry_seconds=60) as client:
        first = client.route("alice", "checkout", default="control")
        second = client.route("bob", "checkout")
        assert client.stats.config_errors >= 1
    assert (first.variant_name, first.fallback, first.in_experiment) == ("control", True, False)
    assert first.error is not None and "Connect" in first.error
    assert second.fallback and second.variant_name is None  # no default, never seen
    assert second.error == "the server failed recently"  # no second connection attempt


def test_a_5xx_on_a_sticky_route_serves_the_control_and_opens_the_breaker() -> None:
    transport, seen = _transport(500, b'{"detail": "boom"}')
    with Client("http://abscope.test", transport=transport, retry_seconds=60) as client:
        decisions = [client.route(f"user-{i}", "sticky") for i in range(5)]
        assert client.stats.fallbacks == 5
    assert {(d.variant_name, d.model_id, d.fallback) for d in decisions} == {
        ("control", "m1", True)
    }
    assert seen.count("/route") == 1  # the breaker spared the other four calls


def test_an_answer_that_is_not_json_is_a_fallback_too() -> None:
    transport, _ = _transport(200, b"<html>proxy error</html>")
    with Client("http://abscope.test", transport=transport) as client:
        decision = client.route("alice", "sticky")
    assert decision.fallback and decision.variant_name == "control"


def test_an_invalid_user_id_is_a_fallback_not_an_exception() -> None:
    transport, _ = _transport(200)
    with Client("http://abscope.test", transport=transport) as client:
        decision = client.route("", "sticky")
    assert decision.fallback and decision.error is not None and "user_id" in decision.error


def test_sticky_and_bandit_experiments_are_decided_by_the_server(make_server: MakeServer) -> None:
    server = make_server()
    create_running(server.url, "sticky", sticky=True)
    create_running(server.url, "bandit", allocation="thompson")
    with Client(server.url) as client:
        sticky = [client.route(f"user-{i}", "sticky") for i in range(50)]
        again = [client.route(f"user-{i}", "sticky") for i in range(50)]
        bandit = [client.route(f"user-{i}", "bandit") for i in range(50)]
        assert client.stats.queued == 0  # the server recorded these exposures itself
    assert {d.source for d in sticky + again + bandit} == {"server"}
    assert [d.variant_name for d in again] == [d.variant_name for d in sticky]
    assert {d.exposure for d in sticky} == {"recorded"}
    assert sum(samples(server.url, "sticky").values()) == 50
    assert sum(samples(server.url, "bandit").values()) == 50


def test_a_killed_server_leaves_hash_routing_local_and_sticky_on_fallback(
    make_server: MakeServer,
) -> None:
    server = make_server()
    create_running(server.url, "hashed")
    create_running(server.url, "sticky", sticky=True)
    with Client(server.url, timeout=0.5, retry_seconds=0.2, close_timeout=30) as client:
        before = client.route("alice", "hashed")
        server.kill()
        during = client.route("alice", "hashed")
        sticky = client.route("bob", "sticky")
        server.restart_after_kill()
        assert client.flush(timeout=30)
    assert during.source == "local" and during.variant_name == before.variant_name
    assert (sticky.variant_name, sticky.fallback) == ("control", True)
    assert sum(samples(server.url, "hashed").values()) == 1


def test_management_calls_raise_typed_errors(make_server: MakeServer) -> None:
    server = make_server()
    with Client(server.url, local_evaluation=False, start=False) as client:
        try:
            client.create_experiment({"name": "x", "variants": [{"name": "Bad Name"}]})
        except ApiError as error:
            assert error.status_code == 422 and error.fields
        else:
            raise AssertionError("a bad experiment was accepted")
        try:
            client.get_experiment("missing")
        except ApiError as error:
            assert error.status_code == 404 and "missing" in error.detail
        else:
            raise AssertionError("a missing experiment was found")
        created = client.create_experiment(
            {"id": "made", "name": "made", "control_model_id": "a", "treatment_model_id": "b"}
        )
        assert created["status"] == "draft"
        assert client.transition("made", "start")["status"] == "running"
        assert [e["id"] for e in client.list_experiments("running")] == ["made"]
    dead = f"http://127.0.0.1:{free_port()}"
    with Client(dead, local_evaluation=False, start=False, timeout=0.5) as client:
        try:
            client.list_experiments()
        except ServerUnavailable as error:
            assert "Connect" in error.message
        else:
            raise AssertionError("a dead server answered")


def test_config_refresh_uses_the_etag() -> None:
    calls: list[dict[str, Any]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(dict(request.headers))
        if request.headers.get("If-None-Match") == '"v1"':
            return httpx.Response(304, headers={"ETag": '"v1"'})
        return httpx.Response(200, content=json.dumps(_CONFIG), headers={"ETag": '"v1"'})

    with Client("http://abscope.test", transport=httpx.MockTransport(handle)) as client:
        assert client.refresh() and client.refresh()
        assert client.stats.config_refreshes == 3
    assert "if-none-match" not in calls[0] and calls[1]["if-none-match"] == '"v1"'
