"""The experiment-level analysis: consistency with the parts, corrections and the decision."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from abscope.stats import MeanStats, ProportionStats
from abscope.stats.analysis import AnalysisOptions, analyze_experiment
from abscope.stats.bayesian import compare_proportions_bayes
from abscope.stats.power import sample_size_proportions
from abscope.stats.proportions import difference_ci, two_proportion_ztest, wilson_interval
from abscope.stats.sequential import sequential_test

FIXED = AnalysisOptions(sequential=False)


def test_two_variants_agree_with_the_standalone_functions() -> None:
    control, treatment = ProportionStats(5000, 500), ProportionStats(5000, 560)
    result = analyze_experiment({"a": control, "b": treatment}, [0.5, 0.5])
    c = result.comparisons[0]
    assert (c.variant, c.control) == ("b", "a")
    assert c.p_value == two_proportion_ztest(control, treatment).p_value
    assert c.adjusted_p_value == c.p_value  # one comparison: nothing to adjust
    assert c.absolute == difference_ci(control, treatment)
    assert c.bayesian == compare_proportions_bayes(control, treatment)
    se = difference_ci(control, treatment).std_error
    assert c.sequential == sequential_test(c.absolute.estimate, se**2, 10_000)
    assert c.absolute.estimate == pytest.approx(0.012)
    assert result.variant("a").ci == wilson_interval(control)
    assert result.variant("b").observed_share == 0.5


def test_clear_winner_is_named_with_its_lift() -> None:
    result = analyze_experiment(
        {"control": ProportionStats(20_000, 2000), "treatment": ProportionStats(20_000, 2300)},
        {"control": 0.5, "treatment": 0.5},
    )
    assert result.decision.verdict == "winner"
    assert result.decision.winner == "treatment"
    assert result.decision.basis == "sequential"
    assert "+15.0% relative lift" in result.decision.message


def test_control_wins_when_every_treatment_is_worse() -> None:
    result = analyze_experiment(
        {"control": ProportionStats(20_000, 2300), "treatment": ProportionStats(20_000, 2000)},
        [0.5, 0.5],
    )
    assert (result.decision.verdict, result.decision.winner) == ("winner", "control")


def test_lower_is_better_flips_the_winner_and_the_bayesian_view() -> None:
    variants = {
        "control": ProportionStats(20_000, 2300),
        "treatment": ProportionStats(20_000, 2000),
    }
    result = analyze_experiment(
        variants, [0.5, 0.5], options=AnalysisOptions(higher_is_better=False)
    )
    assert (result.decision.verdict, result.decision.winner) == ("winner", "treatment")
    assert result.comparisons[0].bayesian.chance_to_beat_control > 0.99
    assert result.variant("treatment").prob_best > 0.99


def test_keep_running_reports_the_users_still_needed() -> None:
    control, treatment = ProportionStats(1000, 100), ProportionStats(1000, 110)
    result = analyze_experiment(
        {"control": control, "treatment": treatment},
        [0.5, 0.5],
        options=AnalysisOptions(sequential=False, min_relative_lift=0.1),
    )
    needed = math.ceil(sample_size_proportions(0.1, 0.11, ratio=1.0))
    c = result.comparisons[0]
    assert (c.required_control, c.required_treatment) == (needed, needed)
    assert result.decision.verdict == "keep_running"
    assert result.decision.remaining_samples == 2 * needed - 2000
    assert f"{2 * needed - 2000:,}" in result.decision.message


def test_remaining_samples_follow_the_weights() -> None:
    """With a 20/80 split the control is the bottleneck: total = needed_control / 0.2."""
    control, treatment = ProportionStats(200, 20), ProportionStats(800, 88)
    result = analyze_experiment(
        {"control": control, "treatment": treatment},
        [0.2, 0.8],
        options=AnalysisOptions(sequential=False, min_relative_lift=0.1),
    )
    c = result.comparisons[0]
    expected_total = max(c.required_control / 0.2, c.required_treatment / 0.8)  # type: ignore[operator]
    assert result.decision.remaining_samples == math.ceil(expected_total - 1000)


def test_no_difference_once_powered_and_not_significant() -> None:
    variants = {
        "control": ProportionStats(200_000, 20_000),
        "treatment": ProportionStats(200_000, 20_050),
    }
    sequential = analyze_experiment(
        variants, [0.5, 0.5], options=AnalysisOptions(min_relative_lift=0.05)
    )
    fixed = analyze_experiment(
        variants, [0.5, 0.5], options=AnalysisOptions(min_relative_lift=0.05, sequential=False)
    )
    assert sequential.decision.verdict == fixed.decision.verdict == "no_difference"
    seq_power, fixed_power = sequential.comparisons[0].power, fixed.comparisons[0].power
    assert seq_power is not None and fixed_power is not None
    # Peeking safely costs power: the sequential test is less powerful at the same n.
    assert 0.8 < seq_power < fixed_power


def test_sequential_decisions_need_more_users_than_fixed_horizon_ones() -> None:
    variants = {"control": ProportionStats(2000, 200), "treatment": ProportionStats(2000, 215)}
    options = {"min_relative_lift": 0.1}
    seq = analyze_experiment(variants, [0.5, 0.5], options=AnalysisOptions(**options))  # type: ignore[arg-type]
    fixed = analyze_experiment(
        variants,
        [0.5, 0.5],
        options=AnalysisOptions(sequential=False, **options),  # type: ignore[arg-type]
    )
    assert seq.decision.remaining_samples > fixed.decision.remaining_samples  # type: ignore[operator]


def test_without_a_minimum_lift_power_is_not_computed_from_the_observed_lift() -> None:
    """Fixed-horizon significant, sequentially not: keep running, never "no difference".

    Without a pre-registered minimum lift, power and the users still needed are undefined
    (they used to be sized against the observed lift: post-hoc power); the decision asks for
    a minimum lift. With one set, they are computed and positive."""
    control = MeanStats.from_moments(1000, 10.2, 3.1)
    treatment = MeanStats.from_moments(1000, 10.6, 3.0)
    result = analyze_experiment({"control": control, "treatment": treatment}, [0.5, 0.5])
    c = result.comparisons[0]
    assert c.significant and not c.sequential_significant
    assert (c.power, c.required_control, c.power_reason) == (None, None, "no_min_lift")
    assert result.decision.verdict == "keep_running"
    assert result.decision.remaining_samples is None
    assert result.decision.remaining_reason == "no_min_lift"
    assert "Set a minimum relative lift" in result.decision.message
    sized = analyze_experiment(
        {"control": control, "treatment": treatment},
        [0.5, 0.5],
        options=AnalysisOptions(min_relative_lift=0.03),
    )
    assert sized.decision.verdict == "keep_running"
    remaining = sized.decision.remaining_samples
    assert remaining is not None and remaining > 0
    assert sized.comparisons[0].target_relative_lift == 0.03


def test_identical_rates_without_a_target_cannot_size_the_rest() -> None:
    result = analyze_experiment(
        {"a": ProportionStats(1000, 100), "b": ProportionStats(1000, 100)}, [0.5, 0.5]
    )
    c = result.comparisons[0]
    assert c.p_value == pytest.approx(1.0) and c.target_relative_lift is None
    assert result.decision.verdict == "keep_running"
    assert result.decision.remaining_samples is None


def test_sample_ratio_mismatch_overrides_everything() -> None:
    result = analyze_experiment(
        {"control": ProportionStats(20_000, 2000), "treatment": ProportionStats(22_000, 2600)},
        [0.5, 0.5],
    )
    assert result.srm.mismatch
    assert result.decision.verdict == "invalid"
    assert "Sample ratio mismatch" in result.decision.message


def test_several_treatments_get_holm_adjusted_p_values() -> None:
    variants = {
        "control": ProportionStats(4000, 400),
        "t1": ProportionStats(4000, 450),
        "t2": ProportionStats(4000, 470),
        "t3": ProportionStats(4000, 405),
    }
    weights = [0.25] * 4
    for correction, sm_method in (("holm", "holm"), ("bh", "fdr_bh")):
        result = analyze_experiment(
            variants,
            weights,
            options=AnalysisOptions(correction=correction, sequential=False),  # type: ignore[arg-type]
        )
        raw = [c.p_value for c in result.comparisons]
        expected = multipletests(raw, method=sm_method)[1]
        assert [c.adjusted_p_value for c in result.comparisons] == pytest.approx(list(expected))
        assert [c.significant for c in result.comparisons] == [p < 0.05 for p in expected]
    assert sum(v.prob_best for v in result.variants) == pytest.approx(1.0)


def test_the_control_can_be_any_variant() -> None:
    variants = {"t": ProportionStats(1000, 120), "c": ProportionStats(1000, 100)}
    result = analyze_experiment(variants, [0.5, 0.5], control="c")
    assert result.control == "c" and result.comparisons[0].variant == "t"
    assert result.variant("c").is_control


@settings(max_examples=25, deadline=None)
@given(st.permutations(["t1", "t2", "t3"]))
def test_treatment_order_does_not_change_any_comparison(order: list[str]) -> None:
    stats = {
        "t1": ProportionStats(3000, 330),
        "t2": ProportionStats(3000, 290),
        "t3": ProportionStats(3000, 360),
    }
    base = analyze_experiment({"c": ProportionStats(3000, 300), **stats}, [0.25] * 4)
    shuffled = analyze_experiment(
        {"c": ProportionStats(3000, 300), **{k: stats[k] for k in order}}, [0.25] * 4
    )
    by_name = {c.variant: c for c in shuffled.comparisons}
    for c in base.comparisons:
        assert by_name[c.variant].adjusted_p_value == pytest.approx(c.adjusted_p_value)
        assert by_name[c.variant].sequential_adjusted_p_value == pytest.approx(
            c.sequential_adjusted_p_value
        )


def test_continuous_metric() -> None:
    control = MeanStats.from_moments(5000, 10.0, 4.0)
    treatment = MeanStats.from_moments(5000, 10.4, 4.0)
    result = analyze_experiment({"control": control, "treatment": treatment}, [0.5, 0.5])
    c = result.comparisons[0]
    assert result.metric == "continuous"
    assert c.test.df is not None and c.relative.estimate == pytest.approx(0.04)
    assert result.variant("control").std == pytest.approx(4.0)
    assert result.decision.verdict == "winner"


@pytest.mark.parametrize(
    "variants",
    [
        {"a": ProportionStats(0, 0), "b": ProportionStats(0, 0)},
        {"a": ProportionStats(0, 0), "b": ProportionStats(10, 1)},
        {"a": ProportionStats(100, 0), "b": ProportionStats(100, 0)},
        {"a": ProportionStats(100, 100), "b": ProportionStats(100, 100)},
        {"a": ProportionStats(1, 0), "b": ProportionStats(1, 1)},
        {"a": MeanStats.from_values([1.0]), "b": MeanStats.from_values([2.0])},
        {"a": MeanStats(0, 0.0, 0.0), "b": MeanStats(0, 0.0, 0.0)},
        {"a": MeanStats.from_values([2.0, 2.0]), "b": MeanStats.from_values([2.0, 2.0])},
    ],
)
def test_degenerate_experiments_never_raise_and_never_claim_a_winner(variants) -> None:  # type: ignore[no-untyped-def]
    result = analyze_experiment(variants, [0.5, 0.5], options=FIXED)
    assert result.decision.verdict in ("keep_running", "no_difference")
    assert result.decision.winner is None
    for c in result.comparisons:
        # A p-value is a probability, or undefined with the reason beside it.
        assert c.p_value is None or 0.0 <= c.p_value <= 1.0
        assert (c.p_value is None) == (c.test.reason is not None)
        assert not c.significant and not c.sequential_significant
        assert c.primary is not None and not c.primary.significant
        if c.primary.reason is not None:
            assert c.primary.p_value is None
            assert result.decision.remaining_samples is None
            assert "cannot test yet" in result.decision.message or "no users" in (
                result.decision.message
            )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"variants": {"a": ProportionStats(1, 0)}, "weights": [1.0]}, "variants"),
        (
            {
                "variants": {"a": ProportionStats(1, 0), "b": MeanStats(0, 0.0, 0.0)},
                "weights": [0.5, 0.5],
            },
            "variants",
        ),
        (
            {
                "variants": {"a": ProportionStats(1, 0), "b": ProportionStats(1, 0)},
                "weights": [0.7, 0.7],
            },
            "weights",
        ),
        (
            {
                "variants": {"a": ProportionStats(1, 0), "b": ProportionStats(1, 0)},
                "weights": {"a": 1.0},
            },
            "weights",
        ),
        (
            {
                "variants": {"a": ProportionStats(1, 0), "b": ProportionStats(1, 0)},
                "weights": [0.5, 0.5],
                "control": "z",
            },
            "control",
        ),
    ],
)
def test_invalid_input_names_the_argument(kwargs: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=field):
        analyze_experiment(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"power": 0.01}, "power"),
        ({"min_relative_lift": 0.0}, "min_relative_lift"),
        ({"correction": "bonferroni"}, "correction"),
        ({"sequential_tuning_n": 0}, "sequential_tuning_n"),
        ({"alternative": "bigger"}, "alternative"),
    ],
)
def test_invalid_options_name_the_option(kwargs: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=field):
        AnalysisOptions(**kwargs)


# --- undefined is null, and one inference mode -------------------------------------------


def test_a_zero_baseline_gives_no_relative_lift_and_the_decision_says_why() -> None:
    result = analyze_experiment(
        {"a": ProportionStats(100, 0), "b": ProportionStats(100, 5)}, [0.5, 0.5]
    )
    c = result.comparisons[0]
    assert (c.relative.estimate, c.relative.ci, c.relative.reason) == (None, None, "zero_baseline")
    assert c.sequential_relative.p_value is None
    assert c.sequential_relative.reason == "zero_baseline"
    assert c.absolute.estimate == pytest.approx(0.05)
    assert c.primary is not None and c.primary.relative_ci is None
    assert result.decision.verdict == "keep_running"


def test_constant_arms_are_never_significant() -> None:
    """Two constant samples with different means: no p-value, no significance, and a
    decision that names the reason."""
    result = analyze_experiment(
        {"a": MeanStats.from_values([3.0] * 50), "b": MeanStats.from_values([5.0] * 50)},
        [0.5, 0.5],
        options=FIXED,
    )
    c = result.comparisons[0]
    assert c.p_value is None and c.adjusted_p_value is None and not c.significant
    assert c.sequential.p_value is None and not c.sequential_significant
    assert result.decision.verdict == "keep_running" and result.decision.winner is None
    assert result.decision.remaining_reason == "zero_variance"
    assert "b: every outcome is identical" in result.decision.message


def test_an_undefined_comparison_leaves_the_family_of_the_others() -> None:
    variants = {
        "c": MeanStats.from_values([3.0, 4.0, 5.0] * 200),
        "same": MeanStats.from_values([3.0, 4.0, 5.0] * 200),
        "up": MeanStats.from_values([3.3, 4.3, 5.3] * 200),
        "flat": MeanStats.from_values([4.0]),
    }
    result = analyze_experiment(variants, [0.25] * 4, options=FIXED)
    by_name = {c.variant: c for c in result.comparisons}
    assert by_name["flat"].adjusted_p_value is None
    raw = [by_name["same"].p_value, by_name["up"].p_value]
    expected = multipletests(raw, method="holm")[1]
    assert [by_name["same"].adjusted_p_value, by_name["up"].adjusted_p_value] == pytest.approx(
        list(expected)
    )


@pytest.mark.parametrize("sequential", [True, False])
def test_primary_figures_come_from_the_mode_in_force(sequential: bool) -> None:
    variants = {
        "control": ProportionStats(20_000, 2000),
        "treatment": ProportionStats(20_000, 2300),
    }
    result = analyze_experiment(
        variants, [0.5, 0.5], options=AnalysisOptions(sequential=sequential)
    )
    c = result.comparisons[0]
    assert c.primary is not None and c.secondary is not None
    if sequential:
        assert c.primary.basis == "sequential" and c.secondary.basis == "fixed_horizon"
        assert c.primary.adjusted_p_value == c.sequential_adjusted_p_value
        assert c.primary.significant == c.sequential_significant
        assert c.primary.relative_ci is not None
        assert (c.primary.relative_ci.lower, c.primary.relative_ci.upper) == (
            c.sequential_relative.ci_lower, c.sequential_relative.ci_upper
        )  # fmt: skip
        assert c.secondary.relative_ci == c.relative.ci
    else:
        assert c.primary.basis == "fixed_horizon"
        assert c.primary.adjusted_p_value == c.adjusted_p_value
        assert c.primary.relative_ci == c.relative.ci
    # The decision sentence quotes the interval of the mode in force, never the other.
    ci = c.primary.relative_ci
    assert ci is not None
    assert f"{ci.lower:+.1%} to {ci.upper:+.1%}" in result.decision.message
    other = c.secondary.relative_ci
    assert other is not None
    assert f"{other.lower:+.1%} to {other.upper:+.1%}" not in result.decision.message


def test_the_relative_sequence_is_relative_and_stays_above_minus_100_percent() -> None:
    control, treatment = ProportionStats(60, 6), ProportionStats(60, 1)
    c = analyze_experiment({"a": control, "b": treatment}, [0.5, 0.5]).comparisons[0]
    seq = c.sequential_relative
    assert seq.ci_lower is not None and seq.ci_upper is not None
    assert -1.0 < seq.ci_lower < c.relative.estimate < seq.ci_upper  # type: ignore[operator]
    # On the log scale: log(1 + bound) is symmetric around log(1 + lift).
    centre = math.log1p(c.relative.estimate)  # type: ignore[arg-type]
    assert math.log1p(seq.ci_upper) - centre == pytest.approx(centre - math.log1p(seq.ci_lower))
    # The same null as the ratio test: p of the relative sequence < alpha iff 0 is outside.
    assert (seq.p_value is not None and seq.p_value < 0.05) == (
        not seq.ci_lower <= 0 <= seq.ci_upper
    )
