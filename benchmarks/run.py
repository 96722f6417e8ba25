"""``make bench``: every benchmark of abscope in one run, printed as one table.

The machines are shared and noisy, so absolute figures mean little; each one is set beside a
baseline measured in the same run on the same machine (and, for the HTTP and Redis figures, on
the same uvicorn settings and the same redis-server), and most are the best of several
repeats. Nothing here is asserted: the tests check correctness, this table tracks speed.

Sections, in the order they run:

1. the pure core (bandit simulation, tests, analysis), against a bare reward-draw loop and a
   z-test;
2. in-process routing decisions (:class:`abscope.assignment.Router`), against bare
   ``hashlib.sha256`` calls (``benchmarks/assignment.py`` has more cases), and the SDK's
   local decisions with their exposures queued, against the router (``benchmarks/sdk.py``);
3. batch ingest through ``Store.record_events``, against pipelined ``HINCRBY`` on the same
   redis-server, with the redis-server's CPU per event (``benchmarks/ingest.py``);
4. HTTP under uvicorn, against a raw ASGI app, a trivial FastAPI endpoint and the seed's
   ``/log`` served the same way, ``/events`` against section 3's pipelined ``HINCRBY``, and
   what the defaults (no access log, a tuned collector) save, and what the metrics cost
   (``benchmarks/http.py``);
5. ``abscope serve --workers 2`` against ``--workers 1`` on ``/log``, with the connections
   each worker held (``benchmarks/workers.py``);
6. bytes each store keeps per user and per event id, and after the event-id window
   (``benchmarks/memory.py``);
7. the guardrail monitor's seeded simulation: false pauses on A/A traffic and at the margin
   looked at every minute for two weeks, and the users per arm at the pause of a treatment
   20% slower, against the prediction (``benchmarks/monitor.py``; figures, not speed);
8. the A/A gate, larger than the test suite's: seeded A/A traffic routed, logged and analysed
   through a real server's API every simulated day, with the realised rate of declared
   winners and of SRM alarms (``benchmarks/aa_gate.py``; figures, not speed).

A redis-server of our own is started on a free port for sections 3 to 6, and stopped at the
end. In the ratio column a time is divided by its baseline's time (higher is slower) and a
rate by its baseline's rate (higher is faster).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tests.fixtures.aa_gate import monte_carlo_bound

from abscope.assignment import AssignmentConfig, Router
from abscope.bandits import (
    EpsilonGreedyConfig,
    FixedSplitConfig,
    ThompsonConfig,
    UCB1Config,
    select_arms,
    simulate,
)
from abscope.stats import ProportionStats, analyze_experiment
from abscope.stats.proportions import two_proportion_ztest
from benchmarks import aa_gate, assignment, http, ingest, memory, monitor, sdk, workers

RUNS, HORIZON, RATES = 200, 10_000, (0.05, 0.10)
ROUTING_USERS = 300_000
ROUTING_TARGET = 1_000_000  # decisions per second
INGEST_TARGET = 100_000  # events per second
ROUTE_TARGET = 0.8  # of the trivial FastAPI endpoint's rate
LOG_SEED_TARGET = 2.0  # /log against the seed's /log
LOG_TARGET = 0.7  # /log against the trivial FastAPI endpoint
EVENTS_TARGET = 0.5  # /events over HTTP against pipelined HINCRBY, 1,000 per pipeline
WORKERS_TARGET = 1.6  # /log with 2 workers against 1


@dataclass(frozen=True)
class Row:
    """One line of the table; a ``label`` alone is a section heading."""

    label: str
    figure: str = ""
    p99: str = ""
    cpu: str = ""
    ratio: str = ""
    target: str = ""


CORE_REPEATS = 3  # best of 3 for the core timings (the routing table takes best of 5)


def per_call(fn: Callable[[], object], calls: int) -> float:
    """Seconds per call over ``calls`` calls (best of 3)."""

    def loop() -> None:
        for _ in range(calls):
            fn()

    return assignment.best_of(loop, CORE_REPEATS) / calls


def reward_draw_baseline() -> None:
    """The floor any simulator pays: one Bernoulli reward per run and step, in a Python loop."""
    rng = np.random.default_rng(0)
    rates = np.asarray(RATES)
    arms = np.zeros(RUNS, dtype=np.intp)
    wins = np.zeros(RUNS)
    for _ in range(HORIZON):
        wins += rng.random(RUNS) < rates[arms]


def _verdict(met: bool, target: str) -> str:
    return f"{target}: {'met' if met else 'MISSED'}"


def core_rows() -> list[Row]:
    rows = [Row("Core, in-process (best of 3)")]
    baseline = assignment.best_of(reward_draw_baseline, CORE_REPEATS)
    rows.append(Row("reward draws only (baseline)", f"{baseline:.3f} s", ratio="1.00x"))
    for name, policy in (
        ("simulate fixed 50/50", FixedSplitConfig.uniform(2)),
        ("simulate epsilon-greedy", EpsilonGreedyConfig()),
        ("simulate UCB1", UCB1Config()),
        ("simulate Thompson", ThompsonConfig()),
    ):
        seconds = assignment.best_of(
            lambda p=policy: simulate(p, RATES, HORIZON, RUNS, seed=1),  # type: ignore[misc]
            CORE_REPEATS,
        )
        rows.append(
            Row(
                f"{name} ({RUNS} runs x {HORIZON:,} steps)",
                f"{seconds:.3f} s",
                ratio=f"{seconds / baseline:.2f}x",
            )
        )

    rng = np.random.default_rng(0)
    pulls, rewards = np.array([[1000.0, 1200.0]]), np.array([[50.0, 130.0]])
    choice = per_call(lambda: select_arms(ThompsonConfig(), pulls, rewards, rng), 5000)
    ztest = per_call(
        lambda: two_proportion_ztest(ProportionStats(10_000, 1000), ProportionStats(10_000, 1100)),
        5000,
    )
    analysis = per_call(
        lambda: analyze_experiment(
            {"a": ProportionStats(10_000, 1000), "b": ProportionStats(10_000, 1100)},
            [0.5, 0.5],
        ),
        50,
    )
    rows.append(Row("two-proportion z-test (baseline)", f"{ztest * 1e6:.1f} us", ratio="1.00x"))
    rows.append(
        Row(
            "Thompson choice from shared counts",
            f"{choice * 1e6:.1f} us",
            ratio=f"{choice / ztest:.2f}x",
        )
    )
    rows.append(
        Row("full 2-variant analysis", f"{analysis * 1e3:.2f} ms", ratio=f"{analysis / ztest:.0f}x")
    )
    return rows


def routing_rows() -> list[Row]:
    users = [f"user-{i}" for i in range(ROUTING_USERS)]

    def bare_sha256() -> None:
        sha256 = hashlib.sha256
        for user in users:
            sha256(user.encode() + b":checkout:0:variant").digest()

    router = Router(AssignmentConfig("checkout", ("control", "treatment"), (0.5, 0.5)))
    sha = ROUTING_USERS / assignment.best_of(bare_sha256)
    choose = ROUTING_USERS / assignment.best_of(assignment.loop_over(users, router.choose))
    return [
        Row(
            f"Routing decisions, in-process ({ROUTING_USERS:,} user ids, best of "
            f"{assignment.REPEATS})"
        ),
        Row(
            "bare sha256(user.encode() + salt).digest() (baseline)", f"{sha:,.0f} /s", ratio="1.00x"
        ),
        Row(
            "Router.choose: 2 variants, 100% traffic",
            f"{choose:,.0f} /s",
            ratio=f"{choose / sha:.2f}x",
            target=_verdict(choose >= ROUTING_TARGET, f">= {ROUTING_TARGET:,}/s"),
        ),
    ]


def sdk_rows() -> list[Row]:
    baseline, figures = sdk.run()
    rows = [
        Row(
            f"SDK local decisions ({sdk.USERS:,} users, CPU time, best of {sdk.REPEATS} "
            "interleaved rounds)"
        ),
        Row("Router.choose, same users (baseline)", f"{baseline:,.0f} /s", ratio="1.00x"),
    ]
    for index, figure in enumerate(figures):
        target = _verdict(figure.ratio >= sdk.TARGET, f">= {sdk.TARGET}x") if index == 0 else ""
        rows.append(
            Row(figure.label, f"{figure.rate:,.0f} /s", ratio=f"{figure.ratio:.2f}x", target=target)
        )
    return rows


def ingest_rows(figures: dict[str, ingest.IngestFigure]) -> list[Row]:
    rows = [
        Row(
            f"Batch ingest, {ingest.EVENTS:,} events per run (best of {ingest.REPEATS}); "
            "Redis: our own redis-server, same client"
        )
    ]
    for batch in (ingest.BATCH, ingest.SMALL_BATCH):
        baseline, lua = figures[f"hincrby-{batch}"], figures[f"redis-{batch}"]
        rows.append(
            Row(f"{baseline.label} (baseline)", f"{baseline.rate:,.0f} ev/s", ratio="1.00x")
        )
        redis_cpu = "" if lua.redis_cpu is None else f"redis {lua.redis_cpu * 1e6:.1f} us/ev"
        rows.append(
            Row(
                lua.label,
                f"{lua.rate:,.0f} ev/s",
                cpu=redis_cpu,
                ratio=f"{lua.rate / baseline.rate:.2f}x",
                target=_verdict(lua.rate >= INGEST_TARGET, f">= {INGEST_TARGET:,}/s"),
            )
        )
    sqlite = figures[f"sqlite-{ingest.BATCH}"]
    rows.append(Row(f"{sqlite.label} (reference)", f"{sqlite.rate:,.0f} ev/s"))
    return rows


def http_rows(workdir: Path, redis_url: str, hincrby: ingest.IngestFigure) -> list[Row]:
    measured = http.run(workdir, redis_url)
    figures = http.best(measured)

    def rate(key: str) -> float:
        return figures[key].result.rate

    def row(key: str, baseline: str | None = None, target: str = "", per: int = 1) -> Row:
        figure = figures[key]
        r = figure.result
        ratio = ""
        if baseline is not None:
            ratio = f"{r.rate / figures[baseline].result.rate:.2f}x"
        errors = f" ({r.errors} errors: {r.first_error[:60]})" if r.errors else ""
        unit = "req/s" if per == 1 else "ev/s"
        return Row(
            figure.label + errors,
            f"{r.rate * per:,.0f} {unit}",
            f"{r.p99_ms:.1f} ms",
            f"{r.server_cpu * 1e6 / r.rate / per:,.1f} us" + ("" if per == 1 else "/ev"),
            ratio,
            target,
        )

    def cpu(key: str, baseline: str) -> str:
        """CPU per request of ``key`` over that of ``baseline``."""
        a, b = figures[key].result, figures[baseline].result
        return f"{(a.server_cpu / a.rate) / (b.server_cpu / b.rate):.2f}x"

    def versus(key: str, baseline: str, target: float, name: str) -> str:
        return _verdict(rate(key) >= target * rate(baseline), f">= {target}x {name}")

    def log_targets(key: str) -> str:
        """The two ``/log`` targets of ``key``, and its ratio to the seed's ``/log``."""
        return " and ".join(
            [
                versus(key, "seed-log", LOG_SEED_TARGET, "the seed's /log"),
                versus(key, "async", LOG_TARGET, "trivial async"),
                f"{rate(key) / rate('seed-log'):.2f}x the seed",
            ]
        )

    route, trivial = rate("route-1-id"), rate("async")
    client_cpu = max(f.result.client_cpu for f in measured)
    events = row("events-redis", target="")
    events_ratio = rate("events-redis") * http.EVENTS_BATCH / hincrby.rate
    events = Row(
        events.label,
        events.figure,
        events.p99,
        events.cpu,
        f"{events_ratio:.2f}x",
        _verdict(events_ratio >= EVENTS_TARGET, f">= {EVENTS_TARGET}x pipelined HINCRBY"),
    )
    return [
        Row(
            f"HTTP: uvicorn, 1 worker, asyncio + h11, no access log; {http.CONNECTIONS} "
            f"keep-alive connections from another process ({http.EVENTS_CONNECTIONS} for "
            f"/events); {http.DURATION:g} s windows (load generator used at most "
            f"{client_cpu:.0%} of a core); ratios against the baseline named in the target, "
            "or the trivial async POST"
        ),
        row("raw", "async"),
        row("async", "async"),
        row("sync", "async"),
        row("seed-log", "async"),
        row(
            "route-1-id",
            "async",
            _verdict(route >= ROUTE_TARGET * trivial, f">= {ROUTE_TARGET}x trivial async"),
        ),
        row("route-1-repeat", "async"),
        row("route-1-peek", "async"),
        row("route-1-all", "async"),
        row("route-100-id", "route-1-id", f"flat: CPU/req {cpu('route-100-id', 'route-1-id')}"),
        row(
            "route-100-all",
            "route-1-all",
            f"walks all {http.EXPERIMENTS}: CPU/req {cpu('route-100-all', 'route-1-all')}",
        ),
        row("log-redis", "async", log_targets("log-redis")),
        row("log-sqlite", "async", log_targets("log-sqlite")),
        events,
        Row("What the defaults save (each against the same path with the defaults)"),
        row("route-logged", "route-1-id", f"CPU/req {cpu('route-logged', 'route-1-id')}"),
        row("log-logged", "log-redis", f"CPU/req {cpu('log-logged', 'log-redis')}"),
        row("log-untuned", "log-redis", f"CPU/req {cpu('log-untuned', 'log-redis')}"),
        row(
            "events-untuned",
            "events-redis",
            f"CPU/ev {cpu('events-untuned', 'events-redis')}",
            per=http.EVENTS_BATCH,
        ),
        Row("What metrics cost (the same path with metrics on, the default, then off)"),
        row("route-metered", "route-unmetered"),
        row(
            "route-unmetered",
            "route-unmetered",
            f"on/off: rate {rate('route-metered') / rate('route-unmetered'):.2f}x,"
            f" CPU/req {cpu('route-metered', 'route-unmetered')}",
        ),
        row("events-metered", "events-unmetered", per=http.EVENTS_BATCH),
        row(
            "events-unmetered",
            "events-unmetered",
            f"on/off: rate {rate('events-metered') / rate('events-unmetered'):.2f}x,"
            f" CPU/ev {cpu('events-metered', 'events-unmetered')}",
            per=http.EVENTS_BATCH,
        ),
    ]


