"""The language-neutral case file ``tests/cases/assignment.json``, and its generator.

The expected values were generated once, by the plain reference below (``hashlib`` and
``struct.unpack(">Q")``, a linear scan over running sums), which shares no code with
``abscope.assignment``; the tests check the library against the file. Another SDK can load
the same file. To regenerate it after an intended change of the rules (which reassigns users
in every running experiment, so think twice):

    .venv/bin/python tests/unit/test_assignment_cases.py --write
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from abscope.assignment import (
    AssignmentConfig,
    LayerSlice,
    Router,
    assign,
    bucket,
    bucket_from_int,
    bucket_int,
    bucket_ranges,
    find_range,
    gate_salt,
    layer_salt,
    variant_salt,
)

CASES = Path(__file__).resolve().parents[1] / "cases" / "assignment.json"

# --- the reference: written from the spec, independent of abscope.assignment -------------


def ref_uint64(user_id: str, salt: str) -> int:
    digest = hashlib.sha256((user_id + ":" + salt).encode("utf-8")).digest()
    (n,) = struct.unpack(">Q", digest[:8])
    return int(n)


def ref_bucket_from_uint64(n: int) -> float:
    b = float(n) * 2.0**-64  # float(n) rounds to nearest (ties to even); the scaling is exact
    if b >= 1.0:
        b = 1.0 - 2.0**-53
    return b


def ref_bucket(user_id: str, salt: str) -> float:
    return ref_bucket_from_uint64(ref_uint64(user_id, salt))


def ref_range_ends(weights: list[float]) -> list[float]:
    ends, running = [], 0.0
    for w in weights[:-1]:
        running = running + w
        ends.append(running if running < 1.0 else 1.0)
    return [*ends, 1.0]


def ref_index(b: float, weights: list[float]) -> int:
    for i, end in enumerate(ref_range_ends(weights)):
        if b < end:
            return i
    raise AssertionError("ranges end at 1.0 and buckets are below it")


def ref_variant(
    user_id: str, experiment_id: str, gate_seed: int, variant_seed: int,
    variants: list[str], weights: list[float], traffic_percentage: float,
) -> tuple[float, float, str | None]:  # fmt: skip
    g = ref_bucket(user_id, experiment_id + ":" + str(gate_seed) + ":traffic")
    v = ref_bucket(user_id, experiment_id + ":" + str(variant_seed) + ":variant")
    if not g < traffic_percentage / 100:
        return g, v, None
    return g, v, variants[ref_index(v, weights)]


# --- the generator ------------------------------------------------------------------------

USERS = [
    "alice", "bob", "user-42", "0", "a", " ", "  padded  ", "tab\there", "colon:in:id",
    "MiXeD-Case", "José", "e\u0301", "\u00e9", "用户-42", "👩‍🔬", "Ünïcödé 🚀", "ß", "Ω≈ç√",
    "00000000-0000-4000-8000-000000000000", "x" * 256,
]  # fmt: skip
SALTS = ["checkout:0:variant", "checkout:0:traffic", "exp-2:3:variant", "layer:ranking"]
WEIGHTS = [
    [0.5, 0.5], [0.1, 0.9], [0.1, 0.2, 0.7], [0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3],
    [0.25, 0.25, 0.25, 0.25], [0.05, 0.15, 0.3, 0.3, 0.2],
]  # fmt: skip
EXPERIMENTS = [
    # experiment_id, gate_seed, variant_seed, variants, weights, traffic_percentage
    ("checkout", 0, 0, ["control", "treatment"], [0.5, 0.5], 100.0),
    ("checkout", 0, 1, ["control", "treatment"], [0.5, 0.5], 100.0),
    ("ranker-v2", 0, 0, ["v1", "v2", "v3"], [0.1, 0.2, 0.7], 50.0),
    ("search_2024", 7, 3, ["a", "b", "c", "d"], [0.25, 0.25, 0.25, 0.25], 10.0),
    ("x", 0, 0, ["control", "treatment"], [0.9, 0.1], 1.0),
]
NEAR = [f"user-{i}" for i in range(20_000)]


def _hex(n: int) -> str:
    return f"{n:016x}"


def _closest(key: Any, target: float) -> list[str]:
    """The users of NEAR whose value is just below and just above ``target``."""
    below = max((u for u in NEAR if key(u) < target), key=key)
    above = min((u for u in NEAR if key(u) >= target), key=key)
    return [below, above]


def build_cases() -> dict[str, Any]:
    uint64_edges = [
        0, 1, 2**11, 2**53, 2**63 - 513, 2**63 - 512, 2**63, 2**64 - 2**11,
        2**64 - 2**10 - 1, 2**64 - 2**10, 2**64 - 1,
    ]  # fmt: skip
    ranges = []
    for weights in WEIGHTS:
        ends = ref_range_ends(weights)
        probes = {0.0, 1.0 - 2.0**-53, 0.5}
        for end in ends[:-1]:
            probes |= {math.nextafter(end, 0.0), end, math.nextafter(end, 1.0)}
        lookups = [{"bucket": b, "expected_index": ref_index(b, weights)} for b in sorted(probes)]
        los = [0.0, *ends[:-1]]
        ranges.append(
            {"weights": weights, "expected_ranges": [list(r) for r in zip(los, ends, strict=True)],
             "lookups": lookups}
        )  # fmt: skip
    assignments = []
    for experiment_id, gate_seed, variant_seed, variants, weights, traffic in EXPERIMENTS:
        g_salt = f"{experiment_id}:{gate_seed}:traffic"
        v_salt = f"{experiment_id}:{variant_seed}:variant"
        users = list(USERS[:12])
        for end in ref_range_ends(weights)[:-1]:
            users += _closest(lambda u, s=v_salt: ref_bucket(u, s), end)
        if traffic < 100:
            users += _closest(lambda u, s=g_salt: ref_bucket(u, s), traffic / 100)
        for user_id in users:
            g, v, variant = ref_variant(
                user_id, experiment_id, gate_seed, variant_seed, variants, weights, traffic
            )
            assignments.append(
                {"experiment_id": experiment_id, "gate_seed": gate_seed,
                 "variant_seed": variant_seed, "variants": variants, "weights": weights,
                 "traffic_percentage": traffic, "user_id": user_id, "expected_gate_bucket": g,
                 "expected_variant_bucket": v, "expected_variant": variant}
            )  # fmt: skip
    slices: list[dict[str, Any]] = [
        {"experiment_id": "rank-a", "intervals": [[0.0, 0.1], [0.3, 0.4]]},
        {"experiment_id": "rank-b", "intervals": [[0.1, 0.3]]},
        {"experiment_id": "rank-c", "intervals": [[0.5, 0.75]]},
    ]
    layers = []
    for user_id in USERS[:10] + _closest(lambda u: ref_bucket(u, "layer:ranking"), 0.1):
        b = ref_bucket(user_id, "layer:ranking")
        owner = [
            s["experiment_id"] for s in slices if any(lo <= b < hi for lo, hi in s["intervals"])
        ]
        layers.append(
            {"layer": "ranking", "slices": slices, "user_id": user_id,
             "expected_layer_bucket": b, "expected_experiment": owner[0] if owner else None}
        )  # fmt: skip
    return {
        "description": (
            "abscope assignment cases. bucket(user_id, salt): n = first 8 bytes, big-endian, "
            "of sha256(utf8(user_id + ':' + salt)); bucket = n / 2^64 rounded to the nearest "
            "double (ties to even), and 1 - 2^-53 if that rounds to 1.0. Salts: gate "
            "'{experiment_id}:{gate_seed}:traffic', variant '{experiment_id}:{variant_seed}:"
            "variant', layer 'layer:{layer}'. Ranges: running sums of the weights added left to "
            "right in double precision, each capped at 1.0, the last end exactly 1.0; a bucket "
            "b is in range i iff lo_i <= b < hi_i. A user is in the experiment iff gate bucket "
            "< traffic_percentage / 100 (in a layer: iff the layer bucket is in one of the "
            "experiment's intervals [lo, hi)). uint64 values are hex strings."
        ),
        "bucket": [
            {
                "user_id": u,
                "salt": s,
                "expected_uint64": _hex(ref_uint64(u, s)),
                "expected_bucket": ref_bucket(u, s),
            }
            for s in SALTS
            for u in USERS
        ],  # fmt: skip
        "bucket_from_uint64": [
            {"uint64": _hex(n), "expected_bucket": ref_bucket_from_uint64(n)} for n in uint64_edges
        ],
        "salts": [
            {
                "experiment_id": e,
                "gate_seed": g,
                "variant_seed": v,
                "layer": layer,
                "expected_gate_salt": f"{e}:{g}:traffic",
                "expected_variant_salt": f"{e}:{v}:variant",
                "expected_layer_salt": f"layer:{layer}",
            }
            for e, g, v, layer in [
                ("checkout", 0, 0, "ranking"),
                ("ranker-v2", 7, 12, "a"),
                ("0", 0, 123456789, "layer_1-x"),
            ]
        ],  # fmt: skip
        "ranges": ranges,
        "assignments": assignments,
        "layers": layers,
    }


def write_cases() -> None:
    text = json.dumps(build_cases(), indent=1, ensure_ascii=True) + "\n"
    CASES.write_text(text, encoding="ascii")


# --- the tests: the library against the file -------------------------------------------------


@pytest.fixture(scope="module")
def cases() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(CASES.read_text(encoding="ascii"))
    return loaded


def test_case_file_covers_the_edge_cases(cases: dict[str, Any]) -> None:
    users = {case["user_id"] for case in cases["bucket"]}
    assert {"e\u0301", "\u00e9", "用户-42", " ", "x" * 256} <= users
    assert any(len(case["variants"]) >= 4 for case in cases["assignments"])
    assert any(case["expected_variant"] is None for case in cases["assignments"])
    assert any(case["expected_experiment"] is None for case in cases["layers"])
    assert [0.1, 0.2, 0.7] in [case["weights"] for case in cases["ranges"]]


def test_bucket_matches_the_case_file(cases: dict[str, Any]) -> None:
    for case in cases["bucket"]:
        user_id, salt = case["user_id"], case["salt"]
        assert f"{bucket_int(user_id, salt):016x}" == case["expected_uint64"], case
        assert bucket(user_id, salt) == case["expected_bucket"], case


def test_bucket_from_uint64_matches_the_case_file(cases: dict[str, Any]) -> None:
    for case in cases["bucket_from_uint64"]:
        assert bucket_from_int(int(case["uint64"], 16)) == case["expected_bucket"], case
    top = [c["expected_bucket"] for c in cases["bucket_from_uint64"]][-2:]
    assert top == [1 - 2**-53, 1 - 2**-53]  # the two that would round to 1.0


def test_salts_match_the_case_file(cases: dict[str, Any]) -> None:
    for case in cases["salts"]:
        assert gate_salt(case["experiment_id"], case["gate_seed"]) == case["expected_gate_salt"]
        assert (
            variant_salt(case["experiment_id"], case["variant_seed"])
            == case["expected_variant_salt"]
        )
        assert layer_salt(case["layer"]) == case["expected_layer_salt"]


def test_ranges_and_lookups_match_the_case_file(cases: dict[str, Any]) -> None:
    for case in cases["ranges"]:
        ranges = bucket_ranges(case["weights"])
        assert [list(r) for r in ranges] == case["expected_ranges"]
        for lookup in case["lookups"]:
            assert find_range(lookup["bucket"], ranges) == lookup["expected_index"], lookup


def test_assign_and_router_match_the_case_file(cases: dict[str, Any]) -> None:
    for case in cases["assignments"]:
        config = AssignmentConfig(
            case["experiment_id"], tuple(case["variants"]), tuple(case["weights"]),
            case["traffic_percentage"], case["gate_seed"], case["variant_seed"],
        )  # fmt: skip
        result = assign(config, case["user_id"])
        assert result.gate_bucket == case["expected_gate_bucket"], case
        assert result.variant == case["expected_variant"], case
        if result.variant is not None:
            assert result.variant_bucket == case["expected_variant_bucket"], case
        assert Router(config).choose(case["user_id"]) == case["expected_variant"], case


def test_layers_match_the_case_file(cases: dict[str, Any]) -> None:
    for case in cases["layers"]:
        layer_bucket = bucket(case["user_id"], layer_salt(case["layer"]))
        assert layer_bucket == case["expected_layer_bucket"], case
        for spec in case["slices"]:
            piece = LayerSlice(spec["experiment_id"], tuple(map(tuple, spec["intervals"])))
            config = AssignmentConfig(
                spec["experiment_id"], ("a", "b"), (0.5, 0.5), 100 * piece.width,
                layer=case["layer"],
            )  # fmt: skip
            inside = spec["experiment_id"] == case["expected_experiment"]
            assert piece.contains(layer_bucket) == inside
            assert (
                assign(config, case["user_id"], layer_slice=piece).variant is not None
            ) == inside
            router = Router(config, layer_slice=piece)
            assert (router.choose(case["user_id"]) is not None) == inside


def test_the_reference_still_generates_the_file(cases: dict[str, Any]) -> None:
    """The file is what the independent reference computes (no hand edits)."""
    assert build_cases() == cases


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    write_cases()
