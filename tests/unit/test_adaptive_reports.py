"""The results' ``adaptive_estimates`` section (abscope.adaptive_reports), from counts made
by hand: which experiments get it, what is null and why, what is recommended, and that the
counts become the :class:`WeightedSums` that :meth:`WeightedSums.from_users` computes from
the same users.
"""

from __future__ import annotations

import math
import random

import pytest

from abscope.adaptive_reports import ADAPTIVE_NULL_REASONS, METHODS, adaptive_view, weighted_sums
from abscope.models import Status, VariantCounts, WeightedCounts
from abscope.stats.adaptive_estimates import WeightedSums, adaptive_difference, adaptive_mean
from abscope.stats.results import REASONS
from tests.fixtures.factories import experiment


def _counts(
    users: list[tuple[bool, float, float]],
) -> tuple[VariantCounts, WeightedCounts]:
    """What a store keeps for users ``(converted, value total, p)``, from the raw users."""
    counts = VariantCounts(
        samples=len(users),
        conversions=sum(c for c, _, _ in users),
        value_sum=math.fsum(t for _, t, _ in users),
        value_sum_squares=math.fsum(t * t for _, t, _ in users),
        inverse_probability_sum=math.fsum(1 / p for _, _, p in users),
        inverse_probability_square_sum=math.fsum(1 / p**2 for _, _, p in users),
    )
    weighted = WeightedCounts(
        samples=len(users),
        inverse_sqrt_probability_sum=math.fsum(1 / math.sqrt(p) for _, _, p in users),
        conversion_inverse_probability_sum=math.fsum(c / p for c, _, p in users),
        conversion_inverse_probability_square_sum=math.fsum(c / p**2 for c, _, p in users),
        conversion_inverse_sqrt_probability_sum=math.fsum(c / math.sqrt(p) for c, _, p in users),
        value_inverse_probability_sum=math.fsum(t / p for _, t, p in users),
        value_inverse_probability_square_sum=math.fsum(t / p**2 for _, t, p in users),
        value_inverse_sqrt_probability_sum=math.fsum(t / math.sqrt(p) for _, t, p in users),
        square_inverse_probability_sum=math.fsum(t * t / p for _, t, p in users),
        square_inverse_probability_square_sum=math.fsum(t * t / p**2 for _, t, p in users),
    )
    return counts, weighted


