"""``AnalysisOptions(bayesian=False)``, which the list's summary uses: every figure but the
Bayesian view is the full analysis' own, and the Bayesian figures are undefined with
``not_computed`` (never a neutral 0.5)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from abscope.stats import AnalysisOptions, MeanStats, ProportionStats, analyze_experiment

NOT_COMPUTED = "not_computed"


def _cases() -> list[tuple[dict[str, ProportionStats] | dict[str, MeanStats], AnalysisOptions]]:
    rng = np.random.default_rng(7)
    cases: list[tuple[dict[str, ProportionStats] | dict[str, MeanStats], AnalysisOptions]] = []
    for i in range(24):
        arms = 2 + i % 3
        n = rng.integers(0 if i == 0 else 50, 5_000, arms)
        options = AnalysisOptions(
            sequential=i % 2 == 0,
            min_relative_lift=0.1 if i % 3 else None,
            higher_is_better=i % 4 != 1,
        )
        if i % 5 == 4:
            means = rng.uniform(1, 2, arms)
            cases.append(({f"v{k}": MeanStats(int(n[k]), float(n[k] * means[k]),
                                              float(n[k] * (means[k] ** 2 + 1.0)))
                           for k in range(arms)}, options))  # fmt: skip
        else:
            rates = rng.uniform(0.0 if i == 3 else 0.05, 0.2, arms)
            cases.append(({f"v{k}": ProportionStats(int(n[k]), int(n[k] * rates[k]))
                           for k in range(arms)}, options))  # fmt: skip
    return cases


@pytest.mark.parametrize(("variants", "options"), _cases())
def test_everything_but_the_bayesian_view_is_the_full_analysis(
    variants: dict[str, ProportionStats] | dict[str, MeanStats], options: AnalysisOptions
) -> None:
    weights = [1 / len(variants)] * len(variants)
    full = analyze_experiment(variants, weights, options=options)
    light = analyze_experiment(variants, weights, options=replace(options, bayesian=False))
    assert light.decision == full.decision
    assert light.srm == full.srm
    for lean, whole in zip(light.comparisons, full.comparisons, strict=True):
        assert lean.bayesian.chance_to_beat_control is None
        assert lean.bayesian.expected_loss_treatment is None
        assert lean.bayesian.reason == NOT_COMPUTED
        assert replace(lean, bayesian=whole.bayesian) == whole
    for lean_v, whole_v in zip(light.variants, full.variants, strict=True):
        assert lean_v.prob_best is None
        assert replace(lean_v, prob_best=whole_v.prob_best) == whole_v
