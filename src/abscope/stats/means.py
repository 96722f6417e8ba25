"""Tests and intervals for continuous metrics (per-user means), by Welch's method.

All effects are ``treatment − control`` (or ``treatment / control − 1`` for the lift).
"""

from __future__ import annotations

import math

from scipy import stats as _sp

from abscope.stats._types import Alternative, check_alternative
from abscope.stats.proportions import log_ratio_interval, z_critical
from abscope.stats.results import EffectEstimate, Interval, TestResult
from abscope.stats.sufficient import MeanStats

__all__ = [
    "mean_difference_ci",
    "mean_interval",
    "relative_mean_lift_ci",
    "welch_df",
    "welch_ttest",
]


def _degenerate(control: MeanStats, treatment: MeanStats) -> str | None:
    if control.n == 0 or treatment.n == 0:
        return "no_samples"
    if control.n < 2 or treatment.n < 2:
        return "insufficient_samples"
    return None


def welch_df(control: MeanStats, treatment: MeanStats) -> float | None:
    """Welch–Satterthwaite degrees of freedom.

    Notes
    -----
    With ``v_i = s_i² / n_i``: ``df = (v_c + v_t)² / (v_c²/(n_c − 1) + v_t²/(n_t − 1))``.
    Both arms need two users; with zero variance in both the df is undefined (``None``).

    References
    ----------
    Welch, B. L. (1947). The generalization of "Student's" problem when several different
    population variances are involved. Biometrika 34, 28–35.
    Satterthwaite, F. E. (1946). Biometrics Bulletin 2, 110–114.

    Examples
    --------
    >>> a = MeanStats.from_values([1.0, 2.0, 3.0])
    >>> b = MeanStats.from_values([2.0, 4.0, 6.0, 8.0])
    >>> round(welch_df(a, b), 4)
    4.0755
    """
    if control.n < 2 or treatment.n < 2:
        raise ValueError("control and treatment need at least 2 users each for welch_df")
    vc = control.variance / control.n
    vt = treatment.variance / treatment.n
    denominator = vc * vc / (control.n - 1) + vt * vt / (treatment.n - 1)
    if denominator == 0.0:
        return None
    return (vc + vt) ** 2 / denominator


def welch_ttest(
    control: MeanStats,
    treatment: MeanStats,
    *,
    alternative: Alternative = "two-sided",
) -> TestResult:
    """Welch's unequal-variance t-test of ``mean_t − mean_c``.

    Parameters
    ----------
    control, treatment : MeanStats
        Sufficient statistics of the per-user values in each arm.
    alternative : {"two-sided", "greater", "less"}

    Returns
    -------
    TestResult
        ``statistic`` is t and ``df`` the Welch–Satterthwaite degrees of freedom. With fewer
        than 2 users in an arm, or zero variance in both (two constant samples: ``t`` is
        ``d / 0``), the statistic, p-value and df are ``None`` and ``reason`` says why.

    Notes
    -----
    ``t = (x̄_t − x̄_c) / sqrt(s_t²/n_t + s_c²/n_c)``, compared with Student's t on
    :func:`welch_df` degrees of freedom. Matches ``scipy.stats.ttest_ind(equal_var=False)``
    and ``statsmodels.stats.weightstats.ttest_ind(usevar="unequal")``.

    References
    ----------
    Welch (1947), see :func:`welch_df`. R: ``t.test(x, y, var.equal = FALSE)``.

    Examples
    --------
    >>> a = MeanStats.from_values([1.0, 2.0, 3.0])
    >>> b = MeanStats.from_values([2.0, 4.0, 6.0, 8.0])
    >>> r = welch_ttest(a, b)
    >>> round(r.statistic, 4), round(r.p_value, 4)
    (2.1213, 0.0999)
    """
    direction = check_alternative(alternative)
    reason = _degenerate(control, treatment)
    if reason:
        return TestResult.undefined(reason, direction)
    se = math.sqrt(control.variance / control.n + treatment.variance / treatment.n)
    df = welch_df(control, treatment)
    if se == 0.0 or df is None:
        return TestResult.undefined("zero_variance", direction)
    t = (treatment.mean - control.mean) / se
    if direction == "two-sided":
        p = float(min(1.0, 2.0 * _sp.t.sf(abs(t), df)))
    elif direction == "greater":
        p = float(_sp.t.sf(t, df))
    else:
        p = float(_sp.t.cdf(t, df))
    return TestResult(t, p, direction, df=df)


