"""The validated, immutable description of one experiment that assignment needs.

The service builds an :class:`AssignmentConfig` from its (pydantic) experiment model; this
module knows nothing of pydantic, storage or HTTP, so an SDK can build the same value from a
cached JSON config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from abscope.assignment._validate import (
    check_allocation,
    check_seed,
    check_slug,
    check_traffic_percentage,
    check_user_id,
    check_variant_names,
)
from abscope.assignment.salts import gate_salt, layer_salt, variant_salt

__all__ = ["AssignmentConfig"]


@dataclass(frozen=True, slots=True)
class AssignmentConfig:
    """Everything needed to route users of one experiment (in one phase).

    Parameters
    ----------
    experiment_id : str
        A slug, ``[a-z0-9][a-z0-9_-]{0,63}``.
    variants : tuple of str
        At least two unique names of 1 to 64 characters; the first is conventionally the
        control.
    weights : tuple of float
        One weight per variant, each ``> 0``, summing to 1 within 1e-9. Invalid weights raise;
        they are never quietly normalised or equalised.
    traffic_percentage : float, default 100
        The share of users admitted, in ``(0, 100]``. In a layer it is the width of the
        experiment's slice (:func:`abscope.assignment.allocate_layer`).
    gate_seed : int, default 0
        Seed of the traffic gate salt; keep it fixed so that ramps only add users.
    variant_seed : int, default 0
        Seed of the variant salt; increment it (e.g. to the phase number) to reshuffle
        everybody when the weights change outside draft. See :mod:`abscope.assignment.salts`.
    layer : str or None, default None
        The layer of mutually exclusive experiments this one belongs to, a slug.
    forced : mapping of str to str, default {}
        QA overrides, user id to variant name; they win over everything. Copied on creation.

    Examples
    --------
    >>> config = AssignmentConfig("checkout", ("control", "treatment"), (0.5, 0.5))
    >>> config.gate_salt, config.variant_salt, config.traffic_fraction
    ('checkout:0:traffic', 'checkout:0:variant', 1.0)
    """

    experiment_id: str
    variants: tuple[str, ...]
    weights: tuple[float, ...]
    traffic_percentage: float = 100.0
    gate_seed: int = 0
    variant_seed: int = 0
    layer: str | None = None
    forced: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        check_slug(self.experiment_id, "experiment_id")
        variants = check_variant_names(self.variants)
        weights = check_allocation(self.weights, len(variants), "weights")
        traffic = check_traffic_percentage(self.traffic_percentage)
        check_seed(self.gate_seed, "gate_seed")
        check_seed(self.variant_seed, "variant_seed")
        if self.layer is not None:
            check_slug(self.layer, "layer")
        if not isinstance(self.forced, Mapping):
            raise ValueError(f"forced must be a mapping of user id to variant, got {self.forced!r}")
        forced = dict(self.forced)
        known = set(variants)
        for user_id, variant in forced.items():
            check_user_id(user_id, "forced")
            if variant not in known:
                raise ValueError(
                    f"forced[{user_id!r}] must be one of the variants {list(variants)!r}, "
                    f"got {variant!r}"
                )
        object.__setattr__(self, "variants", variants)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "traffic_percentage", traffic)
        object.__setattr__(self, "forced", forced)

    @property
    def traffic_fraction(self) -> float:
        """``traffic_percentage / 100``: the gate admits buckets below it."""
        return self.traffic_percentage / 100.0

    @property
    def gate_salt(self) -> str:
        """``f"{experiment_id}:{gate_seed}:traffic"``."""
        return gate_salt(self.experiment_id, self.gate_seed)

    @property
    def variant_salt(self) -> str:
        """``f"{experiment_id}:{variant_seed}:variant"``."""
        return variant_salt(self.experiment_id, self.variant_seed)

    @property
    def layer_salt(self) -> str | None:
        """``f"layer:{layer}"``, or None outside layers."""
        return None if self.layer is None else layer_salt(self.layer)