def _users(seed: int, n: int, rate: float) -> list[tuple[bool, float, float]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        converted = rng.random() < rate
        out.append((converted, float(rng.randint(0, 9)), rng.choice([0.05, 0.3, 0.5, 0.9])))
    return out


ARMS = {"control": _users(1, 60, 0.3), "treatment": _users(2, 25, 0.5)}


@pytest.mark.parametrize("outcome", ["conversion", "value"])
def test_the_counts_make_the_sums_from_users_computes(outcome: str) -> None:
    for users in ARMS.values():
        counts, weighted = _counts(users)
        got = weighted_sums(counts, weighted, outcome)  # type: ignore[arg-type]
        ys = [float(c) if outcome == "conversion" else t for c, t, _ in users]
        want = WeightedSums.from_users(ys, [p for _, _, p in users])
        for name in WeightedSums.__dataclass_fields__:
            assert getattr(got, name) == pytest.approx(getattr(want, name), rel=1e-12), name


def test_fixed_allocation_has_no_section() -> None:
    counts = {name: _counts(users) for name, users in ARMS.items()}
    view, reason = adaptive_view(
        experiment(status=Status.RUNNING),
        {n: c for n, (c, _) in counts.items()},
        {n: w for n, (_, w) in counts.items()},
    )
    assert view is None and reason == "fixed_allocation" and reason in ADAPTIVE_NULL_REASONS


@pytest.mark.parametrize("metric_type", ["binary", "continuous"])
def test_a_bandit_gets_every_method_per_arm_and_per_comparison(metric_type: str) -> None:
    exp = experiment(allocation="thompson", metric_type=metric_type, confidence_level=0.9)
    counts = {name: _counts(users) for name, users in ARMS.items()}
    view, reason = adaptive_view(
        exp, {n: c for n, (c, _) in counts.items()}, {n: w for n, (_, w) in counts.items()}
    )
    assert reason is None and view is not None
    outcome = "conversion" if metric_type == "binary" else "value"
    sums = {n: weighted_sums(c, w, outcome) for n, (c, w) in counts.items()}  # type: ignore[arg-type]
    total = sum(s.samples for s in sums.values())
    pooled = sums["control"] + sums["treatment"]
    model = pooled.value_inverse_probability_sum / pooled.inverse_probability_sum
    assert view["outcome_model"] == pytest.approx(model)
    assert view["randomised_users"] == total == 85
    for arm in view["arms"]:
        assert set(arm["estimates"]) == set(METHODS)
        for method, figure in arm["estimates"].items():
            want = adaptive_mean(
                sums[arm["variant"]], method, total=total, outcome_model=model,
                confidence_level=0.9,
            )  # fmt: skip
            assert figure["estimate"] == pytest.approx(want.estimate, rel=1e-12)
            assert figure["interval"] == pytest.approx([want.ci.lower, want.ci.upper])  # type: ignore[union-attr]
            assert figure["inference"] == "fixed_horizon"
            assert figure["recommended_estimate"] == (method == "hajek")
            assert figure["recommended_interval"] == (method == "stabilized")
    [comparison] = view["comparisons"]
    for method, figure in comparison["estimates"].items():
        want = adaptive_difference(
            sums["treatment"], sums["control"], method, total=total,
            outcome_models=(model, model), confidence_level=0.9,
        )  # fmt: skip
        assert figure["estimate"] == pytest.approx(want.estimate, rel=1e-12)
        assert figure["std_error"] == pytest.approx(want.std_error, rel=1e-12)
    assert view["inference"] == "fixed_horizon" and "not always-valid" in view["inference_note"]


def test_without_all_traffic_horvitz_thompson_and_aipw_are_null_with_a_reason() -> None:
    exp = experiment(allocation="ucb1", traffic_percentage=50.0)
    counts = {name: _counts(users) for name, users in ARMS.items()}
    view, _ = adaptive_view(
        exp, {n: c for n, (c, _) in counts.items()}, {n: w for n, (_, w) in counts.items()}
    )
    assert view is not None and view["randomised_users"] is None
    figures = view["arms"][0]["estimates"]
    for method in ("horvitz_thompson", "aipw"):
        assert figures[method]["estimate"] is None
        assert figures[method]["reason"] == "unknown_total"
        assert figures[method]["reason_text"] == REASONS["unknown_total"]
    assert figures["hajek"]["estimate"] is not None  # Hájek needs no N


def test_users_exposed_before_the_store_kept_p_make_the_weighted_figures_null() -> None:
    exp = experiment(allocation="thompson")
    counts = {name: _counts(users) for name, users in ARMS.items()}
    control, weighted = counts["control"]
    short = weighted.model_copy(update={"samples": weighted.samples - 3})
    view, _ = adaptive_view(
        exp,
        {"control": control, "treatment": counts["treatment"][0]},
        {"control": short, "treatment": counts["treatment"][1]},
    )
    assert view is not None
    arm = view["arms"][0]["estimates"]
    assert arm["naive"]["estimate"] is not None
    for method in ("hajek", "stabilized", "horvitz_thompson", "aipw"):
        assert arm[method]["estimate"] is None
        assert arm[method]["reason"] == "missing_probabilities"
    treatment = view["arms"][1]["estimates"]
    assert treatment["hajek"]["estimate"] is not None
    assert treatment["aipw"]["reason"] == "missing_probabilities"  # the pooled m needs all
    assert view["comparisons"][0]["estimates"]["hajek"]["reason"] == "missing_probabilities"


def test_an_arm_without_users_is_null_with_no_samples() -> None:
    exp = experiment(allocation="thompson")
    counts, weighted = _counts(ARMS["control"])
    view, _ = adaptive_view(exp, {"control": counts}, {"control": weighted})
    assert view is not None
    treatment = view["arms"][1]
    assert treatment["users"] == 0
    assert {f["reason"] for f in treatment["estimates"].values()} == {"no_samples"}
    assert all(f["estimate"] is None for f in view["comparisons"][0]["estimates"].values())
