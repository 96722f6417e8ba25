"""One call that analyses a whole experiment: every figure a results page shows.

:func:`analyze_experiment` takes the per-variant sufficient statistics and the configured
weights and returns an :class:`ExperimentAnalysis`: per-variant figures, every treatment
compared with the control (effects, intervals, raw and adjusted p-values, power, required
samples, the Bayesian and the sequential view), the sample-ratio-mismatch check, and a
plain-language :class:`Decision`.

One inference mode is in force (``AnalysisOptions.sequential``): each comparison's
``primary`` figures come from it and feed the decision, the power and the users still
needed; ``secondary`` holds the other mode's figures, for reference only. Undefined
figures are ``None`` with a reason code (:mod:`abscope.stats.results`); an undefined
comparison is never significant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from abscope.stats._types import Alternative, check_alternative
from abscope.stats._validate import check_alpha, check_open_unit, check_positive, check_weights
from abscope.stats.adaptive_srm import adaptive_sample_ratio_mismatch
from abscope.stats.bayesian import (
    BayesianComparison,
    BetaPosterior,
    NormalPosterior,
    compare_means_bayes,
    compare_proportions_bayes,
    prob_best,
)
from abscope.stats.means import (
    mean_difference_ci,
    mean_interval,
    relative_mean_lift_ci,
    welch_ttest,
)
from abscope.stats.multiple import Correction, adjust_p_values
from abscope.stats.power import (
    power_means,
    power_proportions,
    sample_size_means,
    sample_size_proportions,
)
from abscope.stats.proportions import (
    difference_ci,
    relative_lift_ci,
    two_proportion_ztest,
    wilson_interval,
)
from abscope.stats.results import REASONS, EffectEstimate, Interval, TestResult
from abscope.stats.sequential import SequentialReason, SequentialResult, sequential_test
from abscope.stats.sequential_power import sequential_power, sequential_sample_size
from abscope.stats.srm import SRMResult, sample_ratio_mismatch
from abscope.stats.sufficient import MeanStats, ProportionStats

__all__ = [
    "AnalysisOptions",
    "Comparison",
    "Decision",
    "ExperimentAnalysis",
    "MetricType",
    "ModeFigures",
    "VariantSummary",
    "Verdict",
    "analyze_experiment",
]

MetricType = Literal["binary", "continuous"]
Verdict = Literal["winner", "no_difference", "keep_running", "invalid"]
Basis = Literal["sequential", "fixed_horizon"]


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    """How an experiment is analysed.

    Attributes
    ----------
    alpha : float
        Significance level of every test (family-wise after correction).
    alternative : {"two-sided", "greater", "less"}
        Direction of the tests, for ``treatment − control``.
    correction : {"holm", "bh", "none"}
        Multiple-comparison correction across the treatments.
    power : float
        Target power for the required sample size.
    min_relative_lift : float or None
        The smallest relative lift worth detecting, set before the data are seen. Power, the
        users still needed and "no detectable difference" refer to it. When ``None`` they are
        undefined (``None``, reason ``"no_min_lift"``): sizing against the lift observed so
        far is post-hoc power, which only restates the p-value.
    sequential : bool
        The inference mode in force: always-valid (sequential) p-values and confidence
        sequences, so that looking at the results every day does not inflate false
        positives; ``False`` for the fixed-horizon test. Each comparison's ``primary``
        figures, the decision and the power come from this mode; the other mode's figures
        are kept as ``secondary``.
    sequential_tuning_n : float
        Total sample size at which the confidence sequence is tightest (see
        :mod:`abscope.stats.sequential`).
    srm_threshold : float
        Flag a sample-ratio mismatch when its p-value is below this.
    higher_is_better : bool
        ``False`` for metrics such as latency or error rate.
    prior_alpha, prior_beta : float
        Beta prior of the conversion rates (binary metrics).
    prob_best_draws : int
        Monte Carlo draws for the probability that each variant is best.
    seed : int
        Seed of those draws, so an analysis is reproducible.
    bayesian : bool
        Compute the Bayesian view (each comparison's posterior figures and each variant's
        probability of being best). ``False`` leaves them undefined (``None``, reason
        ``"not_computed"``) and changes nothing else: no frequentist figure, power, SRM
        check or decision reads them. For summaries of many experiments, where the
        posterior integrals and the Monte Carlo draws are most of the time.
    """

    alpha: float = 0.05
    alternative: Alternative = "two-sided"
    correction: Correction = "holm"
    power: float = 0.8
    min_relative_lift: float | None = None
    sequential: bool = True
    sequential_tuning_n: int = 5000
    srm_threshold: float = 0.001
    higher_is_better: bool = True
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    prob_best_draws: int = 100_000
    seed: int = 0
    bayesian: bool = True

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        check_alternative(self.alternative)
        if self.correction not in ("holm", "bh", "none"):
            raise ValueError(f"correction must be one of holm, bh, none; got {self.correction!r}")
        check_open_unit("power", self.power)
        if self.power <= self.alpha:
            raise ValueError(f"power must be greater than alpha, got power={self.power}")
        if self.min_relative_lift is not None:
            lift = float(self.min_relative_lift)
            if not math.isfinite(lift) or lift == 0.0 or lift <= -1.0:
                raise ValueError(f"min_relative_lift must be finite, nonzero and > -1, got {lift}")
        check_positive("sequential_tuning_n", self.sequential_tuning_n)
        check_open_unit("srm_threshold", self.srm_threshold)
        check_positive("prior_alpha", self.prior_alpha)
        check_positive("prior_beta", self.prior_beta)
        if self.prob_best_draws < 1:
            raise ValueError(f"prob_best_draws must be at least 1, got {self.prob_best_draws}")


@dataclass(frozen=True, slots=True)
class VariantSummary:
    """One variant's figures: users, rate or mean (with its interval) and its share.

    ``mean`` is ``None`` without users, ``std`` without two; ``prob_best`` is ``None`` when a
    continuous variant has too few users or no spread for a posterior.
    """

    name: str
    is_control: bool
    n: int
    mean: float | None
    ci: Interval
    conversions: int | None
    std: float | None
    weight: float
    observed_share: float
    prob_best: float | None


@dataclass(frozen=True, slots=True)
class ModeFigures:
    """One inference mode's figures for a comparison.

    ``basis`` names the mode: ``"sequential"`` (always-valid p-values, confidence
    sequences) or ``"fixed_horizon"``. ``absolute_ci`` is the interval of the absolute
    difference ``treatment − control``, ``relative_ci`` that of the relative lift
    ``treatment / control − 1``. Undefined figures are ``None``; ``reason`` says why.
    """

    basis: Basis
    p_value: float | None
    adjusted_p_value: float | None
    significant: bool
    absolute_ci: Interval | None
    relative_ci: Interval | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Comparison:
    """One treatment against the control.

    ``primary`` holds the figures of the inference mode in force and ``secondary`` those
    of the other (see :class:`ModeFigures`); read ``primary``. The flat fields keep both
    modes: ``p_value`` is the raw fixed-horizon p-value and ``adjusted_p_value`` the
    corrected one, ``significant`` uses the adjusted value; the sequential view carries
    its own always-valid p-value, corrected the same way in
    ``sequential_adjusted_p_value``. ``sequential`` is the confidence sequence of the
    absolute difference and ``sequential_relative`` that of the relative lift. p-values
    are ``None`` when the test is undefined, and such a comparison is never significant.
    ``power`` is the chance of detecting ``target_relative_lift`` (the pre-registered
    minimum lift) at the current sizes in the mode in force, and
    ``required_control``/``required_treatment`` the users each arm needs for it; all three
    are ``None`` when they cannot be computed, with ``power_reason`` saying why.
    """

    variant: str
    control: str
    absolute: EffectEstimate
    relative: EffectEstimate
    test: TestResult
    p_value: float | None
    adjusted_p_value: float | None
    significant: bool
    target_relative_lift: float | None
    power: float | None
    required_control: int | None
    required_treatment: int | None
    bayesian: BayesianComparison
    sequential: SequentialResult
    sequential_relative: SequentialResult
    sequential_adjusted_p_value: float | None
    sequential_significant: bool
    power_reason: str | None = None
    primary: ModeFigures | None = None
    secondary: ModeFigures | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do now, in one sentence, with the evidence it rests on.

    ``remaining_samples`` is the number of further users (all variants together) needed to
    reach the required sample size; when it cannot be worked out it is ``None`` and
    ``remaining_reason`` says why (for instance ``"no_min_lift"``).
    """

    verdict: Verdict
    winner: str | None
    basis: Basis
    remaining_samples: int | None
    message: str
    remaining_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ExperimentAnalysis:
    """Everything :func:`analyze_experiment` found."""

    metric: MetricType
    control: str
    options: AnalysisOptions
    variants: tuple[VariantSummary, ...]
    comparisons: tuple[Comparison, ...]
    srm: SRMResult
    decision: Decision

    def variant(self, name: str) -> VariantSummary:
        """The summary of variant ``name``."""
        for summary in self.variants:
            if summary.name == name:
                return summary
        raise KeyError(name)


