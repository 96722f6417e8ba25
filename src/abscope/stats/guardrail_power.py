"""Planning guardrails: β-corrected power, fixed-horizon and sequential sample sizes.

The risk-aware rule ships only when the primary wins *and* every guardrail is shown
non-inferior, so the rule's power is the chance that all of those tests succeed. By the
union bound, ``P(some test fails) ≤ Σ β_i``: giving each of ``G`` guardrails the miss rate
``β/G`` keeps the chance that a truly harmless change is held back by a guardrail at most
``β`` (Schultzberg, Ankargren & Frånberg, 2024, section 3.4: no α correction across
guardrails, but β corrected). Counting the primary's superiority test as well
(``include_primary=True``) splits β over ``G + 1`` tests and bounds the whole rule's miss
rate.

All sizes are users per arm, for two equal arms, on the scale the guardrail tests run on:
``"log_ratio"`` (the default of :func:`abscope.stats.guardrails.mean_guardrail` and
:func:`abscope.stats.guardrails.proportion_guardrail`), where one user's contribution to
``Var(log(μ̂_t/μ̂_c))`` is ``cv_t² + cv_c²``, or ``"relative"``, where it is
``(1 + L)² (cv_t² + cv_c²)`` (delta method; ``cv = σ/μ`` per user, and
``cv² = (1 − p)/p`` for a rate ``p``).
"""

from __future__ import annotations

import math
from typing import Literal

from scipy import optimize as _opt
from scipy import stats as _sp

from abscope.stats._validate import check_finite, check_open_unit, check_positive
from abscope.stats.guardrails import _boundary, _check_margin
from abscope.stats.guardrails import _check_alpha as check_alpha
from abscope.stats.sequential import DEFAULT_TUNING_N

__all__ = [
    "PlanningScale",
    "beta_corrected_power",
    "noninferiority_sample_size",
    "rate_cv",
    "sequential_guardrail_power",
    "sequential_guardrail_sample_size",
]

PlanningScale = Literal["log_ratio", "relative"]
Target = Literal["non_inferior", "breach"]


def beta_corrected_power(
    power: float, n_guardrails: int, *, include_primary: bool = False
) -> float:
    """Power each guardrail test needs so that the decision keeps ``power``: ``1 − β/G``.

    Parameters
    ----------
    power : float
        The power ``1 − β`` wanted for the decision, in (0, 1).
    n_guardrails : int
        Number ``G ≥ 1`` of guardrails in the rule.
    include_primary : bool, default False
        Also count the primary's superiority test: ``1 − β/(G + 1)``.

    Notes
    -----
    Bonferroni on β: ``P(∪ misses) ≤ Σ β/G = β``. α is not corrected: a guardrail's type I
    error (declaring non-inferiority of a harmful change) is already at most α for each
    guardrail, and the rule needs all of them (an intersection-union test).

    References
    ----------
    Schultzberg, Ankargren & Frånberg (2024), "Risk-aware product decisions in A/B tests
    with multiple metrics", arXiv:2402.11609, sections 3.2-3.4.

    Examples
    --------
    >>> round(beta_corrected_power(0.8, 4), 6)
    0.95
    >>> round(beta_corrected_power(0.8, 4, include_primary=True), 6)
    0.96
    """
    target = check_open_unit("power", power)
    if isinstance(n_guardrails, bool) or not isinstance(n_guardrails, int) or n_guardrails < 1:
        raise ValueError(f"n_guardrails must be a whole number ≥ 1, got {n_guardrails!r}")
    tests = n_guardrails + (1 if include_primary else 0)
    return 1.0 - (1.0 - target) / tests


def rate_cv(rate: float) -> float:
    """Coefficient of variation ``sqrt((1 − p)/p)`` of one user's 0/1 outcome.

    Examples
    --------
    >>> round(rate_cv(0.2), 4)
    2.0
    """
    p = check_open_unit("rate", rate)
    return math.sqrt((1.0 - p) / p)


def _distance_and_unit_variance(
    lift: float,
    margin: float,
    cv_control: float,
    cv_treatment: float | None,
    higher_is_better: bool,
    target: Target,
    scale: PlanningScale,
) -> tuple[float, float]:
    """Distance of the true effect from the threshold, towards ``target``, and ``n·Var``."""
    effect = check_finite("lift", lift)
    if effect <= -1.0:
        raise ValueError(f"lift must be above -1, got {lift!r}")
    m = _check_margin(margin, higher_is_better)
    cv_c = check_positive("cv_control", cv_control)
    cv_t = cv_c if cv_treatment is None else check_positive("cv_treatment", cv_treatment)
    if scale not in ("log_ratio", "relative"):
        raise ValueError(f"scale must be one of log_ratio, relative; got {scale!r}")
    threshold = -m if higher_is_better else m
    if scale == "log_ratio":
        centre, cut = math.log1p(effect), math.log1p(threshold)
        unit_variance = cv_t * cv_t + cv_c * cv_c
    else:
        centre, cut = effect, threshold
        unit_variance = (1.0 + effect) ** 2 * (cv_t * cv_t + cv_c * cv_c)
    good = centre - cut if higher_is_better else cut - centre
    distance = good if target == "non_inferior" else -good
    if distance <= 0.0:
        side = "inside" if target == "non_inferior" else "beyond"
        raise ValueError(
            f"lift must lie {side} the margin to size a {target} verdict, got lift={lift!r} "
            f"with margin={margin!r}"
        )
    return distance, unit_variance


