"""The command line: readable tables, JSON that matches the library, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abscope.cli import app
from abscope.stats import ProportionStats, analyze_experiment, plan_duration

runner = CliRunner()


def test_plan_prints_the_planner_numbers() -> None:
    result = runner.invoke(
        app, ["plan", "--baseline-rate", "0.1", "--min-relative-lift", "0.05",
              "--daily-traffic", "20000", "--allocation", "0.5"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    plan = plan_duration(0.1, 0.05, 20000, allocation=0.5)
    assert f"{plan.control_samples:,}" in result.output
    assert f"{plan.total_samples:,}" in result.output
    assert f"days                      {plan.days}" in result.output
    assert "planned for               sequential" in result.output
    other = plan.fixed_horizon
    assert f"fixed-horizon instead     {other.total_samples:,} samples, {other.days:,} days" in (
        result.output
    )


def test_plan_fixed_horizon_shows_the_sequential_figures_alongside() -> None:
    result = runner.invoke(
        app, ["plan", "--baseline-rate", "0.1", "--min-relative-lift", "0.05",
              "--daily-traffic", "20000", "--fixed-horizon", "--sequential-tuning-n", "100000",
              "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    plan = plan_duration(0.1, 0.05, 20000, sequential=False, sequential_tuning_n=100_000)
    assert data["mode"] == "fixed_horizon" and data["sequential"] is False
    assert data["total_samples"] == plan.fixed_horizon.total_samples
    assert data["always_valid"]["total_samples"] == plan.always_valid.total_samples
    assert data["sequential_tuning_n"] == 100_000


def test_plan_json_equals_the_library() -> None:
    result = runner.invoke(
        app, ["plan", "--baseline-rate", "0.03", "--min-relative-lift", "0.1",
              "--daily-traffic", "5000", "--treatment-share", "0.2", "--one-sided", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    plan = plan_duration(0.03, 0.1, 5000, treatment_share=0.2, two_sided=False)
    assert (data["control_samples"], data["treatment_samples"], data["days"]) == (
        plan.control_samples,
        plan.treatment_samples,
        plan.days,
    )


def test_analyze_the_issue_example() -> None:
    result = runner.invoke(app, ["analyze", "--counts", "control=150/1000", "treatment=180/1000"])
    assert result.exit_code == 0, result.output
    assert "15.00%" in result.output and "18.00%" in result.output
    assert "+20.00%" in result.output  # relative lift
    assert "0.0707" in result.output  # pooled z-test p-value
    assert "Decision: Keep running" in result.output


def test_analyze_json_matches_the_library_and_has_no_infinities() -> None:
    result = runner.invoke(
        app, ["analyze", "--json", "--counts", "a=0/0", "b=5/100", "--weights", "a=0.5,b=0.5"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)  # strict JSON: an unbounded interval is null
    assert data["comparisons"][0]["absolute"]["ci"]["lower"] is None
    library = analyze_experiment(
        {"a": ProportionStats(0, 0), "b": ProportionStats(100, 5)}, [0.5, 0.5]
    )
    assert data["decision"]["message"] == library.decision.message


def test_analyze_means() -> None:
    result = runner.invoke(
        app, ["analyze", "--means", "control=1000:10.2:3.1", "treatment=1000:10.6:3.0", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["metric"] == "continuous"
    assert data["comparisons"][0]["test"]["df"] > 1900


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--baseline-rate", "1.5", "--min-relative-lift", "0.1", "--daily-traffic", "10"],
         "baseline_rate"),
        (["plan", "--baseline-rate", "0.1", "--min-relative-lift", "0.1", "--daily-traffic", "0"],
         "daily_traffic"),
        (["analyze", "--counts", "control=150/100", "treatment=1/2"], "conversions"),
        (["analyze", "--counts", "control=150", "treatment=1/2"], "CONVERSIONS/USERS"),
        (["analyze", "--counts", "control=1/10"], "at least 2"),
        (["analyze", "a=1/10", "b=2/10", "--weights", "0.6,0.6"], "weights"),
        (["analyze", "a=1/10", "b=2/10", "--correction", "sidak"], "correction"),
        (["analyze", "--counts", "--means", "a=1/10", "b=2/10"], "not both"),
        (["analyze", "a=1/10", "a=2/10"], "twice"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_and_names_the_argument(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_installed_console_script_runs() -> None:
    script = Path(sys.executable).parent / "abscope"
    completed = subprocess.run(
        [str(script), "analyze", "--counts", "control=150/1000", "treatment=180/1000", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["control"] == "control"
