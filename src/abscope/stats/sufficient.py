"""Sufficient statistics: the only inputs the tests need, whatever the number of events.

A binary metric is summarised by ``ProportionStats(n, conversions)``; a continuous metric by
``MeanStats(n, sum, sum_squares, shift)``. Both are frozen and can be added together, so
per-shard or per-hour summaries combine into experiment totals without touching raw events.

Numerical accuracy of the variance
----------------------------------
The textbook formula ``(Σx² − (Σx)²/n) / (n − 1)`` cancels catastrophically when the mean is
large against the spread: with values near 1e6, a standard deviation of 1 and n = 1e9, Σx² is
about 1e21 and float64 keeps only ~16 significant digits of it, so the variance comes out as
noise. ``MeanStats`` therefore stores *shifted* sums ``Σ(x − K)`` and ``Σ(x − K)²`` around a
shift ``K`` close to the mean (Chan, Golub & LeVeque, "Algorithms for computing the sample
variance", The American Statistician 37(3), 1983, section 3). The cancellation is then of the
order of ``(mean − K)²`` rather than ``mean²``. ``from_values`` picks ``K`` as the sample mean
(two-pass algorithm), and adding two summaries re-centres the right operand on the left one's
shift with the exact identity ``Σ(x−a)² = Σ(x−b)² + 2(b−a)Σ(x−b) + n(b−a)²``. Summaries with
``shift = 0`` are raw sums, as a store that only increments counters keeps them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from abscope.stats._validate import check_count, check_finite

__all__ = ["MeanStats", "ProportionStats"]

_CONSISTENCY_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class ProportionStats:
    """Users exposed (``n``) and users who converted (``conversions``) in one variant.

    Examples
    --------
    >>> a = ProportionStats(n=1000, conversions=150)
    >>> (a + ProportionStats(500, 60)).rate
    0.14
    """

    n: int
    conversions: int

    def __post_init__(self) -> None:
        n = check_count("n", self.n)
        conversions = check_count("conversions", self.conversions)
        if conversions > n:
            raise ValueError(
                f"conversions must not exceed n, got conversions={conversions} > n={n}"
            )
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "conversions", conversions)

    @classmethod
    def from_outcomes(cls, outcomes: ArrayLike) -> ProportionStats:
        """Summarise an array of 0/1 (or bool) outcomes, one per user."""
        values = np.asarray(outcomes, dtype=float).ravel()
        if not np.all((values == 0.0) | (values == 1.0)):
            raise ValueError("outcomes must contain only 0/1 or booleans")
        return cls(n=int(values.size), conversions=int(values.sum()))

    @property
    def rate(self) -> float:
        """Conversion rate ``conversions / n``; 0.0 when there are no users."""
        return self.conversions / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Bernoulli variance ``p(1 − p)`` of one user's outcome."""
        p = self.rate
        return p * (1.0 - p)

    def __add__(self, other: ProportionStats) -> ProportionStats:
        if not isinstance(other, ProportionStats):
            return NotImplemented
        return ProportionStats(self.n + other.n, self.conversions + other.conversions)


@dataclass(frozen=True, slots=True)
class MeanStats:
    """Count, shifted sum and shifted sum of squares of one variant's per-user values.

    ``sum = Σ(x − shift)`` and ``sum_squares = Σ(x − shift)²``. With the default
    ``shift = 0`` these are the plain sums a counter store keeps.

    Examples
    --------
    >>> s = MeanStats.from_values([1.0, 2.0, 3.0, 4.0])
    >>> s.mean, s.variance
    (2.5, 1.6666666666666667)
    >>> (s + MeanStats.from_values([5.0])).mean
    3.0
    """

    n: int
    sum: float
    sum_squares: float
    shift: float = 0.0

    def __post_init__(self) -> None:
        n = check_count("n", self.n)
        total = check_finite("sum", self.sum)
        squares = check_finite("sum_squares", self.sum_squares)
        shift = check_finite("shift", self.shift)
        if squares < 0:
            raise ValueError(f"sum_squares must be non-negative, got {squares!r}")
        if n == 0 and (total != 0.0 or squares != 0.0):
            raise ValueError("sum and sum_squares must be 0 when n is 0")
        # Cauchy–Schwarz: (Σy)² ≤ n Σy². A violation means the sums were mixed up.
        if n and total * total > n * squares * (1.0 + _CONSISTENCY_TOLERANCE) + 1e-300:
            raise ValueError("sum_squares is smaller than sum**2 / n: the sums are inconsistent")
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "sum", total)
        object.__setattr__(self, "sum_squares", squares)
        object.__setattr__(self, "shift", shift)

    @classmethod
    def from_values(cls, values: Iterable[float] | ArrayLike) -> MeanStats:
        """Summarise raw per-user values, shifted by their mean (two-pass, accurate)."""
        array = np.asarray(values if not isinstance(values, Iterable) else list(values), float)
        array = array.ravel()
        if array.size == 0:
            return cls(0, 0.0, 0.0)
        if not np.all(np.isfinite(array)):
            raise ValueError("values must all be finite")
        shift = float(np.mean(array))
        deviations = array - shift
        return cls(
            n=int(array.size),
            sum=float(np.sum(deviations)),
            sum_squares=float(np.sum(deviations * deviations)),
            shift=shift,
        )

    @classmethod
    def from_moments(cls, n: int, mean: float, std: float) -> MeanStats:
        """Build a summary from a count, a mean and a sample standard deviation (ddof=1)."""
        count = check_count("n", n)
        centre = check_finite("mean", mean)
        spread = check_finite("std", std)
        if spread < 0:
            raise ValueError(f"std must be non-negative, got {std!r}")
        if count == 0:
            return cls(0, 0.0, 0.0)
        return cls(n=count, sum=0.0, sum_squares=spread * spread * max(count - 1, 0), shift=centre)

    @property
    def mean(self) -> float:
        """Sample mean ``shift + sum / n``; 0.0 when there are no users."""
        return self.shift + self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Unbiased sample variance ``(Σy² − (Σy)²/n) / (n − 1)``; 0.0 when n < 2."""
        if self.n < 2:
            return 0.0
        centred = self.sum_squares - self.sum * self.sum / self.n
        return max(centred, 0.0) / (self.n - 1)

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1)."""
        return float(np.sqrt(self.variance))

    def shifted_to(self, shift: float) -> MeanStats:
        """The same summary with its sums taken around ``shift``."""
        delta = self.shift - check_finite("shift", shift)
        if delta == 0.0 or self.n == 0:
            return MeanStats(self.n, self.sum, self.sum_squares, shift if self.n else 0.0)
        squares = self.sum_squares + 2.0 * delta * self.sum + self.n * delta * delta
        return MeanStats(self.n, self.sum + self.n * delta, max(squares, 0.0), shift)

    def __add__(self, other: MeanStats) -> MeanStats:
        if not isinstance(other, MeanStats):
            return NotImplemented
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        aligned = other.shifted_to(self.shift)
        return MeanStats(
            n=self.n + aligned.n,
            sum=self.sum + aligned.sum,
            sum_squares=self.sum_squares + aligned.sum_squares,
            shift=self.shift,
        )
