"""The results' cuped section (abscope.cuped_reports) and the CLI's view of it: θ chosen by
the split, a binary primary adjusted on its conversions (checked against statsmodels OLS
on the raw 0/1 outcomes), null with a reason without covariates or with a bandit."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from abscope.cli.views import _cuped_block
from abscope.cuped_reports import cuped_view
from abscope.models import CovariateCounts, Variant, VariantCounts
from tests.fixtures.factories import experiment


def _counts(y: np.ndarray, c: np.ndarray, has: np.ndarray) -> tuple[VariantCounts, CovariateCounts]:
    """A binary arm's store counts, summed from raw per-user outcomes and covariates."""
    return (
        VariantCounts(samples=len(y), conversions=int(y.sum())),
        CovariateCounts(
            samples=int(has.sum()),
            sum=float(c[has].sum()),
            sum_squares=float((c[has] ** 2).sum()),
            conversions=int(y[has].sum()),
            conversion_cross_sum=float((c[has] * y[has]).sum()),
        ),
    )


def test_a_binary_primary_is_adjusted_on_its_conversions() -> None:
    rng = np.random.default_rng(3)
    exp = experiment(confidence_level=0.9, sequential=False)
    raw = {}
    for name, lift in (("control", 0.0), ("treatment", 0.05)):
        c = rng.poisson(3, 400).astype(float)
        y = (rng.random(400) < 0.1 + 0.05 * c + lift).astype(float)
        has = rng.random(400) > 0.25
        raw[name] = (y, c, has)
    counts, covariates = {}, {}
    for name, (y, c, has) in raw.items():
        counts[name], covariates[name] = _counts(y, c, has)
    section, reason = cuped_view(exp, counts, covariates)
    assert reason is None and section is not None
    [comparison] = section["comparisons"]
    assert comparison["theta_method"] == "pooled" and comparison["inference"] == "fixed"
    # statsmodels on the raw users, the missing covariates at the observed mean
    observed = np.concatenate([raw[n][1][raw[n][2]] for n in raw])
    x = np.concatenate([np.where(raw[n][2], raw[n][1], observed.mean()) for n in raw])
    y = np.concatenate([raw[n][0] for n in raw])
    treated = np.r_[np.zeros(400), np.ones(400)]
    fit = sm.OLS(y, np.column_stack([np.ones(800), treated, x - x.mean()])).fit()
    assert comparison["difference"] == pytest.approx(fit.params[1], rel=1e-9)
    assert comparison["difference_se"] == pytest.approx(fit.bse[1], rel=1e-9)
    lower, upper = fit.conf_int(alpha=0.1)[1]  # t-based; ours is normal: close, not equal
    assert comparison["difference_interval"] == pytest.approx([lower, upper], rel=1e-2)
    assert comparison["p_value"] == comparison["fixed"]["p_value"]
    assert section["covariate_users"] == sum(int(raw[n][2].sum()) for n in raw)
    text = _cuped_block({"metric_type": "binary", "cuped": section}, "90%", False)
    assert "pooled θ: the arms have equal weights" in text and "90% CI" in text


def test_an_unequal_split_uses_per_arm_theta_and_says_why() -> None:
    exp = experiment(
        variants=[
            Variant(name="control", model_id="a", weight=0.7),
            Variant(name="treatment", model_id="b", weight=0.3),
        ]
    )
    rng = np.random.default_rng(4)
    counts, covariates = {}, {}
    for name, n in (("control", 700), ("treatment", 300)):
        c = rng.normal(2.0, 1.0, n)
        y = (rng.random(n) < 0.2 + 0.1 * c).astype(float)
        counts[name], covariates[name] = _counts(y, c, np.ones(n, dtype=bool))
    section, _ = cuped_view(exp, counts, covariates)
    assert section is not None
    [comparison] = section["comparisons"]
    assert comparison["theta_method"] == "per_arm"
    assert comparison["theta_control"] != comparison["theta_treatment"]
    assert "unequal weights" in comparison["theta_reason"]
    assert comparison["inference"] == "sequential"
    assert comparison["difference_interval"] == comparison["sequential"]["difference_interval"]


def test_without_covariates_or_with_a_bandit_the_section_is_null_with_a_reason() -> None:
    counts = {"control": VariantCounts(samples=10), "treatment": VariantCounts(samples=10)}
    assert cuped_view(experiment(), counts, {}) == (None, "no_covariates")
    some = {"control": CovariateCounts(samples=3, sum=3.0, sum_squares=5.0)}
    assert cuped_view(experiment(allocation="thompson"), counts, some) == (
        None,
        "adaptive_allocation",
    )
    text = _cuped_block(
        {"metric_type": "binary", "cuped": None, "null_reasons": {"cuped": "no_covariates"}},
        "95%",
        True,
    )
    assert text == "CUPED: n/a (no_covariates)"
