"""Assignment behaviour over many users: splits, ramps, precedence, layers, independence.

Every statistical bound below is fixed in advance (a share within 1 point, a chi-square
p-value above 1e-3, or 4.5 binomial standard errors); the users are fixed too
(``user-0`` ... ``user-99999``), so the tests are deterministic and can fail only if the
hashing or the allocation is wrong.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import re
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats as sp

from abscope.assignment import (
    MAX_BUCKET,
    AssignmentConfig,
    LayerSlice,
    Router,
    allocate_layer,
    assign,
    assign_random,
    bucket,
    bucket_from_int,
    bucket_threshold,
    gate_salt,
    variant_salt,
)

N = 100_000
USERS = [f"user-{i}" for i in range(N)]
Z = 4.5  # standard errors: a two-sided tail of about 7e-6


def _config(
    weights: tuple[float, ...], traffic: float = 100.0, **kwargs: object
) -> AssignmentConfig:
    names = tuple(f"v{i}" for i in range(len(weights)))
    return AssignmentConfig("exp-1", names, weights, traffic, **kwargs)  # type: ignore[arg-type]


def _names(field: str) -> str:
    """A pattern for an error message that starts with the name ``field``."""
    return rf"^{re.escape(field)}(?=[\s:[])"


def _near(share: float, expected: float, n: int) -> bool:
    return abs(share - expected) <= Z * math.sqrt(expected * (1 - expected) / n)


# --- the split ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "weights", [(0.5, 0.5), (0.1, 0.9), (0.2, 0.3, 0.5), (0.1, 0.2, 0.7)], ids=str
)
def test_split_over_100k_users_matches_the_weights(weights: tuple[float, ...]) -> None:
    config = _config(weights)
    choose = Router(config).choose
    counts = Counter(choose(user) for user in USERS)
    observed = [counts[name] for name in config.variants]
    assert sum(observed) == N
    for count, weight in zip(observed, weights, strict=True):
        assert abs(count / N - weight) < 0.01
    assert sp.chisquare(observed, [w * N for w in weights]).pvalue > 1e-3


def test_the_explained_path_gives_the_same_split() -> None:
    config = _config((0.2, 0.3, 0.5), 40.0)
    router = Router(config)
    results = [assign(config, user) for user in USERS[:20_000]]
    assert [r.variant for r in results] == [router.choose(user) for user in USERS[:20_000]]
    inside = [r for r in results if r.variant is not None]
    assert _near(len(inside) / 20_000, 0.4, 20_000)
    counts = Counter(r.variant for r in inside)
    expected = [w * len(inside) for w in config.weights]
    assert sp.chisquare([counts[v] for v in config.variants], expected).pvalue > 1e-3


# --- the traffic gate -------------------------------------------------------------------------


def test_a_ramp_only_adds_users_and_keeps_their_variants() -> None:
    steps = [1.0, 10.0, 50.0, 100.0]
    routers = [Router(_config((0.5, 0.5), traffic)).choose for traffic in steps]
    routed = [{user: v for user in USERS if (v := choose(user))} for choose in routers]
    for before, after in zip(routed, routed[1:], strict=False):
        assert before.keys() <= after.keys()
        assert all(after[user] == variant for user, variant in before.items())
    for traffic, members in zip(steps[:-1], routed, strict=False):
        assert _near(len(members) / N, traffic / 100, N), (traffic, len(members))
    assert len(routed[-1]) == N


def test_full_traffic_admits_every_possible_hash() -> None:
    """The 100% shortcut (no gate hash) is exact: the largest bucket is below 1.0."""
    assert bucket_from_int(2**64 - 1) == MAX_BUCKET < 1.0
    assert bucket_threshold(100.0 / 100) == 2**64
    assert bucket_threshold(math.nextafter(100.0, 0.0) / 100) < 2**64
    config = _config((0.5, 0.5))
    assert all(assign(config, user).reason == "hash" for user in USERS[:2000])


def test_gate_bucket_decides_membership() -> None:
    config = _config((0.5, 0.5), 25.0)
    for user in USERS[:2000]:
        result = assign(config, user)
        assert result.gate_bucket == bucket(user, gate_salt("exp-1"))
        assert (result.variant is not None) == (result.gate_bucket < 0.25)
        if result.variant is None:
            assert result.reason == "not_in_traffic" and result.variant_bucket is None
            assert result.probability is None and result.ranges == ()


# --- precedence -----------------------------------------------------------------------------


def test_a_weight_change_moves_users_unless_they_are_sticky() -> None:
    before, after = _config((0.5, 0.5)), _config((0.1, 0.9))
    first = {user: assign(before, user).variant for user in USERS[:5000]}
    moved = sum(assign(after, user).variant != variant for user, variant in first.items())
    assert _near(moved / 5000, 0.4, 5000)  # the users with a variant bucket in [0.1, 0.5)
    router = Router(after)
    for user, variant in first.items():
        result = assign(after, user, sticky_variant=variant)
        assert (result.variant, result.reason, result.probability) == (variant, "sticky", 1.0)
        assert router.choose(user, variant) == variant


def test_sticky_wins_over_a_ramp_down() -> None:
    config = _config((0.5, 0.5), 1.0)
    outside = [user for user in USERS[:500] if assign(config, user).variant is None]
    assert len(outside) > 450
    assert all(assign(config, u, sticky_variant="v1").variant == "v1" for u in outside)


def test_forced_wins_over_everything() -> None:
    layer = allocate_layer([("exp-1", 1.0)])[0]
    base = _config((0.5, 0.5), 1.0, layer="ranking")
    outside = next(u for u in USERS if assign(base, u, layer_slice=layer).variant is None)
    config = _config((0.5, 0.5), 1.0, layer="ranking", forced={outside: "v1"})
    result = assign(config, outside, sticky_variant="v0", layer_slice=layer, weights=(1.0, 0.0))
    assert (result.variant, result.index, result.reason) == ("v1", 1, "forced")
    assert result.probability == 1.0 and result.layer_bucket is None
    assert Router(config, layer_slice=layer, weights=(1.0, 0.0)).choose(outside, "v0") == "v1"
    rng = np.random.default_rng(0)
    assert assign_random(config, outside, rng, (1.0, 0.0), layer_slice=layer).reason == "forced"


def test_weights_override_replaces_the_config_weights() -> None:
    config = _config((0.5, 0.5))
    assert {assign(config, u, weights=(0.0, 1.0)).variant for u in USERS[:1000]} == {"v1"}
    result = assign(config, "alice", weights=(0.25, 0.75))
    assert result.ranges == ((0.0, 0.25), (0.25, 1.0))
    assert result.probability == (0.25 if result.variant == "v0" else 0.75)


def test_probability_is_weight_times_traffic_share() -> None:
    config = _config((0.2, 0.8), 50.0)
    for user in USERS[:200]:
        result = assign(config, user)
        if result.variant is not None:
            assert result.probability == config.weights[result.index or 0] * 0.5
            assert result.traffic_share == 0.5


# --- phases and independence -----------------------------------------------------------------


def test_a_new_phase_reshuffles_variants_but_keeps_the_gate() -> None:
    phase0, phase1 = _config((0.5, 0.5), 30.0), _config((0.5, 0.5), 30.0, variant_seed=1)
    a = [assign(phase0, user) for user in USERS[:20_000]]
    b = [assign(phase1, user) for user in USERS[:20_000]]
    assert [r.gate_bucket for r in a] == [r.gate_bucket for r in b]
    pairs = [(x.variant, y.variant) for x, y in zip(a, b, strict=True) if x.variant is not None]
    same = sum(x == y for x, y in pairs)
    assert _near(same / len(pairs), 0.5, len(pairs))


def _correlation(x: list[float], y: list[float]) -> float:
    return float(np.corrcoef(x, y)[0, 1])


def test_gate_and_variant_buckets_are_independent() -> None:
    gate = [bucket(u, gate_salt("exp-1")) for u in USERS]
    variant = [bucket(u, variant_salt("exp-1")) for u in USERS]
    other_gate = [bucket(u, gate_salt("exp-2")) for u in USERS]
    bound = Z / math.sqrt(N)
    assert abs(_correlation(gate, variant)) < bound
    assert abs(_correlation(gate, other_gate)) < bound
    # The first 10% of one experiment are not the first 10% of another: overlap ~ 1%.
    both = sum(g < 0.1 and h < 0.1 for g, h in zip(gate, other_gate, strict=True))
    assert _near(both / N, 0.01, N)
    # Within the first 10% of the gate, the variant buckets are still uniform.
    low = np.array([v for g, v in zip(gate, variant, strict=True) if g < 0.1])
    assert sp.kstest(low, "uniform").pvalue > 1e-3
    assert sp.kstest(np.array(gate), "uniform").pvalue > 1e-3


# --- layers -----------------------------------------------------------------------------------


def test_experiments_in_one_layer_never_share_a_user() -> None:
    slices = allocate_layer([("exp-a", 30.0), ("exp-b", 50.0)])
    routers = [
        Router(AssignmentConfig(s.experiment_id, ("c", "t"), (0.5, 0.5), share, layer="rank"),
               layer_slice=s)
        for s, share in zip(slices, (30.0, 50.0), strict=True)
    ]  # fmt: skip
    a = {u for u in USERS if routers[0].choose(u) is not None}
    b = {u for u in USERS if routers[1].choose(u) is not None}
    assert not a & b
    assert _near(len(a) / N, 0.3, N) and _near(len(b) / N, 0.5, N)


def test_a_ramp_inside_a_layer_keeps_every_user_and_the_neighbours() -> None:
    first = allocate_layer([("exp-a", 10.0), ("exp-b", 20.0)])
    second = allocate_layer([("exp-a", 40.0), ("exp-b", 20.0)], previous=first)
    third = allocate_layer([("exp-b", 20.0), ("exp-c", 30.0)], previous=second)  # a removed
    assert second[1] == first[1] and third[0] == first[1]

    def members(piece: LayerSlice, share: float) -> set[str]:
        config = AssignmentConfig(piece.experiment_id, ("c", "t"), (0.5, 0.5), share, layer="l")
        router = Router(config, layer_slice=piece)
        return {u for u in USERS[:20_000] if router.choose(u) is not None}

    a10, a40 = members(first[0], 10.0), members(second[0], 40.0)
    assert a10 <= a40 and _near(len(a40) / 20_000, 0.4, 20_000)
    c30 = members(third[1], 30.0)
    assert not c30 & members(third[0], 20.0)


def test_layer_assignment_explains_the_layer_bucket() -> None:
    piece = allocate_layer([("exp-a", 30.0)])[0]
    config = AssignmentConfig("exp-a", ("c", "t"), (0.5, 0.5), 30.0, layer="rank")
    for user in USERS[:500]:
        result = assign(config, user, layer_slice=piece)
        assert result.gate_bucket is None and result.layer_bucket is not None
        assert (result.variant is None) == (result.reason == "not_in_layer_slice")
        assert (result.variant is not None) == (result.layer_bucket < 0.3)


# --- bandit routing --------------------------------------------------------------------------


def test_assign_random_follows_the_probabilities_and_the_injected_rng() -> None:
    config = _config((0.5, 0.25, 0.25), 60.0)
    probabilities = (0.7, 0.0, 0.3)
    first = [assign_random(config, u, np.random.default_rng(i), probabilities) for i, u in
             enumerate(USERS[:20_000])]  # fmt: skip
    again = [assign_random(config, u, np.random.default_rng(i), probabilities) for i, u in
             enumerate(USERS[:20_000])]  # fmt: skip
    assert first == again
    assert [r.variant is None for r in first] == [
        assign(config, u).variant is None for u in USERS[:20_000]
    ]
    inside = [r for r in first if r.variant is not None]
    assert all(r.reason == "bandit" for r in inside)
    assert all(r.probability == probabilities[r.index or 0] * 0.6 for r in inside)
    counts = Counter(r.variant for r in inside)
    assert counts["v1"] == 0
    expected = [0.7 * len(inside), 0.3 * len(inside)]
    assert sp.chisquare([counts["v0"], counts["v2"]], expected).pvalue > 1e-3


def test_assign_random_draws_only_for_users_it_routes() -> None:
    config = _config((0.5, 0.5), 1.0)
    user = next(u for u in USERS if assign(config, u).variant is None)
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    assert assign_random(config, user, rng, (0.5, 0.5)).reason == "not_in_traffic"
    assert rng.bit_generator.state == state


# --- the package -----------------------------------------------------------------------------


def test_every_module_declares_its_public_names() -> None:
    import abscope.assignment as package

    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"abscope.assignment.{info.name}")
        exported = getattr(module, "__all__", None)
        assert exported and all(hasattr(module, name) for name in exported), info.name
    assert all(hasattr(package, name) for name in package.__all__)


def test_configs_and_results_are_immutable_values() -> None:
    config = _config((0.5, 0.5), forced={"qa": "v0"})
    assert config == _config((0.5, 0.5), forced={"qa": "v0"})
    assert hash(config) == hash(_config((0.5, 0.5), forced={"qa": "v0"}))
    assert isinstance(config.weights, tuple) and isinstance(config.variants, tuple)
    result = assign(config, "alice")
    with pytest.raises(AttributeError):
        result.variant = "v1"  # type: ignore[misc]


# --- invalid input ---------------------------------------------------------------------------

GOOD = {"experiment_id": "exp-1", "variants": ("a", "b"), "weights": (0.5, 0.5)}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"weights": (0.5, 0.6)}, "weights"),
        ({"weights": (0.5, 0.5 - 2e-9)}, "weights"),
        ({"weights": (1.0, 0.0)}, "weights[1]"),
        ({"weights": (1.5, -0.5)}, "weights[1]"),
        ({"weights": (1.0,)}, "weights"),
        ({"weights": (float("nan"), 0.5)}, "weights[0]"),
        ({"traffic_percentage": 0.0}, "traffic_percentage"),
        ({"traffic_percentage": -5.0}, "traffic_percentage"),
        ({"traffic_percentage": 100.5}, "traffic_percentage"),
        ({"traffic_percentage": float("inf")}, "traffic_percentage"),
        ({"experiment_id": ""}, "experiment_id"),
        ({"experiment_id": "Checkout"}, "experiment_id"),
        ({"experiment_id": "-checkout"}, "experiment_id"),
        ({"experiment_id": "check out"}, "experiment_id"),
        ({"experiment_id": "a" * 65}, "experiment_id"),
        ({"experiment_id": "café"}, "experiment_id"),
        ({"variants": ("a",), "weights": (1.0,)}, "variants"),
        ({"variants": ("a", "a")}, "variants"),
        ({"variants": ("a", "")}, "variants[1]"),
        ({"gate_seed": -1}, "gate_seed"),
        ({"variant_seed": True}, "variant_seed"),
        ({"layer": "Bad Layer"}, "layer"),
        ({"forced": {"qa-1": "c"}}, "forced"),
        ({"forced": {"": "a"}}, "forced"),
    ],
)
def test_invalid_config_raises_naming_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=_names(field)):
        AssignmentConfig(**{**GOOD, **changes})  # type: ignore[arg-type]


def test_weights_must_sum_to_one_within_1e9() -> None:
    AssignmentConfig("exp-1", ("a", "b"), (0.5, 0.5 + 5e-10))
    AssignmentConfig("exp-1", ("a", "b", "c"), (0.1, 0.2, 0.7))


@pytest.mark.parametrize("user_id", ["", "x" * 257, "\ud800", 42, b"alice", None])
def test_invalid_user_ids_raise_naming_user_id(user_id: object) -> None:
    config = AssignmentConfig(**GOOD)  # type: ignore[arg-type]
    for call in (
        lambda: assign(config, user_id),  # type: ignore[arg-type]
        lambda: Router(config).choose(user_id),  # type: ignore[arg-type]
        lambda: bucket(user_id, "salt"),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match=r"^user_id"):
            call()


def test_the_longest_user_id_is_accepted() -> None:
    config = AssignmentConfig(**GOOD)  # type: ignore[arg-type]
    assert assign(config, "é" * 256).variant == Router(config).choose("é" * 256)


def test_invalid_requests_raise_naming_the_argument() -> None:
    config = AssignmentConfig(**GOOD)  # type: ignore[arg-type]
    layered = AssignmentConfig(**GOOD, traffic_percentage=30.0, layer="rank")  # type: ignore[arg-type]
    piece = allocate_layer([("exp-1", 30.0)])[0]
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: assign(config, "u", sticky_variant="c"), "sticky_variant"),
        (lambda: Router(config).choose("u", "c"), "sticky_variant"),
        (lambda: assign(config, "u", weights=(0.5, 0.4)), "weights"),
        (lambda: assign(config, "u", weights=(1.1, -0.1)), "weights[1]"),
        (lambda: Router(config, weights=(0.2,)), "weights"),
        (lambda: assign(config, "u", layer_slice=piece), "layer_slice"),
        (lambda: assign(layered, "u"), "layer_slice"),
        (lambda: Router(layered), "layer_slice"),
        (lambda: assign(layered, "u", layer_slice=allocate_layer([("exp-2", 30.0)])[0]),
         "layer_slice"),
        (lambda: assign(layered, "u", layer_slice=allocate_layer([("exp-1", 20.0)])[0]),
         "layer_slice"),
        (lambda: assign_random(config, "u", np.random.default_rng(0), (0.5, 0.6)),
         "probabilities"),
        (lambda: assign_random(config, "u", 7, (0.5, 0.5)), "rng"),  # type: ignore[arg-type]
        (lambda: assign("exp-1", "u"), "config"),  # type: ignore[arg-type]
        (lambda: bucket("u", ""), "salt"),
    ]  # fmt: skip
    for call, field in cases:
        with pytest.raises(ValueError, match=_names(field)):
            call()


@pytest.mark.parametrize(
    ("experiments", "field"),
    [
        ([("a", 60.0), ("b", 50.0)], "experiments"),
        ([("a", 60.0), ("a", 10.0)], "experiments"),
        ([("a", 0.0)], "experiments[0]"),
        ([("a", 1e-7)], "experiments[0]"),
        ([("a", 10.0), ("B", 10.0)], "experiments[1]"),
        ([("a", 10.0, 1)], "experiments[0]"),
    ],
)
def test_invalid_layers_raise(experiments: list[tuple[str, float]], field: str) -> None:
    with pytest.raises(ValueError, match=_names(field)):
        allocate_layer(experiments)


def test_a_full_layer_is_accepted_and_overlapping_previous_slices_are_not() -> None:
    full = allocate_layer([("a", 10.0), ("b", 20.0), ("c", 70.0)])
    assert math.isclose(sum(s.width for s in full), 1.0)
    overlapping = [LayerSlice("a", ((0.0, 0.5),)), LayerSlice("b", ((0.4, 0.6),))]
    with pytest.raises(ValueError, match=r"^previous"):
        allocate_layer([("a", 50.0)], previous=overlapping)
    with pytest.raises(ValueError, match=r"^intervals"):
        LayerSlice("a", ((0.2, 0.1),))
