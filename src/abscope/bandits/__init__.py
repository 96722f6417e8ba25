"""Adaptive allocation (multi-armed bandits) and a simulator: pure, numpy and scipy only.

Policies are immutable configs; their state is plain per-arm counts (``pulls``, ``rewards``)
that a store can share between workers. :mod:`abscope.bandits.policies` turns config and counts
into allocation probabilities and choices, :mod:`abscope.bandits.stateful` wraps them with
in-memory counts for single-process use, and :mod:`abscope.bandits.simulator` compares
policies by their regret.
"""

from abscope.bandits.policies import (
    ArmChoice,
    EpsilonGreedyConfig,
    FixedSplitConfig,
    PolicyConfig,
    ThompsonConfig,
    UCB1Config,
    allocation_probabilities,
    choose_arm,
    select_arms,
)
from abscope.bandits.simulator import SimulationResult, simulate
from abscope.bandits.stateful import UCB1, Bandit, EpsilonGreedy, ThompsonSampling

__all__ = [
    "ArmChoice",
    "Bandit",
    "EpsilonGreedy",
    "EpsilonGreedyConfig",
    "FixedSplitConfig",
    "PolicyConfig",
    "SimulationResult",
    "ThompsonConfig",
    "ThompsonSampling",
    "UCB1",
    "UCB1Config",
    "allocation_probabilities",
    "choose_arm",
    "select_arms",
    "simulate",
]
