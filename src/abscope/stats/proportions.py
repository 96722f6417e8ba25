"""Tests and intervals for binary metrics (conversion rates).

All effects are ``treatment − control`` (or ``treatment / control − 1`` for the lift).
"""

from __future__ import annotations

import math

from scipy import stats as _sp

from abscope.stats._types import Alternative, check_alternative
from abscope.stats._validate import check_open_unit
from abscope.stats.results import EffectEstimate, Interval, TestResult
from abscope.stats.sufficient import ProportionStats

__all__ = [
    "difference_ci",
    "log_ratio_interval",
    "relative_lift_ci",
    "two_proportion_ztest",
    "wilson_interval",
    "p_value_from_z",
    "z_critical",
]


def z_critical(confidence: float) -> float:
    """Two-sided normal quantile ``Φ⁻¹((1 + confidence) / 2)``."""
    level = check_open_unit("confidence", confidence)
    return float(_sp.norm.ppf(0.5 + level / 2.0))


def p_value_from_z(z: float, alternative: Alternative) -> float:
    """P-value of a standard normal statistic ``z`` for the given alternative."""
    if alternative == "two-sided":
        return float(min(1.0, 2.0 * _sp.norm.sf(abs(z))))
    if alternative == "greater":
        return float(_sp.norm.sf(z))
    return float(_sp.norm.cdf(z))


def two_proportion_ztest(
    control: ProportionStats,
    treatment: ProportionStats,
    *,
    alternative: Alternative = "two-sided",
) -> TestResult:
    """Two-proportion z-test with the pooled standard error.

    Parameters
    ----------
    control, treatment : ProportionStats
        Users and conversions per arm.
    alternative : {"two-sided", "greater", "less"}
        ``"greater"`` tests whether the treatment rate is higher.

    Returns
    -------
    TestResult
        ``statistic`` is z. Both it and ``p_value`` are ``None``, with ``reason`` set, when
        an arm has no users (``"no_samples"``) or the pooled rate is 0 or 1
        (``"zero_variance"``): the pooled standard error is then 0 and ``z`` is 0/0.

    Notes
    -----
    With pooled rate ``p̂ = (x_c + x_t) / (n_c + n_t)``:

    ``z = (p̂_t − p̂_c) / sqrt(p̂ (1 − p̂) (1/n_c + 1/n_t))``

    The pooled error is the standard error under H0: p_t = p_c. It is what
    ``statsmodels.stats.proportion.proportions_ztest`` and R's ``prop.test(correct=FALSE)``
    compute (R reports z² as X-squared).

    References
    ----------
    Agresti, A. (2013). Categorical Data Analysis, 3rd ed., section 3.1.

    Examples
    --------
    >>> r = two_proportion_ztest(ProportionStats(1000, 150), ProportionStats(1000, 180))
    >>> round(r.statistic, 4), round(r.p_value, 4)
    (1.8073, 0.0707)
    """
    direction = check_alternative(alternative)
    if control.n == 0 or treatment.n == 0:
        return TestResult.undefined("no_samples", direction)
    pooled = (control.conversions + treatment.conversions) / (control.n + treatment.n)
    variance = pooled * (1.0 - pooled) * (1.0 / control.n + 1.0 / treatment.n)
    if variance <= 0.0:
        return TestResult.undefined("zero_variance", direction)
    z = (treatment.rate - control.rate) / math.sqrt(variance)
    return TestResult(z, p_value_from_z(z, direction), direction)


def difference_ci(
    control: ProportionStats,
    treatment: ProportionStats,
    *,
    confidence: float = 0.95,
) -> EffectEstimate:
    """Unpooled Wald interval for the absolute difference ``p_t − p_c``.

    Notes
    -----
    ``SE = sqrt(p_c (1 − p_c) / n_c + p_t (1 − p_t) / n_t)``;
    interval ``(p_t − p_c) ± z_{(1+confidence)/2} · SE``. Matches
    ``statsmodels.stats.proportion.confint_proportions_2indep(method="wald")``.
    When every outcome in both arms is identical the standard error is 0: the estimate is
    kept, but the interval is ``None`` (a zero-width interval would claim certainty) and
    ``reason`` is ``"zero_variance"``. With an empty arm everything is ``None``
    (``"no_samples"``).

    References
    ----------
    Newcombe, R. G. (1998). Interval estimation for the difference between independent
    proportions. Statistics in Medicine 17, 873–890 (method 1).

    Examples
    --------
    >>> e = difference_ci(ProportionStats(1000, 150), ProportionStats(1000, 180))
    >>> round(e.estimate, 3), round(e.ci.lower, 5), round(e.ci.upper, 5)
    (0.03, -0.00251, 0.06251)
    """
    z = z_critical(confidence)
    if control.n == 0 or treatment.n == 0:
        return EffectEstimate.undefined("no_samples")
    diff = treatment.rate - control.rate
    se = math.sqrt(control.variance / control.n + treatment.variance / treatment.n)
    if se == 0.0:
        return EffectEstimate(diff, 0.0, None, "zero_variance")
    return EffectEstimate(diff, se, Interval(diff - z * se, diff + z * se, confidence))


