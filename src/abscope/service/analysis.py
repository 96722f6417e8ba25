"""The analysis use cases: results, the deployment gate, time series, a routing decision
explained, plans, the charts and the bandit simulator.

Results read each variant's sufficient statistics from the store (one read per phase), so
their cost never grows with the number of events; the plans and the simulator read nothing.
"""

from __future__ import annotations

from typing import Any

from abscope import (
    adaptive_reports,
    charts,
    cuped_reports,
    gate,
    metric_reports,
    reports,
    schemas,
    summaries,
)
from abscope.assignment import assign
from abscope.bandits import (
    EpsilonGreedyConfig,
    FixedSplitConfig,
    PolicyConfig,
    ThompsonConfig,
    UCB1Config,
    simulate,
)
from abscope.errors import InvalidInput
from abscope.jsonable import to_jsonable
from abscope.metric_cuped import needs_metric_covariates, with_metric_cuped
from abscope.metric_series import metric_series
from abscope.models import Experiment, Status
from abscope.routing import compile_experiment
from abscope.service._clock import Clock, utc_now
from abscope.service._quantile_reads import quantile_counters
from abscope.serving import STICKY_PHASE
from abscope.stats.guardrails import DEFAULT_MIN_SAMPLES_PER_ARM
from abscope.stats.planner import (
    DurationPlan,
    PowerGrid,
    SensitivityCurve,
    plan_duration,
    power_grid,
    sensitivity_curve,
)
from abscope.storage.base import Store

__all__ = ["Analysis"]


