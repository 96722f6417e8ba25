"""The SDK sends each user's pre-exposure covariate (CUPED), against a real server.

* ``route(..., covariate=c)`` with local evaluation: the covariate rides on the batched
  exposure, and the results' ``cuped`` section counts the user; the mean covariate the
  section imputes (``imputed_value``: the mean of the covariates observed) is the mean of
  what was sent.
* A decision the server makes (a sticky experiment) records the exposure itself; its
  covariate follows through ``POST /experiments/{id}/covariates``.
* ``set_covariates`` backfills users exposed already (sync and async), idempotently.
* An invalid covariate is a fallback with the error, and queues nothing.
* The exposure JSON with a covariate is the one the batcher sends without it, plus the
  covariate (same deterministic id, so a retry is still counted once).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from abscope.client import AsyncClient, Client
from abscope.client._events import covariate_exposure, wire
from tests.client.conftest import create_running
from tests.fixtures.event_loop import run_async
from tests.fixtures.uvicorn_server import AbscopeServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AbscopeServer]:
    """One real ``abscope serve`` for the module (each test has its own experiment)."""
    directory = tmp_path_factory.mktemp("covariates")
    with AbscopeServer(
        directory / "server.log",
        env={"ABSCOPE_DB_PATH": str(directory / "abscope.db")},
        health_path="/health",
    ) as started:
        yield started


def _results(url: str, experiment_id: str) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=30) as http:
        response = http.get(f"/experiments/{experiment_id}/results")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def _covariate(i: int) -> float:
    return round(10.0 + 7.5 * math.sin(i), 4)


def test_route_sends_the_covariate_with_the_batched_exposure(server: AbscopeServer) -> None:
    create_running(server.url, "cov-local")
    sent: dict[str, float] = {}
    with Client(server.url, flush_interval=0.05) as client:
        for i in range(60):
            user = f"user-{i}"
            decision = client.route(user, "cov-local", covariate=_covariate(i))
            assert decision.source == "local" and decision.exposure == "queued", decision
            sent[user] = _covariate(i)
            if i % 3 == 0:
                client.track("cov-local", user, str(decision.variant_name), converted=True)
            # A second route of the same user queues nothing (its exposure is queued).
            assert client.route(user, "cov-local", covariate=99.0).exposure == "already_queued"
        assert client.flush(10)
        assert client.stats.rejected == 0 and client.stats.counted == 60 + 20
    section = _results(server.url, "cov-local")["cuped"]
    assert section is not None
    assert (section["users"], section["covariate_users"]) == (60, 60)
    (comparison,) = section["comparisons"]
    assert comparison["imputed_value"] == pytest.approx(sum(sent.values()) / len(sent), rel=1e-12)
    assert comparison["covariate_coverage"] == 1.0


def test_a_server_decision_backfills_its_covariate(server: AbscopeServer) -> None:
    create_running(server.url, "cov-sticky", sticky=True)
    with Client(server.url, flush_interval=0.05) as client:
        for i in range(8):
            decision = client.route(f"s-{i}", "cov-sticky", covariate=float(i))
            assert decision.source == "server" and decision.exposure == "recorded", decision
        assert client.stats.covariate_errors == 0
    section = _results(server.url, "cov-sticky")["cuped"]
    assert section is not None and section["covariate_users"] == section["users"] == 8
    assert section["comparisons"][0]["imputed_value"] == pytest.approx(3.5)


def test_set_covariates_backfills_exposed_users_once(server: AbscopeServer) -> None:
    create_running(server.url, "cov-backfill")
    with Client(server.url, flush_interval=0.05) as client:
        for i in range(10):
            client.route(f"b-{i}", "cov-backfill")
        assert client.flush(10)
        values = {f"b-{i}": float(i * i) for i in range(6)}
        first = client.set_covariates("cov-backfill", values)
        assert (first["set"], first["unchanged"], first["conflicts"]) == (6, 0, 0)
        again = client.set_covariates("cov-backfill", list(values.items()))
        assert (again["set"], again["unchanged"]) == (0, 6)
        clash = client.set_covariates("cov-backfill", {"b-0": 5.0, "nobody": 1.0})
        assert (clash["conflicts"], clash["not_exposed"]) == (1, 1)
    section = _results(server.url, "cov-backfill")["cuped"]
    assert section is not None and (section["users"], section["covariate_users"]) == (10, 6)
    assert section["comparisons"][0]["imputed_value"] == pytest.approx(sum(values.values()) / 6)


def test_the_async_client_sends_and_backfills_covariates(server: AbscopeServer) -> None:
    create_running(server.url, "cov-async")

    async def scenario() -> tuple[dict[str, Any], int]:
        async with AsyncClient(server.url, flush_interval=0.05) as client:
            for i in range(12):
                decision = await client.route(f"a-{i}", "cov-async", covariate=float(i))
                assert decision.exposure == "queued", decision
            local = client.route_locally("a-12", "cov-async", covariate=12.0)
            assert local is not None and local.exposure == "queued"
            await client.route("a-13", "cov-async")  # no covariate: backfilled below
            assert await client.flush(10)
            answer = await client.set_covariates("cov-async", {"a-13": 13.0})
            return answer, client.stats.rejected

    answer, rejected = run_async(scenario())
    assert answer["set"] == 1 and rejected == 0
    section = _results(server.url, "cov-async")["cuped"]
    assert section is not None and section["covariate_users"] == section["users"] == 14
    assert section["comparisons"][0]["imputed_value"] == pytest.approx(6.5)


@pytest.mark.parametrize("bad", [math.nan, math.inf, 2e12, "7", True])
def test_an_invalid_covariate_is_a_fallback_that_queues_nothing(bad: Any) -> None:
    # Checked before anything else: no server is needed (nor asked).
    client = Client("http://127.0.0.1:9", start=False)
    try:
        decision = client.route("u-1", "cov-bad", covariate=bad, default="control")
        assert decision.fallback and decision.error is not None
        assert decision.error.startswith("covariate must be")
        assert client.stats.queued == 0 and client.stats.server_decisions == 0
    finally:
        client.close()


def test_a_covariate_exposure_is_the_batched_exposure_plus_its_covariate() -> None:
    tag = ("ranker-v2", 3, "treatment")
    for user in ("alice", "Zoë Dupont"):
        plain = json.loads(wire([(tag, user, 1_764_590_000.25)]))["events"][0]
        with_covariate = json.loads(covariate_exposure(tag, user, 1_764_590_000.25, 17.5))
        assert with_covariate == {**plain, "covariate": 17.5}
