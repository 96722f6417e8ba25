"""abscope.charts: each figure holds a trace per variant (or policy) with the inputs' numbers,
its bands, a JSON form without NaN, and a "No data yet" annotation when there is nothing."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import plotly.graph_objects as go  # type: ignore[import-untyped]
import pytest
from scipy import stats as distributions

from abscope import charts, reports
from abscope.bandits import (
    EpsilonGreedyConfig,
    FixedSplitConfig,
    SimulationResult,
    ThompsonConfig,
    UCB1Config,
    simulate,
)
from abscope.models import VariantCounts
from abscope.stats.planner import plan_duration, power_grid, sensitivity_curve
from abscope.storage.base import HourCounts
from tests.fixtures.factories import experiment

HOURS = ["2025-03-01T10:00:00+00:00", "2025-03-01T11:00:00+00:00", "2025-03-01T12:00:00+00:00"]


def _variant(samples: list[int], conversions: list[int]) -> dict[str, Any]:
    rates = [c / n if n else None for n, c in zip(samples, conversions, strict=True)]
    return {
        "samples": samples,
        "conversions": conversions,
        "value": rates,
        "ci_lower": [None if r is None else max(0.0, r - 0.05) for r in rates],
        "ci_upper": [None if r is None else min(1.0, r + 0.05) for r in rates],
    }


def _timeseries() -> dict[str, Any]:
    """Three hours of three variants; v2 has no users in the first hour."""
    return {
        "hours": HOURS,
        "variants": {
            "control": _variant([10, 25, 40], [1, 3, 5]),
            "treatment": _variant([12, 24, 41], [2, 4, 7]),
            "v2": _variant([0, 20, 38], [0, 1, 3]),
        },
        "lift": {
            "treatment": {
                "lift": [0.6, 0.0417, 0.3659],
                "ci_lower": [-1.0, -0.8, -0.5],
                "ci_upper": [3.0, 2.0, 1.5],
                "cs_lower": [None, -0.9, -0.7],
                "cs_upper": [None, 2.5, 1.9],
            },
            "v2": {
                "lift": [None, -0.6, -0.53],
                "ci_lower": [None, -0.95, -0.9],
                "ci_upper": [None, 1.0, 0.8],
                "cs_lower": [None, -0.99, -0.95],
                "cs_upper": [None, 1.5, 1.2],
            },
        },
    }


def _empty_timeseries() -> dict[str, Any]:
    empty = {"samples": [], "conversions": [], "value": [], "ci_lower": [], "ci_upper": []}
    lift = {"lift": [], "ci_lower": [], "ci_upper": [], "cs_lower": [], "cs_upper": []}
    return {
        "hours": [],
        "variants": {"control": empty, "treatment": empty},
        "lift": {"treatment": lift},
    }


def _results(metric_type: str = "binary") -> dict[str, Any]:
    return {
        "metric_type": metric_type,
        "variants": [
            {"name": "control", "is_control": True, "n": 1000, "conversions": 100,
             "mean": 0.1, "std": 0.3},
            {"name": "treatment", "is_control": False, "n": 1000, "conversions": 130,
             "mean": 0.13, "std": 0.336},
            {"name": "v2", "is_control": False, "n": 0, "conversions": 0,
             "mean": None, "std": None},
        ],
    }  # fmt: skip


def _traces(figure: go.Figure) -> dict[str, dict[str, Any]]:
    """The figure's traces by name, as JSON (names are unique in every chart)."""
    data = charts.figure_json(figure)["data"]
    names = [trace["name"] for trace in data]
    assert len(names) == len(set(names)), names
    return {trace["name"]: trace for trace in data}


def _annotations(figure: go.Figure) -> list[str]:
    return [a["text"] for a in charts.figure_json(figure)["layout"].get("annotations", [])]


def _assert_json_safe(figure: go.Figure) -> dict[str, Any]:
    payload = charts.figure_json(figure)
    text = json.dumps(payload, allow_nan=False)
    assert json.loads(text) == payload
    assert payload["layout"]["template"]["layout"]["paper_bgcolor"] == "white"  # plotly_white
    assert payload["layout"]["autosize"] is True
    assert payload["layout"]["legend"]["orientation"] == "h"
    return payload


# --- experiment charts -------------------------------------------------------------------


