"""The log-bucket sketch: the relative-error guarantee, exact merges, the bucket arithmetic.

The reference for a quantile is the exact lower sample quantile of the raw values
(``numpy.quantile(..., method="lower")``), the order statistic DDSketch's guarantee is stated
for (Masson, Rim & Lee 2019, Proposition 3).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abscope.stats.sketch import (
    LogSketch,
    bucket_bounds,
    bucket_index,
    bucket_value,
    coarse_accuracy,
    coarse_index,
    gamma,
)

SLACK = 1e-12  # float rounding at a bucket boundary (the module docstring's caveat)
positive = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)
latency = st.one_of(positive, st.just(0.0), st.floats(min_value=-5.0, max_value=0.0))
accuracies = st.sampled_from([0.001, 0.005, 0.01, 0.02, 0.05, 0.2])
quantiles = st.floats(min_value=0.0, max_value=1.0)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(latency, min_size=1, max_size=300), q=quantiles, accuracy=accuracies)
def test_quantile_is_within_relative_accuracy_of_the_exact_sample_quantile(
    values: list[float], q: float, accuracy: float
) -> None:
    exact = float(np.quantile(np.maximum(values, 0.0), q, method="lower"))
    sketched = LogSketch.from_values(values, accuracy).quantile(q)
    assert sketched is not None
    assert abs(sketched - exact) <= accuracy * exact * (1.0 + SLACK)


@settings(max_examples=200, deadline=None)
@given(
    left=st.lists(latency, max_size=100),
    right=st.lists(latency, max_size=100),
    accuracy=accuracies,
)
def test_merge_equals_the_sketch_of_the_union(
    left: list[float], right: list[float], accuracy: float
) -> None:
    a, b = LogSketch.from_values(left, accuracy), LogSketch.from_values(right, accuracy)
    union = LogSketch.from_values(left + right, accuracy)
    assert a + b == union == b + a
    assert (a + b).count == len(left) + len(right)


@settings(max_examples=300, deadline=None)
@given(value=positive, accuracy=accuracies)
def test_a_value_lies_in_its_bucket(value: float, accuracy: float) -> None:
    index = bucket_index(value, accuracy)
    assert index is not None
    low, high = bucket_bounds(index, accuracy)
    assert low * (1 - SLACK) < value <= high * (1 + SLACK)
    assert abs(bucket_value(index, accuracy) - value) <= accuracy * value * (1 + SLACK)


@settings(max_examples=300, deadline=None)
@given(value=positive, factor=st.integers(min_value=1, max_value=8), accuracy=accuracies)
def test_coarse_buckets_nest_the_fine_ones(value: float, factor: int, accuracy: float) -> None:
    coarse = coarse_index(bucket_index(value, accuracy), factor)
    assert coarse is not None
    g = gamma(accuracy) ** factor
    assert g ** (coarse - 1) * (1 - SLACK) < value <= g**coarse * (1 + SLACK)
    # The coarse buckets are those of the coarse accuracy.
    assert math.isclose(gamma(coarse_accuracy(accuracy, factor)), g, rel_tol=1e-12)


def test_powers_of_gamma_are_upper_bucket_ends() -> None:
    g = gamma(0.01)
    for i in (-50, -1, 1, 7, 300):
        # γ^i itself, computed in floats, lands in bucket i or, within an ulp, i + 1.
        assert bucket_index(g**i) in (i, i + 1)
        assert bucket_index(g**i * (1 - 1e-9)) == i
        assert bucket_index(g**i * (1 + 1e-9)) == i + 1


def test_non_positive_values_share_the_zero_bucket() -> None:
    sketch = LogSketch.from_values([-3.0, 0.0, -0.0, 5.0])
    assert sketch.zero == 3
    assert sketch.quantile(0.5) == 0.0
    assert sketch.quantile(1.0) == pytest.approx(5.0, rel=0.01)


def test_counts_round_trip_and_the_empty_sketch() -> None:
    values = [1.0, 2.0, 2.0, 3.5, 1e4]
    sketch = LogSketch.from_values(values)
    counts = Counter(bucket_index(v) for v in values)
    assert dict(sketch.buckets) == counts
    assert LogSketch.from_counts(dict(sketch.buckets)) == sketch
    assert LogSketch.from_counts({4: 0, 2: 3}).buckets == ((2, 3),)
    assert LogSketch().quantile(0.5) is None
    assert LogSketch().count == 0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: gamma(0.0), "accuracy"),
        (lambda: gamma(1.0), "accuracy"),
        (lambda: bucket_index(math.nan), "value"),
        (lambda: coarse_index(3, 0), "factor"),
        (lambda: LogSketch(buckets=((2, 1), (1, 1))), "sorted"),
        (lambda: LogSketch(buckets=((1, 0),)), "positive"),
        (lambda: LogSketch(buckets=((1, -2),)), "buckets"),
        (lambda: LogSketch(zero=-1), "zero"),
        (lambda: LogSketch().quantile(1.5), "q"),
        (lambda: LogSketch(0.01) + LogSketch(0.02), "accuracies"),
    ],
)
def test_invalid_arguments_raise_naming_them(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]