Stats = ProportionStats | MeanStats


def analyze_experiment(
    variants: Mapping[str, ProportionStats] | Mapping[str, MeanStats],
    weights: Mapping[str, float] | Sequence[float],
    *,
    control: str | None = None,
    options: AnalysisOptions | None = None,
    propensity: Mapping[str, tuple[float, float]] | None = None,
) -> ExperimentAnalysis:
    """Analyse an experiment from its per-variant sufficient statistics.

    Parameters
    ----------
    variants : mapping of name to ProportionStats, or of name to MeanStats
        Two or more variants, all of one metric type, in display order.
    weights : mapping of name to weight, or a sequence in the order of ``variants``
        The configured traffic split: each > 0, summing to 1 within 1e-9.
    control : str, optional
        The control variant; the first variant by default.
    options : AnalysisOptions, optional
    propensity : mapping of name to (H, Q), optional
        For adaptively allocated traffic: per variant ``H = Σ 1/p`` and ``Q = Σ 1/p²`` over
        its users' logged assignment probabilities. When given, the SRM check is
        :func:`~abscope.stats.adaptive_srm.adaptive_sample_ratio_mismatch` instead of the
        chi-square test against ``weights``.

    Returns
    -------
    ExperimentAnalysis

    Notes
    -----
    Binary metrics use the pooled two-proportion z-test, Wald and delta-method intervals and
    Beta–Binomial posteriors; continuous metrics use Welch's t-test, Welch intervals and a
    normal approximation to the posterior. Each treatment is compared with the control; the
    p-values are adjusted by Holm (default) or Benjamini–Hochberg. The decision is, in order:
    *invalid* when the split fails the SRM check; *winner* when a treatment is significantly
    better (the best such one), or the control when every treatment is significantly worse;
    *no difference* when a minimum lift is set, every comparison has the users it needs for
    it and none is significant; otherwise *keep running*, with the further users needed
    (or the reason they cannot be worked out). Significance for the decision comes from the
    mode in force (sequential when ``options.sequential`` is set); an undefined comparison
    is never significant, and the decision names it and why.

    Examples
    --------
    >>> result = analyze_experiment(
    ...     {"control": ProportionStats(10_000, 1000), "treatment": ProportionStats(10_000, 1150)},
    ...     [0.5, 0.5],
    ... )
    >>> result.decision.verdict, result.decision.winner
    ('winner', 'treatment')
    >>> round(result.comparisons[0].relative.estimate, 3)
    0.15
    """
    opts = options or AnalysisOptions()
    names = list(variants)
    if len(names) < 2:
        raise ValueError(f"variants must hold at least 2 variants, got {len(names)}")
    metric = _metric_of(variants)
    shares = _weights_in_order(weights, names)
    control_name = names[0] if control is None else control
    if control_name not in variants:
        raise ValueError(f"control must name one of the variants, got {control_name!r}")
    base = variants[control_name]
    treatments = [name for name in names if name != control_name]

    raw = [_compare(metric, control_name, base, name, variants[name], opts) for name in treatments]
    adjusted = adjust_p_values([c.p_value for c in raw], opts.correction)
    seq_adjusted = adjust_p_values([c.sequential.p_value for c in raw], opts.correction)
    comparisons = tuple(
        _with_adjusted(c, p, sp, opts) for c, p, sp in zip(raw, adjusted, seq_adjusted, strict=True)
    )

    srm = _srm(names, variants, shares, propensity, opts.srm_threshold)
    best = _prob_best(metric, [variants[name] for name in names], opts)
    total = sum(variants[name].n for name in names)
    summaries = tuple(
        _summarise(name, name == control_name, variants[name], weight, total, p_best, opts)
        for name, weight, p_best in zip(names, shares, best, strict=True)
    )
    decision = _decide(
        control_name, names, shares, variants, comparisons, srm, metric, opts,
        adaptive=propensity is not None,
    )  # fmt: skip
    return ExperimentAnalysis(metric, control_name, opts, summaries, comparisons, srm, decision)


