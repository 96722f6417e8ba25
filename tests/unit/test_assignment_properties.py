"""Properties (hypothesis): the fast path equals the explained path, buckets stay in [0, 1),
integer cuts equal float comparisons, and layer allocations stay disjoint and stable."""

from __future__ import annotations

import bisect
import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from abscope.assignment import (
    MAX_BUCKET,
    AssignmentConfig,
    LayerSlice,
    Router,
    allocate_layer,
    assign,
    bucket,
    bucket_from_int,
    bucket_ranges,
    bucket_threshold,
    find_range,
)

# Any code points but lone surrogates (which UTF-8 cannot encode).
user_ids = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=256)
slugs = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,63}", fullmatch=True)
uint64s = st.one_of(
    st.integers(0, 2**64 - 1),
    st.integers(2**64 - 2**12, 2**64 - 1),
    st.integers(0, 2**12),
    st.integers(-(2**12), 2**12).map(lambda d: 2**63 + d),
)


@st.composite
def weight_vectors(draw: st.DrawFn, zero: bool = False, k: int | None = None) -> tuple[float, ...]:
    k = draw(st.integers(2, 6)) if k is None else k
    low = 0 if zero else 1
    raw = draw(st.lists(st.integers(low, 1000), min_size=k, max_size=k))
    assume(sum(raw) > 0 and raw[-1] > 0)
    weights = [r / sum(raw) for r in raw[:-1]]
    return (*weights, 1.0 - math.fsum(weights))


cuts = st.one_of(
    st.floats(-0.5, 1.5, allow_nan=False),
    st.floats(0.0, 1.0).map(lambda c: math.nextafter(c, 0.0)),
    st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.30000000000000004, MAX_BUCKET, 1.0, 5e-324]),
)


@given(user_ids, st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=80))
def test_bucket_is_in_the_unit_interval(user_id: str, salt: str) -> None:
    assert 0.0 <= bucket(user_id, salt) < 1.0