def workers_rows(workdir: Path, redis_url: str) -> list[Row]:
    figures = workers.best(workers.run(workdir, redis_url))
    one = figures[1].rate
    rows = [
        Row(
            f"Workers: abscope serve, POST /log (Redis), {workers.CONNECTIONS} connections, "
            f"best of {workers.ROUNDS}; CPU summed over the workers"
        )
    ]
    for count, figure in figures.items():
        r = figure.result
        held = "/".join(str(n) for n in figure.connections)
        target = f"connections per worker {held}"
        if count > 1:
            met = r.rate >= WORKERS_TARGET * one
            target = f"{_verdict(met, f'>= {WORKERS_TARGET}x 1 worker')}; {target}"
        rows.append(
            Row(
                f"--workers {count}" + (" (baseline)" if count == 1 else ""),
                f"{r.rate:,.0f} req/s",
                f"{r.p99_ms:.1f} ms",
                f"{figure.cpu_per_request * 1e6:,.0f} us",
                f"{r.rate / one:.2f}x",
                target,
            )
        )
    return rows


def memory_rows(workdir: Path, redis_url: str) -> list[Row]:
    figures = [memory.measure_redis(redis_url), memory.measure_sqlite(workdir)]
    rows = [
        Row(
            f"Storage: {memory.USERS:,} users, an exposure and a conversion each, every event"
            " with an event_id"
        )
    ]
    for f in figures:
        rows += [
            Row(
                f"{f.backend}: bytes per user while its event ids are remembered",
                f"{f.with_ids:,.0f} B",
            ),  # fmt: skip
            Row(
                f"{f.backend}: bytes per user after the event-id window",
                f"{f.after_window:,.0f} B",
                ratio=f"{f.after_window / f.with_ids:.2f}x",
            ),  # fmt: skip
            Row(
                f"{f.backend}: bytes per event id (kept forever before the window)",
                f"{f.per_event_id:,.0f} B",
            ),  # fmt: skip
        ]
    return rows


