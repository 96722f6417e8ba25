"""CUPED: the treatment effect adjusted by a pre-exposure covariate, from sufficient statistics.

Each user ``i`` has an outcome ``y_i`` (converted 0/1, or a value total) and, when known, a
covariate ``c_i`` measured before exposure (the same metric in a pre-period, say). A
covariate that predicts ``y`` but cannot be moved by the treatment removes the part of the
outcome's noise it explains: the adjusted effect has the same expectation as the plain
difference of means and a variance smaller by about ``ρ²``, the squared correlation of ``c``
and ``y`` (Deng, Xu, Kohavi and Walker, 2013).

Method
------
In each arm ``k`` (``A`` control, ``B`` treatment), over its ``n_k`` users, with ``x`` the
covariate, ``X̄`` the mean of ``x`` over both arms and ``S`` the centred sums of squares and
products within the arm (``Sxx_k = Σ (x − x̄_k)²`` and so on), the adjusted mean is

    ``m_k = ȳ_k − θ_k (x̄_k − X̄)``     and the effect is ``Δ = m_B − m_A``.

* **Pooled θ** (an equal split): ``θ = (Sxy_A + Sxy_B) / (Sxx_A + Sxx_B)``. ``Δ`` is then
  exactly the treatment coefficient of the least-squares fit ``y ~ 1 + T + (x − X̄)``, and
  its variance is that fit's classical one, ``σ̂² / (S_TT − S_Tx² / Sxx)`` with
  ``σ̂² = (Syy_W − Sxy_W² / Sxx_W) / (n − 3)`` (``W``: summed within arms), which equals
  ``Var(m_B) + Var(m_A) − 2 Cov(m_A, m_B)`` from ``Var(m_k) = σ̂² (1/n_k + (x̄_k − X̄)² /
  Sxx_W)`` and ``Cov(m_A, m_B) = σ̂² (x̄_A − X̄)(x̄_B − X̄) / Sxx_W``. With equal arms the
  classical variance is also right when the arms' residual variances differ (as for a
  difference of means, the pooled and the unpooled variance then agree).
* **Per-arm θ** (an unequal split): ``θ_k = Sxy_k / Sxx_k``, the fully interacted fit
  ``y ~ 1 + T + (x − X̄) + T (x − X̄)`` (Lin, 2013). Each arm is its own regression:
  ``Var(m_k) = σ̂_k² (1/n_k + (x̄_k − X̄)² / Sxx_k)`` with ``σ̂_k² = (Syy_k − Sxy_k² /
  Sxx_k) / (n_k − 2)``, and the arms are independent. With unequal arms a pooled θ can be
  *less* precise than no adjustment when the slopes differ by arm, and the classical
  variance is then wrong (Freedman, 2008); the interacted fit is never less precise
  asymptotically and its per-arm variances stay right (Lin, 2013).

The relative effect is ``m_B / m_A − 1``, with the delta-method variance from the 2×2
covariance of ``(m_A, m_B)``. The unadjusted variance is Welch's, ``s_A²/n_A + s_B²/n_B``,
and the variance reduction achieved is ``1 − Var(Δ) / Var_unadjusted``. Intervals and
p-values are normal (large-sample), like the other tests of abscope.

Users without a covariate take the mean of the observed covariates of both arms (one
constant for everyone; a missing value is no more likely in one arm than in the other
when the covariate is measured before exposure). A constant is a function of pre-exposure
data only, so the adjustment stays unbiased; those users gain nothing from it, and the
reduction achieved says how much was gained overall. The sums needed are ``Σy`` over the
users with a covariate, kept by the store for that reason.

The sequential view
-------------------
The always-valid test of :mod:`abscope.stats.sequential` (the normal-mixture mSPRT) is
applied to ``Δ`` with the adjusted variance: Lindon, Ham, Tingley and Bojinov (2022) show
that regression-adjusted estimators keep the mixture martingale's anytime validity
(asymptotically, as for the unadjusted estimator), with confidence sequences narrower in
proportion to the variance removed.

References
----------
.. [1] A. Deng, Y. Xu, R. Kohavi and T. Walker, "Improving the sensitivity of online
   controlled experiments by utilizing pre-experiment data", WSDM 2013, 123-132.
.. [2] M. Lindon, D. W. Ham, M. Tingley and I. Bojinov, "Anytime-valid linear models and
   regression adjusted causal inference in randomized experiments", arXiv:2210.08589 (2022).
.. [3] W. Lin, "Agnostic notes on regression adjustments to experimental data: reexamining
   Freedman's critique", Annals of Applied Statistics 7(1), 295-318 (2013).
.. [4] D. A. Freedman, "On regression adjustments to experimental data", Advances in
   Applied Mathematics 40(2), 180-193 (2008).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

from scipy import stats as _sp

from abscope.stats._validate import check_alpha, check_count, check_finite, check_open_unit
from abscope.stats.sequential import DEFAULT_TUNING_N, SequentialResult, sequential_test

__all__ = [
    "CUPED_REASONS",
    "CupedArm",
    "CupedReason",
    "CupedResult",
    "ThetaMethod",
    "cuped_effect",
    "theta_method_for_split",
    "variance_factor",
]

ThetaMethod = Literal["pooled", "per_arm"]
CupedReason = Literal[
    "no_covariates",
    "insufficient_samples",
    "zero_covariate_variance",
    "zero_variance",
    "zero_baseline",
]
CUPED_REASONS: Final[dict[str, str]] = {
    "no_covariates": "no exposed user of these arms has a covariate yet",
    "insufficient_samples": "an arm has too few users to estimate the adjustment"
    " (pooled θ: 4 in all; per-arm θ: 3 per arm)",
    "zero_covariate_variance": "the covariate takes one value within the arms, so it"
    " cannot explain any of the outcome's variance",
    "zero_variance": "the outcome is fully explained (no residual variance), so the adjusted"
    " effect has no measure of its noise",
    "zero_baseline": "the adjusted control mean is 0, so a relative effect is undefined",
}
"""What each reason code means, in words."""

_SPLIT_TOLERANCE: Final = 1e-9


@dataclass(frozen=True, slots=True)
class CupedArm:
    """One arm's sufficient statistics for CUPED.

    ``samples`` users, with outcome sums ``outcome_sum = Σy`` and
    ``outcome_sum_squares = Σy²`` over all of them; over the ``covariate_samples`` users
    with a covariate ``c``: ``covariate_sum = Σc``, ``covariate_sum_squares = Σc²``,
    ``covariate_outcome_sum = Σy`` and ``cross_sum = Σc·y``.
    """

    samples: int
    outcome_sum: float
    outcome_sum_squares: float
    covariate_samples: int = 0
    covariate_sum: float = 0.0
    covariate_sum_squares: float = 0.0
    covariate_outcome_sum: float = 0.0
    cross_sum: float = 0.0


@dataclass(frozen=True, slots=True)
class CupedResult:
    """The CUPED-adjusted comparison of a treatment with the control.

    Attributes
    ----------
    theta_method : {"pooled", "per_arm"}
        How θ was estimated (see the module docstring).
    theta_control, theta_treatment : float or None
        The slope used in each arm (equal for ``pooled``).
    control_mean, treatment_mean : float or None
        Adjusted means ``m_A``, ``m_B`` (at the common covariate mean ``X̄``).
    difference : float or None
        ``Δ = m_B − m_A``; ``difference_se`` its standard error, ``difference_interval``
        its ``confidence`` interval and ``p_value`` the two-sided test of ``Δ = 0``.
    relative, relative_interval : float, (float, float) or None
        ``m_B / m_A − 1`` and its delta-method interval.
    unadjusted_difference, unadjusted_se : float or None
        The plain difference of means and its Welch standard error.
    variance_reduction : float or None
        ``1 − Var(Δ) / Var_unadjusted`` (negative when the adjustment cost precision).
    covariate_coverage : float
        Share of the two arms' users with a covariate (the others take the mean).
    imputed_value : float or None
        The covariate given to users without one.
    sequential, sequential_relative : SequentialResult or None
        The always-valid test and confidence sequence of ``Δ`` and of the relative effect.
    reason : CupedReason or None
        Why the adjusted effect (or only its relative form: ``zero_baseline``) is undefined.
    """

    theta_method: ThetaMethod
    theta_control: float | None
    theta_treatment: float | None
    control_mean: float | None
    treatment_mean: float | None
    difference: float | None
    difference_se: float | None
    difference_interval: tuple[float, float] | None
    p_value: float | None
    relative: float | None
    relative_interval: tuple[float, float] | None
    unadjusted_difference: float | None
    unadjusted_se: float | None
    variance_reduction: float | None
    covariate_coverage: float
    imputed_value: float | None
    sequential: SequentialResult | None
    sequential_relative: SequentialResult | None
    confidence: float
    reason: CupedReason | None = None


def variance_factor(rho: float) -> float:
    """The share of the variance that remains after CUPED with correlation ``rho``: ``1 − ρ²``.

    For planning: the adjusted effect's variance is about ``(1 − ρ²)`` times the plain one,
    so the users needed for the same power (fixed-horizon, and to first order sequential,
    whose boundary grows only like ``sqrt(log n)``) scale by the same factor.

    Parameters
    ----------
    rho : float
        The expected correlation of the covariate with the outcome, in [−1, 1].

    References
    ----------
    .. [1] A. Deng, Y. Xu, R. Kohavi and T. Walker, WSDM 2013, section 3.

    Examples
    --------
    >>> round(variance_factor(0.7), 2)
    0.51
    """
    value = check_finite("rho", rho)
    if not -1.0 <= value <= 1.0:
        raise ValueError(f"rho must be in [-1, 1], got {rho!r}")
    return 1.0 - value * value


def theta_method_for_split(control_weight: float, treatment_weight: float) -> ThetaMethod:
    """``"pooled"`` when the two arms get equal traffic, else ``"per_arm"``.

    >>> theta_method_for_split(0.5, 0.5), theta_method_for_split(0.8, 0.2)
    ('pooled', 'per_arm')
    """
    a = check_finite("control_weight", control_weight)
    b = check_finite("treatment_weight", treatment_weight)
    if a <= 0 or b <= 0:
        raise ValueError("control_weight and treatment_weight must be positive")
    return "pooled" if abs(a - b) <= _SPLIT_TOLERANCE * max(a, b) else "per_arm"


@dataclass(frozen=True, slots=True)
class _Moments:
    n: int
    mean_x: float
    mean_y: float
    sxx: float
    syy: float
    sxy: float


def _moments(arm: CupedArm, imputed: float) -> _Moments:
    """Centred sums of the arm with the missing covariates set to ``imputed``."""
    n, missing = arm.samples, arm.samples - arm.covariate_samples
    sum_x = arm.covariate_sum + missing * imputed
    sum_xx = arm.covariate_sum_squares + missing * imputed * imputed
    sum_xy = arm.cross_sum + imputed * (arm.outcome_sum - arm.covariate_outcome_sum)
    mean_x, mean_y = sum_x / n, arm.outcome_sum / n
    return _Moments(
        n=n,
        mean_x=mean_x,
        mean_y=mean_y,
        sxx=max(0.0, sum_xx - n * mean_x * mean_x),
        syy=max(0.0, arm.outcome_sum_squares - n * mean_y * mean_y),
        sxy=sum_xy - n * mean_x * mean_y,
    )


def _check_arm(arm: CupedArm, name: str) -> CupedArm:
    samples = check_count(f"{name}.samples", arm.samples)
    covered = check_count(f"{name}.covariate_samples", arm.covariate_samples)
    if covered > samples:
        raise ValueError(f"{name}.covariate_samples must be at most {name}.samples")
    for field in (
        "outcome_sum",
        "outcome_sum_squares",
        "covariate_sum",
        "covariate_sum_squares",
        "covariate_outcome_sum",
        "cross_sum",
    ):
        check_finite(f"{name}.{field}", getattr(arm, field))
    return arm


def _undefined(
    method: ThetaMethod, reason: CupedReason, coverage: float, confidence: float
) -> CupedResult:
    return CupedResult(
        method, None, None, None, None, None, None, None, None, None, None, None, None, None,
        coverage, None, None, None, confidence, reason,
    )  # fmt: skip


def cuped_effect(
    control: CupedArm,
    treatment: CupedArm,
    *,
    theta: ThetaMethod = "pooled",
    confidence: float = 0.95,
    tuning_n: int = DEFAULT_TUNING_N,
) -> CupedResult:
    """The CUPED-adjusted effect of ``treatment`` over ``control``, from sufficient statistics.

    Parameters
    ----------
    control, treatment : CupedArm
        Each arm's sums (see :class:`CupedArm`).
    theta : {"pooled", "per_arm"}, default "pooled"
        One slope for both arms (use with an equal split) or one per arm (an unequal
        split); :func:`theta_method_for_split` picks it from the arms' weights.
    confidence : float, default 0.95
        Level of the intervals and of the confidence sequences (``alpha = 1 − confidence``).
    tuning_n : int, default 5000
        The sequential test's ``N*`` (:func:`abscope.stats.sequential.sequential_test`).

    Returns
    -------
    CupedResult
        Undefined values are ``None`` with a reason: ``no_covariates``,
        ``insufficient_samples``, ``zero_covariate_variance``, ``zero_variance``, or
        ``zero_baseline`` (only the relative effect is then undefined).

    Notes
    -----
    ``Δ = (ȳ_B − ȳ_A) − θ̂ (x̄_B − x̄_A)`` for a pooled θ; ``m_k = ȳ_k − θ_k (x̄_k − X̄)`` in
    general, with the variances of the module docstring: the classical least-squares
    variance of the treatment coefficient of ``y ~ 1 + T + (x − X̄)`` (pooled) or of the
    interacted fit with one residual variance per arm (per arm). The relative effect's
    variance is ``g' Σ g`` with ``g = (−m_B / m_A², 1 / m_A)`` and ``Σ`` the covariance of
    ``(m_A, m_B)``.

    References
    ----------
    .. [1] A. Deng, Y. Xu, R. Kohavi and T. Walker, "Improving the sensitivity of online
       controlled experiments by utilizing pre-experiment data", WSDM 2013.
    .. [2] W. Lin, "Agnostic notes on regression adjustments to experimental data:
       reexamining Freedman's critique", Annals of Applied Statistics 7(1) (2013).
    .. [3] M. Lindon, D. W. Ham, M. Tingley and I. Bojinov, "Anytime-valid linear models and
       regression adjusted causal inference in randomized experiments", arXiv:2210.08589.

    Examples
    --------
    Four users per arm, outcome ``y = c + 1`` in the treatment and ``y = c`` in the control:
    the covariate explains all but the effect.

    >>> a = CupedArm(4, outcome_sum=10.0, outcome_sum_squares=30.0, covariate_samples=4,
    ...              covariate_sum=10.0, covariate_sum_squares=30.0,
    ...              covariate_outcome_sum=10.0, cross_sum=30.0)
    >>> b = CupedArm(4, outcome_sum=14.0, outcome_sum_squares=54.0, covariate_samples=4,
    ...              covariate_sum=10.0, covariate_sum_squares=30.0,
    ...              covariate_outcome_sum=14.0, cross_sum=40.0)
    >>> result = cuped_effect(a, b)
    >>> result.difference, result.reason
    (1.0, 'zero_variance')
    >>> cuped_effect(a, CupedArm(4, 14.0, 54.0)).theta_method
    'pooled'
    """
    if theta not in ("pooled", "per_arm"):
        raise ValueError(f"theta must be 'pooled' or 'per_arm', got {theta!r}")
    level = check_open_unit("confidence", confidence)
    alpha = check_alpha(1.0 - level)
    a, b = _check_arm(control, "control"), _check_arm(treatment, "treatment")
    n = a.samples + b.samples
    covered = a.covariate_samples + b.covariate_samples
    coverage = covered / n if n else 0.0
    if covered == 0:
        return _undefined(theta, "no_covariates", coverage, level)
    minimum = 3 if theta == "per_arm" else 1
    if min(a.samples, b.samples) < minimum or n < 4:
        return _undefined(theta, "insufficient_samples", coverage, level)
    imputed = (a.covariate_sum + b.covariate_sum) / covered
    ma, mb = _moments(a, imputed), _moments(b, imputed)
    grand = (ma.n * ma.mean_x + mb.n * mb.mean_x) / n
    da, db = ma.mean_x - grand, mb.mean_x - grand
    if theta == "pooled":
        sxx = ma.sxx + mb.sxx
        if sxx <= 0.0:
            return _undefined(theta, "zero_covariate_variance", coverage, level)
        slope = (ma.sxy + mb.sxy) / sxx
        sigma2 = max(0.0, ma.syy + mb.syy - slope * (ma.sxy + mb.sxy)) / (n - 3)
        theta_a = theta_b = slope
        var_a = sigma2 * (1.0 / ma.n + da * da / sxx)
        var_b = sigma2 * (1.0 / mb.n + db * db / sxx)
        cov = sigma2 * da * db / sxx
    else:
        if ma.sxx <= 0.0 or mb.sxx <= 0.0:
            return _undefined(theta, "zero_covariate_variance", coverage, level)
        theta_a, theta_b = ma.sxy / ma.sxx, mb.sxy / mb.sxx
        sigma2_a = max(0.0, ma.syy - theta_a * ma.sxy) / (ma.n - 2)
        sigma2_b = max(0.0, mb.syy - theta_b * mb.sxy) / (mb.n - 2)
        var_a = sigma2_a * (1.0 / ma.n + da * da / ma.sxx)
        var_b = sigma2_b * (1.0 / mb.n + db * db / mb.sxx)
        cov = 0.0
    mean_a = ma.mean_y - theta_a * da
    mean_b = mb.mean_y - theta_b * db
    difference = mean_b - mean_a
    variance = max(0.0, var_a + var_b - 2.0 * cov)
    unadjusted = mb.mean_y - ma.mean_y
    unadjusted_var = (
        ma.syy / (ma.n - 1) / ma.n + mb.syy / (mb.n - 1) / mb.n if min(ma.n, mb.n) >= 2 else None
    )
    unadjusted_se = None if unadjusted_var is None else math.sqrt(unadjusted_var)
    if variance == 0.0:
        return CupedResult(
            theta, theta_a, theta_b, mean_a, mean_b, difference, None, None, None, None, None,
            unadjusted, unadjusted_se, None, coverage, imputed, None, None, level,
            "zero_variance",
        )  # fmt: skip
    se = math.sqrt(variance)
    z = float(_sp.norm.ppf(1.0 - alpha / 2.0))
    p_value = float(2.0 * _sp.norm.sf(abs(difference) / se))
    reduction = (
        1.0 - variance / unadjusted_var
        if unadjusted_var is not None and unadjusted_var > 0
        else None
    )
    sequential = sequential_test(difference, variance, n, alpha=alpha, tuning_n=tuning_n)
    relative: float | None = None
    relative_interval: tuple[float, float] | None = None
    sequential_relative: SequentialResult | None = None
    reason: CupedReason | None = None
    if mean_a == 0.0:
        reason = "zero_baseline"
    else:
        relative = mean_b / mean_a - 1.0
        g_a, g_b = -mean_b / (mean_a * mean_a), 1.0 / mean_a
        relative_var = max(0.0, g_a * g_a * var_a + g_b * g_b * var_b + 2.0 * g_a * g_b * cov)
        relative_se = math.sqrt(relative_var)
        relative_interval = (relative - z * relative_se, relative + z * relative_se)
        sequential_relative = sequential_test(
            relative, relative_var, n, alpha=alpha, tuning_n=tuning_n
        )
    return CupedResult(
        theta_method=theta,
        theta_control=theta_a,
        theta_treatment=theta_b,
        control_mean=mean_a,
        treatment_mean=mean_b,
        difference=difference,
        difference_se=se,
        difference_interval=(difference - z * se, difference + z * se),
        p_value=p_value,
        relative=relative,
        relative_interval=relative_interval,
        unadjusted_difference=unadjusted,
        unadjusted_se=unadjusted_se,
        variance_reduction=reduction,
        covariate_coverage=coverage,
        imputed_value=imputed,
        sequential=sequential,
        sequential_relative=sequential_relative,
        confidence=level,
        reason=reason,
    )