@given(uint64s, uint64s)
def test_bucket_from_int_is_monotone_and_below_one(a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert 0.0 <= bucket_from_int(low) <= bucket_from_int(high) < 1.0


@given(cuts, uint64s)
def test_integer_cut_equals_the_float_comparison(cut: float, n: int) -> None:
    threshold = bucket_threshold(cut)
    assert 0 <= threshold <= 2**64
    assert (bucket_from_int(n) < cut) == (n < threshold)
    # The boundary itself: with monotonicity, these two make the equivalence exact.
    if threshold > 0:
        assert bucket_from_int(threshold - 1) < cut
    if threshold < 2**64:
        assert bucket_from_int(threshold) >= cut


def test_floor_of_the_cut_times_2_64_would_not_be_exact() -> None:
    """Why the router bisects: integers just below 2**63 round up to the bucket 0.5."""
    assert bucket_from_int(2**63 - 512) == 0.5 and bucket_from_int(2**63 - 513) < 0.5
    assert bucket_threshold(0.5) == 2**63 - 512 != math.floor(0.5 * 2**64)


@given(weight_vectors(zero=True), uint64s)
def test_integer_cuts_pick_the_same_range_as_the_buckets(
    weights: tuple[float, ...], n: int
) -> None:
    ranges = bucket_ranges(weights)
    ints = [bucket_threshold(hi) for _, hi in ranges]
    assert ints[-1] == 2**64
    for m in {n, *ints[:-1], *(i - 1 for i in ints if i > 0)} - {2**64}:
        assert find_range(bucket_from_int(m), ranges) == bisect.bisect_right(ints, m)


@given(weight_vectors(zero=True))
def test_ranges_tile_the_unit_interval(weights: tuple[float, ...]) -> None:
    ranges = bucket_ranges(weights)
    assert ranges[0][0] == 0.0 and ranges[-1][1] == 1.0
    for (lo, hi), (next_lo, _), w in zip(ranges, ranges[1:], weights, strict=False):
        assert lo <= hi == next_lo
        assert abs((hi - lo) - w) < 1e-12
    assert find_range(MAX_BUCKET, ranges) == max(i for i, w in enumerate(weights) if w > 0)


@st.composite
def routed_requests(draw: st.DrawFn) -> tuple[AssignmentConfig, dict[str, object], str, str | None]:
    weights = draw(weight_vectors())
    variants = tuple(f"v{i}" for i in range(len(weights)))
    user_id = draw(user_ids)
    forced = draw(st.sampled_from([{}, {user_id: variants[-1]}, {"someone-else": variants[0]}]))
    in_layer = draw(st.booleans())
    traffic = draw(st.one_of(st.just(100.0), st.floats(0.01, 100.0), st.integers(1, 100)))
    config = AssignmentConfig(
        draw(slugs), variants, weights, float(traffic), draw(st.integers(0, 10**6)),
        draw(st.integers(0, 10**6)), draw(slugs) if in_layer else None, forced,
    )  # fmt: skip
    extra: dict[str, object] = {}
    if in_layer:
        room = 100.0 - traffic
        before = draw(st.floats(1e-6, room)) if room >= 1e-6 and draw(st.booleans()) else 0.0
        shares = [("other", before)] if before > 0 else []
        slices = allocate_layer([*shares, (config.experiment_id, traffic)])
        extra["layer_slice"] = slices[-1]
    if draw(st.booleans()):
        extra["weights"] = draw(weight_vectors(zero=True, k=len(variants)))
    sticky = draw(st.one_of(st.none(), st.sampled_from(variants)))
    return config, extra, user_id, sticky


@settings(max_examples=300, deadline=None)
@given(routed_requests())
def test_router_equals_assign(
    request: tuple[AssignmentConfig, dict[str, object], str, str | None],
) -> None:
    config, extra, user_id, sticky = request
    explained = assign(config, user_id, sticky_variant=sticky, **extra)  # type: ignore[arg-type]
    router = Router(config, **extra)  # type: ignore[arg-type]
    assert router.choose(user_id, sticky) == explained.variant
    assert router.choose(user_id) == assign(config, user_id, **extra).variant  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(weight_vectors(), st.lists(user_ids, min_size=1, max_size=20))
def test_router_equals_assign_for_many_users(weights: tuple[float, ...], users: list[str]) -> None:
    config = AssignmentConfig("exp", tuple(f"v{i}" for i in range(len(weights))), weights)
    router = Router(config)
    assert [router.choose(u) for u in users] == [assign(config, u).variant for u in users]


# --- layer allocation ------------------------------------------------------------------------

operations = st.lists(
    st.tuples(st.sampled_from("abcdef"), st.one_of(st.none(), st.integers(1, 40))),
    min_size=1, max_size=25,
)  # fmt: skip


def _covered(piece: LayerSlice, inner: LayerSlice) -> bool:
    """Every interval of ``inner`` lies inside one of ``piece``."""
    return all(any(lo <= a and b <= hi for lo, hi in piece.intervals) for a, b in inner.intervals)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_layer_allocation_stays_disjoint_and_stable(ops: list[tuple[str, int | None]]) -> None:
    """Random adds, resizes (percent) and removals (None), each applied with ``previous``."""
    shares: dict[str, float] = {}
    slices: tuple[LayerSlice, ...] = ()
    for name, percent in ops:
        proposal = dict(shares)
        if percent is None:
            proposal.pop(name, None)
        else:
            proposal[name] = float(percent)
        if sum(proposal.values()) > 100:
            continue
        new = allocate_layer(list(proposal.items()), previous=slices)
        old = {s.experiment_id: s for s in slices}
        intervals = sorted(i for s in new for i in s.intervals)
        assert all(a[1] <= b[0] for a, b in zip(intervals, intervals[1:], strict=False))
        for piece in new:
            assert abs(piece.width - proposal[piece.experiment_id] / 100) < 1e-9
            before = old.get(piece.experiment_id)
            if before is None:
                continue
            if proposal[piece.experiment_id] == shares[piece.experiment_id]:
                assert piece == before
            elif proposal[piece.experiment_id] > shares[piece.experiment_id]:
                assert _covered(piece, before)
            else:
                assert _covered(before, piece)
        shares, slices = proposal, new