def noninferiority_sample_size(
    lift: float,
    margin: float,
    *,
    cv_control: float,
    cv_treatment: float | None = None,
    higher_is_better: bool,
    alpha: float = 0.05,
    power: float = 0.8,
    scale: PlanningScale = "log_ratio",
) -> float:
    """Users per arm a fixed-horizon one-sided non-inferiority z-test needs.

    Parameters
    ----------
    lift : float
        The true relative effect assumed for the plan (0 for "no change").
    margin : float
        The relative non-inferiority margin.
    cv_control, cv_treatment : float
        Per-user coefficients of variation ``σ/μ`` (``cv_treatment`` defaults to
        ``cv_control``); see :func:`rate_cv` for a rate.
    higher_is_better : bool
    alpha : float, default 0.05
        One-sided level.
    power : float, default 0.8
        For a guardrail among ``G``, pass :func:`beta_corrected_power`.
    scale : {"log_ratio", "relative"}

    Notes
    -----
    ``n = (z_{1−α} + z_{power})² σ_u² / d²`` with ``d`` the distance between the true
    effect and the margin on the test scale (``log(1 + L) − log(1 − m)`` when higher is
    better, ``log(1 + m) − log(1 + L)`` otherwise) and ``σ_u²`` one user pair's variance
    (module docstring): the two-sample non-inferiority formula of Chow, Shao & Wang,
    ``n = (z_α + z_β)² (σ_1² + σ_2²) / (ε − δ)²``.

    References
    ----------
    S.-C. Chow, J. Shao and H. Wang, Sample Size Calculations in Clinical Research, 2nd ed.,
    Chapman & Hall/CRC (2008), section 3.2.2 (two-sample parallel design, test for
    non-inferiority).

    Examples
    --------
    Latency with cv 0.5, no true change, a 5% margin, 80% power:

    >>> round(noninferiority_sample_size(0.0, 0.05, cv_control=0.5, higher_is_better=False))
    1299
    """
    level = check_alpha(alpha)
    target = check_open_unit("power", power)
    distance, unit_variance = _distance_and_unit_variance(
        lift, margin, cv_control, cv_treatment, higher_is_better, "non_inferior", scale
    )
    z = float(_sp.norm.isf(level)) + float(_sp.norm.ppf(target))
    return z * z * unit_variance / (distance * distance)


def _power_at(
    distance: float, unit_variance: float, n_per_arm: float, alpha: float, tune: int
) -> float:
    shift = distance * math.sqrt(n_per_arm / unit_variance)
    return float(_sp.norm.cdf(shift - _boundary(2.0 * n_per_arm, alpha, tune)))


def sequential_guardrail_power(
    lift: float,
    margin: float,
    n_per_arm: float,
    *,
    cv_control: float,
    cv_treatment: float | None = None,
    higher_is_better: bool,
    target: Target = "non_inferior",
    alpha: float = 0.05,
    tuning_n: int = DEFAULT_TUNING_N,
    scale: PlanningScale = "log_ratio",
) -> float:
    """Probability that the always-valid guardrail test gives ``target`` at a look.

    ``target="breach"`` sizes the automatic pause of a harmful change (the true lift beyond
    the margin); ``"non_inferior"`` the clearance of a harmless one.

    Notes
    -----
    With ``d`` the distance from the margin towards ``target`` (see
    :func:`noninferiority_sample_size`), ``c⁺`` from
    :func:`abscope.stats.guardrails.one_sided_boundary_z` at ``2 n_per_arm`` users:
    ``P = Φ(d sqrt(n/σ_u²) − c⁺(2n))``, the chance that the bound is past the margin *at*
    this look. The chance of having crossed at *some* earlier look is higher, so the
    ``n`` at which it reaches 1/2 predicts the median first crossing from above
    (``tests/unit/test_guardrails.py`` compares the two).

    References
    ----------
    Johari, Koomen, Pekelis & Walsh (2022), Operations Research 70(3), section 5.

    Examples
    --------
    >>> p = sequential_guardrail_power(0.2, 0.05, 400, cv_control=0.5,
    ...                                higher_is_better=False, target="breach")
    >>> round(p, 3)
    0.7
    """
    distance, unit_variance = _distance_and_unit_variance(
        lift, margin, cv_control, cv_treatment, higher_is_better, target, scale
    )
    n = check_positive("n_per_arm", n_per_arm)
    tune = int(check_positive("tuning_n", tuning_n))
    return _power_at(distance, unit_variance, n, check_alpha(alpha), tune)


def sequential_guardrail_sample_size(
    lift: float,
    margin: float,
    *,
    cv_control: float,
    cv_treatment: float | None = None,
    higher_is_better: bool,
    target: Target = "non_inferior",
    probability: float = 0.8,
    alpha: float = 0.05,
    tuning_n: int = DEFAULT_TUNING_N,
    scale: PlanningScale = "log_ratio",
) -> float:
    """Users per arm at which :func:`sequential_guardrail_power` reaches ``probability``.

    Solved by Brent's method. ``probability=0.5`` predicts the median number of users per
    arm at the first ``breach`` of a harmful change; 0.8 its 80th percentile.

    Examples
    --------
    >>> round(sequential_guardrail_sample_size(0.2, 0.05, cv_control=0.5,
    ...       higher_is_better=False, target="breach", probability=0.5))
    325
    """
    distance, unit_variance = _distance_and_unit_variance(
        lift, margin, cv_control, cv_treatment, higher_is_better, target, scale
    )
    wanted = check_open_unit("probability", probability)
    level = check_alpha(alpha)
    tune = int(check_positive("tuning_n", tuning_n))

    def gap(n: float) -> float:
        return _power_at(distance, unit_variance, n, level, tune) - wanted

    low, high = 0.5, 1.0
    while gap(high) < 0:
        low, high = high, high * 4.0
        if high > 1e18:
            raise ValueError("lift is too close to the margin to reach a verdict")
    if gap(low) >= 0:
        return low
    return float(_opt.brentq(gap, low, high, xtol=1e-9, rtol=1e-12))
