"""Metric events end to end against a real uvicorn process: an experiment created with a
ratio guardrail (latency per request), a binary guardrail and a mean secondary; events
sent raw to ``/events`` and ``/log`` and through both SDK clients; the store's metric
counts read back through a service of the same SQLite file and compared exactly with the
sums of the raw events (every value is a multiple of 0.25 and every sum is far below
2**53 / 16, so floating-point addition is exact in any order).
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from abscope.client import AsyncClient, Client
from abscope.config import Settings
from abscope.models import MetricCounts
from abscope.service import ExperimentService
from abscope.storage.sqlite import SQLiteStore
from tests.api.helpers import MakeServer, assert_status
from tests.fixtures.event_loop import run_async

EXPERIMENT = "model-v2"
METRICS = [
    {"name": "latency_ms", "kind": "ratio", "role": "guardrail", "higher_is_better": False,
     "margin": 0.05, "action": "pause"},
    {"name": "errors", "kind": "binary", "role": "guardrail", "higher_is_better": False,
     "margin": 0.5},
    {"name": "revenue", "kind": "mean", "role": "secondary"},
]  # fmt: skip
USERS = 240


class Sent:
    """What was sent: per metric, variant and user the totals (x, y), and the converters."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(
            lambda: defaultdict(lambda: [0.0, 0.0])
        )
        self.converted: dict[tuple[str, str], set[str]] = defaultdict(set)

    def value(self, metric: str, variant: str, user: str, x: float, y: float) -> None:
        totals = self.totals[metric, variant][user]
        totals[0] += x
        totals[1] += y

    def counts(self) -> dict[str, dict[str, MetricCounts]]:
        out: dict[str, dict[str, MetricCounts]] = {}
        for metric, variant in set(self.totals) | set(self.converted):
            users = self.totals[metric, variant].values()
            out.setdefault(metric, {})[variant] = MetricCounts(
                conversions=len(self.converted[metric, variant]),
                sum=sum(x for x, _ in users),
                sum_squares=sum(x * x for x, _ in users),
                denominator_sum=sum(y for _, y in users),
                denominator_sum_squares=sum(y * y for _, y in users),
                cross_sum=sum(x * y for x, y in users),
            )
        return out


def _latency(rng: random.Random, variant: str) -> float:
    slower = 1.2 if variant == "treatment" else 1.0
    return round(rng.randint(200, 600) * slower) / 4  # ms, a multiple of 0.25


