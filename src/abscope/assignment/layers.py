"""Layers: mutually exclusive experiments share one bucket space in disjoint slices.

A layer hashes each user once, with the layer's own salt ``f"layer:{layer}"``
(:func:`abscope.assignment.layer_salt`), to a *layer bucket* in ``[0, 1)``. Each experiment
of the layer owns a :class:`LayerSlice`, a set of disjoint half-open intervals of that space
whose total width is the experiment's traffic share (``traffic_percentage / 100``). A user
can enter an experiment only if their layer bucket lies in its slice, and slices never
overlap, so a user is in at most one experiment of the layer. Inside a layer the slice *is*
the traffic gate: no separate gate hash is applied (that would square the share).

Allocation
----------
:func:`allocate_layer` takes the experiments in a stable order (creation order) with their
traffic percentages, and optionally the ``previous`` allocation (the slices the service
stored last time; they are plain data). It refuses a layer over 100%. Otherwise:

* an experiment whose share did not change keeps its slice exactly;
* an experiment that grew keeps its slice and adds free space, so a ramp (1% -> 10% -> 50%)
  only ever adds users, as it does outside layers;
* an experiment that shrank gives back its most recently acquired space first, so ramping up
  and back down returns to the same users;
* a removed experiment's slice becomes free space (keep a stopped experiment in the list
  until its users may be reused);
* new and grown experiments, in the given order, take free space first-fit from the bottom of
  the layer; a slice may therefore be several intervals, kept in the order they were acquired
  (adjacent pieces merged).

Without ``previous``, slices are laid out end to end in the given order: deterministic, and
stable when experiments are appended, but removing or resizing one moves the slices after it.
Pass the stored slices whenever the layer already serves traffic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from abscope._checks import WEIGHT_TOLERANCE, check_finite
from abscope.assignment._validate import check_slug, check_traffic_percentage

__all__ = ["LayerSlice", "allocate_layer"]

# Widths closer than this are equal: far below any traffic share that matters, far above the
# rounding of a few additions of numbers in [0, 1].
_EPS = 1e-12
# The narrowest slice, 1e-6 percent of the layer: far above _EPS, so that no rounding
# tolerance can empty a slice, and far below any share worth an experiment.
_MIN_PERCENT = 1e-6

Interval = tuple[float, float]


@dataclass(frozen=True, slots=True)
class LayerSlice:
    """The part of a layer's bucket space that one experiment owns.

    Parameters
    ----------
    experiment_id : str
        The experiment, a slug ``[a-z0-9][a-z0-9_-]{0,63}``.
    intervals : tuple of (float, float)
        Disjoint half-open intervals ``[lo, hi)`` with ``0 <= lo < hi <= 1``, in the order
        they were acquired (the last one is given back first when the experiment shrinks).

    Examples
    --------
    >>> piece = LayerSlice("ranking-v2", ((0.0, 0.1), (0.3, 0.35)))
    >>> round(piece.width, 12), piece.contains(0.32), piece.contains(0.2)
    (0.15, True, False)
    """

    experiment_id: str
    intervals: tuple[Interval, ...]

    def __post_init__(self) -> None:
        check_slug(self.experiment_id, "experiment_id")
        if isinstance(self.intervals, str) or not isinstance(self.intervals, Sequence):
            raise ValueError(
                f"intervals must be a sequence of (lo, hi) pairs, got {self.intervals!r}"
            )
        intervals: list[Interval] = []
        for i, pair in enumerate(self.intervals):
            if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise ValueError(f"intervals[{i}] must be a (lo, hi) pair, got {pair!r}")
            lo = check_finite(f"intervals[{i}]", pair[0])
            hi = check_finite(f"intervals[{i}]", pair[1])
            if not 0.0 <= lo < hi <= 1.0:
                raise ValueError(f"intervals[{i}] must satisfy 0 <= lo < hi <= 1, got {pair!r}")
            intervals.append((lo, hi))
        if not intervals:
            raise ValueError("intervals must not be empty")
        _check_disjoint(intervals, "intervals")
        object.__setattr__(self, "intervals", tuple(intervals))

    @property
    def width(self) -> float:
        """The share of the layer this slice covers, the sum of its interval widths."""
        return math.fsum(hi - lo for lo, hi in self.intervals)

    def contains(self, bucket: float) -> bool:
        """Whether a layer bucket falls in one of the slice's intervals."""
        return any(lo <= bucket < hi for lo, hi in self.intervals)


