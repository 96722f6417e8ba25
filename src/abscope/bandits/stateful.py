"""Stateful bandits for one process: a policy config, its counts and a generator.

These classes are conveniences for notebooks, tests and single-process use. They hold the
counts in memory and delegate every decision to the stateless functions of
:mod:`abscope.bandits.policies`, so they choose exactly as a service that keeps the same
counts in a shared store. The service itself stores the counts, never these objects.
"""

from __future__ import annotations

import numpy as np

from abscope.bandits.policies import (
    ArmChoice,
    EpsilonGreedyConfig,
    FloatArray,
    PolicyConfig,
    ThompsonConfig,
    UCB1Config,
    _check_arms,
    _check_rng,
    allocation_probabilities,
    choose_arm,
    select_arms,
)
from abscope.stats._validate import check_count, check_probability

__all__ = ["Bandit", "EpsilonGreedy", "ThompsonSampling", "UCB1"]


class Bandit:
    """Any policy config with in-memory counts ``pulls`` and ``rewards`` and an injected rng.

    Parameters
    ----------
    config : PolicyConfig
        The policy (including :class:`~abscope.bandits.policies.FixedSplitConfig`).
    n_arms : int
        Number of arms ``K >= 1``; the counts start at zero.
    rng : numpy.random.Generator
        Source of all randomness, e.g. ``np.random.default_rng(seed)``.

    Examples
    --------
    >>> from abscope.bandits.policies import FixedSplitConfig
    >>> bandit = Bandit(FixedSplitConfig((0.2, 0.8)), 2, rng=np.random.default_rng(3))
    >>> arm = bandit.select_arm()
    >>> bandit.update(arm, reward=1.0)
    >>> bandit.pulls.tolist(), bandit.rewards.tolist()
    ([1.0, 0.0], [1.0, 0.0])
    """

    def __init__(self, config: PolicyConfig, n_arms: int, *, rng: np.random.Generator) -> None:
        arms = check_count("n_arms", n_arms)
        if arms < 1:
            raise ValueError(f"n_arms must be at least 1, got {n_arms!r}")
        _check_arms(config, arms, "n_arms")
        self._config = config
        self._rng = _check_rng(rng)
        self._pulls: FloatArray = np.zeros(arms)
        self._rewards: FloatArray = np.zeros(arms)

    @property
    def config(self) -> PolicyConfig:
        """The policy config."""
        return self._config

    @property
    def n_arms(self) -> int:
        """Number of arms ``K``."""
        return int(self._pulls.size)

    @property
    def pulls(self) -> FloatArray:
        """A copy of the pull counts, shape ``(K,)``."""
        return self._pulls.copy()

    @property
    def rewards(self) -> FloatArray:
        """A copy of the per-arm reward sums, shape ``(K,)``."""
        return self._rewards.copy()

    def probabilities(self) -> FloatArray:
        """Probability that each arm is chosen next (see ``allocation_probabilities``)."""
        return allocation_probabilities(self._config, self._pulls, self._rewards)

    def select_arm(self) -> int:
        """Choose the next arm (see ``select_arms``)."""
        return int(select_arms(self._config, self._pulls, self._rewards, self._rng))

    def choose(self) -> ArmChoice:
        """Choose the next arm and report its propensity (see ``choose_arm``).

        Uses the generator exactly as :meth:`select_arm` does.
        """
        return choose_arm(self._config, self._pulls, self._rewards, self._rng)

    def update(self, arm: int, reward: float) -> None:
        """Record one pull of ``arm`` (``0 <= arm < K``) with ``reward`` in ``[0, 1]``."""
        index = check_count("arm", arm)
        if index >= self.n_arms:
            raise ValueError(f"arm must be in [0, {self.n_arms - 1}], got {arm!r}")
        value = check_probability("reward", reward)
        self._pulls[index] += 1.0
        self._rewards[index] += value

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(config={self._config!r}, pulls={self._pulls.tolist()}, "
            f"rewards={self._rewards.tolist()})"
        )


