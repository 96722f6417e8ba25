"""Routing throughput of :mod:`abscope.assignment`, against same-run baselines.

The issue's target is 1,000,000 in-process routing decisions per second for a two-variant
experiment at 100% traffic. Every figure is the best of several repeats over the same
precomputed user ids (so making the ids is not timed, but iterating over them is), and is set
beside two baselines timed in the same run: an empty Python loop over the ids, and a loop of
bare ``hashlib.sha256(b"...").digest()`` calls, the one hash every decision needs. The
machines are shared and noisy; the ratios travel better than the absolute rates.

Run with ``.venv/bin/python -m benchmarks.assignment`` (``--users N`` to change the count).
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable

from abscope.assignment import AssignmentConfig, Router, allocate_layer, assign

REPEATS = 5


def best_of(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Best wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def loop_over(users: list[str], choose: Callable[[str], object]) -> Callable[[], None]:
    def run() -> None:
        for user in users:
            choose(user)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500_000)
    n = parser.parse_args().users
    users = [f"user-{i}" for i in range(n)]

    def empty_loop() -> None:
        for _ in users:
            pass

    def bare_sha256() -> None:
        sha256 = hashlib.sha256
        for _ in users:
            sha256(b"user-123456:checkout:0:variant").digest()

    two = AssignmentConfig("checkout", ("control", "treatment"), (0.5, 0.5))
    three = AssignmentConfig("search", ("a", "b", "c"), (0.2, 0.3, 0.5), traffic_percentage=10.0)
    piece = allocate_layer([("other", 40.0), ("ranker", 30.0)])[1]
    layered = AssignmentConfig("ranker", ("v1", "v2"), (0.5, 0.5), 30.0, layer="ranking")
    cases: list[tuple[str, Callable[[], None], int]] = [
        ("empty loop (baseline)", empty_loop, n),
        ("bare sha256().digest() (baseline)", bare_sha256, n),
        ("Router.choose: 2 variants, 100% traffic", loop_over(users, Router(two).choose), n),
        ("Router.choose: 3 variants, 10% traffic", loop_over(users, Router(three).choose), n),
        ("Router.choose: 2 variants, layer slice 30%",
         loop_over(users, Router(layered, layer_slice=piece).choose), n),
        ("assign (explained): 2 variants, 100%",
         loop_over(users[: n // 10], lambda u: assign(two, u)), n // 10),
    ]  # fmt: skip
    seconds = {name: best_of(fn) / count for name, fn, count in cases}
    empty, sha = seconds[cases[0][0]], seconds[cases[1][0]]
    print(f"{n:,} user ids, best of {REPEATS}")
    print(f"{'':44} {'ns/call':>8} {'calls/s':>12} {'x sha256':>9} {'x empty':>8}")
    for name, per_call in seconds.items():
        print(
            f"{name:44} {per_call * 1e9:8.0f} {1 / per_call:12,.0f} "
            f"{per_call / sha:9.2f} {per_call / empty:8.1f}"
        )
    target = seconds[cases[2][0]]
    verdict = "meets" if 1 / target >= 1_000_000 else "misses"
    print(f"\nfast path: {1 / target:,.0f} decisions/s, {verdict} the 1,000,000/s target")


if __name__ == "__main__":
    main()