def allocate_layer(
    experiments: Sequence[tuple[str, float]], previous: Iterable[LayerSlice] = ()
) -> tuple[LayerSlice, ...]:
    """Give each experiment of a layer a disjoint slice as wide as its traffic share.

    Parameters
    ----------
    experiments : sequence of (str, float)
        ``(experiment_id, traffic_percentage)`` for every experiment that holds a slice, in a
        stable order (e.g. creation order); percentages in ``[1e-6, 100]``, summing to at
        most 100.
    previous : iterable of LayerSlice, optional
        The slices of the last allocation. Experiments found there keep their space (see the
        module docstring); slices of experiments no longer listed are freed.

    Returns
    -------
    tuple of LayerSlice
        One slice per experiment, in the order given.

    Raises
    ------
    ValueError
        If an id is invalid or repeated, a percentage is outside ``[1e-6, 100]``, the layer
        is over 100%, or the previous slices overlap.

    Examples
    --------
    >>> first = allocate_layer([("a", 10), ("b", 20)])
    >>> [s.intervals for s in first]
    [((0.0, 0.1),), ((0.1, 0.30000000000000004),)]
    >>> [s.intervals for s in allocate_layer([("a", 20), ("b", 20)], previous=first)]
    [((0.0, 0.1), (0.30000000000000004, 0.4)), ((0.1, 0.30000000000000004),)]
    """
    shares = _check_experiments(experiments)
    old = _check_previous(previous)
    kept: dict[str, list[Interval]] = {}
    needs: dict[str, float] = {}
    for experiment_id, share in shares:
        intervals = list(old[experiment_id].intervals) if experiment_id in old else []
        width = math.fsum(hi - lo for lo, hi in intervals)
        if share < width - _EPS:
            _give_back(intervals, width - share)
        elif share > width + _EPS:
            needs[experiment_id] = share - width
        kept[experiment_id] = intervals
    free = _gaps(sorted(piece for intervals in kept.values() for piece in intervals))
    for experiment_id, _ in shares:
        if experiment_id in needs:
            _take(kept[experiment_id], free, needs[experiment_id])
    return tuple(
        LayerSlice(experiment_id, tuple(kept[experiment_id])) for experiment_id, _ in shares
    )


def _check_experiments(experiments: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    if isinstance(experiments, str) or not isinstance(experiments, Sequence):
        raise ValueError(f"experiments must be a sequence of (id, percentage), got {experiments!r}")
    shares: list[tuple[str, float]] = []
    for i, entry in enumerate(experiments):
        if isinstance(entry, str) or not isinstance(entry, Sequence) or len(entry) != 2:
            raise ValueError(
                f"experiments[{i}] must be an (experiment_id, traffic_percentage) pair, "
                f"got {entry!r}"
            )
        experiment_id = check_slug(entry[0], f"experiments[{i}]")
        percent = check_traffic_percentage(entry[1], f"experiments[{i}]")
        if percent < _MIN_PERCENT:
            raise ValueError(
                f"experiments[{i}] must have at least {_MIN_PERCENT:g} percent of the layer, "
                f"got {percent!r}"
            )
        share = percent / 100.0
        shares.append((experiment_id, share))
    ids = [experiment_id for experiment_id, _ in shares]
    if len(set(ids)) != len(ids):
        raise ValueError(f"experiments must have unique ids, got {ids!r}")
    total = math.fsum(share for _, share in shares)
    if total > 1.0 + WEIGHT_TOLERANCE:
        raise ValueError(
            f"experiments: the layer is over 100%: traffic percentages sum to {100 * total:.6g}"
        )
    return shares


def _check_previous(previous: Iterable[LayerSlice]) -> dict[str, LayerSlice]:
    old: dict[str, LayerSlice] = {}
    for piece in previous:
        if not isinstance(piece, LayerSlice):
            raise ValueError(f"previous must hold LayerSlice values, got {type(piece).__name__}")
        if piece.experiment_id in old:
            raise ValueError(f"previous has two slices for {piece.experiment_id!r}")
        old[piece.experiment_id] = piece
    _check_disjoint([i for piece in old.values() for i in piece.intervals], "previous")
    return old


def _check_disjoint(intervals: Iterable[Interval], name: str) -> None:
    ordered = sorted(intervals)
    for (_, hi), (lo, _) in zip(ordered, ordered[1:], strict=False):
        if lo < hi:
            raise ValueError(f"{name} must not overlap, got {ordered!r}")


def _give_back(intervals: list[Interval], excess: float) -> None:
    """Shrink by ``excess``, releasing the most recently acquired space first."""
    while excess > _EPS and intervals:
        lo, hi = intervals[-1]
        if hi - lo <= excess + _EPS:
            intervals.pop()
            excess -= hi - lo
        else:
            intervals[-1] = (lo, hi - excess)
            excess = 0.0


def _gaps(occupied: list[Interval]) -> list[Interval]:
    """The free intervals of ``[0, 1)`` around sorted, disjoint occupied intervals."""
    gaps: list[Interval] = []
    start = 0.0
    for lo, hi in occupied:
        if lo > start:
            gaps.append((start, lo))
        start = max(start, hi)
    if start < 1.0:
        gaps.append((start, 1.0))
    return gaps


def _take(intervals: list[Interval], free: list[Interval], need: float) -> None:
    """Move ``need`` of the lowest free space into ``intervals`` (first fit)."""
    while need > _EPS and free:
        lo, hi = free[0]
        if hi - lo <= need + _EPS:
            free.pop(0)
            need -= hi - lo
        else:
            hi = lo + need
            free[0] = (hi, free[0][1])
            need = 0.0
        if intervals and intervals[-1][1] == lo:
            intervals[-1] = (intervals[-1][0], hi)
        else:
            intervals.append((lo, hi))
    # The total was checked against 100% within WEIGHT_TOLERANCE; a shortfall below that is
    # rounding, and the slice is that much narrower than its share.
