"""The command line: readable tables, JSON that matches the library, exit codes; the
management tables and CSV from real answers of :mod:`abscope.reports`; the local bandit
simulation; and which packages each command needs."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import abscope
from abscope import reports
from abscope.cli import app, experiments, export, planning, simulate, views
from abscope.models import Status, VariantCounts
from abscope.stats import AnalysisOptions, ProportionStats, analyze_experiment, plan_duration
from abscope.storage.base import HourCounts
from tests.fixtures.factories import T0, experiment
from tests.fixtures.light_install import CLI_EXTRA_LACKS, TYPER_NEEDS, run_without

runner = CliRunner()
SRC = Path(abscope.__file__).resolve().parents[1]


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


# --- the package: version, light installs ----------------------------------------------------


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"abscope {abscope.__version__}\n"


def test_the_tuning_default_is_the_analysis_one() -> None:
    from abscope.stats.sequential import DEFAULT_TUNING_N

    assert planning.DEFAULT_TUNING_N == DEFAULT_TUNING_N


def test_without_typer_abscope_says_what_to_install_in_one_line() -> None:
    run = run_without(["typer"], ["experiments", "list"])
    assert run.returncode == 1
    assert run.stderr == "abscope: the command line needs typer: pip install 'abscope[cli]'\n"
    assert run.stdout == ""


def test_the_cli_extra_alone_runs_version_and_the_management_help() -> None:
    for args in (["--version"], ["experiments", "--help"], ["experiments", "create", "--help"]):
        run = run_without(CLI_EXTRA_LACKS, args, private=TYPER_NEEDS)
        assert run.returncode == 0, run.stderr
        assert not [a for a in run.attempts if "(by abscope" in a], run.attempts
    assert "--control-model" in run.stdout


@pytest.mark.parametrize(
    ("args", "missing"),
    [
        (["plan", "--baseline-rate", "0.1", "--min-relative-lift", "0.05",
          "--daily-traffic", "100"], "numpy"),
        (["simulate", "--rates", "0.1,0.2"], "numpy"),
    ],
)  # fmt: skip
def test_a_command_of_the_server_extra_says_so_without_it(args: list[str], missing: str) -> None:
    run = run_without(CLI_EXTRA_LACKS, args, private=TYPER_NEEDS)
    assert run.returncode == 1
    assert run.stderr == (
        f"abscope: this command needs the server extra ({missing} is missing):"
        " pip install 'abscope[server]'\n"
    )


# --- simulate --------------------------------------------------------------------------------


@pytest.mark.parametrize("runs", [2, 3, 9, 10, 11, 21, 50, 200])
def test_chunks_cover_every_run_with_two_at_least(runs: int) -> None:
    sizes = simulate.chunk_sizes(runs)
    assert sum(sizes) == runs
    assert min(sizes) >= 2
    assert max(sizes) <= simulate.CHUNK_RUNS + 1


SIMULATE = ["simulate", "--rates", "0.05,0.1", "--horizon", "200", "--runs", "20", "--seed", "7"]


def test_simulate_json_is_the_same_with_and_without_the_bar() -> None:
    quiet = runner.invoke(app, [*SIMULATE, "--json"])
    shown = runner.invoke(app, [*SIMULATE, "--json", "--progress"])
    assert quiet.exit_code == shown.exit_code == 0, quiet.output
    assert json.loads(quiet.stdout) == json.loads(shown.stdout)
    assert "simulating [" not in quiet.stderr  # CliRunner's stderr is not a terminal
    assert shown.stderr.rstrip().endswith("80/80 runs")  # 4 policies x 20 runs, in chunks
    assert shown.stderr.count("\r") == 4 * len(simulate.chunk_sizes(20))


def test_simulate_shows_the_bar_by_default_when_stderr_is_a_terminal() -> None:
    """A real process whose stderr is a pseudo-terminal: the bar is drawn without
    ``--progress``, and ``--no-progress`` silences it."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), *sys.path])}
    drawn = {}
    for flag in ([], ["--no-progress"]):
        primary, secondary = pty.openpty()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "abscope.cli", *SIMULATE, "--runs", "4", "--json", *flag],
                stdout=subprocess.PIPE, stderr=secondary, env=environment, timeout=120,
                check=False,
            )  # fmt: skip
            os.close(secondary)
            secondary = -1
            drawn[bool(flag)] = _read_all(primary)
        finally:
            os.close(primary)
            if secondary >= 0:
                os.close(secondary)
        assert done.returncode == 0
        assert json.loads(done.stdout)["runs"] == 4
    assert "simulating [" in drawn[False] and "16/16 runs" in drawn[False]
    assert drawn[True] == ""


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_simulate_pools_the_chunks_like_the_simulator() -> None:
    data = json.loads(runner.invoke(app, [*SIMULATE, "--json"]).stdout)
    assert set(data["final_regret"]) == {"Epsilon-greedy", "UCB1", "Thompson", "Fixed split"}
    # A fixed 50/50 split loses 0.5 x (0.10 - 0.05) per user: 5.0 over 200 users, exactly
    # in expectation; the pooled mean of 20 runs lies within 4 standard errors of it.
    fixed, se = data["final_regret"]["Fixed split"], data["final_regret_se"]["Fixed split"]
    assert abs(fixed - 5.0) < 4 * se
    assert 0.4 < data["best_arm_share"]["Fixed split"] < 0.6
    # One chunk's figures are the simulator's own for that chunk's seed.
    from abscope.bandits import FixedSplitConfig
    from abscope.bandits.simulator import simulate as simulator

    one_chunk = [*SIMULATE[:5], "--runs", "10", "--seed", "7", "--json"]
    seeds = json.loads(runner.invoke(app, one_chunk).stdout)
    import numpy as np

    chunk_seed = int(np.random.SeedSequence([7, 0]).generate_state(1)[0])
    alone = simulator(FixedSplitConfig.uniform(2), [0.05, 0.1], 200, 10, chunk_seed)
    assert seeds["final_regret"]["Fixed split"] == pytest.approx(alone.final_regret_mean)


