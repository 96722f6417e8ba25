"""The results' ``adaptive_estimates`` section: arm means and effects of bandit traffic,
weighted by the logged assignment probabilities.

Pure, over counts already read: the variants' :class:`~abscope.models.VariantCounts` and
:class:`~abscope.models.WeightedCounts`, turned into
:class:`~abscope.stats.adaptive_estimates.WeightedSums` for the primary outcome
(:func:`weighted_sums`) and estimated by every method of
:mod:`abscope.stats.adaptive_estimates`: the naive mean (biased under adaptive allocation,
shown for comparison), Horvitz-Thompson, Hájek, AIPW and the square-root-weighted
("stabilized") estimate, per arm and for each treatment minus the control.

What is recommended, from the module's simulations: the Hájek estimate as the unbiased
point estimate, and the stabilized interval as the interval (the plain intervals of the
others under- or over-cover when the allocation does not settle).

The outcome model of AIPW is one constant for every arm, the pooled Hájek mean of all arms
in the phase (``Σ y/p / Σ 1/p`` over every user). An outcome model fixed before the phase
would make AIPW exactly unbiased, but the store has none that is honest: a previous phase
ran another configuration, and the arm's own Hájek mean would turn AIPW into Hájek's
estimator. The pooled mean is computed from the phase's data, so the exactness is lost,
but only at second order: AIPW's sensitivity to its model, ``1 − Σ_a 1/p / N``, has mean 0
and is ``O(1/√N)``, so plugging in an estimate adds an ``O(1/N)`` bias and variance, a
vanishing share of the standard error. The same constant for every arm cannot favour one.
Its variance is computed as for a fixed model.

Horvitz-Thompson and AIPW divide by ``N``, the users randomised over every arm. The store
counts exposed users only, which are ``N`` when every arrival enters the experiment
(traffic at 100%, no layer); otherwise they are null (``unknown_total``), and Hájek and
the stabilized estimate, which do not need ``N``, are still given.

Every figure is a fixed-horizon normal interval at the experiment's confidence level
(labelled ``"inference": "fixed_horizon"``): none is always-valid, so looking at them
repeatedly and stopping when one excludes 0 inflates the error rate. The section is
``None`` with a reason code (:data:`ADAPTIVE_NULL_REASONS`) for fixed-allocation
experiments, whose weights are constant within an arm, so the plain estimates are
unbiased already.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from abscope.jsonable import interval_pair
from abscope.models import Experiment, VariantCounts, WeightedCounts
from abscope.stats.adaptive_estimates import (
    AdaptiveMethod,
    WeightedSums,
    adaptive_difference,
    adaptive_mean,
)
from abscope.stats.results import REASONS, EffectEstimate

__all__ = [
    "ADAPTIVE_NULL_REASONS",
    "INFERENCE_NOTE",
    "METHODS",
    "OUTCOME_MODEL_NOTE",
    "adaptive_view",
    "weighted_sums",
]

Outcome = Literal["conversion", "value"]

ADAPTIVE_NULL_REASONS: Final = {
    "fixed_allocation": "the experiment's allocation is fixed: every user of an arm has the"
    " same assignment probability, so the plain estimates are unbiased and need no weights",
}
"""Why the ``adaptive_estimates`` section is null, by reason code."""

METHODS: Final[dict[AdaptiveMethod, str]] = {
    "naive": "plain mean Σy/n: biased under adaptive allocation (an arm the policy starved"
    " looks worse than it is); shown for comparison",
    "horvitz_thompson": "Horvitz-Thompson Σ(y/p)/N over the N users randomised: unbiased,"
    " high variance",
    "hajek": "Hájek Σ(y/p)/Σ(1/p): the weights normalised; the recommended estimate",
    "aipw": "augmented IPW m + Σ((y − m)/p)/N with the outcome model m = the pooled Hájek"
    " mean of all arms",
    "stabilized": "square-root weights Σ(y/√p)/Σ(1/√p) (Zhang, Janson and Murphy 2021): the"
    " recommended interval; its point estimate leans towards the naive mean",
}
"""What each method's figure is, in one line."""

