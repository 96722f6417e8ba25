r"""A mergeable log-bucket quantile sketch (DDSketch) kept as plain integer counters.

Values are counted in fixed buckets on a logarithmic scale. With a relative accuracy
``α ∈ (0, 1)`` and ``γ = (1 + α) / (1 − α)``, a positive value ``x`` goes to the bucket

``i(x) = ⌈log_γ x⌉``, which holds the values in ``(γ^(i−1), γ^i]``,

and every value ``x ≤ 0`` goes to one *zero bucket* (a latency cannot be negative: a negative
one is clock skew, and it is counted as 0). The buckets are fixed in advance and do not depend
on the data, so a sketch is nothing but a count per occupied bucket index plus the zero count:
a store keeps them as integer counters (``HINCRBY`` on a hash field per index, an SQL upsert per
row), and two sketches of disjoint data merge by adding their counters, in any order, exactly.

The ``q``-quantile of ``n`` counted values is read as the representative
``x̃_i = 2 γ^i / (γ + 1)`` of the bucket that holds the value of rank ``⌊q (n − 1)⌋`` (0-based,
in increasing order), or 0 when that value is in the zero bucket. Every ``x`` in bucket ``i``
satisfies ``|x̃_i − x| ≤ α x``, so the answer is within relative error ``α`` of the exact
lower sample quantile ``x_(⌊q (n − 1)⌋)`` (``numpy.quantile(..., method="lower")``), whatever
the data and however the sketch was merged: the guarantee of Masson, Rim & Lee (2019),
Proposition 3, without their bucket collapsing (the buckets here are never collapsed, so
the guarantee holds for every quantile). Floating point can move a value that lies within a
few ulps of a boundary ``γ^i`` into the neighbouring bucket; the error bound then exceeds
``α`` by about ``10⁻¹³`` relative.

Storage: a 1% sketch of latencies between 0.1 ms and 100 s occupies at most
``ln(10⁶) / ln γ ≈ 691`` buckets, whatever the number of requests. Indices of a coarser
accuracy nest exactly: with ``γ_c = γ^k`` the bucket ``⌈i / k⌉`` of accuracy
``α_c = (γ^k − 1) / (γ^k + 1)`` is the union of the fine buckets ``i`` with
``k (j − 1) < i ≤ k j`` (see :func:`coarse_index`), so a coarse count can be derived from a
fine index by integer arithmetic, with no second logarithm.

References
----------
.. [1] C. Masson, J. E. Rim and H. K. Lee, "DDSketch: a fast and fully-mergeable quantile
   sketch with relative-error guarantees", Proc. VLDB Endowment 12(12), 2195-2205, 2019.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from abscope.stats._validate import check_count, check_finite, check_open_unit

__all__ = [
    "DEFAULT_ACCURACY",
    "LogSketch",
    "bucket_bounds",
    "bucket_index",
    "bucket_value",
    "coarse_accuracy",
    "coarse_index",
    "gamma",
]

DEFAULT_ACCURACY = 0.01
"""The relative accuracy ``α`` of a quantile read from the sketch: 1%."""


def gamma(accuracy: float) -> float:
    """The bucket ratio ``γ = (1 + α) / (1 − α)`` of a relative accuracy ``α ∈ (0, 1)``.

    Examples
    --------
    >>> round(gamma(0.01), 6)
    1.020202
    """
    alpha = check_open_unit("accuracy", accuracy)
    return (1.0 + alpha) / (1.0 - alpha)


def bucket_index(value: float, accuracy: float = DEFAULT_ACCURACY) -> int | None:
    """The bucket ``⌈log_γ x⌉`` of a value, or ``None`` for the zero bucket (``x ≤ 0``).

    Parameters
    ----------
    value : float
        A finite number; values ``≤ 0`` are counted in the zero bucket.
    accuracy : float
        The relative accuracy ``α``.

    Returns
    -------
    int or None
        The index ``i`` with ``γ^(i−1) < x ≤ γ^i``, or ``None`` for the zero bucket.

    Examples
    --------
    >>> bucket_index(1.0), bucket_index(1.02), bucket_index(1.03), bucket_index(0.0)
    (0, 1, 2, None)
    >>> bucket_index(250.0)
    277
    """
    x = check_finite("value", value)
    log_gamma = math.log(gamma(accuracy))
    if x <= 0.0:
        return None
    return math.ceil(math.log(x) / log_gamma)


def bucket_bounds(index: int, accuracy: float = DEFAULT_ACCURACY) -> tuple[float, float]:
    """The values ``(γ^(i−1), γ^i]`` counted in bucket ``i``.

    Examples
    --------
    >>> [round(b, 4) for b in bucket_bounds(1)]
    [1.0, 1.0202]
    """
    g = gamma(accuracy)
    return g ** (index - 1), g**index


def bucket_value(index: int | None, accuracy: float = DEFAULT_ACCURACY) -> float:
    """The representative ``x̃_i = 2 γ^i / (γ + 1)`` of bucket ``i`` (0 for the zero bucket).

    Notes
    -----
    ``x̃_i`` is the point of ``(γ^(i−1), γ^i]`` whose relative distance to the farthest end is
    smallest: ``(x̃_i − γ^(i−1)) / γ^(i−1) = (γ^i − x̃_i) / γ^i = α``.

    Examples
    --------
    >>> bucket_value(0), bucket_value(None)
    (0.9900000000000001, 0.0)
    """
    if index is None:
        return 0.0
    g = gamma(accuracy)
    return 2.0 * g**index / (g + 1.0)


def coarse_index(index: int | None, factor: int) -> int | None:
    """The coarse bucket ``⌈i / k⌉`` (accuracy :func:`coarse_accuracy`) holding bucket ``i``.

    Examples
    --------
    >>> [coarse_index(i, 4) for i in (-4, -3, 0, 1, 4, 5)]
    [-1, 0, 0, 1, 1, 2]
    >>> coarse_index(None, 4) is None
    True
    """
    k = check_count("factor", factor)
    if k < 1:
        raise ValueError(f"factor must be at least 1, got {factor!r}")
    if index is None:
        return None
    return -((-index) // k)


def coarse_accuracy(accuracy: float, factor: int) -> float:
    """The accuracy ``α_k = (γ^k − 1) / (γ^k + 1)`` of buckets ``k`` fine buckets wide.

    Examples
    --------
    >>> round(coarse_accuracy(0.01, 4), 5)
    0.03998
    """
    g = gamma(accuracy) ** check_count("factor", factor)
    return (g - 1.0) / (g + 1.0)


@dataclass(frozen=True, slots=True)
class LogSketch:
    """Counts of values per log bucket of relative accuracy ``accuracy``, and the zero count.

    ``buckets`` holds ``(index, count)`` pairs sorted by index, each count positive (build a
    sketch with :meth:`from_counts` or :meth:`from_values`). Sketches of the same accuracy
    merge by adding their counts (``a + b``), which equals the sketch of the union.

    Examples
    --------
    >>> s = LogSketch.from_values([1.0, 2.0, 2.0, 0.0, 500.0])
    >>> s.count, s.zero, s.buckets[0]
    (5, 1, (0, 1))
    >>> round(s.quantile(0.5), 3), s.quantile(0.0), round(s.quantile(1.0), 1)
    (1.994, 0.0, 497.8)
    >>> (s + s).count
    10
    """

    accuracy: float = DEFAULT_ACCURACY
    buckets: tuple[tuple[int, int], ...] = ()
    zero: int = 0

    def __post_init__(self) -> None:
        check_open_unit("accuracy", self.accuracy)
        object.__setattr__(self, "zero", check_count("zero", self.zero))
        previous: int | None = None
        for index, count in self.buckets:
            if type(index) is not int:
                raise ValueError(f"buckets must have integer indices, got {index!r}")
            if previous is not None and index <= previous:
                raise ValueError("buckets must be sorted by index, each index once")
            if type(count) is not int or count <= 0:
                check_count("buckets", count)
                raise ValueError(f"buckets must have positive integer counts, got {count!r}")
            previous = index

    @classmethod
    def from_counts(
        cls, counts: Mapping[int, int], zero: int = 0, accuracy: float = DEFAULT_ACCURACY
    ) -> LogSketch:
        """The sketch of counters ``{index: count}`` as a store keeps them (zeros dropped)."""
        pairs = tuple(sorted((i, check_count("counts", c)) for i, c in counts.items()))
        return cls(accuracy, tuple((i, c) for i, c in pairs if c), zero)

    @classmethod
    def from_values(cls, values: Iterable[float], accuracy: float = DEFAULT_ACCURACY) -> LogSketch:
        """The sketch of some values, one :func:`bucket_index` each."""
        counts: dict[int, int] = {}
        zero = 0
        for value in values:
            index = bucket_index(value, accuracy)
            if index is None:
                zero += 1
            else:
                counts[index] = counts.get(index, 0) + 1
        return cls.from_counts(counts, zero, accuracy)

    def __add__(self, other: LogSketch) -> LogSketch:
        if not isinstance(other, LogSketch):
            return NotImplemented
        if other.accuracy != self.accuracy:
            raise ValueError("sketches of different accuracies cannot be merged")
        counts = dict(self.buckets)
        for index, count in other.buckets:
            counts[index] = counts.get(index, 0) + count
        return LogSketch.from_counts(counts, self.zero + other.zero, self.accuracy)

    @property
    def count(self) -> int:
        """The number of values counted, ``zero + Σ counts``."""
        return self.zero + sum(count for _, count in self.buckets)

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile within relative error ``α``, or ``None`` for an empty sketch.

        Notes
        -----
        With ``n`` values, the bucket ``i`` holding the value of 0-based rank
        ``r = ⌊q (n − 1)⌋`` is the first whose cumulative count (zero bucket first) exceeds
        ``r``; the answer is its representative :func:`bucket_value`, so
        ``|x̃ − x_(r)| ≤ α x_(r)`` for the exact lower sample quantile ``x_(r)``
        (Masson, Rim & Lee 2019, Proposition 3).
        """
        level = check_finite("q", q)
        if not 0.0 <= level <= 1.0:
            raise ValueError(f"q must be in [0, 1], got {q!r}")
        n = self.count
        if n == 0:
            return None
        rank = math.floor(level * (n - 1))
        seen = self.zero
        if rank < seen:
            return 0.0
        for index, count in self.buckets:
            seen += count
            if rank < seen:
                return bucket_value(index, self.accuracy)
        raise AssertionError("unreachable: the rank is below the total count")
