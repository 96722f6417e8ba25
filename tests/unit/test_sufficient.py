"""Sufficient statistics: validation, additivity and the accuracy of the variance."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abscope.stats import MeanStats, ProportionStats

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


class TestProportionStats:
    def test_rate_and_addition(self) -> None:
        total = ProportionStats(1000, 150) + ProportionStats(500, 60)
        assert (total.n, total.conversions) == (1500, 210)
        assert total.rate == pytest.approx(0.14)

    def test_zero_users_has_zero_rate(self) -> None:
        assert ProportionStats(0, 0).rate == 0.0

    def test_from_outcomes(self) -> None:
        s = ProportionStats.from_outcomes([True, False, True, True])
        assert (s.n, s.conversions) == (4, 3)

    def test_from_outcomes_rejects_non_binary(self) -> None:
        with pytest.raises(ValueError, match="outcomes"):
            ProportionStats.from_outcomes([0, 1, 2])

    @pytest.mark.parametrize(
        ("n", "conversions", "field"),
        [(-1, 0, "n"), (10, -1, "conversions"), (10, 11, "conversions"), (1.5, 1, "n")],
    )
    def test_invalid_counts_name_the_argument(self, n: int, conversions: int, field: str) -> None:
        with pytest.raises(ValueError, match=field):
            ProportionStats(n, conversions)


class TestMeanStats:
    def test_matches_numpy(self) -> None:
        values = np.random.default_rng(1).normal(50.0, 7.0, size=1001)
        s = MeanStats.from_values(values)
        assert s.mean == pytest.approx(np.mean(values), rel=1e-12)
        assert s.variance == pytest.approx(np.var(values, ddof=1), rel=1e-12)

    def test_from_moments_round_trip(self) -> None:
        s = MeanStats.from_moments(200, 3.5, 1.25)
        assert (s.n, s.mean, s.std) == (200, 3.5, pytest.approx(1.25))

    def test_raw_sums_with_zero_shift(self) -> None:
        s = MeanStats(n=3, sum=6.0, sum_squares=14.0)
        assert s.mean == 2.0 and s.variance == pytest.approx(1.0)

    def test_fewer_than_two_values_have_zero_variance(self) -> None:
        assert MeanStats.from_values([4.2]).variance == 0.0
        assert MeanStats(0, 0.0, 0.0).mean == 0.0

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"n": -1, "sum": 0.0, "sum_squares": 0.0}, "n"),
            ({"n": 2, "sum": 0.0, "sum_squares": -1.0}, "sum_squares"),
            ({"n": 0, "sum": 1.0, "sum_squares": 1.0}, "n is 0"),
            ({"n": 2, "sum": 10.0, "sum_squares": 1.0}, "inconsistent"),
            ({"n": 2, "sum": math.nan, "sum_squares": 1.0}, "sum"),
        ],
    )
    def test_invalid_sums_are_rejected(self, kwargs: dict[str, float], field: str) -> None:
        with pytest.raises(ValueError, match=field):
            MeanStats(**kwargs)  # type: ignore[arg-type]

    @settings(max_examples=200, deadline=None)
    @given(st.lists(finite, min_size=1, max_size=40), st.lists(finite, min_size=1, max_size=40))
    def test_addition_equals_summary_of_concatenation(self, a: list[float], b: list[float]) -> None:
        joined = MeanStats.from_values(a + b)
        added = MeanStats.from_values(a) + MeanStats.from_values(b)
        assert added.n == joined.n
        scale = max(1.0, max(abs(x) for x in a + b))
        assert added.mean == pytest.approx(joined.mean, rel=1e-9, abs=1e-12 * scale)
        assert added.variance == pytest.approx(joined.variance, rel=1e-7, abs=1e-9 * scale**2)

    @settings(max_examples=100, deadline=None)
    @given(st.lists(finite, min_size=2, max_size=30), finite)
    def test_shifting_preserves_mean_and_variance(self, values: list[float], shift: float) -> None:
        s = MeanStats.from_values(values)
        moved = s.shifted_to(shift)
        scale = max(abs(x) for x in values) + abs(shift) + 1.0
        assert moved.mean == pytest.approx(s.mean, rel=1e-9, abs=1e-12 * scale)
        assert moved.variance == pytest.approx(s.variance, rel=1e-6, abs=1e-9 * scale**2)


def _exact_variance(chunks: list[MeanStats], repeats: int) -> Fraction:
    """Variance of the union of ``repeats`` copies of every chunk, in exact rationals."""
    n = Fraction(0)
    total = Fraction(0)
    squares = Fraction(0)
    for chunk in chunks:
        # Per-chunk exact raw moments from the chunk's (float) shifted sums.
        k, s, q = Fraction(chunk.shift), Fraction(chunk.sum), Fraction(chunk.sum_squares)
        n += repeats * chunk.n
        total += repeats * (s + chunk.n * k)
        squares += repeats * (q + 2 * k * s + chunk.n * k * k)
    return (squares - total * total / n) / (n - 1)


def test_variance_stays_accurate_for_a_billion_values_near_one_million() -> None:
    """n = 1e9 values of about 1e6 with a standard deviation of about 1.

    100 distinct chunks of 100,000 values are folded in one at a time, 100 times over,
    as a counter store would accumulate them. The reference variance is computed from the
    same chunk summaries in exact rational arithmetic.
    """
    rng = np.random.default_rng(20261124)
    chunks = [
        MeanStats.from_values(1e6 + rng.uniform(-0.5, 0.5) + rng.normal(0.0, 1.0, 100_000))
        for _ in range(100)
    ]
    accumulated = MeanStats(0, 0.0, 0.0)
    for _ in range(100):
        for chunk in chunks:
            accumulated = accumulated + chunk
    assert accumulated.n == 1_000_000_000
    exact = float(_exact_variance(chunks, 100))
    assert accumulated.variance == pytest.approx(exact, rel=1e-9)

    # The same data kept as raw (unshifted) float sums, added up the same way, misses the
    # 1e-9 bound by orders of magnitude: this is what the shift is for, and it shows that the
    # check above can fail.
    raw = [c.shifted_to(0.0) for c in chunks]
    naive_sum = naive_squares = 0.0
    for _ in range(100):
        for r in raw:
            naive_sum += r.sum
            naive_squares += r.sum_squares
    naive = (naive_squares - naive_sum * naive_sum / 1e9) / (1e9 - 1)
    assert abs(naive - exact) / exact > 1e-5
