"""The hot path: an experiment compiled into integer cuts, for many decisions per second.

:class:`Router` gives the same variant as :func:`abscope.assignment.assign` for every user
(the test suite checks it on random configs and users) but skips the explanation, and does
the least work per call:

* the salt suffixes ``b":" + salt.encode()`` are built once, so a decision hashes
  ``user_id.encode() + suffix``;
* the first 8 digest bytes are read with a precompiled ``struct`` unpacker and compared as an
  integer ``n`` with integer cuts ``bucket_threshold(c)`` (see
  :func:`abscope.assignment.bucket_threshold`): ``bucket(user) < c`` iff ``n < cut``, for
  every ``n``, so no float is made;
* a gate whose cut is ``2**64`` admits every possible hash and is not hashed at all. That is
  exactly the case ``traffic_percentage == 100``: every bucket is at most ``1 - 2**-53 < 1.0``
  (the clamp of :func:`abscope.assignment.bucket_from_int`), so skipping the hash changes no
  decision;
* two variants are one comparison; more are a ``bisect`` over the cuts.
"""

from __future__ import annotations

import bisect
import hashlib
import struct
from collections.abc import Sequence

from abscope.assignment._validate import MAX_USER_ID_LENGTH, check_allocation, user_id_error
from abscope.assignment.config import AssignmentConfig
from abscope.assignment.decision import _check_layer_slice
from abscope.assignment.hashing import bucket_threshold
from abscope.assignment.layers import LayerSlice
from abscope.assignment.ranges import bucket_ranges

__all__ = ["Router"]

_ALL = 1 << 64  # a cut that admits every 64-bit hash
_sha256 = hashlib.sha256
_first_uint64 = struct.Struct(">Q").unpack_from
_bisect_right = bisect.bisect_right


class Router:
    """A compiled experiment: ``choose(user_id)`` is the fast form of ``assign(...).variant``.

    Parameters
    ----------
    config : AssignmentConfig
        The experiment.
    layer_slice : LayerSlice or None, optional
        The experiment's slice of its layer; required exactly when ``config.layer`` is set.
    weights : sequence of float or None, optional
        An allocation to use instead of ``config.weights`` (each ``>= 0``, summing to 1).

    Attributes
    ----------
    config : AssignmentConfig
        The experiment the router was compiled from.

    Notes
    -----
    Build one router per experiment (and phase, and allocation) and reuse it: compiling costs
    a few bisections of 64 steps; a decision costs one SHA-256 (two below 100% traffic or in
    a layer). Precedence is that of :func:`abscope.assignment.assign`: forced, sticky, gate
    or layer slice, hash.

    Examples
    --------
    >>> router = Router(AssignmentConfig("checkout", ("control", "treatment"), (0.5, 0.5)))
    >>> router.choose("alice"), router.choose("bob"), router.choose("bob", "control")
    ('control', 'treatment', 'control')
    """

    __slots__ = (
        "config",
        "_forced",
        "_known",
        "_variants",
        "_first",
        "_second",
        "_cut",
        "_cuts",
        "_two",
        "_variant_suffix",
        "_gate_suffix",
        "_gate_cut",
        "_layer_suffix",
        "_layer_cuts",
    )

    def __init__(
        self,
        config: AssignmentConfig,
        *,
        layer_slice: LayerSlice | None = None,
        weights: Sequence[float] | None = None,
    ) -> None:
        if not isinstance(config, AssignmentConfig):
            raise ValueError(f"config must be an AssignmentConfig, got {type(config).__name__}")
        piece = _check_layer_slice(config, layer_slice)
        values = (
            config.weights
            if weights is None
            else check_allocation(weights, len(config.variants), "weights", allow_zero=True)
        )
        self.config = config
        self._forced = dict(config.forced)
        self._known = frozenset(config.variants)
        self._variants = config.variants
        cuts = tuple(bucket_threshold(hi) for _, hi in bucket_ranges(values))
        self._cuts = cuts
        self._two = len(cuts) == 2
        self._first, self._second = config.variants[0], config.variants[1]
        self._cut = cuts[0]
        self._variant_suffix = f":{config.variant_salt}".encode()
        self._gate_suffix: bytes | None = None
        self._gate_cut = _ALL
        self._layer_suffix: bytes | None = None
        self._layer_cuts: tuple[tuple[int, int], ...] = ()
        if piece is not None:
            self._layer_suffix = f":{config.layer_salt}".encode()
            self._layer_cuts = tuple(
                (bucket_threshold(lo), bucket_threshold(hi)) for lo, hi in piece.intervals
            )
        else:
            self._gate_cut = bucket_threshold(config.traffic_fraction)
            if self._gate_cut != _ALL:
                self._gate_suffix = f":{config.gate_salt}".encode()

    def choose(self, user_id: str, sticky_variant: str | None = None) -> str | None:
        """The user's variant, or None when they are not in the experiment.

        Parameters
        ----------
        user_id : str
            1 to 256 code points, encodable as UTF-8.
        sticky_variant : str or None, optional
            The user's stored assignment, if any; it must be one of the variants.

        Returns
        -------
        str or None
            ``assign(config, user_id, ...).variant`` for the same inputs.

        Examples
        --------
        >>> config = AssignmentConfig("search", ("a", "b", "c"), (0.2, 0.3, 0.5), 30.0)
        >>> router = Router(config)
        >>> [router.choose(user) for user in ("u1", "u2", "u3", "u4", "u5")]
        ['c', 'b', 'c', 'a', None]
        """
        if not isinstance(user_id, str) or not 0 < len(user_id) <= MAX_USER_ID_LENGTH:
            raise user_id_error(user_id)
        try:
            key = user_id.encode()
        except UnicodeEncodeError:
            raise user_id_error(user_id) from None
        if self._forced:
            forced = self._forced.get(user_id)
            if forced is not None:
                return forced
        if sticky_variant is not None:
            if sticky_variant not in self._known:
                raise ValueError(
                    f"sticky_variant must be one of the variants {list(self._variants)!r}, "
                    f"got {sticky_variant!r}"
                )
            return sticky_variant
        if self._gate_suffix is not None:
            if _first_uint64(_sha256(key + self._gate_suffix).digest())[0] >= self._gate_cut:
                return None
        elif self._layer_suffix is not None:
            n = _first_uint64(_sha256(key + self._layer_suffix).digest())[0]
            for lo, hi in self._layer_cuts:
                if lo <= n < hi:
                    break
            else:
                return None
        n = _first_uint64(_sha256(key + self._variant_suffix).digest())[0]
        if self._two:
            return self._first if n < self._cut else self._second
        return self._variants[_bisect_right(self._cuts, n)]
