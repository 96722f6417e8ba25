"""Sample-ratio mismatch against scipy.stats.chisquare; p-value corrections against statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sp
from statsmodels.stats.multitest import multipletests

from abscope.stats.multiple import adjust_p_values, benjamini_hochberg, holm
from abscope.stats.srm import sample_ratio_mismatch


@st.composite
def split(draw: st.DrawFn) -> tuple[list[int], list[float]]:
    k = draw(st.integers(min_value=2, max_value=8))
    raw = draw(st.lists(st.integers(min_value=1, max_value=1000), min_size=k, max_size=k))
    weights = [w / sum(raw) for w in raw]
    weights[-1] = 1.0 - sum(weights[:-1])
    counts = draw(st.lists(st.integers(min_value=0, max_value=10**7), min_size=k, max_size=k))
    return counts, weights


@settings(max_examples=300, deadline=None)
@given(split())
def test_srm_matches_scipy_chisquare(case: tuple[list[int], list[float]]) -> None:
    counts, weights = case
    total = sum(counts)
    result = sample_ratio_mismatch(counts, weights)
    if total == 0:
        assert result.reason == "no_samples" and not result.mismatch
        assert result.p_value is None and result.statistic is None
        return
    expected = np.array(weights) * total
    reference = sp.chisquare(counts, expected, sum_check=False)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-9, abs=1e-9)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)
    assert result.df == len(counts) - 1
    assert result.mismatch == (result.p_value < 0.001)


def test_srm_flags_a_broken_split_and_passes_a_good_one() -> None:
    assert sample_ratio_mismatch([50_000, 51_500], [0.5, 0.5]).mismatch
    assert not sample_ratio_mismatch([50_000, 50_100], [0.5, 0.5]).mismatch
    # Three variants with unequal weights, observed close to 20/30/50.
    assert not sample_ratio_mismatch([2010, 2985, 5005], [0.2, 0.3, 0.5]).mismatch


def test_srm_threshold_is_configurable() -> None:
    counts = [5000, 5200]  # p ≈ 0.048
    assert not sample_ratio_mismatch(counts, [0.5, 0.5]).mismatch
    assert sample_ratio_mismatch(counts, [0.5, 0.5], threshold=0.05).mismatch


def test_srm_null_calibration() -> None:
    """Under a correct split the flag rate is about the threshold (seeded)."""
    rng = np.random.default_rng(7)
    draws = rng.multinomial(20_000, [0.2, 0.3, 0.5], size=20_000)
    p = np.array([sample_ratio_mismatch(row, [0.2, 0.3, 0.5]).p_value for row in draws])
    assert abs(np.mean(p < 0.05) - 0.05) < 0.006
    assert sp.kstest(p, "uniform").pvalue > 0.001


@pytest.mark.parametrize(
    ("observed", "weights", "field"),
    [
        ([10], [1.0], "observed"),
        ([10, -1], [0.5, 0.5], r"observed\[1\]"),
        ([10, 10], [0.6, 0.6], "weights"),
        ([10, 10], [1.0, 0.0], r"weights\[1\]"),
        ([10, 10, 10], [0.5, 0.5], "weights"),
    ],
)
def test_srm_rejects_bad_input(observed: list[int], weights: list[float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        sample_ratio_mismatch(observed, weights)


p_lists = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=12)


# multipletests costs ~20 ms a call, so these two use fewer examples.
@settings(max_examples=60, deadline=None)
@given(p_lists)
def test_holm_matches_statsmodels(p: list[float]) -> None:
    reference = multipletests(p, method="holm")[1]
    assert holm(p) == pytest.approx(tuple(reference), rel=1e-12, abs=1e-15)


@settings(max_examples=60, deadline=None)
@given(p_lists)
def test_bh_matches_statsmodels(p: list[float]) -> None:
    reference = multipletests(p, method="fdr_bh")[1]
    assert benjamini_hochberg(p) == pytest.approx(tuple(reference), rel=1e-12, abs=1e-15)


@settings(max_examples=200, deadline=None)
@given(p_lists)
def test_adjustment_never_lowers_a_p_value_and_bh_is_less_strict(p: list[float]) -> None:
    h, b = holm(p), benjamini_hochberg(p)
    assert all(adj >= raw for adj, raw in zip(h, p, strict=True))
    assert all(x <= y + 1e-15 for x, y in zip(b, h, strict=True))


def test_r_p_adjust_reference() -> None:
    # R: p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05), "holm") -> 0.05 0.08 0.09 0.09 0.09
    #    p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05), "BH")   -> 0.05 0.05 0.05 0.05 0.05
    p = [0.01, 0.02, 0.03, 0.04, 0.05]
    assert holm(p) == pytest.approx((0.05, 0.08, 0.09, 0.09, 0.09))
    assert benjamini_hochberg(p) == pytest.approx((0.05,) * 5)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0)), min_size=1,
             max_size=8),
    st.sampled_from([("holm", "holm"), ("bh", "fdr_bh"), ("none", None)]),
)  # fmt: skip
def test_undefined_p_values_stay_none_and_leave_the_family(
    p: list[float | None], methods: tuple[str, str | None]
) -> None:
    ours, theirs = methods
    adjusted = adjust_p_values(p, ours)  # type: ignore[arg-type]
    assert [a is None for a in adjusted] == [x is None for x in p]
    defined = [x for x in p if x is not None]
    if not defined:
        return
    # The defined ones are adjusted as a family of their own (m = number defined).
    expected = defined if theirs is None else list(multipletests(defined, method=theirs)[1])
    assert [a for a in adjusted if a is not None] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_adjust_rejects_unknown_method_and_bad_p() -> None:
    with pytest.raises(ValueError, match="method"):
        adjust_p_values([0.1], "bonferroni")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"p_values\[0\]"):
        holm([1.5])
