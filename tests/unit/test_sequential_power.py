"""Sequential power and sample size: inverse of each other, and right by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abscope.stats.power import sample_size_means
from abscope.stats.sequential import sequential_test
from abscope.stats.sequential_power import sequential_power, sequential_sample_size


@settings(max_examples=100, deadline=None)
@given(
    st.floats(min_value=1e-3, max_value=5.0),
    st.floats(min_value=0.01, max_value=100.0),
    st.floats(min_value=0.5, max_value=0.99),
    st.sampled_from([0.01, 0.05, 0.1]),
    st.integers(min_value=100, max_value=10**6),
)
def test_sample_size_inverts_power(
    effect: float, unit_variance: float, power: float, alpha: float, tuning_n: int
) -> None:
    n = sequential_sample_size(effect, unit_variance, alpha=alpha, power=power, tuning_n=tuning_n)
    achieved = sequential_power(effect, unit_variance, n, alpha=alpha, tuning_n=tuning_n)
    assert achieved == pytest.approx(power, abs=1e-7)


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=1e-3, max_value=1.0), st.floats(min_value=0.5, max_value=0.95))
def test_sequential_needs_more_users_than_fixed_horizon(effect: float, power: float) -> None:
    sequential = sequential_sample_size(effect, 4.0, power=power)
    # A two-arm z-test with unit std per user and a 50/50 split has unit variance 4 in total.
    fixed = 2.0 * sample_size_means(effect, 1.0, power=power, strict=True)
    assert sequential > fixed


def test_power_matches_a_simulation_of_the_real_test() -> None:
    """Draw θ̂ ~ N(θ, σ²/n) at the sized n and run sequential_test: it rejects at the target
    rate (Monte Carlo standard error 0.004 with 10,000 draws)."""
    effect, unit_variance, target = 0.01, 0.18, 0.8
    n = math.ceil(sequential_sample_size(effect, unit_variance, power=target))
    rng = np.random.default_rng(3)
    variance = unit_variance / n
    estimates = rng.normal(effect, math.sqrt(variance), size=10_000)
    rejected = np.mean([sequential_test(e, variance, n).significant for e in estimates])
    assert rejected == pytest.approx(target, abs=0.015)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"effect": 0.0, "unit_variance": 1.0}, "effect"),
        ({"effect": 0.1, "unit_variance": 0.0}, "unit_variance"),
        ({"effect": 0.1, "unit_variance": 1.0, "power": 0.01}, "power"),
        ({"effect": 0.1, "unit_variance": 1.0, "alpha": 2.0}, "alpha"),
    ],
)
def test_invalid_input_names_the_argument(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        sequential_sample_size(**kwargs)  # type: ignore[arg-type]