def _srm(
    names: list[str],
    variants: Mapping[str, ProportionStats] | Mapping[str, MeanStats],
    shares: tuple[float, ...],
    propensity: Mapping[str, tuple[float, float]] | None,
    threshold: float,
) -> SRMResult:
    """The static chi-square check, or the adaptive one when propensities are given."""
    observed = [variants[name].n for name in names]
    if propensity is None:
        return sample_ratio_mismatch(observed, shares, threshold=threshold)
    missing = [name for name in names if name not in propensity]
    if missing or set(propensity) - set(names):
        raise ValueError("propensity must have one (H, Q) pair per variant, and no other")
    return adaptive_sample_ratio_mismatch(
        observed,
        [propensity[name][0] for name in names],
        [propensity[name][1] for name in names],
        threshold=threshold,
    )


def _metric_of(variants: Mapping[str, ProportionStats] | Mapping[str, MeanStats]) -> MetricType:
    values = list(variants.values())
    if all(isinstance(v, ProportionStats) for v in values):
        return "binary"
    if all(isinstance(v, MeanStats) for v in values):
        return "continuous"
    raise ValueError("variants must all be ProportionStats (binary) or all MeanStats (continuous)")


def _weights_in_order(
    weights: Mapping[str, float] | Sequence[float], names: list[str]
) -> tuple[float, ...]:
    if isinstance(weights, Mapping):
        unknown = set(weights) - set(names)
        if unknown:
            raise ValueError(f"weights name unknown variants: {', '.join(sorted(unknown))}")
        missing = [name for name in names if name not in weights]
        if missing:
            raise ValueError(f"weights has no entry for {', '.join(missing)}")
        ordered = [weights[name] for name in names]
    else:
        ordered = list(weights)
    return check_weights(ordered, len(names))


