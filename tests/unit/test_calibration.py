"""Seeded A/A simulations: fixed-horizon tests keep their false-positive rate at alpha.

Each run draws a fresh A/A experiment and applies the real test function to its sufficient
statistics. With 20,000 runs the Monte Carlo standard error of a 5% rate is 0.15 points, so
the 1-point tolerance is more than six standard errors wide.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sp

from abscope.stats import MeanStats, ProportionStats
from abscope.stats.means import welch_ttest
from abscope.stats.proportions import two_proportion_ztest

ALPHA = 0.05
RUNS = 20_000


@pytest.mark.slow
def test_ztest_aa_false_positive_rate_is_alpha() -> None:
    rng = np.random.default_rng(11)
    n = 2000
    conversions = rng.binomial(n, 0.1, size=(RUNS, 2))
    p = np.array(
        [
            two_proportion_ztest(ProportionStats(n, int(c)), ProportionStats(n, int(t))).p_value
            for c, t in conversions
        ]
    )
    assert abs(np.mean(p < ALPHA) - ALPHA) < 0.01
    assert abs(np.mean(p < 0.01) - 0.01) < 0.005


@pytest.mark.slow
def test_welch_aa_false_positive_rate_is_alpha_and_p_values_are_uniform() -> None:
    rng = np.random.default_rng(12)
    # Skewed, unequal-size arms: lognormal revenue-like values, 150 vs 250 users.
    control = rng.lognormal(1.0, 0.5, size=(RUNS, 150))
    treatment = rng.lognormal(1.0, 0.5, size=(RUNS, 250))
    p = np.array(
        [
            welch_ttest(MeanStats.from_values(c), MeanStats.from_values(t)).p_value
            for c, t in zip(control, treatment, strict=True)
        ]
    )
    assert abs(np.mean(p < ALPHA) - ALPHA) < 0.01
    assert sp.kstest(p, "uniform").pvalue > 0.001
