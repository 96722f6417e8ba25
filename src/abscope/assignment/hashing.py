"""From a user id and a salt to a bucket in ``[0, 1)``: the one hash every SDK reproduces.

.. math:: n = \\mathrm{uint64_{BE}}\\big(\\mathrm{sha256}(\\texttt{user\\_id:salt})[0:8]\\big),
   \\qquad \\mathrm{bucket} = \\min\\!\\big(\\mathrm{fl}(n / 2^{64}),\\ 1 - 2^{-53}\\big)

The string ``f"{user_id}:{salt}"`` is encoded as UTF-8 exactly as given (no Unicode
normalisation: ``"e\\u0301"`` and ``"\\u00e9"`` are different users). ``fl`` is rounding to the
nearest double, ties to even, which is what ``(double) n / 2^64`` gives in C, Go, Java or
JavaScript (``Number(n) / 2 ** 64`` with ``n`` a ``BigInt``) and what Python's ``n / 2**64``
gives. The top 1,024 values of ``n`` (a share ``2^{-54}`` of users) round up to 1.0; they are
clamped to the largest double below 1, so every bucket is in ``[0, 1)`` and a threshold of 1.0
(100% traffic, the end of the last variant range) admits every user.

Decisions compare a bucket ``b`` with a cut ``c`` (``b < c``). The hot path
(:class:`abscope.assignment.Router`) compares the integer ``n`` instead, with
:func:`bucket_threshold`: ``bucket_from_int(n) < c`` if and only if
``n < bucket_threshold(c)``, for every ``n``. The threshold is found by bisection on the
bucket function itself, so the two are equal by construction (the bucket is non-decreasing in
``n``), not by a floating-point argument.
"""

from __future__ import annotations

import hashlib
import math

from abscope._checks import check_finite
from abscope.assignment._validate import check_user_id

__all__ = [
    "MAX_BUCKET",
    "bucket",
    "bucket_from_int",
    "bucket_int",
    "bucket_threshold",
]

_TWO_64 = 1 << 64
MAX_BUCKET = math.nextafter(1.0, 0.0)
"""The largest bucket, ``1 - 2**-53``: the largest double below 1."""


def bucket_int(user_id: str, salt: str) -> int:
    """The raw hash: the first 8 bytes of ``sha256(f"{user_id}:{salt}")``, big-endian.

    Parameters
    ----------
    user_id : str
        1 to 256 code points, encodable as UTF-8.
    salt : str
        A non-empty string, e.g. from :func:`abscope.assignment.variant_salt`.

    Returns
    -------
    int
        An integer in ``[0, 2**64)``.

    Examples
    --------
    >>> f"{bucket_int('alice', 'checkout:0:variant'):016x}"
    '5c4fd8ee47a3a2c9'
    """
    key = _key(user_id, salt)
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


def bucket_from_int(n: int) -> float:
    """Map a raw 64-bit hash to its bucket: ``n / 2**64`` rounded, clamped below 1.

    Parameters
    ----------
    n : int
        An integer in ``[0, 2**64)``.

    Returns
    -------
    float
        ``min(n / 2**64, 1 - 2**-53)``, in ``[0, 1)``.

    Examples
    --------
    >>> bucket_from_int(1 << 63)
    0.5
    >>> bucket_from_int(2**64 - 1)  # would round to 1.0; clamped
    0.9999999999999999
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < _TWO_64:
        raise ValueError(f"n must be an integer in [0, 2**64), got {n!r}")
    return min(n / _TWO_64, MAX_BUCKET)


def bucket(user_id: str, salt: str) -> float:
    """The bucket of ``user_id`` under ``salt``, in ``[0, 1)``.

    Parameters
    ----------
    user_id : str
        1 to 256 code points, encodable as UTF-8.
    salt : str
        A non-empty string; see :mod:`abscope.assignment.salts` for how salts are derived.

    Returns
    -------
    float
        ``bucket_from_int(bucket_int(user_id, salt))``.

    Notes
    -----
    See the module docstring for the formula and the clamp at the top end.

    Examples
    --------
    >>> bucket("alice", "checkout:0:variant")
    0.36059337441805767
    """
    return bucket_from_int(bucket_int(user_id, salt))


def bucket_threshold(cut: float) -> int:
    """The integer cut matching a bucket cut: ``bucket_from_int(n) < cut`` iff ``n < result``.

    Parameters
    ----------
    cut : float
        A finite number; cuts at or below 0 admit nobody, cuts above ``1 - 2**-53``
        (1.0 included) admit everybody.

    Returns
    -------
    int
        The smallest ``n`` in ``[0, 2**64]`` with ``bucket_from_int(n) >= cut``, or ``2**64``
        when there is none.

    Notes
    -----
    Found by bisection on :func:`bucket_from_int`, which is non-decreasing in ``n``; so
    ``{n : bucket_from_int(n) < cut}`` is exactly ``range(result)``. This is why the router's
    integer comparisons give the same variants as the float ranges. Note that
    ``floor(cut * 2**64)`` is *not* always the answer: integers just below it can round up to
    ``cut``.

    Examples
    --------
    >>> bucket_threshold(0.5) == 2**63 - 2**9
    True
    >>> bucket_threshold(1.0) == 2**64
    True
    """
    value = check_finite("cut", cut)
    lo, hi = 0, _TWO_64  # invariant: bucket(lo - 1) < cut (or lo == 0), bucket(hi) >= cut
    while lo < hi:
        mid = (lo + hi) // 2
        if min(mid / _TWO_64, MAX_BUCKET) >= value:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _key(user_id: str, salt: str) -> bytes:
    check_user_id(user_id)
    if not isinstance(salt, str) or not salt:
        raise ValueError(f"salt must be a non-empty string, got {salt!r}")
    return f"{user_id}:{salt}".encode()