def _effects(
    metric: MetricType, control: Stats, treatment: Stats, alternative: Alternative
) -> tuple[EffectEstimate, EffectEstimate, TestResult]:
    if metric == "binary":
        assert isinstance(control, ProportionStats) and isinstance(treatment, ProportionStats)
        return (
            difference_ci(control, treatment),
            relative_lift_ci(control, treatment),
            two_proportion_ztest(control, treatment, alternative=alternative),
        )
    assert isinstance(control, MeanStats) and isinstance(treatment, MeanStats)
    return (
        mean_difference_ci(control, treatment),
        relative_mean_lift_ci(control, treatment),
        welch_ttest(control, treatment, alternative=alternative),
    )


def _compare(
    metric: MetricType,
    control_name: str,
    control: Stats,
    name: str,
    treatment: Stats,
    opts: AnalysisOptions,
) -> Comparison:
    absolute, relative, test = _effects(metric, control, treatment, opts.alternative)
    absolute = _at_confidence(absolute, 1.0 - opts.alpha, metric, control, treatment, "absolute")
    relative = _at_confidence(relative, 1.0 - opts.alpha, metric, control, treatment, "relative")
    target = opts.min_relative_lift
    power, required, power_reason = _power_and_required(metric, control, treatment, target, opts)
    bayes = _bayes(metric, control, treatment, opts)
    n = control.n + treatment.n
    seq_abs = _sequential(absolute, n, opts)
    seq_rel = _sequential(relative, n, opts)
    return Comparison(
        variant=name,
        control=control_name,
        absolute=absolute,
        relative=relative,
        test=test,
        p_value=test.p_value,
        adjusted_p_value=test.p_value,
        significant=False,
        target_relative_lift=target,
        power=power,
        required_control=required[0] if required else None,
        required_treatment=required[1] if required else None,
        bayesian=bayes,
        sequential=seq_abs,
        sequential_relative=seq_rel,
        sequential_adjusted_p_value=seq_abs.p_value,
        sequential_significant=False,
        power_reason=power_reason,
    )


