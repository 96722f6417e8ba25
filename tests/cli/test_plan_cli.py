"""``abscope plan``: percentages or fractions, the new inputs, and the library's plan.

Run as a real process (``python -m abscope.cli``) once, to check the installed entry point
prints what the library computes; the rest through typer's runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from abscope.cli import app
from abscope.cli.planning import parse_fraction
from abscope.jsonable import to_jsonable
from abscope.stats.planner import plan_duration

ROOT = Path(__file__).resolve().parents[2]


def _json(arguments: list[str]) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["plan", *arguments, "--json"])
    assert result.exit_code == 0, result.output
    plan: dict[str, Any] = json.loads(result.output)
    return plan


@pytest.mark.parametrize(
    ("text", "value"), [("10%", 0.1), ("0.1", 0.1), ("7.3%", 0.073), (" 50 % ", 0.5), ("1", 1.0)]
)
def test_a_percentage_is_the_decimal_fraction(text: str, value: float) -> None:
    assert parse_fraction(text, "--x") == value


def test_percent_and_fraction_arguments_give_the_same_plan() -> None:
    percent = _json(
        [
            "--baseline-rate",
            "10%",
            "--min-relative-lift",
            "5%",
            "--daily-traffic",
            "20000",
            "--allocation",
            "30%",
            "--power",
            "90%",
        ]
    )
    fraction = _json(
        [
            "--baseline-rate",
            "0.1",
            "--min-relative-lift",
            "0.05",
            "--daily-traffic",
            "20000",
            "--allocation",
            "0.3",
            "--power",
            "0.9",
        ]
    )
    assert percent == fraction == to_jsonable(plan_duration(0.1, 0.05, 20000, 0.3, power=0.9))


def test_a_continuous_plan_with_arms_and_its_warnings_in_words() -> None:
    arguments = ["plan", "--metric", "continuous", "--baseline-mean", "42", "--std", "30",
                 "--min-absolute-effect", "0.5", "--daily-traffic", "300", "--arms", "3",
                 "--max-days", "60"]  # fmt: skip
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    plan = plan_duration(
        None, None, 300, metric_type="continuous", baseline_mean=42.0, standard_deviation=30.0,
        min_absolute_effect=0.5, arms=3, max_days=60,
    )  # fmt: skip
    assert f"{plan.total_samples:,}" in result.output
    assert "alpha 0.025 per comparison (Holm)" in result.output
    assert [w.code for w in plan.warnings] == ["longer_than_a_year", "traffic_cannot_reach"]
    for warning in plan.warnings:
        assert f"Warning ({warning.code}): {warning.message}" in result.output


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--baseline-rate", "10x", "--min-relative-lift", "5%"], "--baseline-rate"),
        (["--baseline-rate", "10%"], "min_relative_lift"),  # no effect given
        (["--baseline-rate", "10%", "--min-relative-lift", "5%", "--arms", "1"], "arms"),
        (["--metric", "continuous", "--baseline-mean", "3", "--std", "1",
          "--min-absolute-effect", "5%"], "--min-absolute-effect"),  # a mean has no percent
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_naming_them(arguments: list[str], named: str) -> None:
    result = CliRunner().invoke(app, ["plan", *arguments, "--daily-traffic", "100"])
    assert result.exit_code == 2, result.output
    assert named in result.output


def test_the_real_command_prints_the_librarys_plan() -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    completed = subprocess.run(
        [sys.executable, "-m", "abscope.cli", "plan", "--baseline-rate", "4%",
         "--min-absolute-effect", "0.5%", "--arms", "3", "--daily-traffic", "5000", "--json"],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    expected = plan_duration(0.04, None, 5000, min_absolute_effect=0.005, arms=3)
    assert json.loads(completed.stdout) == to_jsonable(expected)


def test_a_covariate_correlation_prints_the_cuped_plan_and_the_plan_without_it() -> None:
    common = ["plan", "--baseline-rate", "10%", "--min-relative-lift", "5%",
              "--daily-traffic", "20000"]  # fmt: skip
    result = CliRunner().invoke(app, [*common, "--covariate-correlation", "0.7"])
    assert result.exit_code == 0, result.output
    cuped = plan_duration(0.1, 0.05, 20000, covariate_correlation=0.7)
    plain = plan_duration(0.1, 0.05, 20000)
    assert cuped.unadjusted is not None and cuped.days < plain.days
    lines = {line.split("  ")[1].strip(): line.strip() for line in result.output.splitlines()[1:]}
    assert lines["planned for"].endswith("CUPED-adjusted")
    assert lines["control samples"].endswith(f"{cuped.control_samples:,}")
    assert lines["days"].endswith(f"{cuped.days:,}")
    # The plan without CUPED is the plan of the same inputs without the correlation.
    assert lines["without CUPED"].endswith(
        f"{plain.control_samples:,} control, {plain.total_samples:,} samples, {plain.days:,} days"
    )
    assert "variance x 0.51" in lines["CUPED correlation"]
    assert _json([*common[1:], "--covariate-correlation", "0.7"]) == to_jsonable(cuped)


def test_without_a_correlation_the_output_has_no_cuped_line() -> None:
    result = CliRunner().invoke(
        app, ["plan", "--baseline-rate", "0.1", "--min-relative-lift", "0.05",
              "--daily-traffic", "20000"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "CUPED" not in result.output


@pytest.mark.parametrize("rho", ["1", "-0.2", "1.5", "nan"])
def test_a_correlation_outside_0_1_exits_2_naming_it(rho: str) -> None:
    result = CliRunner().invoke(
        app, ["plan", "--baseline-rate", "10%", "--min-relative-lift", "5%",
              "--daily-traffic", "100", "--covariate-correlation", rho],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "covariate_correlation" in result.output or "--covariate-correlation" in result.output
