"""Quantile (latency) metrics in the results and as guardrails: pure, over counters read.

A quantile metric's requests are counted per (phase, metric, variant) in the integer
counters of :mod:`abscope.stats.quantiles` (a 1% log-bucket sketch and ``B = 100`` bootstrap
replicates over users); this module reads them back and reports them.

Results (:func:`quantile_metric_entry`, one entry of the results' ``metrics`` list)
    Per quantile (``quantile_results``): each arm's estimate with Woodruff's interval, and
    each treatment's difference ``ξ_t − ξ_c`` and relative difference ``ξ_t / ξ_c − 1``
    against the control, with intervals from the bootstrap over users
    (:func:`abscope.stats.quantiles.quantile_comparisons`). These intervals are
    **fixed-horizon** (``inference: "fixed"``): valid at one look, not under repeated
    looks.

Guardrails (:func:`quantile_guardrail`)
    The guarded quantile ``q`` (``Metric.guard_quantile``) is judged like every other
    guardrail, by the one-sided **always-valid** non-inferiority test of
    :func:`abscope.stats.guardrails.noninferiority_test` on the log ratio
    ``log(ξ_t / ξ_c)``, with its bootstrap standard error (the quantiles' difference is
    asymptotically normal), ``n`` the users of both arms. The monitor may look after every
    event: the normal-mixture confidence sequence keeps the false-alarm rate at most
    ``alpha`` over all looks (Howard et al. 2021, asymptotic confidence sequences; Lindon,
    Sanden & Shirikian 2022 use the same idea to catch latency regressions in
    deployments). The fixed-horizon bootstrap interval is never what the monitor acts on.

The counters of an experiment's phase are salted with :func:`quantile_config`, so a user's
replicate weights are the same on every worker and for the whole phase.

References
----------
.. [1] S. R. Howard, A. Ramdas, J. McAuliffe and J. Sekhon, "Time-uniform, nonparametric,
   nonasymptotic confidence sequences", Annals of Statistics 49(2), 2021.
.. [2] M. Lindon, C. Sanden and V. Shirikian, "Rapid regression detection in software
   deployments through sequential testing", KDD 2022 (arXiv:2205.14762).
.. [3] See :mod:`abscope.stats.quantiles` for the sketch and the bootstrap (Masson, Rim &
   Lee 2019; Owen & Eckles 2012; Chamandy et al. 2012; Woodruff 1952).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from abscope import schemas
from abscope.jsonable import interval_pair
from abscope.models import Experiment, Metric
from abscope.stats.guardrails import GuardrailResult, guardrail_from_effect
from abscope.stats.quantiles import (
    QuantileComparison,
    QuantileConfig,
    QuantileCounters,
    QuantileEstimate,
    compare_quantiles,
    quantile_comparisons,
)
from abscope.stats.results import EffectEstimate

__all__ = [
    "QUANTILE_METHOD",
    "QuantileCountersByName",
    "arm_counters",
    "quantile_config",
    "quantile_guardrail",
    "quantile_label",
    "quantile_metric_entry",
]

QuantileCountersByName = Mapping[str, Mapping[str, Mapping[str, int]]]
"""What :meth:`abscope.storage.base.Store.get_quantile_counters` returns: metric → variant
→ counter name → count."""

QUANTILE_METHOD = "bootstrap_over_users"
"""The label of the intervals' method: an online Poisson bootstrap over users (each arm's
quantile by Woodruff's inversion, the differences by the bootstrap standard error)."""


def quantile_config(experiment_id: str, phase: int) -> QuantileConfig:
    """The counters' configuration of one experiment's phase (defaults, salted by both).

    Examples
    --------
    >>> quantile_config("checkout", 2).salt
    'checkout|2'
    """
    return QuantileConfig(salt=f"{experiment_id}|{phase}")


def quantile_label(q: float) -> str:
    """``p50``, ``p95``, ``p99.9``.

    Examples
    --------
    >>> quantile_label(0.5), quantile_label(0.999)
    ('p50', 'p99.9')
    """
    return f"p{round(q * 100, 6):g}"


def arm_counters(
    experiment: Experiment, metric: Metric, counters: QuantileCountersByName
) -> dict[str, QuantileCounters]:
    """Each variant's counters of ``metric``, in the experiment's order (empty without
    requests)."""
    config = quantile_config(experiment.id, experiment.phase)
    own = counters.get(metric.name, {})
    return {
        v.name: QuantileCounters.from_counters(own.get(v.name, {}), config)
        for v in experiment.variants
    }