def _at_confidence(
    estimate: EffectEstimate,
    level: float,
    metric: MetricType,
    control: Stats,
    treatment: Stats,
    kind: Literal["absolute", "relative"],
) -> EffectEstimate:
    """Recompute an interval at the analysis' confidence level (1 − alpha)."""
    if estimate.ci is None or math.isclose(estimate.ci.level, level):
        return estimate  # an undefined interval is undefined at every level
    if metric == "binary":
        assert isinstance(control, ProportionStats) and isinstance(treatment, ProportionStats)
        if kind == "absolute":
            return difference_ci(control, treatment, confidence=level)
        return relative_lift_ci(control, treatment, confidence=level)
    assert isinstance(control, MeanStats) and isinstance(treatment, MeanStats)
    if kind == "absolute":
        return mean_difference_ci(control, treatment, confidence=level)
    return relative_mean_lift_ci(control, treatment, confidence=level)


def _power_and_required(
    metric: MetricType,
    control: Stats,
    treatment: Stats,
    target: float | None,
    opts: AnalysisOptions,
) -> tuple[float | None, tuple[int, int] | None, str | None]:
    """Power for ``target`` at the current sizes, the per-arm users it needs, and a reason.

    Both refer to the test that decides: the sequential test when ``opts.sequential`` is
    set (it needs more users), else the fixed-horizon one. The split stays as observed.
    When they cannot be worked out both are ``None`` and the reason says why: no
    pre-registered target (``"no_min_lift"``), an empty arm, a zero baseline or no
    variance, or a target that the test's direction or the metric's range cannot reach.
    """
    if target is None:
        return None, None, "no_min_lift"
    if control.n == 0 or treatment.n == 0:
        return None, None, "no_samples"
    n = control.n + treatment.n
    share_c, share_t = control.n / n, treatment.n / n
    if metric == "binary":
        assert isinstance(control, ProportionStats) and isinstance(treatment, ProportionStats)
        baseline = control.rate
        rate = baseline * (1.0 + target)
        if baseline == 0.0:
            return None, None, "zero_baseline"
        if not 0.0 < baseline < 1.0 or not 0.0 < rate < 1.0:
            return None, None, "unreachable_target"
        effect = rate - baseline
        unit_variance = baseline * (1 - baseline) / share_c + rate * (1 - rate) / share_t
    else:
        assert isinstance(control, MeanStats) and isinstance(treatment, MeanStats)
        effect = control.mean * target
        unit_variance = control.variance / share_c + treatment.variance / share_t
        if effect == 0.0:
            return None, None, "zero_baseline"
        if unit_variance == 0.0:
            return None, None, "zero_variance"
    try:
        if opts.sequential:
            tuning = opts.sequential_tuning_n
            power = sequential_power(effect, unit_variance, n, alpha=opts.alpha, tuning_n=tuning)
            total = sequential_sample_size(
                effect, unit_variance, alpha=opts.alpha, power=opts.power, tuning_n=tuning
            )
            return power, (math.ceil(total * share_c), math.ceil(total * share_t)), None
        ratio = share_t / share_c
        if metric == "binary":
            power = power_proportions(
                baseline, rate, control.n, treatment.n, alpha=opts.alpha,
                alternative=opts.alternative,
            )  # fmt: skip
            n_control = sample_size_proportions(
                baseline, rate, alpha=opts.alpha, power=opts.power, ratio=ratio,
                alternative=opts.alternative,
            )  # fmt: skip
        else:
            std = math.sqrt((control.variance + treatment.variance) / 2.0)
            power = power_means(
                effect, std, control.n, treatment.n, alpha=opts.alpha, alternative=opts.alternative
            )
            n_control = sample_size_means(
                effect, std, alpha=opts.alpha, power=opts.power, ratio=ratio,
                alternative=opts.alternative,
            )  # fmt: skip
    except ValueError:
        return None, None, "unreachable_target"
    return power, (math.ceil(n_control), math.ceil(n_control * ratio)), None


