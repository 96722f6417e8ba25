"""The guardrail monitor's seeded simulation, bigger than the tests': false pauses on A/A
traffic and at the margin, looked at every minute for two weeks, and the users per arm at
the pause of a treatment 20% slower per request, against the sequential power calculation.

The traffic and the vectorised judgement are ``tests/fixtures/monitor_simulation.py``,
whose judgement ``tests/unit/test_monitor_simulation.py`` checks against
``metric_analysis.guardrail_checks`` and ``Monitor.run_once``. Latency per request, a 5%
margin, α = 0.05 one-sided, 100 users per arm before any verdict.

Run alone with ``PYTHONPATH=src:. .venv/bin/python -m benchmarks.monitor``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy import stats as sp
from tests.fixtures.monitor_simulation import (
    Traffic,
    boundaries,
    first_breach,
    judge,
    population_cv,
    simulate_run,
    simulation_experiment,
)

from abscope.metric_analysis import guardrail_alpha
from abscope.stats.guardrail_power import sequential_guardrail_sample_size

__all__ = ["DetectionFigure", "PauseRate", "main", "run"]

RUNS = 2000
MARGIN, LIFT, MIN_SAMPLES = 0.05, 0.20, 100
TWO_WEEKS = Traffic(users_per_day=500, days=14)  # about 7,000 users per arm
WORSE = Traffic(users_per_day=1000, days=2)


@dataclass(frozen=True)
class PauseRate:
    label: str
    paused: int
    runs: int
    looks: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.paused / self.runs

    @property
    def error(self) -> float:
        """The Monte Carlo standard error of the rate."""
        return math.sqrt(self.rate * (1 - self.rate) / self.runs)

    @property
    def upper_95(self) -> float:
        """Clopper–Pearson upper 95% bound."""
        if self.paused == self.runs:
            return 1.0
        return float(sp.beta.ppf(0.975, self.paused + 1, self.runs - self.paused))


@dataclass(frozen=True)
class DetectionFigure:
    runs: int
    detected: int
    median: float
    predicted_median: float
    q80: float
    predicted_q80: float
    cv: float
    seconds: float


def _pause_rate(label: str, lift: float, seed: int, c: np.ndarray, alpha: float) -> PauseRate:
    started = time.perf_counter()
    looks = np.arange(1, TWO_WEEKS.looks + 1)
    paused = 0
    for r in range(RUNS):
        run = simulate_run([seed, r], TWO_WEEKS, lift)
        breach, *_ = judge(
            run.control.at(looks),
            run.treatment.at(looks),
            margin=MARGIN,
            alpha=alpha,
            min_samples=MIN_SAMPLES,
            c=c,
        )
        paused += bool(breach.any())
    return PauseRate(label, paused, RUNS, looks.size, time.perf_counter() - started)


def _detection(c: np.ndarray, alpha: float) -> DetectionFigure:
    started = time.perf_counter()
    looks = np.arange(1, WORSE.looks + 1)
    users = []
    for r in range(RUNS):
        run = simulate_run([20261213, r], WORSE, LIFT)
        control, treatment = run.control.at(looks), run.treatment.at(looks)
        breach, *_ = judge(
            control, treatment, margin=MARGIN, alpha=alpha, min_samples=MIN_SAMPLES, c=c
        )
        hit = first_breach(breach)
        users.append(math.inf if hit is None else (control[hit, 0] + treatment[hit, 0]) / 2)
    cv = population_cv(WORSE)

    def predicted(probability: float) -> float:
        return sequential_guardrail_sample_size(
            LIFT,
            MARGIN,
            cv_control=cv,
            higher_is_better=False,
            target="breach",
            probability=probability,
            alpha=alpha,
        )

    return DetectionFigure(
        RUNS,
        sum(math.isfinite(u) for u in users),
        float(np.median(users)),
        predicted(0.5),
        float(np.quantile(users, 0.8)),
        predicted(0.8),
        cv,
        time.perf_counter() - started,
    )


def run() -> tuple[float, list[PauseRate], DetectionFigure]:
    """The guardrail's α, the two false-pause rates and the detection figure."""
    alpha = guardrail_alpha(simulation_experiment(margin=MARGIN))
    c = boundaries(40_000, alpha)
    rates = [
        _pause_rate("A/A", 0.0, 20261211, c, alpha),
        _pause_rate("at the margin (5% slower)", MARGIN, 20261212, c, alpha),
    ]
    return alpha, rates, _detection(c, alpha)


def main() -> None:
    alpha, rates, detection = run()
    for r in rates:
        print(
            f"{r.label}: {r.paused}/{r.runs} runs paused over {r.looks:,} looks each, rate "
            f"{r.rate:.4f} ± {r.error:.4f} (upper 95% {r.upper_95:.4f}; alpha {alpha:.2f}) "
            f"in {r.seconds:.1f} s"
        )
    d = detection
    print(
        f"20% slower: {d.detected}/{d.runs} paused; median {d.median:.0f} users per arm "
        f"(predicted {d.predicted_median:.0f}, {d.median / d.predicted_median - 1:+.1%}), "
        f"80th percentile {d.q80:.0f} (predicted {d.predicted_q80:.0f}, "
        f"{d.q80 / d.predicted_q80 - 1:+.1%}); cv {d.cv:.3f}; {d.seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