INFERENCE_NOTE: Final = (
    "Fixed-horizon normal intervals: not always-valid, so they hold for one look at the"
    " data, not for stopping when one first excludes 0."
)

OUTCOME_MODEL_NOTE: Final = (
    "AIPW's outcome model is the pooled Hájek mean of all arms (one constant for every arm,"
    " so it favours none). It comes from this phase's data, not from before it, which costs"
    " AIPW its exact unbiasedness only at second order (a bias of order 1/N)."
)

_RECOMMENDED_ESTIMATE: Final[AdaptiveMethod] = "hajek"
_RECOMMENDED_INTERVAL: Final[AdaptiveMethod] = "stabilized"
_NEEDS_TOTAL: Final = frozenset({"horvitz_thompson", "aipw"})


def weighted_sums(
    counts: VariantCounts | None, weighted: WeightedCounts | None, outcome: Outcome
) -> WeightedSums:
    """One arm's :class:`WeightedSums` of the primary outcome: ``"conversion"`` (``y`` = 1
    once the user converted, else 0; ``y² = y``) or ``"value"`` (the user's value total).

    ``samples`` and the sums without ``y`` beside ``1/√p`` come from ``counts``, the sums
    with ``y`` from ``weighted``.

    >>> c = VariantCounts(samples=2, conversions=1, inverse_probability_sum=6.0,
    ...                   inverse_probability_square_sum=20.0)
    >>> w = WeightedCounts(samples=2, inverse_sqrt_probability_sum=3.0,
    ...                    conversion_inverse_probability_sum=2.0,
    ...                    conversion_inverse_probability_square_sum=4.0,
    ...                    conversion_inverse_sqrt_probability_sum=1.5)
    >>> weighted_sums(c, w, "conversion").square_inverse_probability_sum
    2.0
    """
    c = counts or VariantCounts()
    w = weighted or WeightedCounts()
    if outcome == "conversion":
        y = float(c.conversions)
        linear = (
            w.conversion_inverse_probability_sum,
            w.conversion_inverse_probability_square_sum,
            w.conversion_inverse_sqrt_probability_sum,
        )
        squares = (  # y² = y for 0/1 outcomes
            y,
            w.conversion_inverse_probability_sum,
            w.conversion_inverse_probability_square_sum,
        )
    else:
        y = c.value_sum
        linear = (
            w.value_inverse_probability_sum,
            w.value_inverse_probability_square_sum,
            w.value_inverse_sqrt_probability_sum,
        )
        squares = (
            c.value_sum_squares,
            w.square_inverse_probability_sum,
            w.square_inverse_probability_square_sum,
        )
    return WeightedSums(
        samples=c.samples,
        value_sum=y,
        value_square_sum=squares[0],
        inverse_probability_sum=c.inverse_probability_sum,
        inverse_probability_square_sum=c.inverse_probability_square_sum,
        inverse_sqrt_probability_sum=w.inverse_sqrt_probability_sum,
        value_inverse_probability_sum=linear[0],
        value_inverse_probability_square_sum=linear[1],
        value_inverse_sqrt_probability_sum=linear[2],
        square_inverse_probability_sum=squares[1],
        square_inverse_probability_square_sum=squares[2],
    )


def _reason_text(reason: str | None) -> str | None:
    if reason is None:
        return None
    return REASONS.get(reason, reason)


def _figure(result: EffectEstimate, method: AdaptiveMethod) -> dict[str, Any]:
    return {
        "method": method,
        "estimate": result.estimate,
        "std_error": result.std_error,
        "interval": interval_pair(result.ci),
        "recommended_estimate": method == _RECOMMENDED_ESTIMATE,
        "recommended_interval": method == _RECOMMENDED_INTERVAL,
        "inference": "fixed_horizon",
        "reason": result.reason,
        "reason_text": _reason_text(result.reason),
    }


