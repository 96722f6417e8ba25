"""Exactly-once counting through the real service: 2 uvicorn workers, 16 clients, each send twice.

For each backend (a SQLite file; our own redis-server) a real ``uvicorn --workers 2`` serves
abscope. A continuous-metric experiment is created and started through the API, its 1,000
users are routed with ``POST /route``, and then 16 client threads send 20,000 events over
those users: a tenth as single ``POST /log`` bodies (some converted, some with a ``value``,
which makes a second event ``<event_id>:value``), the rest as ``POST /events`` batches of 20.
Each send is repeated as soon as its reply is in, with the same event ids, over a new
connection (``Connection: close``), which either worker may accept, while the other 15
clients keep writing the same users. A thin wrapper (``worker_app``) names the worker in a
response header, so the test checks that both workers served and that retries crossed.

Every value is a multiple of 0.25 and every partial sum stays far below 2**53 / 16, so the
float sums are exact and compared with ``==`` against sums in exact rational arithmetic:

* per variant: samples (unique users), conversions (unique converted users), value sum,
  sum of squares of the per-user totals, and the inverse-probability sum (2 per user at a
  50/50 split);
* the hourly buckets add up to the same totals, and the results endpoint reports the
  same samples;
* every first send was counted, every retry reported ``duplicate`` and changed nothing, and
  the first sends reported exactly one new exposure per user and one new conversion per
  converted user.

``-s`` prints the timings of each phase.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from abscope.models import VariantCounts
from abscope.storage.base import Store
from tests.concurrency.worker_app import PID_HEADER
from tests.fixtures.uvicorn_server import UvicornServer

CLIENTS = 16
WORKERS = 2
USERS = 1_000
EVENTS = 20_000  # /log bodies plus /events items; each is sent twice
LOG_SHARE = 0.1  # of the events go one per POST /log, the rest in batches
BATCH_SIZE = 20
SEED = 20_240_611
TIMEOUT = 30.0  # seconds per request
# A retry goes over a new connection, which either worker may accept (they share the socket),
# as a client's retry would after a timeout.
FRESH_CONNECTION = {"connection": "close"}
DUPLICATE = {"status": "duplicate", "new_exposure": False, "new_conversion": False}
VARIANTS = ("control", "treatment")
ASSIGNMENT_PROBABILITY = Fraction(1, 2)  # two variants of weight 0.5 at 100% traffic


@dataclass(frozen=True, slots=True)
class Item:
    """One event as a client sends it: a ``/log`` body or an ``/events`` item."""

    event_id: str
    user: str
    via: Literal["log", "batch"]
    converted: bool
    value: Fraction | None


@dataclass(frozen=True, slots=True)
class Send:
    """One request and its retry, as a client saw them."""

    path: str
    items: tuple[Item, ...]
    first: httpx.Response
    retry: httpx.Response


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    env: dict[str, str]
    open_store: Callable[[], Store]


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        from abscope.storage.sqlite import SQLiteStore

        path = tmp_path / "abscope.db"
        return Backend("sqlite", {"ABSCOPE_DB_PATH": str(path)}, lambda: SQLiteStore(path))
    from abscope.storage.redis import RedisStore

    url: str = request.getfixturevalue("redis_url")  # our own redis-server, on a free port
    return Backend("redis", {"ABSCOPE_REDIS_URL": url}, lambda: RedisStore.from_url(url))


@pytest.fixture
def server(backend: Backend, tmp_path: Path) -> Iterator[UvicornServer]:
    with UvicornServer(
        "tests.concurrency.worker_app:create_app",
        tmp_path / "uvicorn.log",
        env=backend.env,
        workers=WORKERS,
        access_log=False,
    ) as running:
        yield running


def make_items(rng: random.Random) -> list[Item]:
    """``EVENTS`` events over ``USERS`` users (the same number each), in random order."""
    items = []
    for index in range(EVENTS):
        user = f"user-{index % USERS:05d}"
        draw = rng.random()
        value = Fraction(rng.randint(-8, 40), 4)  # -2.0 .. 10.0 in steps of 0.25
        if rng.random() < LOG_SHARE:
            with_value = rng.random() < 0.5
            item = Item(f"ev-{index:05d}", user, "log", draw < 0.3, value if with_value else None)
        elif draw < 0.2:
            item = Item(f"ev-{index:05d}", user, "batch", True, None)
        elif draw < 0.6:
            item = Item(f"ev-{index:05d}", user, "batch", False, value)
        else:
            item = Item(f"ev-{index:05d}", user, "batch", False, None)
        items.append(item)
    rng.shuffle(items)
    return items


def make_requests(
    items: list[Item], experiment_id: str, variant_of: dict[str, str], rng: random.Random
) -> list[list[tuple[str, dict[str, Any], tuple[Item, ...]]]]:
    """The requests of each client: ``/log`` bodies and ``/events`` batches, shuffled."""

    def log_body(item: Item) -> dict[str, Any]:
        body: dict[str, Any] = {
            "experiment_id": experiment_id,
            "user_id": item.user,
            "variant_name": variant_of[item.user],
            "converted": item.converted,
            "event_id": item.event_id,
        }
        if item.value is not None:
            body["value"] = float(item.value)
        return body

    def batch_item(item: Item) -> dict[str, Any]:
        kind = "conversion" if item.converted else "value" if item.value is not None else "exposure"
        body: dict[str, Any] = {
            "experiment_id": experiment_id,
            "user_id": item.user,
            "variant_name": variant_of[item.user],
            "kind": kind,
            "event_id": item.event_id,
        }
        if item.value is not None:
            body["value"] = float(item.value)
        return body

    requests: list[tuple[str, dict[str, Any], tuple[Item, ...]]] = [
        ("/log", log_body(item), (item,)) for item in items if item.via == "log"
    ]
    batched = [item for item in items if item.via == "batch"]
    for start in range(0, len(batched), BATCH_SIZE):
        chunk = tuple(batched[start : start + BATCH_SIZE])
        requests.append(("/events", {"events": [batch_item(i) for i in chunk]}, chunk))
    rng.shuffle(requests)
    return [requests[client::CLIENTS] for client in range(CLIENTS)]


def expected_counts(items: list[Item], variant_of: dict[str, str]) -> dict[str, VariantCounts]:
    """Per-variant counts in exact rational arithmetic, checked to be exact as floats."""
    totals: dict[str, Fraction] = {}
    converted: set[str] = set()
    for item in items:
        totals[item.user] = totals.get(item.user, Fraction(0)) + (item.value or 0)
        if item.converted:
            converted.add(item.user)
    expected = {}
    for variant in VARIANTS:
        users = [user for user, chosen in variant_of.items() if chosen == variant]
        value_sum = sum((totals[u] for u in users), Fraction(0))
        squares = sum((totals[u] ** 2 for u in users), Fraction(0))
        inverse = len(users) / ASSIGNMENT_PROBABILITY
        inverse_squares = len(users) / ASSIGNMENT_PROBABILITY**2
        for exact in (value_sum, squares, inverse, inverse_squares):
            assert Fraction(float(exact)) == exact, f"{exact} is not exact as a float"
        expected[variant] = VariantCounts(
            samples=len(users),
            conversions=len(converted.intersection(users)),
            value_sum=float(value_sum),
            value_sum_squares=float(squares),
            inverse_probability_sum=float(inverse),
            inverse_probability_square_sum=float(inverse_squares),
        )
    return expected


def run_clients(
    base_url: str, work: list[list[Any]], send: Callable[[httpx.Client, httpx.Client, Any], Any]
) -> list[Any]:
    """Run ``send(first, retry, job)`` for every job, one thread per client.

    Each client has two connections of its own: ``first`` and ``retry``. uvicorn's workers
    accept connections from one listening socket, so the two may be served by different
    workers.
    """

    def client(jobs: list[Any]) -> list[Any]:
        with (
            httpx.Client(base_url=base_url, timeout=TIMEOUT) as first,
            httpx.Client(base_url=base_url, timeout=TIMEOUT) as retry,
        ):
            return [send(first, retry, job) for job in jobs]

    with ThreadPoolExecutor(max_workers=len(work)) as pool:
        futures = [pool.submit(client, jobs) for jobs in work]
        return [outcome for future in futures for outcome in future.result()]


def route_users(base_url: str, experiment_id: str) -> dict[str, str]:
    """Every user's variant, from ``POST /route`` (half through each connection)."""
    users = [f"user-{u:05d}" for u in range(USERS)]

    def route(first: httpx.Client, retry: httpx.Client, user: str) -> tuple[str, str]:
        client = first if int(user[-1]) % 2 else retry
        # Decision only: the events below register each exposure, exactly once.
        body = {"user_id": user, "experiment_id": experiment_id, "expose": False}
        response = client.post("/route", json=body)
        assert response.status_code == 200, response.text
        variant: str = response.json()["variant_name"]
        return user, variant

    routed = run_clients(base_url, [users[c::CLIENTS] for c in range(CLIENTS)], route)
    return dict(routed)


