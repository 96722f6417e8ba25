"""One explained routing decision: which variant a user gets, and why.

Precedence, first match wins:

1. ``forced`` -- the config's QA overrides (user id to variant) win over everything,
   including the traffic gate and the layer;
2. ``sticky`` -- a stored previous assignment of this experiment (and phase), passed in as
   ``sticky_variant``, wins over the hash, so a change of weights or a ramp down never moves
   a user who was already exposed;
3. the gate: in a layer, the user's layer bucket must fall in the experiment's slice
   (``not_in_layer_slice`` otherwise); outside layers, the gate bucket must be below
   ``traffic_percentage / 100`` (``not_in_traffic`` otherwise);
4. ``hash`` -- the variant whose bucket range holds the user's variant bucket; or, for
   :func:`assign_random`, ``bandit`` -- the range holding a uniform draw from the injected
   generator.

In a layer, forced and sticky users are not checked against the slice: mutual exclusion
holds for hashed users. A sticky user can meet another experiment of the layer only if the
space of the experiment they were in was released and reallocated, so keep an experiment in
the layer's allocation for as long as its sticky assignments are served.

Bandit experiments route non-sticky traffic with :func:`assign_random`: the service passes the
policy's current allocation probabilities (``abscope.bandits.allocation_probabilities``) and
its request ``rng``, so each request is a fresh draw, while the gate stays deterministic.
:func:`assign` also accepts a ``weights`` override for a deterministic, hashed split under
another allocation.

The recorded ``probability`` is the chance the decision had of coming out this way for a
random user: ``weight * traffic share`` for ``hash`` and ``bandit`` (the share is the slice
width in a layer), and 1.0 for ``forced`` and ``sticky``. It is logged with each exposure so
that analysis can weight by its inverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from abscope.assignment._validate import check_allocation, check_user_id
from abscope.assignment.config import AssignmentConfig
from abscope.assignment.hashing import bucket
from abscope.assignment.layers import LayerSlice
from abscope.assignment.ranges import bucket_ranges, find_range

if TYPE_CHECKING:  # numpy is the server's: the SDK imports this module without it
    import numpy as np

__all__ = ["Assignment", "Reason", "assign", "assign_random"]

Reason = Literal["forced", "sticky", "hash", "bandit", "not_in_traffic", "not_in_layer_slice"]
"""Why a user got their variant (or none)."""

# A stored slice may differ from traffic_percentage / 100 by rounding; a bigger difference
# means the slice is stale (the layer was not allocated again after a change of traffic).
_SLICE_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class Assignment:
    """A routing decision with everything that led to it (what an "explain" view shows).

    Attributes
    ----------
    experiment_id, user_id : str
        Who and where.
    variant : str or None
        The variant, or None when the user is not in the experiment.
    index : int or None
        The variant's position in ``config.variants`` (the bandit arm), or None.
    reason : {"forced", "sticky", "hash", "bandit", "not_in_traffic", "not_in_layer_slice"}
        Which rule decided (see the module docstring).
    probability : float or None
        ``weight * traffic_share`` for ``hash``/``bandit``, 1.0 for ``forced``/``sticky``,
        None when there is no variant.
    traffic_share : float
        The share of users the gate admits: ``traffic_percentage / 100``, or the slice width
        in a layer.
    gate_bucket, layer_bucket, variant_bucket : float or None
        The buckets computed on the way, None for the steps not taken (the gate bucket is
        None in a layer, whose slice replaces the gate). For ``bandit``, ``variant_bucket`` is
        the uniform draw.
    ranges : tuple of (float, float)
        The variant ranges the bucket was looked up in; empty when none was used.

    Examples
    --------
    >>> config = AssignmentConfig("checkout", ("control", "treatment"), (0.5, 0.5))
    >>> explained = assign(config, "alice")
    >>> explained.variant, explained.reason, explained.probability
    ('control', 'hash', 0.5)
    """

    experiment_id: str
    user_id: str
    variant: str | None
    index: int | None
    reason: Reason
    probability: float | None
    traffic_share: float
    gate_bucket: float | None = None
    layer_bucket: float | None = None
    variant_bucket: float | None = None
    ranges: tuple[tuple[float, float], ...] = ()


def assign(
    config: AssignmentConfig,
    user_id: str,
    *,
    sticky_variant: str | None = None,
    layer_slice: LayerSlice | None = None,
    weights: Sequence[float] | None = None,
) -> Assignment:
    """Route one user deterministically, and explain the decision.

    Parameters
    ----------
    config : AssignmentConfig
        The experiment.
    user_id : str
        1 to 256 code points, encodable as UTF-8.
    sticky_variant : str or None, optional
        The user's stored assignment in this experiment and phase, if any; it must be one
        of ``config.variants``.
    layer_slice : LayerSlice or None, optional
        The experiment's slice of its layer; required exactly when ``config.layer`` is set.
    weights : sequence of float or None, optional
        An allocation to use instead of ``config.weights``: one per variant, each ``>= 0``,
        summing to 1 within 1e-9.

    Returns
    -------
    Assignment
        The variant (or None), the reason, the buckets, the ranges and the probability.

    Notes
    -----
    With gate bucket ``g``, variant bucket ``v`` (:func:`abscope.assignment.bucket` with the
    config's salts) and ranges ``[c_{i-1}, c_i)`` from the weights, a user outside layers is
    in the experiment iff ``g < traffic_percentage / 100`` and gets variant ``i`` with
    ``c_{i-1} <= v < c_i``. Raising the traffic only adds users: ``g`` does not change.

    Examples
    --------
    >>> config = AssignmentConfig(
    ...     "checkout", ("control", "treatment"), (0.5, 0.5), forced={"qa-1": "treatment"}
    ... )
    >>> assign(config, "bob").variant
    'treatment'
    >>> assign(config, "bob", sticky_variant="control").reason
    'sticky'
    >>> assign(config, "qa-1", sticky_variant="control").reason
    'forced'
    """
    values, piece = _check_request(config, user_id, sticky_variant, layer_slice, weights)
    return _decide(config, user_id, sticky_variant, piece, values, None)


def assign_random(
    config: AssignmentConfig,
    user_id: str,
    rng: np.random.Generator,
    probabilities: Sequence[float],
    *,
    layer_slice: LayerSlice | None = None,
) -> Assignment:
    """Route one user of a bandit experiment with a fresh random draw (not sticky).

    Parameters
    ----------
    config : AssignmentConfig
        The experiment; its forced map, gate and layer apply as in :func:`assign`.
    user_id : str
        1 to 256 code points, encodable as UTF-8.
    rng : numpy.random.Generator
        The request's source of randomness; one ``rng.random()`` is drawn, and only when the
        user passes the gate and is not forced.
    probabilities : sequence of float
        The current allocation, one per variant, each ``>= 0``, summing to 1 within 1e-9
        (e.g. ``abscope.bandits.allocation_probabilities`` for the current counts).
    layer_slice : LayerSlice or None, optional
        As in :func:`assign`.

    Returns
    -------
    Assignment
        Reason ``bandit`` (or ``forced``, ``not_in_traffic``, ``not_in_layer_slice``), with
        ``variant_bucket`` the uniform draw and ``probability`` the chosen variant's
        probability times the traffic share.

    Examples
    --------
    >>> config = AssignmentConfig("ranker", ("v1", "v2"), (0.5, 0.5))
    >>> import numpy as np
    >>> choice = assign_random(config, "alice", np.random.default_rng(1), (0.2, 0.8))
    >>> choice.variant, choice.reason, choice.probability
    ('v2', 'bandit', 0.8)
    """
    import numpy as np  # only bandit routing, on the server, draws

    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if probabilities is None:
        raise ValueError("probabilities must be given, one per variant")
    values, piece = _check_request(
        config, user_id, None, layer_slice, probabilities, "probabilities"
    )
    return _decide(config, user_id, None, piece, values, rng)


def _check_request(
    config: AssignmentConfig,
    user_id: str,
    sticky_variant: str | None,
    layer_slice: LayerSlice | None,
    weights: Sequence[float] | None,
    weights_name: str = "weights",
) -> tuple[tuple[float, ...], LayerSlice | None]:
    """Validate every input of a decision, whichever rule ends up deciding."""
    if not isinstance(config, AssignmentConfig):
        raise ValueError(f"config must be an AssignmentConfig, got {type(config).__name__}")
    check_user_id(user_id)
    if sticky_variant is not None and sticky_variant not in config.variants:
        raise ValueError(
            f"sticky_variant must be one of the variants {list(config.variants)!r}, "
            f"got {sticky_variant!r}"
        )
    values = (
        config.weights
        if weights is None
        else check_allocation(weights, len(config.variants), weights_name, allow_zero=True)
    )
    return values, _check_layer_slice(config, layer_slice)


def _check_layer_slice(
    config: AssignmentConfig, layer_slice: LayerSlice | None
) -> LayerSlice | None:
    """Return ``layer_slice`` if it is the current slice of the config's experiment."""
    if config.layer is None:
        if layer_slice is not None:
            raise ValueError("layer_slice must be None for an experiment outside layers")
        return None
    if not isinstance(layer_slice, LayerSlice):
        raise ValueError(
            f"layer_slice must be the LayerSlice of {config.experiment_id!r} in layer "
            f"{config.layer!r}, got {layer_slice!r}"
        )
    if layer_slice.experiment_id != config.experiment_id:
        raise ValueError(
            f"layer_slice belongs to {layer_slice.experiment_id!r}, not {config.experiment_id!r}"
        )
    if abs(layer_slice.width - config.traffic_fraction) > _SLICE_TOLERANCE:
        raise ValueError(
            f"layer_slice covers {100 * layer_slice.width:.6g}% of the layer but "
            f"traffic_percentage is {config.traffic_percentage:.6g}: allocate the layer again"
        )
    return layer_slice


def _decide(
    config: AssignmentConfig,
    user_id: str,
    sticky_variant: str | None,
    layer_slice: LayerSlice | None,
    weights: tuple[float, ...],
    rng: np.random.Generator | None,
) -> Assignment:
    share = config.traffic_fraction if layer_slice is None else layer_slice.width
    forced = config.forced.get(user_id)
    if forced is not None:
        return _result(config, user_id, share, forced, "forced", 1.0)
    if sticky_variant is not None:
        return _result(config, user_id, share, sticky_variant, "sticky", 1.0)
    gate_bucket = layer_bucket = None
    if layer_slice is not None:
        assert config.layer_salt is not None  # checked with the slice
        layer_bucket = bucket(user_id, config.layer_salt)
        if not layer_slice.contains(layer_bucket):
            return _result(
                config, user_id, share, None, "not_in_layer_slice", None, layer_bucket=layer_bucket
            )
    else:
        gate_bucket = bucket(user_id, config.gate_salt)
        if not gate_bucket < config.traffic_fraction:
            return _result(
                config, user_id, share, None, "not_in_traffic", None, gate_bucket=gate_bucket
            )
    ranges = bucket_ranges(weights)
    draw = bucket(user_id, config.variant_salt) if rng is None else float(rng.random())
    index = find_range(draw, ranges)
    return _result(
        config, user_id, share, config.variants[index], "hash" if rng is None else "bandit",
        weights[index] * share, gate_bucket=gate_bucket, layer_bucket=layer_bucket,
        variant_bucket=draw, ranges=ranges,
    )  # fmt: skip


def _result(
    config: AssignmentConfig,
    user_id: str,
    share: float,
    variant: str | None,
    reason: Reason,
    probability: float | None,
    *,
    gate_bucket: float | None = None,
    layer_bucket: float | None = None,
    variant_bucket: float | None = None,
    ranges: tuple[tuple[float, float], ...] = (),
) -> Assignment:
    index = None if variant is None else config.variants.index(variant)
    return Assignment(
        config.experiment_id, user_id, variant, index, reason, probability, share,
        gate_bucket, layer_bucket, variant_bucket, ranges,
    )  # fmt: skip