def _bayes(
    metric: MetricType, control: Stats, treatment: Stats, opts: AnalysisOptions
) -> BayesianComparison:
    if not opts.bayesian:
        return BayesianComparison(None, None, None, reason="not_computed")
    if metric == "binary":
        assert isinstance(control, ProportionStats) and isinstance(treatment, ProportionStats)
        result = compare_proportions_bayes(control, treatment, opts.prior_alpha, opts.prior_beta)
    else:
        assert isinstance(control, MeanStats) and isinstance(treatment, MeanStats)
        result = compare_means_bayes(control, treatment)
    if opts.higher_is_better or result.chance_to_beat_control is None:
        return result
    return BayesianComparison(
        chance_to_beat_control=1.0 - result.chance_to_beat_control,
        expected_loss_treatment=result.expected_loss_control,
        expected_loss_control=result.expected_loss_treatment,
        reason=result.reason,
    )


_SEQUENTIAL_REASONS: dict[str, SequentialReason] = {
    "no_samples": "no_samples",
    "insufficient_samples": "insufficient_samples",
    "zero_variance": "zero_variance",
    "zero_baseline": "zero_baseline",
    "zero_treatment": "zero_treatment",
}


def _sequential(effect: EffectEstimate, n: int, opts: AnalysisOptions) -> SequentialResult:
    """The confidence sequence of an effect; of a relative lift, on its log-ratio scale.

    A lift whose interval is built on the log scale (``log_std_error`` set) is tested as
    ``log(1 + lift)`` and its sequence mapped back by ``exp(·) − 1``, so it never goes below
    −100%; the p-value tests the same null (ratio 1). An undefined effect gives an
    undefined result with the effect's reason.
    """
    alpha, tuning = opts.alpha, opts.sequential_tuning_n
    if effect.estimate is None or effect.std_error is None or effect.ci is None:
        reason = _SEQUENTIAL_REASONS.get(effect.reason or "", "zero_variance")
        return SequentialResult(None, None, None, False, alpha, tuning, reason)
    if effect.log_std_error is not None:
        log_result = sequential_test(
            math.log1p(effect.estimate), effect.log_std_error**2, n, alpha=alpha, tuning_n=tuning
        )
        if log_result.ci_lower is None or log_result.ci_upper is None:
            return log_result
        return replace(
            log_result,
            ci_lower=math.expm1(log_result.ci_lower),
            ci_upper=math.expm1(log_result.ci_upper),
        )
    return sequential_test(effect.estimate, effect.std_error**2, n, alpha=alpha, tuning_n=tuning)


def _with_adjusted(
    c: Comparison, adjusted: float | None, seq_adjusted: float | None, opts: AnalysisOptions
) -> Comparison:
    alpha = opts.alpha
    fixed_significant = c.test.reason is None and adjusted is not None and adjusted < alpha
    seq_significant = (
        c.sequential.reason is None and seq_adjusted is not None and seq_adjusted < alpha
    )
    fixed = ModeFigures(
        "fixed_horizon",
        c.p_value,
        adjusted,
        fixed_significant,
        c.absolute.ci,
        c.relative.ci,
        c.test.reason,
    )
    sequential = ModeFigures(
        "sequential",
        c.sequential.p_value,
        seq_adjusted,
        seq_significant,
        _interval(c.sequential, alpha),
        _interval(c.sequential_relative, alpha),
        c.sequential.reason,
    )
    return replace(
        c,
        adjusted_p_value=adjusted,
        significant=fixed_significant,
        sequential_adjusted_p_value=seq_adjusted,
        sequential_significant=seq_significant,
        primary=sequential if opts.sequential else fixed,
        secondary=fixed if opts.sequential else sequential,
    )


