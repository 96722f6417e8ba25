"""Typed results shared by the frequentist tests.

Degenerate data never raises: a result carries a ``reason`` code and neutral values
(``p_value = 1``, ``statistic = 0``, an interval of ``(-inf, inf)`` when nothing is known).
The reason codes are:

=======================  ===================================================================
``no_samples``           an arm has no users
``insufficient_samples`` an arm has fewer users than the test needs (Welch needs 2 per arm)
``zero_variance``        every outcome is identical, so the standard error is 0
``zero_baseline``        the control rate or mean is 0, so a relative lift is undefined
=======================  ===================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from abscope.stats._types import Alternative

__all__ = [
    "EffectEstimate",
    "Interval",
    "TestResult",
]


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

    ``df`` is ``None`` for z-tests and the Welch–Satterthwaite degrees of freedom for t-tests.
    """

    __test__ = False  # not a pytest test class

    statistic: float
    p_value: float
    alternative: Alternative
    df: float | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class EffectEstimate:
    """An effect (absolute difference or relative lift), its standard error and interval."""

    estimate: float
    std_error: float
    ci: Interval
    reason: str | None = None

    @classmethod
    def undefined(cls, reason: str, confidence: float) -> EffectEstimate:
        """Neutral values for degenerate data: estimate 0, infinite error, unbounded CI."""
        return cls(0.0, math.inf, Interval.unbounded(confidence), reason)