def monitor_rows() -> list[Row]:
    alpha, rates, d = monitor.run()
    rows = [
        Row(
            f"Guardrail monitor, seeded: latency per request, {monitor.MARGIN:.0%} margin,"
            f" {monitor.RUNS:,} runs each, looked at every minute"
        )
    ]
    for r in rates:
        rows.append(
            Row(
                f"{r.label}: false pauses over two weeks ({r.looks:,} looks)",
                f"{r.rate:.4f} ± {r.error:.4f}",
                target=_verdict(r.rate <= alpha, f"<= alpha {alpha:.2f}")
                + f"; upper 95% {r.upper_95:.4f}",
            )
        )
    for label, measured, predicted in (
        ("median", d.median, d.predicted_median),
        ("80th percentile", d.q80, d.predicted_q80),
    ):
        ratio = measured / predicted
        rows.append(
            Row(
                f"20% slower: users per arm at the pause, {label}",
                f"{measured:,.0f}",
                ratio=f"{ratio:.2f}x",
                target=_verdict(abs(ratio - 1) <= 0.25, f"predicted {predicted:,.0f} +-25%"),
            )
        )
    return rows


def aa_gate_rows() -> list[Row]:
    outcome, seconds = aa_gate.run()
    g = outcome.gate
    winners = outcome.share(outcome.winners)
    sequential = outcome.share(outcome.sequential_alarms)
    bound = monte_carlo_bound(g.alpha, g.experiments)
    srm_bound = monte_carlo_bound(outcome.threshold, g.experiments)
    return [
        Row(
            f"A/A gate through a real server: {g.experiments} experiments, {g.days} daily"
            f" looks, {g.users_per_day} users a day, sequential on ({seconds:.0f} s)"
        ),
        Row(
            "winner declared at any look",
            f"{winners:.3f}",
            target=_verdict(winners <= bound, f"<= alpha {g.alpha} + 2 MC errors = {bound:.3f}"),
        ),
        Row(
            "always-valid SRM alarm at any look",
            f"{sequential:.3f}",
            target=_verdict(sequential <= srm_bound, f"<= {srm_bound:.3f}"),
        ),
        Row(
            "daily chi-square SRM alarm at any look (not valid under peeking)",
            f"{outcome.share(outcome.daily_alarms):.3f}",
        ),
    ]