def test_conversion_over_time_draws_a_line_and_a_band_per_variant() -> None:
    series = _timeseries()
    figure = charts.conversion_over_time(series, "binary")
    traces = _traces(figure)
    assert set(traces) == {"control", "treatment", "v2", "control CI", "treatment CI", "v2 CI"}
    for name, data in series["variants"].items():
        line = traces[name]
        assert line["y"] == data["value"]
        assert line["x"] == ["2025-03-01 10:00", "2025-03-01 11:00", "2025-03-01 12:00"]
        assert line.get("showlegend", True) is True
        band = traces[f"{name} CI"]
        assert band["fill"] == "toself" and band["showlegend"] is False
        assert band["legendgroup"] == line["legendgroup"] == name
        known = [i for i, low in enumerate(data["ci_lower"]) if low is not None]
        assert band["y"] == [data["ci_upper"][i] for i in known] + [
            data["ci_lower"][i] for i in reversed(known)
        ]
        assert band["fillcolor"].startswith("rgba(")
    assert traces["control"]["line"]["color"] == charts.CONTROL_COLOR
    assert traces["treatment"]["line"]["color"] != traces["v2"]["line"]["color"]
    payload = _assert_json_safe(figure)
    assert payload["layout"]["yaxis"]["tickformat"].endswith("%")
    assert _annotations(figure) == []


def test_conversion_over_time_of_a_mean_has_lines_without_bands() -> None:
    series = _timeseries()
    for data in series["variants"].values():
        data["ci_lower"], data["ci_upper"] = [], []
    traces = _traces(charts.conversion_over_time(series, "continuous"))
    assert set(traces) == {"control", "treatment", "v2"}
    assert traces["treatment"]["y"] == series["variants"]["treatment"]["value"]


def test_the_control_keeps_its_colour_when_it_is_not_first() -> None:
    series = _timeseries()
    traces = _traces(charts.samples_over_time(series, control="treatment"))
    assert traces["treatment"]["line"]["color"] == charts.CONTROL_COLOR
    assert traces["control"]["line"]["color"] == charts.TREATMENT_COLORS[0]
    # Inferred from the lift series: the one variant without a lift is the control.
    inferred = _traces(charts.samples_over_time(series))
    assert inferred["control"]["line"]["color"] == charts.CONTROL_COLOR


def test_lift_over_time_has_band_line_and_dashed_sequence_per_treatment() -> None:
    series = _timeseries()
    figure = charts.lift_over_time(series)
    traces = _traces(figure)
    assert set(traces) == {
        f"{name}{suffix}" for name in ("treatment", "v2") for suffix in ("", " CI", " (sequence)")
    }
    for name, data in series["lift"].items():
        assert traces[name]["y"] == data["lift"]
        sequence = traces[f"{name} (sequence)"]
        assert sequence["line"]["dash"] == "dash"
        assert sequence["y"] == [*data["cs_lower"], None, *data["cs_upper"]]
        assert traces[f"{name} CI"]["fill"] == "toself"
    # Treatment colours match the other charts' (the control has no lift series).
    samples = _traces(charts.samples_over_time(series))
    assert traces["v2"]["line"]["color"] == samples["v2"]["line"]["color"]
    payload = _assert_json_safe(figure)
    zero = [s for s in payload["layout"]["shapes"] if s["type"] == "line"]
    assert zero and zero[0]["y0"] == zero[0]["y1"] == 0
    assert payload["layout"]["yaxis"]["tickformat"].endswith("%")


def test_lift_over_time_of_a_mean_says_why_it_is_empty() -> None:
    series = _timeseries()
    series["lift"] = {}
    assert _annotations(charts.lift_over_time(series)) == [charts.NO_DATA]


def test_samples_over_time_draws_cumulative_users_per_variant() -> None:
    series = _timeseries()
    figure = charts.samples_over_time(series)
    traces = _traces(figure)
    assert set(traces) == {"control", "treatment", "v2"}
    for name, data in series["variants"].items():
        assert traces[name]["y"] == data["samples"]
    payload = _assert_json_safe(figure)
    assert payload["layout"]["yaxis"]["tickformat"].startswith(",")  # thousands separators


@pytest.mark.parametrize(
    "draw",
    [
        lambda s: charts.conversion_over_time(s, "binary"),
        charts.lift_over_time,
        charts.samples_over_time,
    ],
    ids=["conversion", "lift", "samples"],
)
def test_a_timeseries_without_hours_says_no_data_yet(draw: Any) -> None:
    figure = draw(_empty_timeseries())
    assert _annotations(figure) == [charts.NO_DATA]
    _assert_json_safe(figure)
    lines = [t for t in charts.figure_json(figure)["data"] if t.get("showlegend", True)]
    assert {t["name"] for t in lines} >= {"treatment"}


