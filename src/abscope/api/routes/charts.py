"""Chart figures as plotly JSON: an experiment's dashboard, the planner and a bandit simulation.

Each figure is ``{"data": [...], "layout": {...}}``, ready for
``Plotly.newPlot(element, figure.data, figure.layout)``; see :mod:`abscope.charts` for the traces.

======================================  ==========================================================
endpoint                                body
======================================  ==========================================================
``GET /experiments/{id}/charts``        ``{"conversion", "lift", "samples", "posterior"}``
``POST /charts/plan``                   ``{"plan": <POST /calculate>, "sensitivity", "power"}``
``POST /charts/simulate``               ``{"regret", "final_regret": {policy: mean},
                                        "final_regret_se": {policy: se}}``
======================================  ==========================================================
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from abscope.api.deps import Service
from abscope.bandits import (
    EpsilonGreedyConfig,
    FixedSplitConfig,
    PolicyConfig,
    ThompsonConfig,
    UCB1Config,
    simulate,
)
from abscope.charts import (
    conversion_over_time,
    figure_json,
    lift_over_time,
    posteriors,
    power_heatmap,
    regret_chart,
    samples_over_time,
    sensitivity_chart,
)
from abscope.schemas import CalculateRequest
from abscope.stats.planner import plan_duration, power_grid, sensitivity_curve

__all__ = ["SimulateRequest", "router"]

router = APIRouter(tags=["charts"])

Rate = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class SimulateRequest(BaseModel):
    """Arms' true conversion rates and the size of the simulation."""

    model_config = ConfigDict(extra="forbid")

    true_rates: list[Rate] = Field(min_length=2, max_length=10)
    horizon: int = Field(ge=100, le=20_000)
    runs: int = Field(default=50, ge=2, le=200)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)


@router.get("/experiments/{experiment_id}/charts")
def experiment_charts(
    experiment_id: str, service: Service, phase: int | None = None
) -> dict[str, Any]:
    results = service.results(experiment_id, phase)  # checks the phase
    series = service.timeseries(experiment_id, phase)
    control = next(v["name"] for v in results["variants"] if v["is_control"])
    return {
        "conversion": figure_json(
            conversion_over_time(series, results["metric_type"], control=control)
        ),
        "lift": figure_json(lift_over_time(series, control=control)),
        "samples": figure_json(samples_over_time(series, control=control)),
        "posterior": figure_json(posteriors(results)),
    }


@router.post("/charts/plan")
def plan_charts(body: CalculateRequest, service: Service) -> dict[str, Any]:
    plan = service.calculate(body)  # raises InvalidInput (422) naming the field
    duration = plan_duration(**body.model_dump())
    return {
        "plan": plan,
        "sensitivity": figure_json(sensitivity_chart(sensitivity_curve(duration))),
        "power": figure_json(
            power_heatmap(power_grid(duration), planned_samples=duration.control_samples)
        ),
    }


@router.post("/charts/simulate")
def simulate_charts(body: SimulateRequest) -> dict[str, Any]:
    policies: dict[str, PolicyConfig] = {
        "Epsilon-greedy": EpsilonGreedyConfig(),
        "UCB1": UCB1Config(),
        "Thompson": ThompsonConfig(),
        "Fixed split": FixedSplitConfig.uniform(len(body.true_rates)),
    }
    results = {
        name: simulate(policy, body.true_rates, body.horizon, body.runs, body.seed)
        for name, policy in policies.items()
    }
    return {
        "regret": figure_json(regret_chart(results)),
        "final_regret": {name: result.final_regret_mean for name, result in results.items()},
        "final_regret_se": {name: result.final_regret_se for name, result in results.items()},
    }