def pids_of_workers(base_url: str) -> set[str]:
    """The workers' pids, from their replies to ``/health`` over new connections."""
    pids: set[str] = set()
    deadline = time.monotonic() + 10
    while len(pids) < WORKERS and time.monotonic() < deadline:
        with httpx.Client(base_url=base_url, timeout=TIMEOUT) as client:
            pids.add(client.get("/health").headers[PID_HEADER])
    return pids


def cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes used so far, from /proc."""
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def send_twice(first: httpx.Client, retry: httpx.Client, request: Any) -> Send:
    """Send a request, then send it again over a new connection once its reply is in."""
    path, body, items = request
    sent = first.post(path, json=body)
    again = retry.post(path, json=body, headers=FRESH_CONNECTION)
    return Send(path, items, sent, again)


def check_replies(send: Send) -> str | None:
    """What is wrong with a send's replies: the first must count, the retry be a duplicate."""
    where = f"{send.path} {[item.event_id for item in send.items]}"
    if send.first.status_code != 200 or send.retry.status_code != 200:
        return (
            f"{where}: first send {send.first.status_code} {send.first.text}, "
            f"retry {send.retry.status_code} {send.retry.text}"
        )
    first, retry = send.first.json(), send.retry.json()
    if send.path == "/log":
        right = first["status"] == "counted" and retry == DUPLICATE
    else:
        n = len(send.items)
        right = (
            (first["counted"], first["duplicates"], first["rejected"]) == (n, 0, 0)
            and (retry["counted"], retry["duplicates"], retry["rejected"]) == (0, n, 0)
            and all(result == {**DUPLICATE, "error": None} for result in retry["results"])
        )
    return None if right else f"{where}: first send {first}, retry {retry}"


