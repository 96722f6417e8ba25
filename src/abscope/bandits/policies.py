"""Bandit allocation policies: immutable configs and stateless choice functions.

A policy is a validated, frozen *config* (:class:`EpsilonGreedyConfig`, :class:`UCB1Config`,
:class:`ThompsonConfig`, or the non-adaptive baseline :class:`FixedSplitConfig`). Its *state*
is nothing but two arrays of plain counts, so it can live in a store and be shared by every
worker:

``pulls[..., i]``
    how many times arm ``i`` was chosen (a whole number, ``>= 0``);
``rewards[..., i]``
    the sum of the rewards arm ``i`` earned, each reward in ``[0, 1]``, so
    ``0 <= rewards <= pulls``.

Every function broadcasts over leading batch dimensions: a state of shape ``(K,)`` is one
decision, a state of shape ``(runs, K)`` is one decision per run. The simulator therefore uses
exactly the code path that serves a single request.

Three functions cover the uses:

* :func:`allocation_probabilities` gives the exact probability that each arm is chosen next;
* :func:`select_arms` draws the arms, one per row, from an injected generator;
* :func:`choose_arm` makes one decision and reports the probability with which the chosen arm
  was chosen (its propensity), so later analysis can weight the outcome by its inverse.

Exploration floor
-----------------
Every adaptive config takes a ``floor`` ``f``: each of the ``K`` arms keeps at least that share
of the traffic. With the policy's own probabilities ``p_i`` the final probabilities are

.. math:: \\pi_i = f + (1 - K f)\\, p_i, \\qquad 0 \\le K f \\le 1,

and arms are drawn accordingly: with probability ``K f`` uniformly at random, otherwise by the
policy. A floor keeps every propensity at least ``f``, which bounds inverse-propensity weights
by ``1 / f``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike
from scipy.integrate import quad_vec
from scipy.special import betainc, betaincc, betaincinv

from abscope.stats._validate import (
    check_count,
    check_positive,
    check_probability,
    check_weights,
)

__all__ = [
    "ArmChoice",
    "EpsilonGreedyConfig",
    "FixedSplitConfig",
    "PolicyConfig",
    "ThompsonConfig",
    "UCB1Config",
    "allocation_probabilities",
    "choose_arm",
    "select_arms",
]

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.intp]

_FLOOR_TOLERANCE = 1e-12
# Thompson P(best) quadrature: absolute tolerance, the quantile range left out at each end,
# the quantiles of the other arms that become breakpoints, and the smallest breakpoint gap.
_QUAD_EPSABS = 1e-10
_QUAD_TAIL = 1e-13
_QUAD_LIMIT = 2000
_BREAK_QUANTILES = np.array([1e-6, 1e-2, 0.5, 1.0 - 1e-2, 1.0 - 1e-6])
_MIN_BREAK_GAP = 1e-9
_SUM_TOLERANCE = 1e-4


@dataclass(frozen=True, slots=True)
class EpsilonGreedyConfig:
    """Epsilon-greedy: explore uniformly with probability ``epsilon``, else play the best mean.

    Parameters
    ----------
    epsilon : float, default 0.1
        Exploration rate in ``[0, 1]``.
    floor : float, default 0.0
        Minimum share of traffic per arm, ``K * floor <= 1`` (checked when ``K`` is known).

    Notes
    -----
    With ``G`` the set of greedy arms (those with the highest mean ``rewards / pulls``, or the
    arms never pulled if there are any, which count as best), the policy probabilities are

    .. math:: p_i = \\frac{\\varepsilon}{K} + (1 - \\varepsilon) \\frac{[i \\in G]}{|G|},

    i.e. ties among greedy arms are broken uniformly at random.

    References
    ----------
    Sutton, R. S. and Barto, A. G. (2018). *Reinforcement Learning: An Introduction*, 2nd ed.,
    MIT Press, sections 2.2-2.4 (epsilon-greedy action selection, incremental sample averages).

    Examples
    --------
    >>> EpsilonGreedyConfig(epsilon=0.2)
    EpsilonGreedyConfig(epsilon=0.2, floor=0.0)
    """

    epsilon: float = 0.1
    floor: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "epsilon", check_probability("epsilon", self.epsilon))
        object.__setattr__(self, "floor", check_probability("floor", self.floor))


@dataclass(frozen=True, slots=True)
class UCB1Config:
    """UCB1: play the arm with the highest upper confidence bound on its mean.

    Parameters
    ----------
    floor : float, default 0.0
        Minimum share of traffic per arm, ``K * floor <= 1`` (checked when ``K`` is known).

    Notes
    -----
    Arms never pulled are played first (uniformly at random among them). Afterwards, with
    ``n_i`` pulls of arm ``i``, mean reward ``\\bar x_i`` and ``t = \\sum_i n_i`` pulls in all,
    the policy plays the arm maximising

    .. math:: \\bar x_i + \\sqrt{\\frac{2 \\ln t}{n_i}},

    with exact ties broken uniformly at random. The choice is deterministic given the counts,
    so the policy probabilities are ``1 / |ties|`` on the maximising arms and 0 elsewhere.

    References
    ----------
    Auer, P., Cesa-Bianchi, N. and Fischer, P. (2002). Finite-time analysis of the multiarmed
    bandit problem. *Machine Learning* 47(2-3), 235-256 (policy UCB1, figure 1).

    Examples
    --------
    >>> UCB1Config(floor=0.05)
    UCB1Config(floor=0.05)
    """

    floor: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "floor", check_probability("floor", self.floor))


@dataclass(frozen=True, slots=True)
class ThompsonConfig:
    """Thompson sampling for Bernoulli (or [0, 1]) rewards with a Beta prior.

    Parameters
    ----------
    prior_alpha, prior_beta : float, default 1.0
        Parameters of the Beta prior on every arm's rate, both ``> 0``. ``(1, 1)`` is uniform.
    floor : float, default 0.0
        Minimum share of traffic per arm, ``K * floor <= 1`` (checked when ``K`` is known).

    Notes
    -----
    Arm ``i``'s posterior is ``Beta(a_i, b_i)`` with ``a_i = prior_alpha + rewards_i`` and
    ``b_i = prior_beta + pulls_i - rewards_i``. Each decision draws one value from every
    posterior and plays the largest, so arm ``i`` is played with probability

    .. math:: p_i = P(X_i = \\max_j X_j)
              = \\int_0^1 f_i(x) \\prod_{j \\ne i} F_j(x)\\, dx,
              \\qquad X_j \\sim \\mathrm{Beta}(a_j, b_j),

    the posterior probability that it is the best arm (``f`` and ``F`` are Beta densities and
    distribution functions). Fractional rewards enter the counts as they are (pseudo-counts);
    Agrawal and Goyal (2012, algorithm 2) instead turn each reward ``r`` into a Bernoulli(``r``)
    outcome first. For 0/1 rewards the two coincide.

    References
    ----------
    Thompson, W. R. (1933). On the likelihood that one unknown probability exceeds another in
    view of the evidence of two samples. *Biometrika* 25(3-4), 285-294.

    Chapelle, O. and Li, L. (2011). An empirical evaluation of Thompson sampling. *Advances in
    Neural Information Processing Systems* 24, 2249-2257.

    Agrawal, S. and Goyal, N. (2012). Analysis of Thompson sampling for the multi-armed bandit
    problem. *Proceedings of the 25th Annual Conference on Learning Theory*, JMLR W&CP 23,
    39.1-39.26.

    Examples
    --------
    >>> ThompsonConfig(prior_alpha=0.5, prior_beta=0.5)
    ThompsonConfig(prior_alpha=0.5, prior_beta=0.5, floor=0.0)
    """

    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    floor: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "prior_alpha", check_positive("prior_alpha", self.prior_alpha))
        object.__setattr__(self, "prior_beta", check_positive("prior_beta", self.prior_beta))
        object.__setattr__(self, "floor", check_probability("floor", self.floor))


@dataclass(frozen=True, slots=True)
class FixedSplitConfig:
    """Non-adaptive baseline: arm ``i`` is always chosen with probability ``weights[i]``.

    This is the classic A/B test allocation ("fixed 50/50 split", or uniform allocation with
    :meth:`uniform`) against which adaptive policies are compared. It ignores the counts.

    Parameters
    ----------
    weights : sequence of float
        One weight per arm, each ``> 0``, summing to 1 (within 1e-9). Invalid weights raise;
        they are never quietly normalised.

    Examples
    --------
    >>> FixedSplitConfig((0.5, 0.5)) == FixedSplitConfig.uniform(2)
    True
    """

    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        weights = tuple(self.weights)
        object.__setattr__(self, "weights", check_weights(weights, len(weights)))

    @classmethod
    def uniform(cls, n_arms: int) -> FixedSplitConfig:
        """Equal weights ``1 / n_arms`` for ``n_arms >= 1`` arms."""
        count = check_count("n_arms", n_arms)
        if count < 1:
            raise ValueError(f"n_arms must be at least 1, got {n_arms!r}")
        return cls(tuple([1.0 / count] * count))


PolicyConfig: TypeAlias = EpsilonGreedyConfig | UCB1Config | ThompsonConfig | FixedSplitConfig
"""Any policy config accepted by the functions of this module and by the simulator."""


@dataclass(frozen=True, slots=True)
class ArmChoice:
    """One decision: the arm, the probability it had of being chosen, and all probabilities.

    Log ``probability`` with the exposure: ``1 / probability`` is the inverse-propensity weight
    that makes estimates from adaptively allocated traffic unbiased (Horvitz-Thompson).

    Examples
    --------
    >>> choice = ArmChoice(arm=1, probability=0.75, probabilities=(0.25, 0.75))
    >>> 1 / choice.probability
    1.3333333333333333
    """

    arm: int
    probability: float
    probabilities: tuple[float, ...]


def allocation_probabilities(
    config: PolicyConfig, pulls: ArrayLike, rewards: ArrayLike
) -> FloatArray:
    """Probability that each arm is chosen on the next request, floor included.

    Parameters
    ----------
    config : PolicyConfig
        The policy.
    pulls, rewards : array_like, shape (..., K)
        Per-arm counts: pulls (whole numbers) and the sum of rewards (``0 <= rewards <=
        pulls``). Leading dimensions are a batch of independent states.

    Returns
    -------
    ndarray, shape (..., K)
        Probabilities summing to 1 along the last axis. They are exact: the formulas of the
        config classes for epsilon-greedy, UCB1 and the fixed split; for Thompson sampling the
        integral below, computed numerically.

    Notes
    -----
    The floor ``f`` is applied last, :math:`\\pi_i = f + (1 - K f) p_i`.

    For Thompson sampling, substituting ``u = F_i(x)`` gives a bounded integrand,

    .. math:: p_i = \\int_0^1 \\prod_{j \\ne i} F_j\\big(F_i^{-1}(u)\\big)\\, du,

    which is integrated for all arms at once by adaptive Gauss-Kronrod quadrature
    (:func:`scipy.integrate.quad_vec`, absolute tolerance 1e-10), with breakpoints where
    ``F_i^{-1}(u)`` crosses the bulk of another arm's posterior. Upper tails are evaluated
    through ``1 - x`` so that posteriors crowded near 1 keep their precision. The ``K``
    integrals are computed independently; their sum, 1 up to about 1e-9 for ordinary priors
    (1e-7 for shapes near 0.01), is divided out. One row costs a few milliseconds (more for
    many arms); a batch is computed row by row.

    Examples
    --------
    >>> allocation_probabilities(EpsilonGreedyConfig(0.75), [10, 10, 10], [2, 5, 5]).tolist()
    [0.25, 0.375, 0.375]
    >>> allocation_probabilities(UCB1Config(floor=0.1), [3, 0], [1, 0]).tolist()
    [0.1, 0.9]
    >>> p = allocation_probabilities(ThompsonConfig(), [2, 2], [1, 0])  # Beta(2,2), Beta(1,3)
    >>> np.round(p, 9).tolist()  # exactly 4/5 and 1/5
    [0.8, 0.2]
    """
    pulls_, rewards_ = _check_state(config, pulls, rewards)
    return _allocation(config, pulls_, rewards_)


def select_arms(
    config: PolicyConfig, pulls: ArrayLike, rewards: ArrayLike, rng: np.random.Generator
) -> IntArray:
    """Draw the next arm for every state in a batch.

    Parameters
    ----------
    config : PolicyConfig
        The policy.
    pulls, rewards : array_like, shape (..., K)
        Per-arm counts, as for :func:`allocation_probabilities`.
    rng : numpy.random.Generator
        Source of all randomness (tie-breaking, exploration, posterior draws).

    Returns
    -------
    ndarray of intp, shape (...)
        The chosen arm of each row (a 0-d array for a single state of shape ``(K,)``).

    Notes
    -----
    Arms are drawn with exactly the probabilities of :func:`allocation_probabilities`.

    * Fixed split, epsilon-greedy and UCB1: those probabilities are computed in closed form and
      one uniform ``U`` per row is inverted through their cumulative sum. A batch of rows
      therefore consumes ``rng`` exactly as the same rows would one after another.
    * Thompson sampling: one posterior draw per arm and the argmax, as in Thompson (1933).
      Beta variates ``X = G_a / (G_a + G_b)`` are compared by their log-odds
      ``log G_a - log G_b``, with ``log G_a = log G_{a+1} + (log U) / a`` (Marsaglia and
      Tsang, 2000), so that posteriors with shapes far below 1 never round into ties at 0
      or 1. With a floor, two more uniforms pick a uniform arm with probability ``K f``. All
      variates come from one call to ``rng.standard_gamma`` laid out row by row (uniforms as
      ``exp(-E)``, ``E ~ Gamma(1)``), so here too a batch consumes ``rng`` exactly as its rows
      would one after another.

    References
    ----------
    Marsaglia, G. and Tsang, W. W. (2000). A simple method for generating gamma variables.
    *ACM Transactions on Mathematical Software* 26(3), 363-372 (the ``G_{a+1} U^{1/a}`` boost).

    Examples
    --------
    >>> rng = np.random.default_rng(7)
    >>> select_arms(UCB1Config(), [[5, 5], [4, 0]], [[1, 4], [4, 0]], rng).tolist()
    [1, 1]
    """
    generator = _check_rng(rng)
    pulls_, rewards_ = _check_state(config, pulls, rewards)
    if isinstance(config, ThompsonConfig):
        return _thompson_draw(config, pulls_, rewards_, generator)
    probabilities = _allocation(config, pulls_, rewards_)
    cumulative = np.cumsum(probabilities, axis=-1)
    cumulative /= cumulative[..., -1:]
    uniforms = generator.random(probabilities.shape[:-1])
    # The arm is the number of cumulative probabilities at or below U (never K: the last is 1).
    return np.asarray(np.sum(cumulative <= uniforms[..., np.newaxis], axis=-1), dtype=np.intp)


def choose_arm(
    config: PolicyConfig, pulls: ArrayLike, rewards: ArrayLike, rng: np.random.Generator
) -> ArmChoice:
    """Make one decision and report the propensity of the chosen arm.

    Parameters
    ----------
    config : PolicyConfig
        The policy.
    pulls, rewards : array_like, shape (K,)
        Per-arm counts of one experiment.
    rng : numpy.random.Generator
        Source of randomness; the arm is ``select_arms(config, pulls, rewards, rng)``.

    Returns
    -------
    ArmChoice
        The arm, ``probability`` = the chance it had of being chosen, and all ``K``
        probabilities from :func:`allocation_probabilities`.

    Examples
    --------
    >>> choice = choose_arm(EpsilonGreedyConfig(0.2), [10, 10], [3, 6], np.random.default_rng(1))
    >>> choice.arm, choice.probability, choice.probabilities
    (1, 0.9, (0.1, 0.9))
    """
    pulls_, rewards_ = _check_state(config, pulls, rewards)
    if pulls_.ndim != 1:
        raise ValueError(f"pulls must be one-dimensional (one decision), got shape {pulls_.shape}")
    arm = int(select_arms(config, pulls_, rewards_, rng))
    probabilities = _allocation(config, pulls_, rewards_)
    return ArmChoice(
        arm=arm,
        probability=float(probabilities[arm]),
        probabilities=tuple(float(p) for p in probabilities),
    )


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


def _check_arms(config: PolicyConfig, n_arms: int, name: str) -> None:
    """Check that ``config`` fits ``n_arms`` arms; ``name`` is the argument that set the count."""
    if isinstance(config, FixedSplitConfig):
        if len(config.weights) != n_arms:
            raise ValueError(
                f"{name} must have {len(config.weights)} arms to match the fixed-split weights, "
                f"got {n_arms}"
            )
        return
    if not isinstance(config, EpsilonGreedyConfig | UCB1Config | ThompsonConfig):
        raise ValueError(f"config must be a policy config, got {type(config).__name__}")
    if n_arms * config.floor > 1.0 + _FLOOR_TOLERANCE:
        raise ValueError(
            f"floor must be at most 1/K = {1.0 / n_arms:.6g} for K = {n_arms} arms, "
            f"got {config.floor!r}"
        )


def _as_float_array(name: str, value: ArrayLike) -> FloatArray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers, got {value!r}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    return array


def _check_state(
    config: PolicyConfig, pulls: ArrayLike, rewards: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    pulls_ = _as_float_array("pulls", pulls)
    rewards_ = _as_float_array("rewards", rewards)
    if pulls_.ndim == 0 or pulls_.shape[-1] == 0:
        raise ValueError(f"pulls must have shape (..., K) with K >= 1 arms, got {pulls_.shape}")
    if rewards_.shape != pulls_.shape:
        raise ValueError(
            f"rewards must have the same shape as pulls, got {rewards_.shape} and {pulls_.shape}"
        )
    if np.any(pulls_ < 0):
        raise ValueError("pulls must be non-negative")
    if np.any(pulls_ != np.floor(pulls_)):
        raise ValueError("pulls must be whole numbers")
    if np.any(rewards_ < 0):
        raise ValueError("rewards must be non-negative")
    if np.any(rewards_ > pulls_):
        raise ValueError("rewards must not exceed pulls (each reward is in [0, 1])")
    _check_arms(config, pulls_.shape[-1], "pulls")
    return pulls_, rewards_


def _allocation(config: PolicyConfig, pulls: FloatArray, rewards: FloatArray) -> FloatArray:
    n_arms = pulls.shape[-1]
    if isinstance(config, FixedSplitConfig):
        return np.broadcast_to(np.asarray(config.weights), pulls.shape).copy()
    policy: FloatArray
    if isinstance(config, EpsilonGreedyConfig):
        greedy = _share(_greedy_arms(pulls, rewards))
        policy = config.epsilon / n_arms + (1.0 - config.epsilon) * greedy
    elif isinstance(config, UCB1Config):
        policy = _share(_ucb1_arms(pulls, rewards))
    else:
        policy = _thompson_probabilities(config, pulls, rewards)
    floor = config.floor
    if floor == 0.0:
        return policy
    return np.asarray(floor + max(1.0 - n_arms * floor, 0.0) * policy, dtype=np.float64)


def _share(best: npt.NDArray[np.bool_]) -> FloatArray:
    """Uniform probabilities over the ``True`` arms of each row."""
    return np.asarray(best / np.sum(best, axis=-1, keepdims=True, dtype=np.float64))


def _greedy_arms(pulls: FloatArray, rewards: FloatArray) -> npt.NDArray[np.bool_]:
    """Arms never pulled if a row has any, else the arms with the highest mean."""
    unpulled = pulls == 0
    means = np.divide(rewards, pulls, out=np.zeros_like(rewards), where=~unpulled)
    best = means == np.max(means, axis=-1, keepdims=True)
    return np.asarray(np.where(np.any(unpulled, axis=-1, keepdims=True), unpulled, best))


def _ucb1_arms(pulls: FloatArray, rewards: FloatArray) -> npt.NDArray[np.bool_]:
    """Arms never pulled if a row has any, else the arms with the highest UCB1 index."""
    unpulled = pulls == 0
    count = np.where(unpulled, 1.0, pulls)
    total = np.maximum(np.sum(pulls, axis=-1, keepdims=True), 1.0)
    index = rewards / count + np.sqrt(2.0 * np.log(total) / count)
    best = index == np.max(index, axis=-1, keepdims=True)
    return np.asarray(np.where(np.any(unpulled, axis=-1, keepdims=True), unpulled, best))


def _posterior(
    config: ThompsonConfig, pulls: FloatArray, rewards: FloatArray
) -> tuple[FloatArray, FloatArray]:
    return config.prior_alpha + rewards, config.prior_beta + (pulls - rewards)


def _thompson_probabilities(
    config: ThompsonConfig, pulls: FloatArray, rewards: FloatArray
) -> FloatArray:
    alpha, beta = _posterior(config, pulls, rewards)
    result = np.empty_like(alpha)
    for row in np.ndindex(alpha.shape[:-1]):
        result[row] = _probability_best(alpha[row], beta[row])
    return result


def _probability_best(alpha: FloatArray, beta: FloatArray) -> FloatArray:
    """P(arm i has the largest draw) for independent Beta(alpha_i, beta_i), by quadrature."""
    n_arms = alpha.size
    if n_arms == 1:
        return np.ones(1)
    others = ~np.eye(n_arms, dtype=bool)
    alpha_j, beta_j = alpha[np.newaxis, :], beta[np.newaxis, :]
    # Arm i's quantile is below 1/2 while u <= F_i(1/2); above it, work with 1 - x instead.
    lower_half = betainc(alpha, beta, 0.5)

    def integrand(u: float) -> FloatArray:
        x = betaincinv(alpha, beta, u)[:, np.newaxis]
        one_minus_x = betaincinv(beta, alpha, 1.0 - u)[:, np.newaxis]
        cdf = np.where(
            (u <= lower_half)[:, np.newaxis],
            betainc(alpha_j, beta_j, x),
            betaincc(beta_j, alpha_j, one_minus_x),
        )
        return np.asarray(np.prod(np.where(others, cdf, 1.0), axis=1), dtype=np.float64)

    # Breakpoints: F_i at quantiles of arm j, where arm i's integrand steps up.
    p = _BREAK_QUANTILES
    quantile = betaincinv(alpha[:, np.newaxis], beta[:, np.newaxis], p)
    upper_quantile = betaincinv(beta[:, np.newaxis], alpha[:, np.newaxis], 1.0 - p)
    a_i, b_i = alpha[:, np.newaxis, np.newaxis], beta[:, np.newaxis, np.newaxis]
    crossings = np.where(
        p <= 0.5,
        betainc(a_i, b_i, quantile[np.newaxis]),
        betaincc(b_i, a_i, upper_quantile[np.newaxis]),
    )
    low, high = _QUAD_TAIL + _MIN_BREAK_GAP, 1.0 - _QUAD_TAIL - _MIN_BREAK_GAP
    points = np.concatenate([lower_half, crossings.ravel()])
    points = np.unique(points[(points > low) & (points < high)])
    if points.size:
        points = points[np.concatenate([[True], np.diff(points) > _MIN_BREAK_GAP])]
    breakpoints = points if points.size else None
    integral, _ = quad_vec(
        integrand,
        _QUAD_TAIL,
        1.0 - _QUAD_TAIL,
        epsabs=_QUAD_EPSABS,
        epsrel=0.0,
        norm="max",
        limit=_QUAD_LIMIT,
        points=breakpoints,
    )
    values = np.asarray(integral, dtype=np.float64)
    total = float(np.sum(values))
    if not np.all(np.isfinite(values)) or abs(total - 1.0) > _SUM_TOLERANCE:
        raise ArithmeticError(
            f"P(best) quadrature failed for Beta({alpha.tolist()}, {beta.tolist()}): "
            f"probabilities sum to {total!r}"
        )
    values = np.clip(values, 0.0, None)
    return values / np.sum(values)


def _thompson_draw(
    config: ThompsonConfig, pulls: FloatArray, rewards: FloatArray, rng: np.random.Generator
) -> IntArray:
    alpha, beta = _posterior(config, pulls, rewards)
    batch, n_arms = pulls.shape[:-1], pulls.shape[-1]
    # One standard_gamma call for the whole batch, laid out row by row: per arm
    # G(alpha + 1), E, G(beta + 1), E' (E ~ Exp(1) = Gamma(1), so exp(-E) is uniform), then two
    # more exponentials for the floor. Row r therefore gets the variates of a lone call.
    ones = np.ones_like(alpha)
    shapes = np.stack([alpha + 1.0, ones, beta + 1.0, ones], axis=-1).reshape(*batch, 4 * n_arms)
    floor = config.floor
    if floor > 0.0:
        shapes = np.concatenate([shapes, np.ones((*batch, 2))], axis=-1)
    variates = rng.standard_gamma(shapes)
    per_arm = variates[..., : 4 * n_arms].reshape(*batch, n_arms, 4)
    # log G_a = log G_{a+1} + log(U) / a with log U = -E (Marsaglia and Tsang 2000).
    log_x = np.log(per_arm[..., 0]) - per_arm[..., 1] / alpha
    log_y = np.log(per_arm[..., 2]) - per_arm[..., 3] / beta
    # X = G_a / (G_a + G_b) is ranked by its log-odds log G_a - log G_b, which keeps full
    # precision for draws within 1e-16 of 0 or of 1 (where X itself would round to a tie).
    arms = np.argmax(log_x - log_y, axis=-1)
    if floor > 0.0:
        uniforms = np.exp(-variates[..., 4 * n_arms :])  # in (0, 1]
        uniform_arm = np.minimum((uniforms[..., 1] * n_arms).astype(np.intp), n_arms - 1)
        arms = np.where(uniforms[..., 0] < n_arms * floor, uniform_arm, arms)
    return np.asarray(arms, dtype=np.intp)
