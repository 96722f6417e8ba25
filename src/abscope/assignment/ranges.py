"""Variant weights to bucket ranges, and a bucket to the range that holds it.

Weights ``w_0 .. w_{K-1}`` become the half-open ranges ``[c_{i-1}, c_i)`` with ``c_{-1} = 0``,

.. math:: c_i = \\min\\big(1,\\ (\\cdots((w_0 + w_1) + w_2) \\cdots + w_i)\\big)
   \\quad (i < K - 1), \\qquad c_{K-1} = 1,

i.e. the cumulative sums added left to right in double precision (the order matters for the
last bit, and is the one any language's plain loop gives), each end capped at 1, and the last
end *exactly* 1.0 whatever rounding left it at. So the ranges tile ``[0, 1)`` without a gap:
every bucket, including ``1 - 2**-53``, falls in exactly one range. A weight of zero (allowed
only for adaptive allocations) gives an empty range that no bucket falls in.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from abscope._checks import check_finite
from abscope.assignment._validate import check_allocation

__all__ = ["bucket_ranges", "find_range"]


def bucket_ranges(weights: Sequence[float]) -> tuple[tuple[float, float], ...]:
    """The half-open bucket range ``[lo, hi)`` of each variant.

    Parameters
    ----------
    weights : sequence of float
        One weight per variant, each ``>= 0``, summing to 1 within 1e-9. (Configured
        experiments further require each weight ``> 0``; see
        :class:`abscope.assignment.AssignmentConfig`.)

    Returns
    -------
    tuple of (float, float)
        Contiguous ranges from 0 to exactly 1.0.

    Notes
    -----
    See the module docstring for the cumulative sums and the last end.

    Examples
    --------
    >>> bucket_ranges([0.1, 0.2, 0.7])
    ((0.0, 0.1), (0.1, 0.30000000000000004), (0.30000000000000004, 1.0))
    """
    values = check_allocation(weights, len(weights), "weights", allow_zero=True)
    ranges: list[tuple[float, float]] = []
    lo = total = 0.0
    for w in values[:-1]:
        total += w
        hi = min(total, 1.0)
        ranges.append((lo, hi))
        lo = hi
    ranges.append((lo, 1.0))
    return tuple(ranges)


def find_range(bucket: float, ranges: Sequence[tuple[float, float]]) -> int:
    """The index of the range ``[lo, hi)`` that holds ``bucket``.

    Parameters
    ----------
    bucket : float
        A bucket in ``[0, 1)``.
    ranges : sequence of (float, float)
        Contiguous ranges from 0 to 1, as from :func:`bucket_ranges`.

    Returns
    -------
    int
        The first ``i`` with ``bucket < ranges[i][1]``; empty ranges are never chosen.

    Examples
    --------
    >>> ranges = bucket_ranges([0.1, 0.2, 0.7])
    >>> find_range(0.1, ranges), find_range(0.3, ranges), find_range(0.30000000000000004, ranges)
    (1, 1, 2)
    """
    value = check_finite("bucket", bucket)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"bucket must be in [0, 1), got {bucket!r}")
    ends = [hi for _, hi in ranges]
    if not ends or ends[-1] != 1.0 or ranges[0][0] != 0.0:
        raise ValueError(f"ranges must run contiguously from 0 to 1, got {ranges!r}")
    return bisect.bisect_right(ends, value)