class EpsilonGreedy(Bandit):
    """Epsilon-greedy with in-memory counts (see ``EpsilonGreedyConfig`` for the policy).

    Parameters
    ----------
    n_arms : int
        Number of arms.
    epsilon : float, default 0.1
        Exploration rate in ``[0, 1]``.
    floor : float, default 0.0
        Minimum share per arm, ``n_arms * floor <= 1``.
    rng : numpy.random.Generator
        Source of all randomness.

    References
    ----------
    Sutton, R. S. and Barto, A. G. (2018). *Reinforcement Learning: An Introduction*, 2nd ed.,
    section 2.4 (a simple bandit algorithm).

    Examples
    --------
    >>> bandit = EpsilonGreedy(2, epsilon=0.0, rng=np.random.default_rng(0))
    >>> for arm, reward in [(0, 0.0), (1, 1.0)]:
    ...     bandit.update(arm, reward)
    >>> bandit.select_arm()
    1
    """

    def __init__(
        self,
        n_arms: int,
        epsilon: float = 0.1,
        *,
        floor: float = 0.0,
        rng: np.random.Generator,
    ) -> None:
        super().__init__(EpsilonGreedyConfig(epsilon=epsilon, floor=floor), n_arms, rng=rng)


class UCB1(Bandit):
    """UCB1 with in-memory counts (see ``UCB1Config`` for the index formula).

    Parameters
    ----------
    n_arms : int
        Number of arms.
    floor : float, default 0.0
        Minimum share per arm, ``n_arms * floor <= 1``.
    rng : numpy.random.Generator
        Breaks ties between arms with equal indices.

    References
    ----------
    Auer, P., Cesa-Bianchi, N. and Fischer, P. (2002). Finite-time analysis of the multiarmed
    bandit problem. *Machine Learning* 47(2-3), 235-256.

    Examples
    --------
    >>> bandit = UCB1(3, rng=np.random.default_rng(0))
    >>> first = []
    >>> for _ in range(3):  # every arm is tried once before any is repeated
    ...     arm = bandit.select_arm()
    ...     bandit.update(arm, 0.5)
    ...     first.append(arm)
    >>> sorted(first)
    [0, 1, 2]
    """

    def __init__(self, n_arms: int, *, floor: float = 0.0, rng: np.random.Generator) -> None:
        super().__init__(UCB1Config(floor=floor), n_arms, rng=rng)


class ThompsonSampling(Bandit):
    """Beta-Bernoulli Thompson sampling with in-memory counts (see ``ThompsonConfig``).

    Parameters
    ----------
    n_arms : int
        Number of arms.
    prior_alpha, prior_beta : float, default 1.0
        Beta prior shared by all arms, both ``> 0``.
    floor : float, default 0.0
        Minimum share per arm, ``n_arms * floor <= 1``.
    rng : numpy.random.Generator
        Source of the posterior draws.

    References
    ----------
    Thompson, W. R. (1933). *Biometrika* 25(3-4), 285-294. Chapelle, O. and Li, L. (2011),
    NeurIPS 24. Agrawal, S. and Goyal, N. (2012), COLT, JMLR W&CP 23.

    Examples
    --------
    >>> bandit = ThompsonSampling(2, rng=np.random.default_rng(0))
    >>> bandit.update(0, 1.0)
    >>> choice = bandit.choose()
    >>> [round(p, 4) for p in choice.probabilities]  # Beta(2, 1) against Beta(1, 1)
    [0.6667, 0.3333]
    """

    def __init__(
        self,
        n_arms: int,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        *,
        floor: float = 0.0,
        rng: np.random.Generator,
    ) -> None:
        config = ThompsonConfig(prior_alpha=prior_alpha, prior_beta=prior_beta, floor=floor)
        super().__init__(config, n_arms, rng=rng)
