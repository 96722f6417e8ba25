"""``abscope simulate``: the bandit policies' regret on given true rates, simulated here.

It runs the simulator of :mod:`abscope.bandits.simulator` (what ``POST /charts/simulate``
runs on the server) in chunks of :data:`CHUNK_RUNS` runs, so that a progress bar can move,
and pools the chunks: the mean final regret over every run, its standard error and the
share of the pulls that went to the best arm. Chunk ``i`` is seeded with
``SeedSequence([seed, i])``, the same for every policy (as the server gives every policy the
same seed), so one ``--seed`` gives the same table whether or not the bar is shown; the
figures are not the server's for the same seed, which simulates all runs in one chunk.
NumPy is imported when the command runs.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Annotated

import typer

from abscope.cli.tables import json_text, table

if TYPE_CHECKING:
    from abscope.bandits.policies import PolicyConfig

__all__ = [
    "CHUNK_RUNS",
    "POLICIES",
    "Policy",
    "PolicyRegret",
    "chunk_sizes",
    "simulate",
    "simulate_policies",
]


class Policy(StrEnum):
    """The policies ``--policy`` names."""

    EPSILON_GREEDY = "epsilon-greedy"
    UCB1 = "ucb1"
    THOMPSON = "thompson"
    FIXED_SPLIT = "fixed-split"


CHUNK_RUNS = 10
"""Runs simulated at once: the progress bar moves after each chunk."""

POLICIES = {
    "epsilon-greedy": "Epsilon-greedy",
    "ucb1": "UCB1",
    "thompson": "Thompson",
    "fixed-split": "Fixed split",
}
"""The option's values and the names the server's simulation gives the policies."""


@dataclass(frozen=True, slots=True)
class PolicyRegret:
    """One policy's pooled figures over every run."""

    policy: str
    final_regret_mean: float
    final_regret_se: float
    best_arm_share: float


def chunk_sizes(runs: int, chunk: int = CHUNK_RUNS) -> list[int]:
    """``runs`` split into chunks of ``chunk`` runs, a last chunk of one run merged into the
    one before (the simulator needs two runs for a standard error)."""
    sizes = [chunk] * (runs // chunk) + ([runs % chunk] if runs % chunk else [])
    if len(sizes) > 1 and sizes[-1] < 2:
        last = sizes.pop()
        sizes[-1] += last
    return sizes


def _policy(key: str, arms: int) -> PolicyConfig:
    from abscope.bandits.policies import (
        EpsilonGreedyConfig,
        FixedSplitConfig,
        ThompsonConfig,
        UCB1Config,
    )

    if key == "epsilon-greedy":
        return EpsilonGreedyConfig()
    if key == "ucb1":
        return UCB1Config()
    if key == "thompson":
        return ThompsonConfig()
    return FixedSplitConfig.uniform(arms)


def simulate_policies(
    policies: Sequence[str],
    rates: Sequence[float],
    horizon: int,
    runs: int,
    seed: int,
    advance: Callable[[int], None] = lambda runs: None,
) -> list[PolicyRegret]:
    """Each policy (keys of :data:`POLICIES`) simulated in chunks; ``advance(n)`` after each
    chunk of ``n`` runs.

    Raises
    ------
    ValueError
        From the simulator, naming the argument (``true_rates[1]``, ``horizon``...).
    """
    import numpy as np

    from abscope.bandits.simulator import simulate as run

    sizes = chunk_sizes(runs)
    seeds = [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(len(sizes))]
    best = int(np.argmax(rates))
    pooled = []
    for key in policies:
        config = _policy(key, len(rates))
        finals, best_pulls = [], 0.0
        for size, chunk_seed in zip(sizes, seeds, strict=True):
            result = run(config, rates, horizon, size, chunk_seed)
            finals.append(result.final_regret)
            best_pulls += float(result.allocation[-1, best]) * size
            advance(size)
        regret = np.concatenate(finals)
        pooled.append(
            PolicyRegret(
                policy=POLICIES[key],
                final_regret_mean=float(regret.mean()),
                final_regret_se=float(regret.std(ddof=1) / math.sqrt(regret.size)),
                best_arm_share=best_pulls / runs,
            )
        )
    return pooled


class _Bar:
    """A one-line progress bar on a stream, redrawn in place."""

    def __init__(self, total: int, stream: IO[str], width: int = 30) -> None:
        self.total, self.done, self.stream, self.width = total, 0, stream, width

    def advance(self, step: int) -> None:
        self.done += step
        filled = round(self.width * self.done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\rsimulating [{bar}] {self.done:,}/{self.total:,} runs")
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def _rates(text: str) -> list[float]:
    try:
        rates = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected rates like 0.05,0.1, got {text!r}") from None
    if len(rates) < 2:
        raise typer.BadParameter("give at least two arms' rates, e.g. 0.05,0.1")
    return rates


def simulate(
    rates: Annotated[
        str,
        typer.Option(
            "--rates",
            metavar="RATE,RATE[,...]",
            help="Each arm's true conversion rate, comma-separated: 0.05,0.1.",
            show_default=False,
        ),
    ],
    horizon: Annotated[int, typer.Option(min=1, help="Users per simulated run.")] = 1000,
    runs: Annotated[int, typer.Option(min=2, help="Independent runs.")] = 50,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Seed of the runs.")] = 0,
    policy: Annotated[
        list[Policy] | None,
        typer.Option(
            metavar="[epsilon-greedy|ucb1|thompson|fixed-split]",
            help="A policy to simulate (repeat it for several); all four by default.",
            show_default=False,
        ),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="A progress bar on stderr; by default when stderr is a terminal.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Simulate the bandit policies here (as the dashboard's simulator does on the server)
    and print each one's final regret: the conversions lost against always serving the
    best arm."""
    true_rates = _rates(rates)
    chosen = [p.value for p in dict.fromkeys(policy)] if policy else list(POLICIES)
    show = sys.stderr.isatty() if progress is None else progress
    bar = _Bar(len(chosen) * runs, sys.stderr) if show else None
    try:
        pooled = simulate_policies(
            chosen, true_rates, horizon, runs, seed, bar.advance if bar else lambda n: None
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    if as_json:
        body = {
            "true_rates": true_rates,
            "horizon": horizon,
            "runs": runs,
            "seed": seed,
            "chunk_runs": CHUNK_RUNS,
            "final_regret": {p.policy: p.final_regret_mean for p in pooled},
            "final_regret_se": {p.policy: p.final_regret_se for p in pooled},
            "best_arm_share": {p.policy: p.best_arm_share for p in pooled},
        }
        typer.echo(json_text(body))
        return
    rows = [
        [p.policy, f"{p.final_regret_mean:,.2f}", f"{p.final_regret_se:,.2f}",
         f"{p.best_arm_share:.1%}"]
        for p in sorted(pooled, key=lambda p: p.final_regret_mean)
    ]  # fmt: skip
    rates_text = ", ".join(f"{r:g}" for r in true_rates)
    typer.echo(
        f"{runs:,} runs of {horizon:,} users, true rates {rates_text}, seed {seed}\n"
        + table(["policy", "final regret", "std error", "best arm share"], rows)
        + "\nRegret: expected conversions lost against serving the best arm to everyone."
    )