def test_posteriors_are_beta_densities_for_a_rate() -> None:
    results = _results()
    figure = charts.posteriors(results)
    traces = _traces(figure)
    assert set(traces) == {"control", "treatment", "v2"}
    control, treatment = traces["control"], traces["treatment"]
    x = np.array(control["x"])
    assert len(x) == 200 and control["x"] == treatment["x"]
    # The range covers both posteriors' central 1 - 2e-4.
    assert x[0] == pytest.approx(distributions.beta(101, 901).ppf(1e-4))
    assert x[-1] == pytest.approx(distributions.beta(131, 871).isf(1e-4))
    np.testing.assert_allclose(control["y"], distributions.beta(101, 901).pdf(x), rtol=1e-12)
    np.testing.assert_allclose(treatment["y"], distributions.beta(131, 871).pdf(x), rtol=1e-12)
    assert traces["v2"]["y"] == []  # no users yet: an empty curve, but still its legend entry
    assert x[np.argmax(treatment["y"])] == pytest.approx(130 / 1000, abs=2e-3)
    payload = _assert_json_safe(figure)
    assert payload["layout"]["xaxis"]["tickformat"].endswith("%")


def test_posteriors_are_normal_for_a_mean() -> None:
    traces = _traces(charts.posteriors(_results("continuous")))
    control = traces["control"]
    x = np.array(control["x"])
    expected = distributions.norm(0.1, 0.3 / math.sqrt(1000)).pdf(x)
    np.testing.assert_allclose(control["y"], expected, rtol=1e-12)
    assert traces["v2"]["y"] == []


def test_posteriors_without_users_say_no_data_yet() -> None:
    results = _results()
    for variant in results["variants"]:
        variant.update(n=0, conversions=0)
    figure = charts.posteriors(results)
    assert _annotations(figure) == [charts.NO_DATA]
    assert set(_traces(figure)) == {"control", "treatment", "v2"}
    _assert_json_safe(figure)


# --- planner charts ----------------------------------------------------------------------


def test_sensitivity_chart_plots_days_over_lift_and_marks_the_plan() -> None:
    plan = plan_duration(0.1, 0.1, daily_traffic=1000)
    curve = sensitivity_curve(plan)
    figure = charts.sensitivity_chart(curve)
    traces = _traces(figure)
    assert traces["Days needed"]["x"] == list(curve.lifts)
    assert traces["Days needed"]["y"] == list(curve.days)
    assert traces["Planned lift"]["x"] == [0.1]
    assert traces["Planned lift"]["y"] == [plan.days]
    payload = _assert_json_safe(figure)
    assert payload["layout"]["xaxis"]["tickformat"].endswith("%")
    assert [s["x0"] for s in payload["layout"]["shapes"]] == [0.1]


def test_power_heatmap_z_is_the_grid_with_the_target_contour() -> None:
    # Fixed-horizon, so the plan is R's: power.prop.test(p1=.2, p2=.25, power=.8) -> 1093.7.
    plan = plan_duration(0.2, 0.25, daily_traffic=200, sequential=False)
    grid = power_grid(plan)
    figure = charts.power_heatmap(grid, planned_samples=plan.control_samples)
    traces = _traces(figure)
    heatmap = traces["Power"]
    assert heatmap["type"] == "heatmap"
    assert heatmap["z"] == [list(row) for row in grid.power]
    assert heatmap["x"] == list(grid.sample_sizes) and heatmap["y"] == list(grid.lifts)
    contour = traces["Target power 80%"]
    assert contour["type"] == "contour"
    assert contour["contours"]["start"] == contour["contours"]["end"] == 0.8
    assert traces["Plan"]["x"] == [1094] and traces["Plan"]["y"] == [0.25]
    _assert_json_safe(figure)


# --- bandit simulation -------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulations() -> dict[str, SimulationResult]:
    policies = {
        "Epsilon-greedy": EpsilonGreedyConfig(),
        "UCB1": UCB1Config(),
        "Thompson": ThompsonConfig(),
        "Fixed split": FixedSplitConfig.uniform(2),
    }
    return {
        name: simulate(policy, [0.05, 0.1], horizon=300, runs=5, seed=3)
        for name, policy in policies.items()
    }


def test_regret_chart_has_a_line_per_policy_with_the_final_se(
    simulations: dict[str, SimulationResult],
) -> None:
    figure = charts.regret_chart(simulations)
    traces = _traces(figure)
    assert list(traces) == list(simulations)
    for name, result in simulations.items():
        trace = traces[name]
        assert trace["x"] == list(range(1, 301))
        assert trace["y"] == result.mean_cumulative_regret.tolist()
        errors = trace["error_y"]["array"]
        assert errors[-1] == result.final_regret_se and set(errors[:-1]) == {None}
    assert traces["Fixed split"]["line"]["color"] == charts.CONTROL_COLOR
    _assert_json_safe(figure)