def new_flags(sends: list[Send]) -> Counter[str]:
    """How many new exposures and new conversions the first sends reported."""
    flags: Counter[str] = Counter()
    for send in sends:
        body = send.first.json()
        for result in body["results"] if send.path == "/events" else [body]:
            flags["exposures"] += result["new_exposure"]
            flags["conversions"] += result["new_conversion"]
    return flags


def summed_hours(store: Store, experiment_id: str) -> dict[str, VariantCounts]:
    sums = {v: [0, 0, 0.0, 0.0, 0.0, 0.0] for v in VARIANTS}
    for hour in store.get_timeseries(experiment_id, 0):
        for variant, c in hour.variants.items():
            for i, part in enumerate(
                (
                    c.samples,
                    c.conversions,
                    c.value_sum,
                    c.value_sum_squares,
                    c.inverse_probability_sum,
                    c.inverse_probability_square_sum,
                )
            ):
                sums[variant][i] += part
    return {
        v: VariantCounts(
            samples=int(s[0]),
            conversions=int(s[1]),
            value_sum=s[2],
            value_sum_squares=s[3],
            inverse_probability_sum=s[4],
            inverse_probability_square_sum=s[5],
        )
        for v, s in sums.items()
    }


def test_every_event_is_counted_exactly_once(backend: Backend, server: UvicornServer) -> None:
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    rng = random.Random(SEED)
    experiment_id = f"exactly-once-{backend.name}-{rng.getrandbits(32):08x}"

    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as admin:
        created = admin.post(
            "/experiments",
            json={
                "id": experiment_id,
                "name": "exactly once",
                "control_model_id": "model-a",
                "treatment_model_id": "model-b",
                "metric_type": "continuous",
            },
        )
        assert created.status_code == 201, created.text
        started = admin.post(f"/experiments/{experiment_id}/start")
        assert started.status_code == 200, started.text

    variant_of = route_users(server.url, experiment_id)
    assert set(variant_of.values()) == set(VARIANTS), Counter(variant_of.values())
    timings["route"] = time.perf_counter() - clock

    items = make_items(rng)
    work = make_requests(items, experiment_id, variant_of, rng)
    worker_pids = [int(p) for p in pids_of_workers(server.url)]
    clock, client_cpu, worker_cpu = time.perf_counter(), time.process_time(), cpu(worker_pids)
    sends = run_clients(server.url, work, send_twice)
    timings["send"] = time.perf_counter() - clock
    timings["client cpu"] = time.process_time() - client_cpu
    timings["worker cpu"] = cpu(worker_pids) - worker_cpu
    clock = time.perf_counter()

    assert sum(len(s.items) for s in sends) == EVENTS
    problems = [problem for send in sends if (problem := check_replies(send)) is not None]
    assert not problems, f"{len(problems)} bad replies, the first ones:\n" + "\n".join(
        problems[:10]
    )
    expected = expected_counts(items, variant_of)
    assert new_flags(sends) == Counter(
        exposures=USERS, conversions=sum(c.conversions for c in expected.values())
    )

    pids = [(s.first.headers[PID_HEADER], s.retry.headers[PID_HEADER]) for s in sends]
    workers = Counter(pid for pair in pids for pid in pair)
    crossed = sum(a != b for a, b in pids)
    assert len(workers) == WORKERS, f"requests per worker: {dict(workers)}"
    assert crossed > 0, "no retry reached the other worker"

    store = backend.open_store()
    try:
        counts = store.get_counts(experiment_id, 0)
        hours = summed_hours(store, experiment_id)
    finally:
        store.close()
    assert counts == expected
    assert hours == expected

    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as reader:
        response = reader.get(f"/experiments/{experiment_id}/results")
    assert response.status_code == 200, response.text
    results = response.json()
    assert {v["name"]: v["n"] for v in results["variants"]} == {
        v: c.samples for v, c in expected.items()
    }
    assert (results["control_samples"], results["treatment_samples"]) == (
        expected["control"].samples,
        expected["treatment"].samples,
    )
    for variant in results["variants"]:
        counted = expected[variant["name"]]
        assert variant["mean"] == pytest.approx(counted.value_sum / counted.samples, rel=1e-12)
    timings["check"] = time.perf_counter() - clock

    requests = 2 * len(sends)
    print(
        f"\n[{backend.name}] {EVENTS:,} events sent twice in {requests:,} requests by "
        f"{CLIENTS} clients to {WORKERS} workers: send {timings['send']:.1f} s "
        f"({requests / timings['send']:,.0f} requests/s, "
        f"{2 * EVENTS / timings['send']:,.0f} event sends/s); routing {USERS:,} users "
        f"{timings['route']:.1f} s; checks {timings['check']:.1f} s; requests per worker "
        f"{sorted(workers.values())}; retries served by the other worker: {crossed:,} of "
        f"{len(sends):,}; cpu while sending: client {timings['client cpu']:.1f} s, workers "
        f"{timings['worker cpu']:.1f} s"
    )