def _interval(result: SequentialResult, alpha: float) -> Interval | None:
    if result.ci_lower is None or result.ci_upper is None:
        return None
    return Interval(result.ci_lower, result.ci_upper, 1.0 - alpha)


def _prob_best(
    metric: MetricType, stats: list[Stats], opts: AnalysisOptions
) -> tuple[float | None, ...]:
    """P(best) per variant; "best" is the lowest value when lower is better.

    ``None`` for every variant when a continuous one has no posterior (fewer than two users
    or no spread): the ranking is then undefined; ``None`` too when ``opts.bayesian`` is off.
    """
    if not opts.bayesian:
        return tuple(None for _ in stats)
    posteriors: list[BetaPosterior] | list[NormalPosterior]
    if metric == "binary":
        posteriors = [
            BetaPosterior.from_stats(s, opts.prior_alpha, opts.prior_beta)
            for s in stats
            if isinstance(s, ProportionStats)
        ]
        if not opts.higher_is_better:
            # 1 − p ~ Beta(b, a): the highest 1 − p is the lowest p.
            posteriors = [BetaPosterior(p.beta, p.alpha) for p in posteriors]
    else:
        means = [s for s in stats if isinstance(s, MeanStats)]
        if any(s.n < 2 or s.variance == 0.0 for s in means):
            return tuple(None for _ in means)
        sign = 1.0 if opts.higher_is_better else -1.0
        posteriors = [
            NormalPosterior(sign * p.mean, p.variance)
            for p in (NormalPosterior.from_stats(s) for s in means)
        ]
    return prob_best(posteriors, np.random.default_rng(opts.seed), opts.prob_best_draws)


def _summarise(
    name: str,
    is_control: bool,
    stats: Stats,
    weight: float,
    total: int,
    p_best: float | None,
    opts: AnalysisOptions,
) -> VariantSummary:
    level = 1.0 - opts.alpha
    share = stats.n / total if total else 0.0
    if isinstance(stats, ProportionStats):
        ci = wilson_interval(stats, confidence=level)
        rate = stats.rate if stats.n else None
        return VariantSummary(
            name, is_control, stats.n, rate, ci, stats.conversions, None, weight, share, p_best
        )
    ci = mean_interval(stats, confidence=level)
    mean = stats.mean if stats.n else None
    std = stats.std if stats.n >= 2 else None
    return VariantSummary(name, is_control, stats.n, mean, ci, None, std, weight, share, p_best)


