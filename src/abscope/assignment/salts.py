"""Salts: which hash decides what, derived from plain strings another SDK can rebuild.

Three independent hashes of the same user decide three things:

========================  =============================================  ===================
decision                  salt                                           changes when
========================  =============================================  ===================
traffic gate              ``f"{experiment_id}:{gate_seed}:traffic"``     ``gate_seed`` does
variant                   ``f"{experiment_id}:{variant_seed}:variant"``  ``variant_seed`` does
layer slice               ``f"layer:{layer}"``                           never
========================  =============================================  ===================

Seeds are non-negative integers written in decimal. Because the experiment id is part of both
salts, different experiments admit different users first (a user with a low gate bucket in one
experiment is not low in the next), and the gate and the variant of one experiment are
independent: who is in says nothing about which variant they get.

Phases
------
Keep ``gate_seed`` fixed for the life of an experiment: raising the traffic then only ever
adds users. When the weights change after the experiment has left draft, start a new *phase*
by incrementing ``variant_seed`` (the phase number is a good value). Everybody is reshuffled
under the new weights, so the new phase's variants are balanced and free of carry-over from
the old split; sticky assignments stored for the old phase must then be dropped (store them
per phase). Changing the weights without a new phase moves only the users whose bucket falls
between the old and new range ends, which is what sticky assignments protect against.

A layer's salt has no seed: the layer's slices (:mod:`abscope.assignment.layers`) are what
changes when its experiments change.
"""

from __future__ import annotations

from abscope.assignment._validate import check_seed, check_slug

__all__ = ["gate_salt", "layer_salt", "variant_salt"]


def gate_salt(experiment_id: str, gate_seed: int = 0) -> str:
    """The salt of an experiment's traffic gate.

    Parameters
    ----------
    experiment_id : str
        A slug, ``[a-z0-9][a-z0-9_-]{0,63}``.
    gate_seed : int, default 0
        A non-negative integer; keep it fixed so that ramps only add users.

    Returns
    -------
    str
        ``f"{experiment_id}:{gate_seed}:traffic"``.

    Examples
    --------
    >>> gate_salt("checkout")
    'checkout:0:traffic'
    """
    seed = check_seed(gate_seed, "gate_seed")
    return f"{check_slug(experiment_id, 'experiment_id')}:{seed}:traffic"


def variant_salt(experiment_id: str, variant_seed: int = 0) -> str:
    """The salt of an experiment's variant choice.

    Parameters
    ----------
    experiment_id : str
        A slug, ``[a-z0-9][a-z0-9_-]{0,63}``.
    variant_seed : int, default 0
        A non-negative integer; increment it to start a new phase (reshuffle everybody).

    Returns
    -------
    str
        ``f"{experiment_id}:{variant_seed}:variant"``.

    Examples
    --------
    >>> variant_salt("checkout", 2)
    'checkout:2:variant'
    """
    seed = check_seed(variant_seed, "variant_seed")
    return f"{check_slug(experiment_id, 'experiment_id')}:{seed}:variant"


def layer_salt(layer: str) -> str:
    """The salt of a layer of mutually exclusive experiments.

    Parameters
    ----------
    layer : str
        The layer's name, a slug ``[a-z0-9][a-z0-9_-]{0,63}``.

    Returns
    -------
    str
        ``f"layer:{layer}"``.

    Examples
    --------
    >>> layer_salt("ranking")
    'layer:ranking'
    """
    return f"layer:{check_slug(layer, 'layer')}"