def test_simulate_table_sorts_by_regret() -> None:
    result = runner.invoke(app, [*SIMULATE, "--policy", "fixed-split", "--policy", "thompson"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "20 runs of 200 users, true rates 0.05, 0.1, seed 7"
    assert lines[1].split() == ["policy", "final", "regret", "std", "error", "best", "arm", "share"]
    assert [line.split()[0] for line in lines[3:5]] == ["Thompson", "Fixed"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rates", "0.1"], "at least two"),
        (["--rates", "0.1,x"], "expected rates"),
        (["--rates", "1.5,0.1"], "true_rates[0]"),
        (["--rates", "0.1,0.2", "--runs", "1"], "--runs"),
        (["--rates", "0.1,0.2", "--policy", "greedy"], "--policy"),
    ],
)
def test_simulate_bad_input_exits_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["simulate", *args])
    assert result.exit_code == 2
    assert message in result.output


# --- the management tables and CSV, from real answers of abscope.reports --------------------


def _answers(
    counts: dict[str, VariantCounts], **changes: object
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A results and a time-series answer, as JSON, of an experiment with ``counts``."""
    x = experiment("ranker-v2", status=Status.RUNNING, started_at=T0, **changes)
    results = reports.results_view(x, 0, counts, T0 + timedelta(days=2))
    hour = T0.replace(minute=0)
    hours = [
        HourCounts(hour, {n: VariantCounts(samples=c.samples // 2) for n, c in counts.items()}),
        HourCounts(
            hour + timedelta(hours=1),
            {n: VariantCounts(samples=c.samples - c.samples // 2, conversions=c.conversions)
             for n, c in counts.items()},
        ),
    ]  # fmt: skip
    series = reports.timeseries_view(x, hours)
    return json.loads(json.dumps(results)), json.loads(json.dumps(series))


def test_results_table_shows_the_numbers_of_the_answer() -> None:
    results, _ = _answers(
        {"control": VariantCounts(samples=1000, conversions=100),
         "treatment": VariantCounts(samples=1000, conversions=130)},
        min_relative_lift=0.05,
    )  # fmt: skip
    text = views.format_results(results)
    c = results["comparisons"][0]
    row = [line for line in text.splitlines() if line.startswith("treatment  ")][-1]
    assert f"{c['relative']['estimate']:+.2%}" in row
    interval = c["primary"]["relative_ci"]
    assert f"{interval['lower']:+.1%} to {interval['upper']:+.1%}" in row
    assert f"{c['primary']['adjusted_p_value']:.4f}" in row
    assert f"{c['bayesian']['chance_to_beat_control']:.1%}" in row
    assert "always-valid p" in text and "95% CS of the lift" in text  # sequential by default
    assert "10.00%" in text and "13.00%" in text
    assert f"Decision: {results['decision']['message']}" in text


def test_results_table_labels_fixed_horizon_figures_as_such() -> None:
    results, _ = _answers(
        {"control": VariantCounts(samples=1000, conversions=100),
         "treatment": VariantCounts(samples=1000, conversions=130)},
        sequential=False,
    )  # fmt: skip
    text = views.format_results(results)
    assert "95% CI of the lift" in text and "p-value" in text
    figures = [x for x in text.split("\n\n", 1)[1].splitlines() if "Sample ratio" not in x]
    assert not any("always-valid" in line for line in figures)  # the SRM check's is its own
    p = results["comparisons"][0]["primary"]["adjusted_p_value"]
    assert f"{p:.4f}" in text


def test_results_table_prints_nulls_with_their_reason_never_zero() -> None:
    results, _ = _answers(
        {"control": VariantCounts(samples=100, conversions=0),
         "treatment": VariantCounts(samples=100, conversions=5)}
    )  # fmt: skip
    assert results["relative_lift"] is None and results["comparisons"][0]["power"] is None
    text = views.format_results(results)
    row = next(
        line for line in text.splitlines() if line.startswith("treatment  ") and "n/a" in line
    )
    assert row.count("n/a (zero_baseline)") == 2  # the lift and its interval
    assert "n/a (no_min_lift)" in row  # power without a pre-registered lift
    assert "+0.00%" not in row and " 0%" not in row


def test_results_table_of_an_empty_experiment() -> None:
    results, _ = _answers({})
    text = views.format_results(results)
    assert "n/a (no_samples)" in text
    assert "Sample ratio (chi-square): n/a" in text
    assert "Sample ratio (always-valid, Dirichlet-multinomial): n/a (no_samples)" in text
    assert "consistent" not in text


def test_results_table_prints_the_always_valid_srm_beside_the_chi_square() -> None:
    results, _ = _answers(
        {"control": VariantCounts(samples=5400, conversions=500),
         "treatment": VariantCounts(samples=4600, conversions=500)}
    )  # fmt: skip
    srm = results["srm_sequential"]
    assert srm["mismatch"] and results["srm"]["mismatch"]  # 54/46 of 10,000 users
    text = views.format_results(results)
    line = next(x for x in text.splitlines() if x.startswith("Sample ratio (always-valid"))
    assert f"p = {srm['p_value']:.4f}" in line or "p = <0.0001" in line
    assert "MISMATCH" in line and "valid at every look" in line
    balanced, _ = _answers(
        {"control": VariantCounts(samples=5010, conversions=500),
         "treatment": VariantCounts(samples=4990, conversions=500)}
    )  # fmt: skip
    text = views.format_results(balanced)
    line = next(x for x in text.splitlines() if x.startswith("Sample ratio (always-valid"))
    assert f"p = {balanced['srm_sequential']['p_value']:.4f}" in line
    assert "consistent with the weights" in line


def test_results_csv_parses_and_matches_the_answer() -> None:
    results, _ = _answers(
        {"control": VariantCounts(samples=1000, conversions=100),
         "treatment": VariantCounts(samples=1000, conversions=0)}
    )  # fmt: skip
    text = export.to_csv(export.RESULTS_COLUMNS, export.results_rows(results))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(export.RESULTS_COLUMNS)
    assert [r["variant"] for r in rows] == ["control", "treatment"]
    for row, variant in zip(rows, results["variants"], strict=True):
        assert int(row["users"]) == variant["n"]
        assert int(row["conversions"]) == variant["conversions"]
        assert float(row["mean"]) == variant["mean"]  # exactly: repr round-trips
        assert float(row["ci_lower"]) == variant["ci"]["lower"]
    control, treatment = rows
    assert control["relative_lift"] == "" and control["is_control"] == "true"
    c = results["comparisons"][0]
    assert float(treatment["relative_lift"]) == c["relative"]["estimate"] == -1.0
    assert treatment["lift_lower"] == "" and c["primary"]["relative_ci"] is None  # undefined
    assert treatment["power"] == ""  # null: no minimum lift
    assert float(treatment["p_value"]) == c["primary"]["adjusted_p_value"]


def test_timeseries_csv_has_a_row_per_hour_and_variant() -> None:
    _, series = _answers(
        {"control": VariantCounts(samples=400, conversions=40),
         "treatment": VariantCounts(samples=400, conversions=60)}
    )  # fmt: skip
    text = export.to_csv(export.TIMESERIES_COLUMNS, export.timeseries_rows(series))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["hour"][11:16], r["variant"]) for r in rows] == [
        ("10:00", "control"), ("10:00", "treatment"), ("11:00", "control"), ("11:00", "treatment")
    ]  # fmt: skip
    assert [int(r["samples"]) for r in rows] == [200, 200, 400, 400]  # cumulative
    first = rows[1]
    assert first["conversions"] == "0" and first["lift"] == ""  # no conversions: no lift
    assert first["lift_reason"] == series["lift"]["treatment"]["reason"][0] == "zero_baseline"
    last = rows[3]
    lift = series["lift"]["treatment"]
    assert float(last["lift"]) == lift["lift"][1]
    assert float(last["lift_cs_upper"]) == lift["cs_upper"][1]
    assert rows[2]["lift"] == ""  # the control has no lift


def test_list_and_show_tables() -> None:
    x = json.loads(experiment("ranker-v2", status=Status.RUNNING, started_at=T0).model_dump_json())
    draft = json.loads(experiment("ranker-v3", min_relative_lift=0.05).model_dump_json())
    text = views.format_list([x, draft], {"ranker-v2": 1234})
    lines = text.splitlines()
    assert lines[0].split() == ["id", "status", "variants", "traffic", "started", "users"]
    assert lines[2].split() == ["ranker-v2", "running", "control/treatment", "100%",
                                "2026-11-24", "10:15", "UTC", "1,234"]  # fmt: skip
    assert lines[3].split()[-4:] == ["n/a", "(not", "started)", "0"]
    shown = views.format_experiment(draft)
    assert "min relative lift  +5.0%" in shown
    assert "started            n/a (not started)" in shown
    assert "control    ranker-v1   50.0%  yes" in shown
    assert "min relative lift  n/a (not set)" in views.format_experiment(x)


@pytest.mark.parametrize(
    ("spec", "variant"),
    [
        ("a=m1", {"name": "a", "model_id": "m1"}),
        ("a=m1:0.25", {"name": "a", "model_id": "m1", "weight": 0.25}),
        ("a=hub:org/model:v2", {"name": "a", "model_id": "hub:org/model:v2"}),
    ],
)
def test_parse_variant(spec: str, variant: dict[str, Any]) -> None:
    assert experiments.parse_variant(spec) == variant