def _decide(
    control: str,
    names: list[str],
    weights: tuple[float, ...],
    variants: Mapping[str, ProportionStats] | Mapping[str, MeanStats],
    comparisons: tuple[Comparison, ...],
    srm: SRMResult,
    metric: MetricType,
    opts: AnalysisOptions,
    *,
    adaptive: bool = False,
) -> Decision:
    basis: Basis = "sequential" if opts.sequential else "fixed_horizon"
    if srm.mismatch:
        return Decision(
            "invalid",
            None,
            basis,
            None,
            f"Sample ratio mismatch (p = {srm.p_value:.2g}): users are not split as"
            f" {'the logged assignment probabilities predict' if adaptive else 'configured'}."
            " Find the cause in assignment or logging before trusting any result.",
        )
    empty = [name for name in names if variants[name].n == 0]
    if empty:
        return Decision(
            "keep_running",
            None,
            basis,
            None,
            f"Keep running: no users yet in {', '.join(empty)}.",
            "no_samples",
        )

    def figures(c: Comparison) -> ModeFigures:
        assert c.primary is not None
        return c.primary

    def significant(c: Comparison) -> bool:
        return figures(c).significant

    def better(c: Comparison) -> bool:
        moved = c.absolute.estimate
        if moved is None or moved == 0.0:
            return False
        return moved > 0.0 if opts.higher_is_better else moved < 0.0

    winners = [c for c in comparisons if significant(c) and better(c)]
    if winners:
        # Every comparison shares the control, so the absolute difference ranks them.
        sign = 1.0 if opts.higher_is_better else -1.0
        top = max(winners, key=lambda c: sign * (c.absolute.estimate or 0.0))
        return Decision(
            "winner",
            top.variant,
            basis,
            0,
            f"{top.variant} beats {control}: {_describe_lift(top, metric)}, adjusted p ="
            f" {_p_text(figures(top).adjusted_p_value)} ({basis.replace('_', '-')}).",
        )
    if all(significant(c) for c in comparisons):
        worst = ", ".join(c.variant for c in comparisons)
        return Decision(
            "winner",
            control,
            basis,
            0,
            f"{control} wins: every treatment ({worst}) is significantly worse.",
        )

    undecided = [c for c in comparisons if not significant(c)]
    untestable = [c for c in undecided if figures(c).reason is not None]
    if untestable:
        why = "; ".join(
            f"{c.variant}: {REASONS.get(figures(c).reason or '', figures(c).reason or '')}"
            for c in untestable
        )
        return Decision(
            "keep_running",
            None,
            basis,
            None,
            f"Keep running: cannot test yet ({why}).",
            figures(untestable[0]).reason,
        )
    remaining = _remaining_samples(names, weights, variants, undecided, control)
    if remaining == 0 and opts.min_relative_lift is not None:
        return Decision(
            "no_difference",
            None,
            basis,
            0,
            "No detectable difference: every comparison has the users it needs to detect a"
            f" {_describe_target(undecided)} lift with {opts.power:.0%} power, and none is"
            " significant.",
        )
    if remaining is None:
        reason = next((c.power_reason for c in undecided if c.power_reason), None)
        hint = (
            "Set a minimum relative lift to learn how many more users are needed."
            if opts.min_relative_lift is None
            else "The minimum relative lift cannot be sized from this baseline."
        )
        return Decision(
            "keep_running",
            None,
            basis,
            None,
            f"Keep running: no significant difference yet. {hint}",
            reason,
        )
    return Decision(
        "keep_running",
        None,
        basis,
        remaining,
        f"Keep running: no significant difference yet; about {remaining:,} more users are needed"
        f" to detect a {_describe_target(undecided)} lift with {opts.power:.0%} power.",
    )


def _remaining_samples(
    names: list[str],
    weights: tuple[float, ...],
    variants: Mapping[str, ProportionStats] | Mapping[str, MeanStats],
    comparisons: list[Comparison],
    control: str,
) -> int | None:
    """Further users, all arms together, until every arm has what its comparisons need.

    Users arrive split by the weights, so the total needed is ``max_i needed_i / w_i``.
    """
    needed = dict.fromkeys(names, 0)
    for c in comparisons:
        if c.required_control is None or c.required_treatment is None:
            return None
        needed[control] = max(needed[control], c.required_control)
        needed[c.variant] = max(needed[c.variant], c.required_treatment)
    if all(needed[name] <= variants[name].n for name in names):
        return 0
    total_needed = max(needed[name] / weight for name, weight in zip(names, weights, strict=True))
    current = sum(variants[name].n for name in names)
    return max(1, math.ceil(total_needed - current))


def _describe_lift(c: Comparison, metric: MetricType) -> str:
    """The lift with the interval of the mode in force (never a fixed-horizon interval next
    to an always-valid p-value); the absolute difference when the lift is undefined."""
    assert c.primary is not None
    mode = "confidence sequence" if c.primary.basis == "sequential" else "CI"
    rel, ci = c.relative.estimate, c.primary.relative_ci
    if rel is not None and ci is not None:
        return f"{rel:+.1%} relative lift ({mode} {ci.lower:+.1%} to {ci.upper:+.1%})"
    diff, ci = c.absolute.estimate, c.primary.absolute_ci
    assert diff is not None

    def shown(x: float) -> str:
        return f"{x * 100:+.2f} points" if metric == "binary" else f"{x:+.4g}"

    if ci is None:
        return f"{shown(diff)} absolute difference"
    return f"{shown(diff)} absolute difference ({mode} {shown(ci.lower)} to {shown(ci.upper)})"


def _p_text(p: float | None) -> str:
    return "undefined" if p is None else f"{p:.3g}"


def _describe_target(comparisons: list[Comparison]) -> str:
    targets = [abs(c.target_relative_lift) for c in comparisons if c.target_relative_lift]
    return f"{min(targets):.1%}" if targets else "meaningful"
