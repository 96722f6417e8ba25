"""Deterministic assignment of users to experiment variants: pure functions, no I/O.

A user's variant is a function of plain strings that any SDK can recompute (the case file
``tests/cases/assignment.json`` pins it):

1. :mod:`~abscope.assignment.hashing` -- ``bucket(user_id, salt)``: the first 8 bytes of
   ``sha256(f"{user_id}:{salt}")`` as a big-endian integer over ``2**64``, in ``[0, 1)``;
2. :mod:`~abscope.assignment.salts` -- separate salts for the traffic gate, the variant and
   the layer, so these decisions are independent, and phases reshuffle by a seed;
3. :mod:`~abscope.assignment.ranges` -- weights to contiguous ranges ending at exactly 1.0;
4. :mod:`~abscope.assignment.layers` -- disjoint slices of a layer's bucket space for mutually
   exclusive experiments, stable as experiments come, go and ramp;
5. :mod:`~abscope.assignment.decision` -- ``assign``: forced, then sticky, then gate or layer
   slice, then hash, returned as an explained :class:`Assignment`; ``assign_random`` for
   bandit traffic;
6. :mod:`~abscope.assignment.router` -- :class:`Router`, the same decisions compiled to
   integer comparisons for the request path.
"""

from abscope.assignment.config import AssignmentConfig
from abscope.assignment.decision import Assignment, Reason, assign, assign_random
from abscope.assignment.hashing import (
    MAX_BUCKET,
    bucket,
    bucket_from_int,
    bucket_int,
    bucket_threshold,
)
from abscope.assignment.layers import LayerSlice, allocate_layer
from abscope.assignment.ranges import bucket_ranges, find_range
from abscope.assignment.router import Router
from abscope.assignment.salts import gate_salt, layer_salt, variant_salt

__all__ = [
    "MAX_BUCKET",
    "Assignment",
    "AssignmentConfig",
    "LayerSlice",
    "Reason",
    "Router",
    "allocate_layer",
    "assign",
    "assign_random",
    "bucket",
    "bucket_from_int",
    "bucket_int",
    "bucket_ranges",
    "bucket_threshold",
    "find_range",
    "gate_salt",
    "layer_salt",
    "variant_salt",
]