class Analysis:
    """The analysis use cases over one store. Safe to share between threads.

    Parameters
    ----------
    store
        Where the experiments and their counts live.
    clock
        The wall clock the results are computed at: the days a running experiment has run,
        so its users per day.
    guardrail_min_samples
        Users per arm a guardrail without its own ``min_samples`` needs before a verdict:
        the ``guardrail_min_samples`` setting, which the monitor reads too, so the results,
        the gate and the monitor agree on "too little data".
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock = utc_now,
        guardrail_min_samples: int = DEFAULT_MIN_SAMPLES_PER_ARM,
    ) -> None:
        self.store = store
        self._clock = clock
        self._min_samples = guardrail_min_samples

    def results(self, experiment_id: str, phase: int | None = None) -> dict[str, Any]:
        """The full analysis of a phase (the current one by default), compatible fields
        included, with every metric's results, the risk-aware decision and the guardrails'
        status (:mod:`abscope.metric_reports`) and the CUPED section
        (:mod:`abscope.cuped_reports`) and the estimates weighted for adaptive allocation
        (:mod:`abscope.adaptive_reports`): one read each of the counts, the metrics' counts,
        the covariate counts (and the named metrics' covariate counts, with a ``cuped`` block
        per binary or mean metric: :mod:`abscope.metric_cuped`) and the weighted counts."""
        experiment = self.store.get_experiment(experiment_id)
        chosen = _phase(experiment, phase)
        counts = self.store.get_counts(experiment.id, chosen)
        metric_counts = self.store.get_metric_counts(experiment.id, chosen)
        analysis = reports.primary_analysis(experiment, counts)
        body = reports.results_view(experiment, chosen, counts, self._clock(), analysis)
        cuped, cuped_reason = cuped_reports.cuped_view(
            experiment, counts, self.store.get_covariate_counts(experiment.id, chosen)
        )
        body["cuped"] = cuped
        if cuped_reason is not None:
            body["null_reasons"]["cuped"] = cuped_reason
        weighted = (  # fixed allocation needs no weights: the read is skipped
            {}
            if experiment.allocation == "fixed"
            else self.store.get_weighted_counts(experiment.id, chosen)
        )
        adaptive, adaptive_reason = adaptive_reports.adaptive_view(experiment, counts, weighted)
        body["adaptive_estimates"] = adaptive
        if adaptive_reason is not None:
            body["null_reasons"]["adaptive_estimates"] = adaptive_reason
        view = metric_reports.metrics_view(
            experiment,
            counts,
            metric_counts,
            analysis,
            default_min_samples=self._min_samples,
            quantile_counters=quantile_counters(self.store, experiment, chosen),
        )
        metric_covariates = (  # read only when some metric can be adjusted by them
            self.store.get_metric_covariate_counts(experiment.id, chosen)
            if needs_metric_covariates(experiment)
            else {}
        )
        return body | with_metric_cuped(experiment, view, counts, metric_counts, metric_covariates)

    def summary(self, status: Status | None = None) -> dict[str, Any]:
        """Every experiment (or those in ``status``) as the list shows it
        (:func:`abscope.summaries.experiment_summary`): one read of the experiments, then
        per started experiment one of its counts and one of its metrics' counts. The
        figures are the results', from an analysis without the Bayesian view (which they
        do not read and which is most of a full analysis' time)."""
        lines = []
        for experiment in self.store.list_experiments(status):
            quantiles: dict[str, dict[str, dict[str, int]]] = {}
            if experiment.status == Status.DRAFT:
                counts, metric_counts = {}, {}
            else:
                counts = self.store.get_counts(experiment.id, experiment.phase)
                metric_counts = self.store.get_metric_counts(experiment.id, experiment.phase)
                quantiles = quantile_counters(self.store, experiment, experiment.phase)
            lines.append(
                summaries.experiment_summary(
                    experiment,
                    counts,
                    metric_counts,
                    default_min_samples=self._min_samples,
                    quantile_counters=quantiles,
                )  # fmt: skip
            )
        return {"experiments": lines}

    def gate(self, experiment_id: str) -> dict[str, Any]:
        """The deployment gate of the current phase: ``pass``, ``fail`` or ``inconclusive``
        from the guardrails' always-valid non-inferiority tests, with reasons per guardrail
        and arm (:func:`abscope.gate.gate_view`). An ended experiment is judged on
        its data like any other."""
        experiment = self.store.get_experiment(experiment_id)
        counts = self.store.get_counts(experiment.id, experiment.phase)
        metric_counts = self.store.get_metric_counts(experiment.id, experiment.phase)
        return gate.gate_view(
            experiment,
            counts,
            metric_counts,
            default_min_samples=self._min_samples,
            quantile_counters=quantile_counters(self.store, experiment, experiment.phase),
        )

    def timeseries(self, experiment_id: str, phase: int | None = None) -> dict[str, Any]:
        """Hourly cumulative counts, rates with intervals, and lift with its sequence."""
        experiment = self.store.get_experiment(experiment_id)
        chosen = _phase(experiment, phase)
        return reports.timeseries_view(experiment, self.store.get_timeseries(experiment.id, chosen))

    def explain(self, experiment_id: str, user_id: str) -> dict[str, Any]:
        """How the user is routed in the experiment, from its stored configuration: the
        buckets, the ranges and the reason of the decision (nothing is recorded)."""
        experiment = self.store.get_experiment(experiment_id)
        compiled = compile_experiment(experiment)
        sticky = (
            self.store.get_assignment(experiment.id, STICKY_PHASE, user_id)
            if experiment.sticky
            else None
        )
        decision = assign(
            compiled.config, user_id, sticky_variant=sticky, layer_slice=compiled.layer_slice
        )
        return {
            "experiment_id": experiment.id,
            "status": experiment.status.value,
            "phase": experiment.phase,
            "user_id": user_id,
            "variant_name": decision.variant,
            "reason": decision.reason,
            "probability": decision.probability,
            "traffic_percentage": experiment.traffic_percentage,
            "gate_bucket": decision.gate_bucket,
            "variant_bucket": decision.variant_bucket,
            "layer": experiment.layer,
            "layer_bucket": decision.layer_bucket,
            "layer_intervals": experiment.layer_intervals,
            "ranges": {
                name: list(bounds)
                for name, bounds in zip(compiled.config.variants, decision.ranges, strict=False)
            },
            "sticky": experiment.sticky,
            "forced": user_id in experiment.forced_variants,
            "allocation": experiment.allocation,
        }

    def calculate(self, request: schemas.CalculateRequest) -> dict[str, Any]:
        """The duration plan with the numbers behind its two charts."""
        plan, curve, grid = _plan(request)
        return {
            **to_jsonable(plan),
            "sensitivity": to_jsonable(curve),
            "power_grid": to_jsonable(grid),
        }

    def experiment_charts(self, experiment_id: str, phase: int | None = None) -> dict[str, Any]:
        """The detail page's four figures, and one per declared metric other than the
        primary (:func:`abscope.metric_series.metric_series`), as Plotly JSON.

        The posteriors need only each variant's counts, so no analysis is run here: the page
        fetches the results separately, and analysing twice per page load is waste.
        """
        experiment = self.store.get_experiment(experiment_id)
        chosen = _phase(experiment, phase)
        hours = self.store.get_timeseries(experiment.id, chosen)
        series = reports.timeseries_view(experiment, hours)
        summary = reports.variant_summary(experiment, self.store.get_counts(experiment.id, chosen))
        control = experiment.control.name
        metrics = (
            metric_series(
                experiment,
                hours,
                self.store.get_metric_timeseries(experiment.id, chosen),
                default_min_samples=self._min_samples,
            )
            if len(experiment.all_metrics) > 1
            else {}
        )
        return {
            "conversion": charts.figure_json(
                charts.conversion_over_time(series, experiment.metric_type, control=control)
            ),
            "lift": charts.figure_json(charts.lift_over_time(series, control=control)),
            "samples": charts.figure_json(charts.samples_over_time(series, control=control)),
            "posterior": charts.figure_json(charts.posteriors(summary)),
            "metrics": {
                name: charts.figure_json(charts.metric_effect_over_time(one, control=control))
                for name, one in metrics.items()
            },
        }

    def plan_charts(self, request: schemas.CalculateRequest) -> dict[str, Any]:
        """The plan (as :meth:`calculate` gives it) with its sensitivity and power figures."""
        plan, curve, grid = _plan(request)
        return {
            "plan": {
                **to_jsonable(plan),
                "sensitivity": to_jsonable(curve),
                "power_grid": to_jsonable(grid),
            },
            "sensitivity": charts.figure_json(charts.sensitivity_chart(curve)),
            "power": charts.figure_json(
                charts.power_heatmap(grid, planned_samples=plan.control_samples)
            ),
        }

    def simulate_bandits(self, request: schemas.SimulateRequest) -> dict[str, Any]:
        """Regret of each allocation policy on the given true rates (seeded)."""
        policies: dict[str, PolicyConfig] = {
            "Epsilon-greedy": EpsilonGreedyConfig(),
            "UCB1": UCB1Config(),
            "Thompson": ThompsonConfig(),
            "Fixed split": FixedSplitConfig.uniform(len(request.true_rates)),
        }
        results = {
            name: simulate(policy, request.true_rates, request.horizon, request.runs, request.seed)
            for name, policy in policies.items()
        }
        return {
            "regret": charts.figure_json(charts.regret_chart(results)),
            "final_regret": {name: r.final_regret_mean for name, r in results.items()},
            "final_regret_se": {name: r.final_regret_se for name, r in results.items()},
        }


def _phase(experiment: Experiment, phase: int | None) -> int:
    chosen = experiment.phase if phase is None else phase
    if not 0 <= chosen <= experiment.phase:
        raise InvalidInput(
            "phase",
            f"must be between 0 and {experiment.phase}",
            location="query",
            kind="phase_out_of_range",
        )
    return chosen


def _plan(request: schemas.CalculateRequest) -> tuple[DurationPlan, SensitivityCurve, PowerGrid]:
    try:
        plan = plan_duration(**request.model_dump())
    except ValueError as error:
        # The planner's messages start with the argument's name.
        raise InvalidInput(str(error).split(" ", 1)[0], str(error)) from None
    return plan, sensitivity_curve(plan), power_grid(plan)