def relative_lift_ci(
    control: ProportionStats,
    treatment: ProportionStats,
    *,
    confidence: float = 0.95,
) -> EffectEstimate:
    """Relative lift ``p_t / p_c − 1`` with an interval built on the log-ratio scale.

    Returns
    -------
    EffectEstimate
        ``estimate`` is ``p_t / p_c − 1``; ``std_error`` its delta-method standard error;
        ``log_std_error`` the standard error of ``log(p_t / p_c)``; ``ci`` the interval,
        which never goes below −100%. Undefined figures are ``None``: everything with an
        empty arm (``"no_samples"``) or no control conversions (``"zero_baseline"``); the
        interval and errors when the treatment has no conversions (``"zero_treatment"``,
        the estimate is −100%) or both rates are 1 (``"zero_variance"``).

    Notes
    -----
    The interval is the log (Katz) interval of the risk ratio ``R = p_t / p_c``, moved down
    by 1:

    ``SE_log² = 1/x_t − 1/n_t + 1/x_c − 1/n_c``,
    ``[exp(log R − z SE_log), exp(log R + z SE_log)] − 1``.

    Being the image of a symmetric interval under ``exp``, it is asymmetric and stays above
    −100%, which a symmetric delta-method interval on ``R`` does not (it reached −199.9% for
    small samples). It matches statsmodels'
    ``confint_proportions_2indep(x_t, n_t, x_c, n_c, compare="ratio", method="log")``
    minus 1. The delta-method error of ``R`` itself,
    ``Var(R) ≈ v_t / p_c² + p_t² v_c / p_c⁴`` with ``v = p(1 − p)/n``, is reported as
    ``std_error``.

    References
    ----------
    Katz, D., Baptista, J., Azen, S. P. & Pike, M. C. (1978). Obtaining confidence intervals
    for the risk ratio in cohort studies. Biometrics 34, 469–474.
    Casella, G. & Berger, R. L. (2002). Statistical Inference, 2nd ed., section 5.5.4.

    Examples
    --------
    >>> e = relative_lift_ci(ProportionStats(1000, 150), ProportionStats(1000, 180))
    >>> round(e.estimate, 3), round(e.std_error, 5)
    (0.2, 0.12133)
    >>> round(e.ci.lower, 4), round(e.ci.upper, 4)
    (-0.0157, 0.463)
    >>> relative_lift_ci(ProportionStats(100, 0), ProportionStats(100, 5)).reason
    'zero_baseline'
    """
    z = z_critical(confidence)
    if control.n == 0 or treatment.n == 0:
        return EffectEstimate.undefined("no_samples")
    if control.conversions == 0:
        return EffectEstimate.undefined("zero_baseline")
    pc, pt = control.rate, treatment.rate
    lift = pt / pc - 1.0
    if treatment.conversions == 0:
        return EffectEstimate(lift, None, None, "zero_treatment")
    vc, vt = control.variance / control.n, treatment.variance / treatment.n
    se = math.sqrt(vt / pc**2 + pt**2 * vc / pc**4)
    log_variance = (
        1.0 / treatment.conversions - 1.0 / treatment.n
        + 1.0 / control.conversions - 1.0 / control.n
    )  # fmt: skip
    log_se = math.sqrt(max(log_variance, 0.0))
    if log_se == 0.0:
        return EffectEstimate(lift, se, None, "zero_variance", 0.0)
    return EffectEstimate(lift, se, log_ratio_interval(lift, log_se, z, confidence), None, log_se)


def log_ratio_interval(lift: float, log_se: float, z: float, level: float) -> Interval:
    """``exp(log(1 + lift) ± z · log_se) − 1``: a lift interval that stays above −100%.

    Examples
    --------
    >>> ci = log_ratio_interval(0.2, 0.1, 1.96, 0.95)
    >>> round(ci.lower, 4), round(ci.upper, 4)
    (-0.0136, 0.4598)
    """
    centre = math.log1p(lift)
    return Interval(math.expm1(centre - z * log_se), math.expm1(centre + z * log_se), level)


def wilson_interval(stats: ProportionStats, *, confidence: float = 0.95) -> Interval:
    """Wilson score interval for one variant's rate.

    Notes
    -----
    ``centre = (p̂ + z²/(2n)) / (1 + z²/n)``,
    ``half = z / (1 + z²/n) · sqrt(p̂(1 − p̂)/n + z²/(4n²))``. With no users the interval
    is the whole of ``[0, 1]``. Matches ``proportion_confint(method="wilson")`` and R's
    ``prop.test(x, n, correct=FALSE)$conf.int``.

    References
    ----------
    Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
    inference. JASA 22, 209–212.

    Examples
    --------
    >>> ci = wilson_interval(ProportionStats(100, 10))
    >>> round(ci.lower, 5), round(ci.upper, 5)
    (0.05523, 0.17437)
    """
    z = z_critical(confidence)
    n = stats.n
    if n == 0:
        return Interval(0.0, 1.0, confidence)
    p = stats.rate
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    return Interval(max(0.0, centre - half), min(1.0, centre + half), confidence)