def test_regret_chart_thins_a_long_horizon_to_exact_points(
    simulations: dict[str, SimulationResult],
) -> None:
    traces = _traces(charts.regret_chart(simulations, max_points=50))
    result = simulations["Thompson"]
    x = traces["Thompson"]["x"]
    assert len(x) == 50 and x[0] == 1 and x[-1] == 300
    assert traces["Thompson"]["y"] == [float(result.mean_cumulative_regret[i - 1]) for i in x]


def test_regret_chart_without_results_says_no_data_yet() -> None:
    assert _annotations(charts.regret_chart({})) == [charts.NO_DATA]


# --- JSON --------------------------------------------------------------------------------


def test_figure_json_turns_arrays_and_non_finite_numbers_into_plain_json() -> None:
    figure = go.Figure(
        [
            go.Scatter(x=np.arange(4), y=np.array([0.5, np.nan, np.inf, -np.inf])),
            go.Heatmap(z=np.arange(6, dtype=np.float32).reshape(2, 3)),
        ]
    )
    raw = figure.to_plotly_json()
    assert isinstance(raw["data"][0]["x"], dict)  # plotly's base64 typed array
    payload = charts.figure_json(figure)
    assert payload["data"][0]["x"] == [0, 1, 2, 3]
    assert payload["data"][0]["y"] == [0.5, None, None, None]
    assert payload["data"][1]["z"] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    json.dumps(payload, allow_nan=False)


def test_variant_colors_repeat_past_the_palette() -> None:
    names = ["c", *[f"t{i}" for i in range(12)]]
    colors = charts.variant_colors(names)
    assert colors["c"] == charts.CONTROL_COLOR
    assert colors["t0"] == colors["t9"] == charts.TREATMENT_COLORS[0]
    assert len({colors[f"t{i}"] for i in range(9)}) == 9


def _two_weeks(min_sample_size: int = 0) -> dict[str, Any]:
    """14 days of hourly data through the real timeseries view: a +24% lift, 60 users an hour
    per arm, whose first hours have intervals hundreds of percent wide."""
    rng = np.random.default_rng(8)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    hours = [
        HourCounts(
            hour=start + timedelta(hours=h),
            variants={
                "control": VariantCounts(samples=60, conversions=int(rng.binomial(60, 0.10))),
                "treatment": VariantCounts(samples=60, conversions=int(rng.binomial(60, 0.124))),
            },
        )
        for h in range(14 * 24)
    ]
    x = experiment("exp-two-weeks", min_sample_size=min_sample_size)
    return reports.timeseries_view(x, hours)


@pytest.mark.parametrize("min_sample_size", [0, 5000])
def test_lift_axis_follows_the_data_after_the_minimum_sample(min_sample_size: int) -> None:
    series = _two_weeks(min_sample_size)
    lift = series["lift"]["treatment"]
    first_width = lift["cs_upper"][0] - lift["cs_lower"][0]
    assert first_width > 2.0  # the first hour's sequence is more than 200 points wide
    payload = _assert_json_safe(charts.lift_over_time(series))
    low, high = payload["layout"]["yaxis"]["range"]
    samples = series["variants"]["control"]["samples"]
    floor = min_sample_size or charts.BURN_IN_SHARE * samples[-1]
    after = [i for i, n in enumerate(samples) if n >= floor]
    shown = [lift[k][i] for k in ("lift", "ci_lower", "ci_upper", "cs_lower", "cs_upper")
             for i in after]  # fmt: skip
    assert low <= min(min(shown), 0.0) and high >= max(shown)
    assert high - low < 1.2 * (max(max(shown), 0.0) - min(min(shown), 0.0)) + 0.02
    assert high - low < first_width / 3  # the +24% line is no longer flattened
    assert low > -1.0 - 0.1  # and a lift interval never reaches below -100%


def test_lift_chart_without_any_defined_lift_says_so() -> None:
    series = _timeseries()
    for data in series["lift"].values():
        for key in data:
            data[key] = [None] * len(HOURS)
    assert _annotations(charts.lift_over_time(series)) == [charts.NO_LIFT]


def test_a_cuped_plans_charts_name_the_correlation_and_draw_the_plan_without_it() -> None:
    plan = plan_duration(0.1, 0.05, 20000, covariate_correlation=0.7)
    plain = plan_duration(0.1, 0.05, 20000)
    figure = charts.sensitivity_chart(sensitivity_curve(plan))
    traces = {trace.name: trace for trace in figure.data}
    assert list(traces["Without CUPED"].y) == list(sensitivity_curve(plain).days)
    assert list(traces["Days needed with CUPED (ρ = 0.7)"].y) == list(sensitivity_curve(plan).days)
    heatmap = charts.power_heatmap(power_grid(plan))
    assert heatmap.data[0].name == "Power with CUPED (ρ = 0.7)"
    assert charts.power_heatmap(power_grid(plain)).data[0].name == "Power"