def _blocked(method: AdaptiveMethod, complete: bool, total: int | None) -> str | None:
    """Why a method is undefined before any arithmetic: missing probabilities or ``N``."""
    if method != "naive" and not complete:
        return "missing_probabilities"
    if method in _NEEDS_TOTAL and total is None:
        return "unknown_total"
    return None


def adaptive_view(
    experiment: Experiment,
    counts: dict[str, VariantCounts],
    weighted_counts: dict[str, WeightedCounts],
) -> tuple[dict[str, Any] | None, str | None]:
    """The ``adaptive_estimates`` section and, when it is ``None``, its reason code."""
    if experiment.allocation == "fixed":
        return None, "fixed_allocation"
    outcome: Outcome = "conversion" if experiment.metric_type == "binary" else "value"
    level = experiment.confidence_level
    names = [v.name for v in experiment.variants]
    sums = {n: weighted_sums(counts.get(n), weighted_counts.get(n), outcome) for n in names}
    complete = {
        n: (counts.get(n) or VariantCounts()).samples
        == (weighted_counts.get(n) or WeightedCounts()).samples
        for n in names
    }
    users = sum(s.samples for s in sums.values())
    every_arrival = experiment.traffic_percentage == 100.0 and experiment.layer is None
    total = users if every_arrival else None
    pooled = sum((s for s in sums.values()), WeightedSums())
    model = (
        pooled.value_inverse_probability_sum / pooled.inverse_probability_sum
        if all(complete.values()) and pooled.inverse_probability_sum > 0.0
        else None
    )

    def undefined(method: AdaptiveMethod, *arms: str) -> str | None:
        """Why a figure of ``arms`` cannot be computed before any arithmetic, or ``None``."""
        reason = _blocked(method, all(complete[arm] for arm in arms), total)
        if reason is None and method == "aipw" and model is None:  # the pooled m needs all
            reason = "missing_probabilities" if not all(complete.values()) else "no_samples"
        return reason

    def arm_figure(name: str, method: AdaptiveMethod) -> dict[str, Any]:
        reason = undefined(method, name)
        if reason is not None:
            return _figure(EffectEstimate.undefined(reason), method)
        result = adaptive_mean(
            sums[name], method, total=total, outcome_model=model or 0.0, confidence_level=level
        )
        return _figure(result, method)

    def difference_figure(treatment: str, control: str, method: AdaptiveMethod) -> dict[str, Any]:
        reason = undefined(method, treatment, control)
        if reason is not None:
            return _figure(EffectEstimate.undefined(reason), method)
        m = model or 0.0
        result = adaptive_difference(
            sums[treatment],
            sums[control],
            method,
            total=total,
            outcome_models=(m, m),
            confidence_level=level,
        )
        return _figure(result, method)

    control = experiment.control.name
    return {
        "metric": experiment.primary_metric.name,
        "outcome": "conversion" if outcome == "conversion" else "value total",
        "allocation": experiment.allocation,
        "inference": "fixed_horizon",
        "inference_note": INFERENCE_NOTE,
        "confidence_level": level,
        "users": users,
        "randomised_users": total,
        "recommended_estimate": _RECOMMENDED_ESTIMATE,
        "recommended_interval": _RECOMMENDED_INTERVAL,
        "methods": dict(METHODS),
        "outcome_model": model,
        "outcome_model_note": OUTCOME_MODEL_NOTE,
        "arms": [
            {
                "variant": name,
                "users": sums[name].samples,
                "weighted_users": (weighted_counts.get(name) or WeightedCounts()).samples,
                "estimates": {method: arm_figure(name, method) for method in METHODS},
            }
            for name in names
        ],
        "comparisons": [
            {
                "variant": name,
                "control": control,
                "estimates": {
                    method: difference_figure(name, control, method) for method in METHODS
                },
            }
            for name in names
            if name != control
        ],
    }, None