def quantile_guardrail(
    metric: Metric,
    control: QuantileCounters,
    treatment: QuantileCounters,
    *,
    alpha: float,
    min_samples: int,
) -> GuardrailResult:
    """The always-valid non-inferiority test of a quantile guardrail for one arm.

    Notes
    -----
    With ``L̂ = ξ̂_t / ξ̂_c − 1`` at ``q = guard_quantile`` and ``SE`` the bootstrap standard
    error of ``log(ξ̂_t / ξ̂_c)`` (:func:`abscope.stats.quantiles.compare_quantiles`), the
    test is :func:`abscope.stats.guardrails.guardrail_from_effect` on the log scale:
    ``breach`` once ``log(1 + L̂) ∓ c⁺(n) SE`` is beyond ``log(1 ± margin)`` on the bad side,
    with ``c⁺(n)`` the one-sided normal-mixture boundary at ``n = users_c + users_t``.
    Undefined comparisons (too few users or requests in the tail) are ``inconclusive``
    with their reason.
    """
    assert metric.margin is not None and metric.guard_quantile is not None
    relative = compare_quantiles(control, treatment, metric.guard_quantile).relative
    return guardrail_from_effect(
        relative,
        n_control=control.users,
        n_treatment=treatment.users,
        margin=metric.margin,
        higher_is_better=metric.higher_is_better,
        alpha=alpha,
        min_samples_per_arm=min_samples,
    )


def _arm(estimate: QuantileEstimate) -> dict[str, Any]:
    return {
        "estimate": estimate.estimate,
        "interval": interval_pair(estimate.ci),
        "std_error": estimate.std_error,
        "reason": estimate.reason,
        "users": estimate.users,
        "requests": estimate.requests,
        "method": estimate.method,
    }


def _effect(effect: EffectEstimate) -> tuple[float | None, list[float | None] | None, str | None]:
    return effect.estimate, interval_pair(effect.ci), effect.reason


def _row(q: float, control: str, comparisons: Mapping[str, QuantileComparison]) -> dict[str, Any]:
    first = next(iter(comparisons.values()))
    arms = {control: _arm(first.control)} | {
        arm: _arm(c.treatment) for arm, c in comparisons.items()
    }
    rows = []
    for arm, c in comparisons.items():
        difference, difference_interval, difference_reason = _effect(c.difference)
        relative, relative_interval, relative_reason = _effect(c.relative)
        rows.append(
            {
                "variant": arm,
                "difference": difference,
                "difference_interval": difference_interval,
                "difference_reason": difference_reason,
                "relative": relative,
                "relative_interval": relative_interval,
                "relative_reason": relative_reason,
                "inference": "fixed",
            }
        )
    return {"q": q, "label": quantile_label(q), "arms": arms, "comparisons": rows}


def quantile_metric_entry(
    experiment: Experiment,
    metric: Metric,
    counters: QuantileCountersByName,
    guardrail_comparisons: list[dict[str, Any]],
) -> dict[str, Any]:
    """The results' entry of a quantile metric (see the module docstring), typed by
    :class:`abscope.schemas.QuantileMetricView`.

    ``guardrail_comparisons`` are the metric's guardrail comparisons, built from the same
    checks the gate and the monitor read (empty for a secondary metric).
    """
    confidence = experiment.confidence_level
    arms = arm_counters(experiment, metric, counters)
    control = experiment.control.name
    treatments = [v.name for v in experiment.variants if v.name != control]
    quantiles = tuple(metric.quantiles or ())
    by_arm = {
        arm: quantile_comparisons(arms[control], arms[arm], quantiles, confidence=confidence)
        for arm in treatments
    }
    table = [
        _row(q, control, {arm: by_arm[arm][i] for arm in treatments})
        for i, q in enumerate(quantiles)
    ]
    return schemas.QuantileMetricView.model_validate(
        {
            "name": metric.name,
            "kind": metric.kind,
            "role": metric.role,
            "higher_is_better": metric.higher_is_better,
            "margin": metric.margin,
            "action": metric.breach_action if metric.role == "guardrail" else None,
            "quantiles": list(quantiles),
            "guard_quantile": metric.guard_quantile,
            "variants": {
                name: {
                    "users": c.users,
                    "requests": c.requests,
                    "value": None,
                    "value_reason": "quantile_metric" if c.requests else "no_samples",
                }
                for name, c in arms.items()
            },
            "quantile_results": table,
            "quantile_inference": "fixed",
            "quantile_method": QUANTILE_METHOD,
            "confidence_level": confidence,
            "comparisons": guardrail_comparisons,
        }
    ).model_dump()