def print_table(rows: list[Row]) -> None:
    header = Row("benchmark", "figure", "p99", "server CPU/req", "ratio", "target")
    items = [r for r in rows if r.figure]
    widths = [
        max(len(getattr(r, name)) for r in [header, *items])
        for name in ("label", "figure", "p99", "cpu", "ratio")
    ]

    def line(r: Row) -> str:
        cells = (
            r.label.ljust(widths[0]),
            r.figure.rjust(widths[1]),
            r.p99.rjust(widths[2]),
            r.cpu.rjust(widths[3]),
            r.ratio.rjust(widths[4]),
            r.target,
        )
        return "  ".join(cells).rstrip()

    print(line(header))
    for r in rows:
        print(line(r) if r.figure else f"-- {r.label}")
    print(
        "ratio: a time over its baseline's time (higher is slower), a rate over its baseline's"
        " rate (higher is faster); 'trivial async' is the FastAPI baseline"
    )


def main() -> None:
    started = time.perf_counter()
    from tests.fixtures.redis_servers import RedisServer

    rows = core_rows() + routing_rows() + sdk_rows()
    with tempfile.TemporaryDirectory(prefix="abscope-bench-") as directory:
        workdir = Path(directory)
        with RedisServer(workdir / "redis") as redis_server:
            ingested = {f.key: f for f in ingest.run(workdir, redis_server.url)}
            rows += ingest_rows(ingested)
            rows += http_rows(workdir, redis_server.url, ingested[f"hincrby-{ingest.BATCH}"])
            rows += workers_rows(workdir, redis_server.url)
            rows += memory_rows(workdir, redis_server.url)
    rows += monitor_rows()
    rows += aa_gate_rows()
    print_table(rows)
    print(f"measured in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
