"""``POST /charts/simulate`` is bounded and runs off the threads that serve traffic.

Its cost is bounded by ``horizon`` and ``horizon × runs × arms`` (a 422 naming the fields
beyond); one simulation runs at a time on a thread of its own and one more may wait, any
further one is a 503 with ``Retry-After``; ``/route`` and ``/log`` keep answering meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from abscope.api.simulations import RETRY_AFTER_SECONDS, SimulationPool
from abscope.errors import Busy
from abscope.schemas import SIMULATION_BUDGET, SIMULATION_MAX_HORIZON, SimulateRequest
from tests.api.helpers import MakeClient, MakeServer, assert_status, route, started
from tests.fixtures.event_loop import run_async

# The largest requests the bounds allow (about 2 s of CPU each), and one just beyond.
LARGEST = [
    {"true_rates": [0.05] * 9 + [0.06], "horizon": SIMULATION_MAX_HORIZON, "runs": 33},
    {"true_rates": [0.05, 0.06], "horizon": SIMULATION_MAX_HORIZON, "runs": 166},
]
OVER_BUDGET = {"true_rates": [0.05] * 9 + [0.06], "horizon": SIMULATION_MAX_HORIZON, "runs": 34}


@pytest.mark.parametrize("body", LARGEST)
def test_the_largest_requests_are_within_the_budget(body: dict[str, Any]) -> None:
    request = SimulateRequest.model_validate(body)
    cost = request.horizon * request.runs * len(request.true_rates)
    assert cost <= SIMULATION_BUDGET < cost + request.horizon * len(request.true_rates)


def _over_budget_message(response: Any) -> str:
    assert_status(response, 422)
    detail = response.json()["detail"]
    assert len(detail) == 1 and detail[0]["loc"] == ["body"], detail
    message: str = detail[0]["msg"]
    return message


def test_over_the_budget_is_422_naming_the_fields(make_client: MakeClient) -> None:
    client = make_client()
    message = _over_budget_message(client.post("/charts/simulate", json=OVER_BUDGET))
    for named in ("horizon", "runs", "true_rates", f"{SIMULATION_BUDGET:,}", "3,000 × 34 × 10"):
        assert named in message, message


def test_a_horizon_over_the_most_is_422_naming_it(make_client: MakeClient) -> None:
    client = make_client()
    body = {"true_rates": [0.1, 0.2], "horizon": SIMULATION_MAX_HORIZON + 1, "runs": 2}
    response = client.post("/charts/simulate", json=body)
    assert_status(response, 422)
    assert response.json()["detail"][0]["loc"] == ["body", "horizon"]


def test_the_pool_runs_one_lets_one_wait_and_refuses_the_next() -> None:
    pool = SimulationPool(running=1, waiting=1)
    gate = threading.Event()
    threads_seen: list[str] = []

    def held(label: str) -> str:
        threads_seen.append(threading.current_thread().name)
        assert gate.wait(30)
        return label

    async def scenario() -> tuple[list[str], Busy]:
        first = asyncio.ensure_future(pool.run(held, "first"))
        second = asyncio.ensure_future(pool.run(held, "second"))
        await asyncio.sleep(0)  # both admitted (admission happens before the first await)
        assert pool.admitted == 2
        with pytest.raises(Busy) as refused:
            await pool.run(held, "third")
        gate.set()
        return [await first, await second], refused.value

    try:
        answers, refused = run_async(scenario())
    finally:
        gate.set()
        pool.close()
    assert answers == ["first", "second"]
    assert refused.retry_after == RETRY_AFTER_SECONDS
    assert "retry" in str(refused)
    assert pool.admitted == 0
    assert all(name.startswith("simulate") for name in threads_seen), threads_seen
    assert threading.current_thread().name not in threads_seen


def test_the_pool_checks_its_sizes() -> None:
    with pytest.raises(ValueError, match="running"):
        SimulationPool(running=0)
    with pytest.raises(ValueError, match="waiting"):
        SimulationPool(waiting=-1)


def test_a_busy_simulator_is_503_with_retry_after(make_client: MakeClient) -> None:
    client = make_client()
    pool = SimulationPool(running=1, waiting=0)
    client.app.state.simulations = pool  # type: ignore[attr-defined]
    gate = threading.Event()
    holding = threading.Thread(target=asyncio.run, args=(pool.run(lambda _: gate.wait(30), None),))
    holding.start()
    try:
        while pool.admitted == 0:  # the holding call is admitted
            gate.wait(0.01)
        body = {"true_rates": [0.05, 0.08], "horizon": 100, "runs": 2}
        response = client.post("/charts/simulate", json=body)
        assert_status(response, 503)
        assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
        assert "simulations" in response.json()["detail"]
    finally:
        gate.set()
        holding.join()
    assert_status(client.post("/charts/simulate", json=body), 200)
    pool.close()


def test_four_large_simulations_leave_route_and_log_answering(make_server: MakeServer) -> None:
    server = make_server()
    with server.client() as client:
        experiment_id = started(client)["id"]
        variant = route(client, "warm", experiment_id)["variant_name"]
        assert_status(client.post("/charts/simulate", json=OVER_BUDGET), 422)

    bodies = [{**LARGEST[i % 2], "seed": i} for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as executor:
        simulations = [executor.submit(server.post_json, "/charts/simulate", b) for b in bodies]
        answered: list[tuple[int, int]] = []
        # Route and log a user at a time until the last simulation is answered; at least one
        # round runs while a simulation is still running or waiting.
        while True:
            pending = sum(not s.done() for s in simulations)
            user = f"user-{len(answered)}"
            routed = server.post_json("/route", {"user_id": user, "experiment_id": experiment_id})
            logged = server.post_json(
                "/log",
                {
                    "user_id": user,
                    "experiment_id": experiment_id,
                    "variant_name": routed[1].get("variant_name", variant),
                    "converted": True,
                },
            )
            answered.append((routed[0], logged[0]))
            if pending == 0:
                break
            if len(answered) == 1:
                assert pending > 0, "the simulations ended before the first route"
        outcomes = [s.result() for s in simulations]

    assert answered and all(statuses == (200, 200) for statuses in answered), answered
    statuses = sorted(status for status, _ in outcomes)
    assert set(statuses) <= {200, 503}, outcomes
    assert statuses.count(200) >= 2, statuses  # the running one and the waiting one
    for status, answer in outcomes:
        if status == 200:
            assert set(answer) == {"regret", "final_regret", "final_regret_se"}
        else:
            assert "retry" in answer["detail"]
