"""The command line: readable tables, JSON that matches the library, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abscope.cli import app
from abscope.stats import AnalysisOptions, ProportionStats, analyze_experiment, plan_duration

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
    data = json.loads(result.output)  # strict JSON: an undefined interval is null
    absolute = data["comparisons"][0]["absolute"]
    assert (absolute["estimate"], absolute["ci"], absolute["reason"]) == (None, None, "no_samples")
    assert data["comparisons"][0]["p_value"] is None
    library = analyze_experiment(
        {"a": ProportionStats(0, 0), "b": ProportionStats(100, 5)}, [0.5, 0.5]
    )
    assert data["decision"]["message"] == library.decision.message


def test_undefined_values_are_null_in_json_and_a_dash_with_the_reason_in_the_table() -> None:
    args = ["analyze", "--counts", "control=0/100", "treatment=5/100"]
    data = json.loads(runner.invoke(app, [*args, "--json"]).output)
    relative = data["comparisons"][0]["relative"]
    assert (relative["estimate"], relative["ci"], relative["reason"]) == (
        None, None, "zero_baseline"
    )  # fmt: skip
    assert data["comparisons"][0]["sequential_relative"]["ci_lower"] is None
    assert data["comparisons"][0]["power_reason"] == "no_min_lift"
    table = runner.invoke(app, args).output
    row = [line for line in table.splitlines() if line.startswith("treatment  ")][-1]
    assert "0.0%" not in row and "\u2014" in row
    assert "treatment lift: \u2014 (zero_baseline" in table
    assert "Set a minimum relative lift" in table


@pytest.mark.parametrize("sequential", [True, False])
def test_the_table_shows_the_mode_in_force_first(sequential: bool) -> None:
    args = ["analyze", "--counts", "control=1500/10000", "treatment=1650/10000"]
    output = runner.invoke(app, [*args, "--sequential" if sequential else "--no-sequential"]).output
    library = analyze_experiment(
        {"control": ProportionStats(10_000, 1500), "treatment": ProportionStats(10_000, 1650)},
        [0.5, 0.5],
        options=AnalysisOptions(sequential=sequential),
    )
    c = library.comparisons[0]
    assert c.primary is not None and c.primary.relative_ci is not None
    header = next(line for line in output.splitlines() if line.startswith("vs control"))
    assert header.split()[4] == ("CS" if sequential else "CI")
    other = "fixed-horizon" if sequential else "sequential"
    assert f"{other} CI" in header and f"{other} p" in header
    primary = c.primary.relative_ci
    row = [line for line in output.splitlines() if line.startswith("treatment  ")][-1]
    assert row.index(f"{primary.lower:+.1%} to {primary.upper:+.1%}") < row.index(
        f"{c.secondary.relative_ci.lower:+.1%}"  # type: ignore[union-attr]
    )


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
        (["serve", "--workers", "0"], "workers must be at least 1"),
        (["serve", "--port", "70000"], "port must be"),
        (["serve", "--log-level", "loud"], "log_level must be one of"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_and_names_the_argument(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_serve_help_lists_the_access_log_and_says_it_is_off_by_default() -> None:
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    help_text = " ".join(result.output.split())  # as one line, whatever the wrapping
    assert "--access-log" in help_text and "--log-level" in help_text
    assert "Off by default" in help_text
    assert "SO_REUSEPORT" in help_text


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
