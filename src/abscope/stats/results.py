"""Typed results shared by the frequentist tests.

Undefined is null: degenerate data never raises, and a value that cannot be computed is
``None`` with a ``reason`` code beside it, never a neutral number (a p-value of 1 or a lift
of 0 would mislead every caller that does not read the reason). The reason codes are:

=======================  ===================================================================
``no_samples``           an arm has no users
``insufficient_samples`` an arm has fewer users than the test needs (Welch needs 2 per arm)
``zero_variance``        every outcome is identical, so the standard error is 0: the test
                         statistic, p-value and interval are undefined (the point estimate
                         of a difference still is)
``zero_denominator``     the denominator of a ratio metric sums to 0 in an arm (no requests
                         at all), so its ratio ``Σy / Σx`` is undefined
``zero_baseline``        the control rate, mean or ratio is 0, so a relative lift is undefined
``zero_treatment``       the treatment rate or mean is 0: the lift is −100% but its
                         log-ratio interval is undefined
``no_min_lift``          no minimum relative lift was pre-registered, so power and the users
                         still needed are undefined (sizing against the observed lift would
                         be post-hoc power)
``unreachable_target``   the minimum lift takes the rate outside (0, 1), or the test cannot
                         reach it, so power and the users still needed are undefined
=======================  ===================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from abscope.stats._types import Alternative

__all__ = [
    "EffectEstimate",
    "Interval",
    "REASONS",
    "TestResult",
]

REASONS: dict[str, str] = {
    "no_samples": "an arm has no users yet",
    "insufficient_samples": "an arm has too few users for this test",
    "zero_variance": "every outcome is identical, so there is no measure of noise",
    "zero_denominator": "an arm's ratio has a zero denominator (no requests yet), so it is"
    " undefined",
    "zero_baseline": "the control has no conversions (or a zero mean), so a relative lift is"
    " undefined",
    "zero_treatment": "the treatment has no conversions, so the relative interval is undefined",
    "quantile_metric": "a quantile metric: its figures are per quantile (p50, p95, ...), not one"
    " value per arm",
    "no_min_lift": "no minimum relative lift is set, so power cannot be computed",
    "unreachable_target": "the minimum relative lift cannot be sized from this baseline",
    "missing_probabilities": "some users of an arm were exposed before the store kept their"
    " assignment probabilities, so a weighted estimate would leave them out",
    "unknown_total": "Horvitz-Thompson and AIPW need the number of users randomised, which"
    " the store knows only when all traffic enters the experiment (100%, no layer)",
}
"""Each reason code with a plain-language sentence, for tooltips and reports."""


@dataclass(frozen=True, slots=True)
class Interval:
    """A confidence (or credible) interval ``[lower, upper]`` at ``level``."""

    lower: float
    upper: float
    level: float

    @classmethod
    def unbounded(cls, level: float) -> Interval:
        """The interval ``(-inf, inf)``: nothing is known."""
        return cls(-math.inf, math.inf, level)

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the closed interval."""
        return self.lower <= value <= self.upper

    @property
    def width(self) -> float:
        return self.upper - self.lower


@dataclass(frozen=True, slots=True)
class TestResult:
    """A hypothesis test of ``treatment − control``.

    ``statistic`` and ``p_value`` are ``None`` when the test is undefined (then ``reason``
    says why). ``df`` is ``None`` for z-tests and the Welch–Satterthwaite degrees of freedom
    for t-tests.
    """

    __test__ = False  # not a pytest test class

    statistic: float | None
    p_value: float | None
    alternative: Alternative
    df: float | None = None
    reason: str | None = None

    @classmethod
    def undefined(cls, reason: str, alternative: Alternative) -> TestResult:
        """A test that cannot be computed: no statistic, no p-value, and the reason."""
        return cls(None, None, alternative, None, reason)


@dataclass(frozen=True, slots=True)
class EffectEstimate:
    """An effect (absolute difference or relative lift), its standard error and interval.

    Any of ``estimate``, ``std_error`` and ``ci`` is ``None`` when it is undefined, with
    ``reason`` set. For a relative lift ``log_std_error`` is the standard error of
    ``log(1 + estimate)``, the scale its interval is built on (``None`` for absolute effects
    and for lifts whose interval is built on the linear scale).
    """

    estimate: float | None
    std_error: float | None
    ci: Interval | None
    reason: str | None = None
    log_std_error: float | None = None

    @classmethod
    def undefined(cls, reason: str) -> EffectEstimate:
        """An effect that cannot be computed at all: every figure ``None``, and the reason."""
        return cls(None, None, None, reason)
