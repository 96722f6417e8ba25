"""Monte Carlo comparison of allocation policies on Bernoulli arms with known rates.

:func:`simulate` plays ``runs`` independent copies of an experiment for ``horizon`` requests.
There is one Python loop over the steps; within a step every run is handled at once by
:func:`~abscope.bandits.policies.select_arms`, the same function that serves a single request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from abscope.bandits.policies import FloatArray, PolicyConfig, _check_arms, select_arms
from abscope.stats._validate import check_count, check_probability

__all__ = ["SimulationResult", "simulate"]


@dataclass(frozen=True, slots=True, eq=False)
class SimulationResult:
    """Regret and allocation of one policy, averaged over independent runs.

    The arrays are read-only. Results compare by identity (arrays have no single truth value).

    Attributes
    ----------
    policy : PolicyConfig
        The simulated policy.
    true_rates : tuple of float
        Success rate of each arm.
    horizon, runs, seed : int
        Steps per run, number of runs and the seed of the generator.
    mean_cumulative_regret : ndarray, shape (horizon,)
        Pseudo-regret after ``t + 1`` steps, averaged over runs.
    final_regret : ndarray, shape (runs,)
        Pseudo-regret of each run after ``horizon`` steps.
    final_regret_se : float
        Standard error of the mean final regret, ``std(final_regret, ddof=1) / sqrt(runs)``.
    allocation : ndarray, shape (horizon, K)
        Share of the first ``t + 1`` pulls that went to each arm, averaged over runs; each row
        sums to 1.
    """

    policy: PolicyConfig
    true_rates: tuple[float, ...]
    horizon: int
    runs: int
    seed: int
    mean_cumulative_regret: FloatArray
    final_regret: FloatArray
    final_regret_se: float
    allocation: FloatArray

    @property
    def final_regret_mean(self) -> float:
        """Mean pseudo-regret after ``horizon`` steps."""
        return float(np.mean(self.final_regret))


def simulate(
    policy: PolicyConfig,
    true_rates: ArrayLike,
    horizon: int,
    runs: int,
    seed: int,
) -> SimulationResult:
    """Simulate a policy on Bernoulli arms and measure its pseudo-regret.

    Parameters
    ----------
    policy : PolicyConfig
        The allocation policy, e.g. ``ThompsonConfig()`` or ``FixedSplitConfig.uniform(K)``.
    true_rates : array_like, shape (K,)
        Success probability of each of the ``K`` arms, in ``[0, 1]``.
    horizon : int
        Requests per run, ``>= 1``.
    runs : int
        Independent runs, ``>= 2`` (the standard error needs two).
    seed : int
        Seed of the single ``numpy.random.default_rng`` that drives both the policy and the
        rewards; the same seed gives the same result.

    Returns
    -------
    SimulationResult

    Notes
    -----
    Each run starts with zero counts. At step ``t`` every run chooses an arm ``A_t`` with
    :func:`~abscope.bandits.policies.select_arms`, receives a Bernoulli(``mu_{A_t}``) reward
    and updates its counts. The pseudo-regret after ``T`` steps is

    .. math:: R_T = \\sum_{t=1}^{T} (\\mu^* - \\mu_{A_t}), \\qquad \\mu^* = \\max_i \\mu_i,

    which depends on the choices only, not on the reward noise (Lattimore and Szepesvari 2020,
    chapter 4; Bubeck and Cesa-Bianchi 2012, section 1). It is non-decreasing in ``T``. A
    fixed split with weights ``w`` has expected regret ``T * sum_i w_i (mu^* - mu_i)``.

    References
    ----------
    Lattimore, T. and Szepesvari, C. (2020). *Bandit Algorithms*. Cambridge University Press.

    Bubeck, S. and Cesa-Bianchi, N. (2012). Regret analysis of stochastic and nonstochastic
    multi-armed bandit problems. *Foundations and Trends in Machine Learning* 5(1), 1-122.

    Examples
    --------
    >>> from abscope.bandits.policies import FixedSplitConfig
    >>> result = simulate(FixedSplitConfig.uniform(2), [0.05, 0.10], horizon=100, runs=50, seed=1)
    >>> result.mean_cumulative_regret.shape, result.allocation.shape
    ((100,), (100, 2))
    >>> round(result.final_regret_mean, 2)  # expected 100 * 0.5 * 0.05 = 2.5
    2.46
    """
    rates = _check_rates(true_rates)
    n_arms = rates.size
    _check_arms(policy, n_arms, "true_rates")
    steps = check_count("horizon", horizon)
    if steps < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon!r}")
    n_runs = check_count("runs", runs)
    if n_runs < 2:
        raise ValueError(f"runs must be at least 2 (for a standard error), got {runs!r}")
    seed_ = check_count("seed", seed)

    rng = np.random.default_rng(seed_)
    gaps = rates.max() - rates
    pulls = np.zeros((n_runs, n_arms))
    rewards = np.zeros((n_runs, n_arms))
    run_regret = np.zeros(n_runs)
    chosen = np.zeros((steps, n_arms), dtype=np.int64)  # runs choosing each arm at each step
    rows = np.arange(n_runs)
    for step in range(steps):
        arms = select_arms(policy, pulls, rewards, rng)
        success = rng.random(n_runs) < rates[arms]
        pulls[rows, arms] += 1.0
        rewards[rows, arms] += success
        run_regret += gaps[arms]
        chosen[step] = np.bincount(arms, minlength=n_arms)

    mean_cumulative_regret = np.cumsum(chosen @ gaps) / n_runs
    elapsed = np.arange(1, steps + 1, dtype=np.float64)[:, np.newaxis]
    allocation = np.cumsum(chosen, axis=0) / (n_runs * elapsed)
    for array in (mean_cumulative_regret, run_regret, allocation):
        array.setflags(write=False)
    return SimulationResult(
        policy=policy,
        true_rates=tuple(float(r) for r in rates),
        horizon=steps,
        runs=n_runs,
        seed=seed_,
        mean_cumulative_regret=mean_cumulative_regret,
        final_regret=run_regret,
        final_regret_se=float(np.std(run_regret, ddof=1) / math.sqrt(n_runs)),
        allocation=allocation,
    )


def _check_rates(true_rates: ArrayLike) -> FloatArray:
    try:
        values = np.asarray(true_rates, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"true_rates must be a sequence of rates, got {true_rates!r}") from None
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"true_rates must be a non-empty 1-D sequence, got shape {values.shape}")
    for i, rate in enumerate(values.tolist()):
        check_probability(f"true_rates[{i}]", rate)
    return values