def test_metric_counts_are_exact_end_to_end(make_server: MakeServer, tmp_path: Path) -> None:
    db_path = tmp_path / "metrics.db"
    server = make_server(ABSCOPE_DB_PATH=str(db_path))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        created = http.post("/experiments", json={
            "id": EXPERIMENT, "name": "Model v2", "control_model_id": "model-v1",
            "treatment_model_id": "model-v2", "metrics": METRICS,
        })  # fmt: skip
        assert_status(created, 201)
        assert [m["name"] for m in created.json()["metrics"]] == [m["name"] for m in METRICS]
        assert_status(http.post(f"/experiments/{EXPERIMENT}/start"), 200)
    rng = random.Random(12)
    sent = Sent()
    users = [f"user-{index:04d}" for index in range(USERS)]

    # A third of the users through /events, raw: the variant from /route.
    events: list[dict[str, Any]] = []
    for user in users[: USERS // 3]:
        status, answer = server.post_json("/route", {"user_id": user, "experiment_id": EXPERIMENT})
        assert status == 200, answer
        variant = answer["variant_name"]
        base = {"experiment_id": EXPERIMENT, "user_id": user, "variant_name": variant}
        for _ in range(rng.randint(1, 6)):
            latency = _latency(rng, variant)
            events.append({**base, "kind": "value", "metric": "latency_ms", "value": latency})
            sent.value("latency_ms", variant, user, latency, 1.0)
        if rng.random() < 0.3:  # a retried request: three of them in one event
            latency = 3 * _latency(rng, variant)
            events.append({**base, "kind": "value", "metric": "latency_ms", "value": latency,
                           "denominator": 3})  # fmt: skip
            sent.value("latency_ms", variant, user, latency, 3.0)
        if rng.random() < 0.1:
            events.append({**base, "kind": "conversion", "metric": "errors", "event_id": user})
            events.append({**base, "kind": "conversion", "metric": "errors", "event_id": user})
            sent.converted["errors", variant].add(user)
        revenue = rng.randint(0, 40) / 4
        events.append({**base, "kind": "value", "metric": "revenue", "value": revenue})
        sent.value("revenue", variant, user, revenue, 0.0)
    status, answer = server.post_json("/events", {"events": events})
    assert status == 200, answer
    retried = sum(len(users) for users in sent.converted.values())  # each sent twice
    assert retried > 0
    assert (answer["counted"], answer["duplicates"], answer["rejected"]) == (
        len(events) - retried,
        retried,
        0,
    )
    # One /log per request for a few users, the value naming its metric.
    for user in users[USERS // 3 : USERS // 3 + 10]:
        status, answer = server.post_json("/route", {"user_id": user, "experiment_id": EXPERIMENT})
        variant = answer["variant_name"]
        latency = _latency(rng, variant)
        status, logged = server.post_json("/log", {
            "experiment_id": EXPERIMENT, "user_id": user, "variant_name": variant,
            "metric": "latency_ms", "value": latency,
        })  # fmt: skip
        assert (status, logged["status"]) == (200, "counted"), logged
        sent.value("latency_ms", variant, user, latency, 1.0)

    # A third through the sync SDK: routed locally, latency tracked per request.
    sdk_users = users[USERS // 3 + 10 : 2 * USERS // 3]
    with Client(server.url) as client:
        tracked = 0
        for user in sdk_users:
            decision = client.route(user, EXPERIMENT)
            assert decision.source == "local"
            for _ in range(rng.randint(1, 4)):
                latency = _latency(rng, decision.variant_name)
                client.track(EXPERIMENT, user, decision.variant_name, metric="latency_ms",
                             value=latency)  # fmt: skip
                sent.value("latency_ms", decision.variant_name, user, latency, 1.0)
                tracked += 1
        # One misfit (a value for a binary metric): rejected alone, nothing counted.
        client.track(EXPERIMENT, sdk_users[0], client.route(sdk_users[0], EXPERIMENT)
                     .variant_name, metric="errors", value=1.0)  # fmt: skip
        assert client.flush(timeout=30)
        stats = client.stats
    assert (stats.counted, stats.rejected, stats.failed) == (tracked + len(sdk_users), 1, 0)

    # The rest through the async SDK, with denominators: tokens over seconds.
    async def async_traffic() -> int:
        tracked = 0
        async with AsyncClient(server.url) as client:
            for user in users[2 * USERS // 3 :]:
                decision = await client.route(user, EXPERIMENT)
                latency, requests = _latency(rng, decision.variant_name), rng.randint(1, 3)
                client.track(EXPERIMENT, user, decision.variant_name, metric="latency_ms",
                             value=latency * requests, denominator=requests)  # fmt: skip
                sent.value("latency_ms", decision.variant_name, user, latency * requests,
                           float(requests))  # fmt: skip
                if rng.random() < 0.2:
                    client.track(EXPERIMENT, user, decision.variant_name, converted=True,
                                 metric="errors")  # fmt: skip
                    sent.converted["errors", decision.variant_name].add(user)
                tracked += 1
            assert await client.flush(timeout=30)
            assert client.stats.rejected == 0
        return tracked

    assert run_async(async_traffic()) == USERS - 2 * USERS // 3

    settings = Settings(db_path=db_path, redis_url=None)
    service = ExperimentService(SQLiteStore(db_path), settings)
    try:
        counts = service.store.get_metric_counts(EXPERIMENT, 0)
        samples = {v: c.samples for v, c in service.store.get_counts(EXPERIMENT, 0).items()}
        primary = service.store.get_counts(EXPERIMENT, 0)
    finally:
        service.store.close()
    assert counts == sent.counts()
    assert sum(samples.values()) == USERS
    # Nothing named a metric by mistake into the primary's counts.
    assert all(c.conversions == 0 and c.value_sum == 0.0 for c in primary.values())
    # The treatment's latency per request is about 20% higher: the data are what was sent.
    latency = counts["latency_ms"]
    per_request = {v: c.sum / c.denominator_sum for v, c in latency.items()}
    assert 1.1 < per_request["treatment"] / per_request["control"] < 1.3
