"""Guardrails: one-sided always-valid non-inferiority tests against a relative margin.

A guardrail is a metric that must not get worse by more than a relative margin ``m``
("latency per request may be at most 5% worse"). Its effect is the relative lift
``L = μ_t / μ_c − 1`` of the treatment over the control; with ``higher_is_better`` the bad
direction is down (the lift at the margin is ``t = −m``), otherwise up (``t = +m``). Each
look gives one of three verdicts:

``non_inferior``  the confidence sequence rules out being worse than the margin;
``breach``        the sequence shows the treatment IS worse than the margin (significantly
                  beyond it): the trigger for an automatic pause;
``inconclusive``  neither, or fewer users per arm than ``min_samples_per_arm`` (reason
                  ``"too_little_data"``: a verdict is withheld, never an error).

Both verdicts are one-sided tests at level ``alpha``, valid uniformly over time: the test
may be read after every event and acted on at the first ``breach``.

The one-sided normal-mixture boundary
-------------------------------------
With an asymptotically normal estimate ``θ̂`` of variance ``V`` after ``n`` users, write
``I = 1/V`` (information) and ``S = I (θ̂ − θ0)`` (score). ``exp(λS − λ²I/2)`` is a
(asymptotic) martingale under ``θ = θ0`` for each ``λ``; mixing it over a half-normal
``λ ≥ 0`` with density ``2 sqrt(ρ/2π) exp(−ρλ²/2)`` gives

    ``M⁺ = 2 sqrt(ρ / (I + ρ)) · exp(S² / (2 (I + ρ))) · Φ(S / sqrt(I + ρ))``,

a nonnegative martingale with ``M⁺ = 1`` at ``I = 0``, increasing in ``S``. Ville's
inequality gives ``P(∃n: M⁺_n ≥ 1/α) ≤ α`` (Howard et al., 2021, the one-sided normal
mixture; it is ``OneSidedNormalMixture`` in their ``confseq`` library). With
``z = (θ̂ − θ0)/sqrt(V)`` and ``x = I/ρ``, ``w = x/(1 + x)``:

    ``log M⁺ = log 2 − ½ log(1 + x) + z² w / 2 + log Φ(z sqrt(w))``.

So ``θ0`` is rejected in favour of ``θ > θ0`` once ``z`` exceeds the boundary ``c⁺(n)``
solving ``log M⁺ = log(1/α)`` (:func:`one_sided_boundary_z`), and the always-valid p-value
is ``min(1, 1/M⁺)``. ``c⁺(n)`` is a little above the two-sided boundary at ``2α`` (the
factor ``2Φ(·) < 2``) and below the two-sided one at ``α`` with the same mixture
(``2Φ(·) ≥ 1`` past the null). As in
:mod:`abscope.stats.sequential`, ``x = n ρ²`` with ``n`` the users of both arms and
``ρ² = (−2 log 2α + log(−2 log 2α + 1)) / N*``: the one-sided tuning of Howard et al. (the
two-sided optimum at ``2α``), tightest near ``N* = tuning_n`` users.

The lower bound ``θ̂ − c⁺ SE`` and the upper bound ``θ̂ + c⁺ SE`` are each a one-sided
``1 − α`` confidence sequence (together a two-sided ``1 − 2α`` one, reported as
``interval``): ``non_inferior`` when the bound on the bad side lies inside the margin,
``breach`` when the bound on the good side lies beyond it.

References
----------
.. [1] S. R. Howard, A. Ramdas, J. McAuliffe and J. Sekhon, "Time-uniform, nonparametric,
   nonasymptotic confidence sequences", Annals of Statistics 49(2), 1055-1080 (2021);
   software: https://github.com/gostevehoward/confseq (``normal_mixture_bound``,
   ``is_one_sided=True``).
.. [2] R. Johari, P. Koomen, L. Pekelis and D. Walsh, "Always valid inference: continuous
   monitoring of A/B tests", Operations Research 70(3), 1806-1821 (2022).
.. [3] M. Schultzberg, S. Ankargren and M. Frånberg, "Risk-aware product decisions in A/B
   tests with multiple metrics", arXiv:2402.11609 (2024): guardrails as non-inferiority
   tests.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

from scipy import optimize as _opt
from scipy import special as _special

from abscope.stats._validate import check_alpha, check_count, check_finite, check_positive
from abscope.stats.means import relative_mean_lift_ci
from abscope.stats.proportions import relative_lift_ci
from abscope.stats.ratio import RatioStats, relative_ratio_lift_ci
from abscope.stats.results import EffectEstimate, Interval
from abscope.stats.sequential import DEFAULT_TUNING_N
from abscope.stats.sufficient import MeanStats, ProportionStats

__all__ = [
    "DEFAULT_MIN_SAMPLES_PER_ARM",
    "GUARDRAIL_REASONS",
    "GuardrailResult",
    "GuardrailVerdict",
    "Scale",
    "guardrail_from_effect",
    "mean_guardrail",
    "noninferiority_test",
    "one_sided_boundary_z",
    "one_sided_p_value",
    "proportion_guardrail",
    "ratio_guardrail",
]

GuardrailVerdict = Literal["non_inferior", "breach", "inconclusive"]
Scale = Literal["relative", "log_ratio", "absolute"]

DEFAULT_MIN_SAMPLES_PER_ARM = 100
"""Users per arm below which the verdict is withheld: the normal approximation behind the
delta method and the mixture boundary needs some data (a monitor may set it from the
planner's guidance instead)."""

GUARDRAIL_REASONS: dict[str, str] = {
    "too_little_data": "inconclusive: too little data",
    "no_samples": "an arm has no users yet",
    "insufficient_samples": "an arm has too few users for this test",
    "zero_variance": "every outcome is identical, so there is no measure of noise",
    "zero_baseline": "the control's rate or mean is 0, so a relative effect is undefined",
    "zero_treatment": "the treatment's rate or mean is 0, so the relative bound is undefined",
    "zero_denominator": "an arm's ratio has a zero denominator (no requests yet)",
}
"""Each reason code of :class:`GuardrailResult` with a plain-language sentence."""


@dataclass(frozen=True, slots=True)
class GuardrailResult:
    """One look at a guardrail: the relative effect, its always-valid bounds and a verdict.

    Attributes
    ----------
    verdict : {"non_inferior", "breach", "inconclusive"}
    estimate : float or None
        Relative lift ``μ_t / μ_c − 1``; ``None`` when undefined (see ``reason``).
    interval : Interval or None
        Always-valid bounds on the lift: each end is a one-sided ``1 − alpha`` confidence
        sequence, so ``interval.level`` is ``1 − 2 alpha``. ``None`` when undefined.
    margin : float
        The relative non-inferiority margin ``m > 0``.
    threshold : float
        The lift at the margin: ``−m`` when higher is better, ``+m`` otherwise.
    higher_is_better : bool
    p_non_inferior : float or None
        Always-valid p-value of "worse than the margin" (small: non-inferior).
    p_breach : float or None
        Always-valid p-value of "within the margin" (small: breach).
    alpha, tuning_n : float, int
        Level of each one-sided test and the mixture's tuning (total users).
    n_control, n_treatment, min_samples_per_arm : int
    reason : str or None
        A code of :data:`GUARDRAIL_REASONS`: ``"too_little_data"`` when an arm has fewer
        than ``min_samples_per_arm`` users (the figures are still reported when they can
        be computed, but the verdict is ``inconclusive``), or why the figures are ``None``.
    """

    verdict: GuardrailVerdict
    estimate: float | None
    interval: Interval | None
    margin: float
    threshold: float
    higher_is_better: bool
    p_non_inferior: float | None
    p_breach: float | None
    alpha: float
    tuning_n: int
    n_control: int
    n_treatment: int
    min_samples_per_arm: int
    reason: str | None = None

    @property
    def harm(self) -> float | None:
        """How much worse the treatment is, as a positive fraction (negative: better)."""
        if self.estimate is None:
            return None
        return -self.estimate if self.higher_is_better else self.estimate

    @property
    def worst_case(self) -> float | None:
        """The largest harm the sequence does not rule out (the bound on the bad side)."""
        if self.interval is None:
            return None
        return -self.interval.lower if self.higher_is_better else self.interval.upper

    @property
    def best_case(self) -> float | None:
        """The smallest harm the sequence does not rule out (the bound on the good side)."""
        if self.interval is None:
            return None
        return -self.interval.upper if self.higher_is_better else self.interval.lower

    @property
    def summary(self) -> str:
        """The verdict in a sentence, for a gate's per-metric reasons and the dashboard.

        Examples
        --------
        >>> r = noninferiority_test(0.081, 0.01**2, n_control=4000, n_treatment=4000,
        ...                         margin=0.05, higher_is_better=False)
        >>> r.summary
        'breach: 8.1% worse, at least 5.3% worse, beyond the 5% margin'
        """
        margin = f"{self.margin * 100:.3g}%"
        if self.reason == "too_little_data":
            return (
                f"inconclusive: too little data ({min(self.n_control, self.n_treatment)} users"
                f" in the smaller arm, {self.min_samples_per_arm} needed)"
            )
        harm, worst, best = self.harm, self.worst_case, self.best_case
        if self.reason is not None or harm is None or worst is None or best is None:
            return f"inconclusive: {GUARDRAIL_REASONS.get(self.reason or '', 'undefined')}"
        change = (
            "unchanged"
            if harm == 0
            else f"{abs(harm) * 100:.1f}% {'worse' if harm > 0 else 'better'}"
        )
        if self.verdict == "breach":
            return f"breach: {change}, at least {best * 100:.1f}% worse, beyond the {margin} margin"
        bound = f"{abs(worst) * 100:.1f}% {'worse' if worst > 0 else 'better'}"
        if self.verdict == "non_inferior":
            return f"non-inferior: {change}, at worst {bound}, within the {margin} margin"
        return f"inconclusive: {change}, possibly {bound} (margin {margin})"


# --- the boundary -------------------------------------------------------------------------


def _one_sided_growth(n: float, alpha: float, tuning_n: int) -> float:
    """``x = n ρ²`` with the one-sided tuning (the two-sided optimum at ``2α``)."""
    two_log = -2.0 * math.log(2.0 * alpha)
    return n * (two_log + math.log(two_log + 1.0)) / tuning_n


def _log_mixture(z: float, growth: float) -> float:
    """``log M⁺ = log 2 − ½ log(1 + x) + z² w / 2 + log Φ(z sqrt(w))``, ``w = x/(1+x)``."""
    w = growth / (1.0 + growth)
    u = z * math.sqrt(w)
    return math.log(2.0) - 0.5 * math.log1p(growth) + 0.5 * u * u + float(_special.log_ndtr(u))


@functools.lru_cache(maxsize=4096)
def _boundary(n: float, alpha: float, tuning_n: int) -> float:
    growth = _one_sided_growth(n, alpha, tuning_n)
    target = math.log(1.0 / alpha) + 0.5 * math.log1p(growth) - math.log(2.0)

    # Solve g(u) = log Φ(u) + u²/2 = target for u = z sqrt(w): g is increasing (Φ'/Φ + u > 0),
    # g(0) = −log 2 < target, and g(sqrt(2 (target + log 2))) ≥ target.
    def gap(u: float) -> float:
        return float(_special.log_ndtr(u)) + 0.5 * u * u - target

    high = math.sqrt(2.0 * (target + math.log(2.0))) + 1e-9
    u = float(_opt.brentq(gap, 0.0, high, xtol=1e-14, rtol=1e-14))
    return u / math.sqrt(growth / (1.0 + growth))


def _check_n(n: float) -> int:
    count = check_count("n", n)
    if count == 0:
        raise ValueError("n must be at least 1, got 0")
    return count


def _check_tuning_n(tuning_n: int) -> int:
    value = check_count("tuning_n", tuning_n)
    if value == 0:
        raise ValueError("tuning_n must be at least 1, got 0")
    return value


def _check_alpha(alpha: float) -> float:
    value = check_alpha(alpha)
    if value >= 0.5:
        raise ValueError(f"alpha must be below 0.5 for a one-sided test, got {alpha!r}")
    return value


def one_sided_boundary_z(n: int, *, alpha: float = 0.05, tuning_n: int = DEFAULT_TUNING_N) -> float:
    """Critical value ``c⁺(n)``: the one-sided test rejects once ``(θ̂ − θ0)/SE > c⁺(n)``.

    Parameters
    ----------
    n : int
        Users of both arms at the look, ≥ 1.
    alpha : float, default 0.05
        Level of the one-sided test, in (0, 0.5).
    tuning_n : int, default 5000
        Total users at which the boundary is tightest.

    Notes
    -----
    The root of ``log 2 − ½ log(1 + x) + c² w / 2 + log Φ(c sqrt(w)) = log(1/α)`` with
    ``x = n ρ²`` and ``w = x/(1 + x)`` (module docstring). With the same mixture it lies
    between the two-sided boundaries at ``2α`` and at ``α``, since ``Λ ≤ M⁺ < 2Λ``.

    References
    ----------
    Howard, Ramdas, McAuliffe & Sekhon (2021), Annals of Statistics 49(2), the one-sided
    normal mixture.

    Examples
    --------
    >>> round(one_sided_boundary_z(5000), 4)
    2.7661
    >>> one_sided_boundary_z(5000) < one_sided_boundary_z(5000, alpha=0.025)
    True
    """
    return _boundary(float(_check_n(n)), _check_alpha(alpha), _check_tuning_n(tuning_n))


def one_sided_p_value(
    z: float, n: int, *, alpha: float = 0.05, tuning_n: int = DEFAULT_TUNING_N
) -> float:
    """Always-valid p-value ``min(1, 1/M⁺)`` of ``θ ≤ θ0`` against ``θ > θ0``.

    ``z = (θ̂ − θ0)/SE``. The mixture is tuned for ``alpha`` (as in
    :mod:`abscope.stats.sequential`), so ``p < alpha`` exactly when ``z > c⁺(n)``.

    Examples
    --------
    >>> round(one_sided_p_value(3.0, 5000), 4)
    0.0279
    >>> one_sided_p_value(-3.0, 5000)
    1.0
    """
    level = _check_alpha(alpha)
    growth = _one_sided_growth(float(_check_n(n)), level, _check_tuning_n(tuning_n))
    log_m = _log_mixture(check_finite("z", z), growth)
    return 1.0 if log_m <= 0.0 else math.exp(-log_m)


# --- the test -----------------------------------------------------------------------------


def _check_margin(margin: float, higher_is_better: bool) -> float:
    value = check_positive("margin", margin)
    if higher_is_better and value >= 1.0:
        raise ValueError(
            f"margin must be below 1 when higher is better (a lift cannot fall below −100%), "
            f"got {margin!r}"
        )
    return value


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return value


def _undefined(
    reason: str,
    estimate: float | None,
    common: dict[str, object],
) -> GuardrailResult:
    return GuardrailResult(
        verdict="inconclusive",
        estimate=estimate,
        interval=None,
        p_non_inferior=None,
        p_breach=None,
        reason=reason,
        **common,  # type: ignore[arg-type]
    )


def noninferiority_test(
    estimate: float,
    variance: float,
    *,
    n_control: int,
    n_treatment: int,
    margin: float,
    higher_is_better: bool,
    scale: Scale = "relative",
    control_mean: float | None = None,
    alpha: float = 0.05,
    tuning_n: int = DEFAULT_TUNING_N,
    min_samples_per_arm: int = DEFAULT_MIN_SAMPLES_PER_ARM,
) -> GuardrailResult:
    """One-sided always-valid non-inferiority test of a guardrail against a relative margin.

    Parameters
    ----------
    estimate, variance : float
        An asymptotically normal effect and its variance (any metric: rate, mean, ratio).
        Their meaning depends on ``scale``:

        * ``"relative"``: the lift ``L̂ = μ̂_t/μ̂_c − 1`` and ``Var(L̂)`` (delta method);
        * ``"log_ratio"``: the lift ``L̂`` and ``Var(log(1 + L̂))``; the test runs on the log
          scale, so the bounds stay above −100% (preferred for positive metrics);
        * ``"absolute"``: the difference ``μ̂_t − μ̂_c`` and its variance, with
          ``control_mean``; it is divided by ``|control_mean|``, taken as known (this ignores
          the control's own noise: prefer a lift with its delta-method variance).
    n_control, n_treatment : int
        Users per arm; their sum is the ``n`` of the mixture.
    margin : float
        Relative margin ``m > 0`` (below 1 when higher is better): 0.05 is "at most 5% worse".
    higher_is_better : bool
        Whether a higher value is better; it decides the bad direction.
    scale : {"relative", "log_ratio", "absolute"}, default "relative"
    control_mean : float, optional
        Required with ``scale="absolute"``.
    alpha : float, default 0.05
        Level of each one-sided test (non-inferiority and breach), in (0, 0.5).
    tuning_n : int, default 5000
        Total users at which the boundary is tightest.
    min_samples_per_arm : int, default 100
        Below this many users in either arm the verdict is ``inconclusive`` with reason
        ``"too_little_data"``.

    Returns
    -------
    GuardrailResult
        A zero ``variance`` gives reason ``"zero_variance"``, a zero ``control_mean`` reason
        ``"zero_baseline"``: the figures that cannot be computed are ``None``.

    Notes
    -----
    On the test scale (the lift, or ``log(1 + L)``) with threshold ``t`` (``∓m``, or
    ``log(1 ∓ m)``) and ``c = c⁺(n_c + n_t)`` from :func:`one_sided_boundary_z`, the bounds
    are ``θ̂ ± c sqrt(V)``. When higher is better, ``non_inferior`` iff ``θ̂ − c SE > t`` and
    ``breach`` iff ``θ̂ + c SE < t``; when lower is better the sides swap. The p-values are
    ``one_sided_p_value(±(θ̂ − t)/SE)``. Each is valid at every look at once, so the first
    breach of a continuously monitored guardrail is a false alarm with probability at most
    ``alpha`` whenever the true effect is within the margin.

    References
    ----------
    Howard et al. (2021), see the module docstring; Schultzberg, Ankargren & Frånberg
    (2024), arXiv:2402.11609, section 2.2 (non-inferiority hypotheses of guardrails).

    Examples
    --------
    Latency 20% higher (lower is better), a 5% margin, 600 users per arm:

    >>> r = noninferiority_test(0.20, 0.03**2, n_control=600, n_treatment=600, margin=0.05,
    ...                         higher_is_better=False)
    >>> r.verdict, round(r.interval.lower, 4), round(r.harm, 2)
    ('breach', 0.109, 0.2)
    >>> noninferiority_test(0.0, 0.01**2, n_control=600, n_treatment=600, margin=0.05,
    ...                     higher_is_better=False).verdict
    'non_inferior'
    >>> noninferiority_test(0.0, 0.01**2, n_control=50, n_treatment=60, margin=0.05,
    ...                     higher_is_better=False).reason
    'too_little_data'
    """
    better = _check_bool("higher_is_better", higher_is_better)
    m = _check_margin(margin, better)
    level = _check_alpha(alpha)
    tune = _check_tuning_n(tuning_n)
    n_c = check_count("n_control", n_control)
    n_t = check_count("n_treatment", n_treatment)
    floor = check_count("min_samples_per_arm", min_samples_per_arm)
    value = check_finite("estimate", estimate)
    var = check_finite("variance", variance)
    if var < 0:
        raise ValueError(f"variance must be non-negative, got {variance!r}")
    if scale not in ("relative", "log_ratio", "absolute"):
        raise ValueError(f"scale must be one of relative, log_ratio, absolute; got {scale!r}")
    threshold = -m if better else m
    common: dict[str, object] = {
        "margin": m,
        "threshold": threshold,
        "higher_is_better": better,
        "alpha": level,
        "tuning_n": tune,
        "n_control": n_c,
        "n_treatment": n_t,
        "min_samples_per_arm": floor,
    }
    if scale == "absolute":
        if control_mean is None:
            raise ValueError("control_mean is required with scale='absolute'")
        base = abs(check_finite("control_mean", control_mean))
        if base == 0.0:
            return _undefined("zero_baseline", None, common)
        value, var = value / base, var / (base * base)
    elif scale == "log_ratio" and value <= -1.0:
        raise ValueError(f"estimate must be above -1 on the log_ratio scale, got {estimate!r}")
    few = n_c < floor or n_t < floor
    if n_c == 0 or n_t == 0:
        return _undefined("too_little_data" if few else "no_samples", None, common)
    if var == 0.0:
        return _undefined("too_little_data" if few else "zero_variance", value, common)
    se = math.sqrt(var)
    log_scale = scale == "log_ratio"
    centre = math.log1p(value) if log_scale else value
    cut = math.log1p(threshold) if log_scale else threshold
    n = n_c + n_t
    c = _boundary(float(n), level, tune)
    low, high = centre - c * se, centre + c * se
    z_good = (centre - cut) / se if better else (cut - centre) / se
    growth = _one_sided_growth(float(n), level, tune)
    log_ni, log_breach = _log_mixture(z_good, growth), _log_mixture(-z_good, growth)
    p_ni = 1.0 if log_ni <= 0.0 else math.exp(-log_ni)
    p_breach = 1.0 if log_breach <= 0.0 else math.exp(-log_breach)
    # Higher is better: the bad side is down. Non-inferior when even the lower bound is above
    # the threshold; a breach when even the upper bound is below it. Mirrored otherwise.
    non_inferior = low > cut if better else high < cut
    breach = high < cut if better else low > cut
    verdict: GuardrailVerdict = "inconclusive"
    if not few and non_inferior:
        verdict = "non_inferior"
    elif not few and breach:
        verdict = "breach"
    if log_scale:
        low, high = math.expm1(low), math.expm1(high)
    return GuardrailResult(
        verdict=verdict,
        estimate=value,
        interval=Interval(low, high, 1.0 - 2.0 * level),
        p_non_inferior=p_ni,
        p_breach=p_breach,
        reason="too_little_data" if few else None,
        **common,  # type: ignore[arg-type]
    )


def guardrail_from_effect(
    effect: EffectEstimate,
    *,
    n_control: int,
    n_treatment: int,
    margin: float,
    higher_is_better: bool,
    alpha: float = 0.05,
    tuning_n: int = DEFAULT_TUNING_N,
    min_samples_per_arm: int = DEFAULT_MIN_SAMPLES_PER_ARM,
) -> GuardrailResult:
    """Test a relative-lift :class:`EffectEstimate` (of a rate, a mean or a ratio metric).

    The log scale is used when the effect carries ``log_std_error`` (a lift of positive
    quantities), else the lift with ``std_error``. An undefined effect gives an
    ``inconclusive`` result with the effect's reason (``"too_little_data"`` first when an
    arm is below ``min_samples_per_arm``).

    Examples
    --------
    >>> effect = EffectEstimate(0.02, 0.01, None, log_std_error=0.0098)
    >>> guardrail_from_effect(effect, n_control=5000, n_treatment=5000, margin=0.05,
    ...                       higher_is_better=False).verdict
    'non_inferior'
    """
    if effect.estimate is not None and effect.log_std_error is not None:
        variance, scale = effect.log_std_error**2, "log_ratio"
    elif effect.estimate is not None and effect.std_error is not None:
        variance, scale = effect.std_error**2, "relative"
    else:
        # Validate the arguments as the test would, then report the effect's reason.
        probe = noninferiority_test(
            0.0,
            0.0,
            n_control=n_control,
            n_treatment=n_treatment,
            margin=margin,
            higher_is_better=higher_is_better,
            alpha=alpha,
            tuning_n=tuning_n,
            min_samples_per_arm=min_samples_per_arm,
        )
        few = probe.reason == "too_little_data"
        reason = "too_little_data" if few else effect.reason or "zero_variance"
        return GuardrailResult(
            "inconclusive",
            effect.estimate,
            None,
            probe.margin,
            probe.threshold,
            probe.higher_is_better,
            None,
            None,
            probe.alpha,
            probe.tuning_n,
            probe.n_control,
            probe.n_treatment,
            probe.min_samples_per_arm,
            reason,
        )
    return noninferiority_test(
        effect.estimate,
        variance,
        n_control=n_control,
        n_treatment=n_treatment,
        margin=margin,
        higher_is_better=higher_is_better,
        scale=scale,  # type: ignore[arg-type]
        alpha=alpha,
        tuning_n=tuning_n,
        min_samples_per_arm=min_samples_per_arm,
    )


def proportion_guardrail(
    control: ProportionStats,
    treatment: ProportionStats,
    *,
    margin: float,
    higher_is_better: bool,
    alpha: float = 0.05,
    tuning_n: int = DEFAULT_TUNING_N,
    min_samples_per_arm: int = DEFAULT_MIN_SAMPLES_PER_ARM,
) -> GuardrailResult:
    """Guardrail on a rate (error rate, timeout rate): the Katz log-ratio of the two rates.

    Examples
    --------
    Error rate 2.0% against 1.0% with 20 000 users per arm, at most 10% worse allowed:

    >>> r = proportion_guardrail(ProportionStats(20_000, 200), ProportionStats(20_000, 400),
    ...                          margin=0.10, higher_is_better=False)
    >>> r.verdict, round(r.harm, 2)
    ('breach', 1.0)
    """
    effect = relative_lift_ci(control, treatment)
    return guardrail_from_effect(
        effect,
        n_control=control.n,
        n_treatment=treatment.n,
        margin=margin,
        higher_is_better=higher_is_better,
        alpha=alpha,
        tuning_n=tuning_n,
        min_samples_per_arm=min_samples_per_arm,
    )


def mean_guardrail(
    control: MeanStats,
    treatment: MeanStats,
    *,
    margin: float,
    higher_is_better: bool,
    alpha: float = 0.05,
    tuning_n: int = DEFAULT_TUNING_N,
    min_samples_per_arm: int = DEFAULT_MIN_SAMPLES_PER_ARM,
) -> GuardrailResult:
    """Guardrail on a per-user mean (latency, cost): the delta-method lift of the means.

    Examples
    --------
    >>> control = MeanStats.from_moments(2000, 200.0, 100.0)
    >>> treatment = MeanStats.from_moments(2000, 201.0, 100.0)
    >>> mean_guardrail(control, treatment, margin=0.05, higher_is_better=False).verdict
    'non_inferior'
    """
    effect = relative_mean_lift_ci(control, treatment)
    return guardrail_from_effect(
        effect,
        n_control=control.n,
        n_treatment=treatment.n,
        margin=margin,
        higher_is_better=higher_is_better,
        alpha=alpha,
        tuning_n=tuning_n,
        min_samples_per_arm=min_samples_per_arm,
    )


def ratio_guardrail(
    control: RatioStats,
    treatment: RatioStats,
    *,
    margin: float,
    higher_is_better: bool,
    alpha: float = 0.05,
    tuning_n: int = DEFAULT_TUNING_N,
    min_samples_per_arm: int = DEFAULT_MIN_SAMPLES_PER_ARM,
) -> GuardrailResult:
    """Guardrail on a ratio metric (latency per request, errors per request): the log of the
    ratio of ratios, by the delta method with the user as the cluster
    (:func:`abscope.stats.ratio.relative_ratio_lift_ci`).

    Examples
    --------
    >>> control = RatioStats.from_users([10, 20, 5, 8] * 50, [900, 2100, 400, 800] * 50)
    >>> treatment = RatioStats.from_users([10, 20, 5, 8] * 50, [1300, 2500, 700, 950] * 50)
    >>> r = ratio_guardrail(control, treatment, margin=0.05, higher_is_better=False)
    >>> r.verdict, round(r.harm, 3)
    ('breach', 0.298)
    """
    effect = relative_ratio_lift_ci(control, treatment)
    return guardrail_from_effect(
        effect,
        n_control=control.n,
        n_treatment=treatment.n,
        margin=margin,
        higher_is_better=higher_is_better,
        alpha=alpha,
        tuning_n=tuning_n,
        min_samples_per_arm=min_samples_per_arm,
    )