def mean_difference_ci(
    control: MeanStats,
    treatment: MeanStats,
    *,
    confidence: float = 0.95,
) -> EffectEstimate:
    """Welch interval for ``mean_t − mean_c``.

    Notes
    -----
    ``(x̄_t − x̄_c) ± t_{(1+confidence)/2, df} · sqrt(s_t²/n_t + s_c²/n_c)`` with the
    Welch–Satterthwaite ``df``. Matches statsmodels'
    ``CompareMeans(...).tconfint_diff(usevar="unequal")``. With both arms constant the
    estimate is kept but the interval is ``None`` (``"zero_variance"``); with too few users
    everything is ``None``.

    Examples
    --------
    >>> a = MeanStats.from_values([1.0, 2.0, 3.0])
    >>> b = MeanStats.from_values([2.0, 4.0, 6.0, 8.0])
    >>> e = mean_difference_ci(a, b)
    >>> round(e.estimate, 2), round(e.ci.lower, 4), round(e.ci.upper, 4)
    (3.0, -0.898, 6.898)
    """
    z_critical(confidence)  # validates confidence
    reason = _degenerate(control, treatment)
    if reason:
        return EffectEstimate.undefined(reason)
    diff = treatment.mean - control.mean
    se = math.sqrt(control.variance / control.n + treatment.variance / treatment.n)
    df = welch_df(control, treatment)
    if se == 0.0 or df is None:
        return EffectEstimate(diff, 0.0, None, "zero_variance")
    q = float(_sp.t.ppf(0.5 + confidence / 2.0, df))
    return EffectEstimate(diff, se, Interval(diff - q * se, diff + q * se, confidence))


def relative_mean_lift_ci(
    control: MeanStats,
    treatment: MeanStats,
    *,
    confidence: float = 0.95,
) -> EffectEstimate:
    """Relative lift ``x̄_t / x̄_c − 1``, its delta-method error and an interval.

    Notes
    -----
    With ``v_c = s_c²/n_c`` and ``v_t = s_t²/n_t``, the delta method gives
    ``Var(x̄_t / x̄_c) ≈ v_t / x̄_c² + x̄_t² v_c / x̄_c⁴`` (reported as ``std_error``) and
    ``Var(log(x̄_t / x̄_c)) ≈ v_t / x̄_t² + v_c / x̄_c²`` (``log_std_error``).

    When both means are positive (revenue, counts, durations) the interval is built on the
    log scale, ``exp(log(x̄_t / x̄_c) ± z SE_log) − 1``, so it never goes below −100%. When
    a mean is negative the ratio can itself be negative, the log scale does not exist, and
    the interval is the symmetric ``(R − 1) ± z SE`` (``log_std_error`` is then ``None``).
    Both use the normal quantile, since the delta method is itself a large-sample
    approximation. Undefined figures are ``None``: everything when the control mean is 0
    (``"zero_baseline"``) or an arm has fewer than 2 users; the interval when the treatment
    mean is 0 (``"zero_treatment"``) or both arms are constant (``"zero_variance"``).

    References
    ----------
    Casella & Berger (2002), Statistical Inference, section 5.5.4; GrowthBook gbstats
    ``frequentist`` relative effects.

    Examples
    --------
    >>> a = MeanStats.from_moments(1000, 10.0, 4.0)
    >>> b = MeanStats.from_moments(1000, 11.0, 4.0)
    >>> e = relative_mean_lift_ci(a, b)
    >>> round(e.estimate, 3), round(e.std_error, 5), round(e.ci.lower, 4)
    (0.1, 0.0188, 0.0638)
    """
    z = z_critical(confidence)
    reason = _degenerate(control, treatment)
    if reason:
        return EffectEstimate.undefined(reason)
    mc, mt = control.mean, treatment.mean
    if mc == 0.0:
        return EffectEstimate.undefined("zero_baseline")
    lift = mt / mc - 1.0
    if mt == 0.0:
        return EffectEstimate(lift, None, None, "zero_treatment")
    vc, vt = control.variance / control.n, treatment.variance / treatment.n
    se = math.sqrt(vt / mc**2 + mt**2 * vc / mc**4)
    if se == 0.0:
        return EffectEstimate(lift, 0.0, None, "zero_variance")
    if mc > 0.0 and mt > 0.0:
        log_se = math.sqrt(vt / mt**2 + vc / mc**2)
        return EffectEstimate(
            lift, se, log_ratio_interval(lift, log_se, z, confidence), None, log_se
        )
    return EffectEstimate(lift, se, Interval(lift - z * se, lift + z * se, confidence))


def mean_interval(stats: MeanStats, *, confidence: float = 0.95) -> Interval:
    """Student t interval for one variant's mean.

    Notes
    -----
    ``x̄ ± t_{(1+confidence)/2, n−1} · s / sqrt(n)``; unbounded when ``n < 2``. Matches
    ``scipy.stats.t.interval(confidence, n - 1, x̄, s / sqrt(n))``.

    Examples
    --------
    >>> ci = mean_interval(MeanStats.from_values([1.0, 2.0, 3.0, 4.0]))
    >>> round(ci.lower, 4), round(ci.upper, 4)
    (0.4457, 4.5543)
    """
    z_critical(confidence)  # validates confidence
    if stats.n < 2:
        return Interval.unbounded(confidence)
    half = float(_sp.t.ppf(0.5 + confidence / 2.0, stats.n - 1)) * stats.std / math.sqrt(stats.n)
    return Interval(stats.mean - half, stats.mean + half, confidence)
