"""``abscope experiments ...`` against a real ``abscope serve`` with API keys, on a SQLite file.

The commands run in-process through typer's runner (fast), and once as a real subprocess
in which NumPy, SciPy and the server's packages cannot be imported, as with
``pip install 'abscope[cli]'``. The numbers the tables show are checked against the
server's own JSON answer, and against the users this test routed and the conversions it
logged.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

import abscope
from abscope.cli import app
from tests.fixtures.light_install import CLI_EXTRA_LACKS, TYPER_NEEDS, run_without
from tests.fixtures.uvicorn_server import AbscopeServer, free_port

ADMIN = "admin-key-for-the-cli-test"
INGEST = "ingest-key-for-the-cli-test"
READ = "read-key-for-the-cli-test"
USERS = 60
NO_ENV: dict[str, str | None] = {"ABSCOPE_URL": None, "ABSCOPE_API_KEY": None}

README = Path(__file__).resolve().parents[2] / "README.md"
SRC = Path(abscope.__file__).resolve().parents[1]

runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AbscopeServer]:
    """One ``abscope serve`` with the three keys set, for the module (each test uses
    experiments of its own)."""
    tmp = tmp_path_factory.mktemp("cli-server")
    env = {
        "ABSCOPE_DB_PATH": str(tmp / "abscope.db"),
        "ABSCOPE_ADMIN_API_KEY": ADMIN,
        "ABSCOPE_INGEST_API_KEY": INGEST,
        "ABSCOPE_READ_API_KEY": READ,
    }
    with AbscopeServer(tmp / "server.log", env=env, health_path="/health") as started:
        yield started


def cli(server: AbscopeServer, *args: str, key: str | None = ADMIN) -> Result:
    """``abscope experiments *args --url <server> [--api-key key]``, in-process."""
    auth = ["--api-key", key] if key is not None else []
    return runner.invoke(app, ["experiments", *args, "--url", server.url, *auth], env=NO_ENV)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def route_and_convert(server: AbscopeServer, experiment_id: str) -> dict[str, Counter[str]]:
    """Route :data:`USERS` users through ``POST /route`` and log a conversion for every
    third one; the users and conversions per variant."""
    seen: dict[str, Counter[str]] = {"users": Counter(), "conversions": Counter()}
    headers = {"X-API-Key": INGEST}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as http:
        for i in range(USERS):
            user = f"user-{i}"
            answer = http.post("/route", json={"user_id": user, "experiment_id": experiment_id})
            assert answer.status_code == 200, answer.text
            variant = answer.json()["variant_name"]
            seen["users"][variant] += 1
            if i % 3 == 0:
                logged = http.post(
                    "/log",
                    json={"experiment_id": experiment_id, "user_id": user,
                          "variant_name": variant, "converted": True},
                )  # fmt: skip
                assert logged.status_code == 200, logged.text
                seen["conversions"][variant] += 1
    return seen


def test_create_start_route_read_export_complete(server: AbscopeServer, tmp_path: Path) -> None:
    created = ok(
        cli(server, "create", "--id", "ranker-v2", "--name", "Ranker v2",
            "--control-model", "ranker-v1", "--treatment-model", "ranker-v2",
            "--min-relative-lift", "0.05")
    )  # fmt: skip
    assert created.startswith("created ranker-v2 (draft): control=ranker-v1 (50%)")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"id": "three-arms", "name": "Three arms", "variants": [
        {"name": "a", "model_id": "m1", "weight": 0.5, "is_control": True},
        {"name": "b", "model_id": "m2", "weight": 0.25},
        {"name": "c", "model_id": "m3", "weight": 0.25}]}))  # fmt: skip
    assert (
        json.loads(ok(cli(server, "create", "--file", str(spec), "--json")))["id"] == "three-arms"
    )

    assert ok(cli(server, "start", "ranker-v2")).startswith("ranker-v2: running since ")
    seen = route_and_convert(server, "ranker-v2")

    listed = ok(cli(server, "list", key=READ)).splitlines()
    assert listed[0].split() == ["id", "status", "variants", "traffic", "started", "users"]
    rows = {line.split()[0]: line.split() for line in listed[2:]}
    assert rows["ranker-v2"][1:4] == ["running", "control/treatment", "100%"]
    assert rows["ranker-v2"][-1] == str(USERS)
    assert rows["three-arms"][1:3] == ["draft", "a/b/c"] and rows["three-arms"][-1] == "0"
    listed_json = json.loads(ok(cli(server, "list", "--json")))["experiments"]
    assert {"ranker-v2", "three-arms"} <= {e["id"] for e in listed_json}  # other tests add more

    shown = ok(cli(server, "show", "ranker-v2", key=READ))
    assert "min relative lift  +5.0%" in shown and "status             running" in shown
    assert "treatment  ranker-v2   50.0%" in shown
    assert shown.rstrip().endswith("start   status: draft -> running")

    answer = json.loads(ok(cli(server, "results", "ranker-v2", "--json", key=READ)))
    table = ok(cli(server, "results", "ranker-v2", key=READ))
    for v in answer["variants"]:
        name = v["name"]
        assert v["n"] == seen["users"][name] and v["conversions"] == seen["conversions"][name]
        row = next(line.split() for line in table.splitlines() if line.startswith(f"{name}  "))
        rate = seen["conversions"][name] / seen["users"][name]
        assert row[1:4] == [str(v["n"]), str(v["conversions"]), f"{rate:.2%}"]
    comparison = answer["comparisons"][0]
    row = [line for line in table.splitlines() if line.startswith("treatment  ")][-1]
    assert f"{comparison['relative']['estimate']:+.2%}" in row
    assert f"{comparison['primary']['adjusted_p_value']:.4f}" in row
    assert "always-valid p" in table
    assert f"Decision: {answer['decision']['message']}" in table

    exported = ok(cli(server, "export", "ranker-v2", key=READ))
    by_variant = {r["variant"]: r for r in csv.DictReader(io.StringIO(exported))}
    assert list(by_variant) == [v["name"] for v in answer["variants"]]
    for v in answer["variants"]:
        r = by_variant[v["name"]]
        assert (int(r["users"]), int(r["conversions"])) == (v["n"], v["conversions"])
        assert float(r["mean"]) == v["mean"] and float(r["ci_upper"]) == v["ci"]["upper"]
    assert float(by_variant["treatment"]["relative_lift"]) == comparison["relative"]["estimate"]

    hours = tmp_path / "hours.csv"
    done = cli(server, "export", "ranker-v2", "--what", "timeseries", "--output", str(hours),
               key=READ)  # fmt: skip
    assert done.exit_code == 0 and "(2 rows)" in done.stderr  # one hour, two variants
    series = json.loads(
        ok(cli(server, "export", "ranker-v2", "--what", "timeseries", "--format", "json"))
    )
    written = list(csv.DictReader(io.StringIO(hours.read_text())))
    assert [(r["hour"], r["variant"]) for r in written] == [
        (hour, name) for hour in series["hours"] for name in ("control", "treatment")
    ]
    assert sum(int(r["samples"]) for r in written[-2:]) == USERS  # cumulative at the end

    completed = ok(cli(server, "complete", "ranker-v2", "--winner", "treatment"))
    assert completed == "ranker-v2: completed, serving treatment to everyone\n"
    final = ok(cli(server, "results", "ranker-v2", key=READ))
    assert "Decision: Completed with treatment chosen as the winner." in final


def test_create_from_variant_options_and_from_stdin(server: AbscopeServer) -> None:
    made = json.loads(
        ok(cli(server, "create", "--id", "arms", "--name", "Arms", "--variant", "a=m1",
               "--variant", "b=hub:org/m2", "--variant", "c=m3", "--fixed-horizon", "--json"))
    )  # fmt: skip
    assert [(v["name"], v["model_id"], v["is_control"]) for v in made["variants"]] == [
        ("a", "m1", True), ("b", "hub:org/m2", False), ("c", "m3", False)
    ]  # fmt: skip
    assert sum(v["weight"] for v in made["variants"]) == pytest.approx(1.0)
    assert made["sequential"] is False
    body = {"id": "piped", "name": "Piped", "control_model_id": "a", "treatment_model_id": "b"}
    piped = runner.invoke(
        app, ["experiments", "create", "--file", "-", "--url", server.url, "--api-key", ADMIN],
        input=json.dumps(body), env=NO_ENV,
    )  # fmt: skip
    assert ok(piped).startswith("created piped (draft)")
    both = cli(server, "create", "--file", "-", "--name", "x")
    assert both.exit_code == 2 and "not both (--name)" in both.stderr


def test_errors_are_one_line_and_exit_1(server: AbscopeServer) -> None:
    ok(cli(server, "create", "--id", "errors", "--name", "Errors",
           "--control-model", "a", "--treatment-model", "b"))  # fmt: skip
    ok(cli(server, "start", "errors"))
    cases = [
        (("create", "--name", "x", "--control-model", "a", "--treatment-model", "b",
          "--traffic", "300"),
         "error: 422: body.traffic_percentage: Input should be less than or equal to 100"
         " (--traffic)"),
        (("complete", "errors", "--winner", "nope"), "error: 422: body.winner:"),
        (("resume", "errors"), "error: 409: cannot resume an experiment that is running"),
        (("show", "missing"), "error: 404: experiment 'missing' does not exist"),
    ]  # fmt: skip
    for args, message in cases:
        result = cli(server, *args)
        assert result.exit_code == 1, (args, result.stdout, result.stderr)
        assert result.stderr.startswith(message), (args, result.stderr)
        assert result.stderr.count("\n") == 1 and result.stdout == ""


@pytest.mark.parametrize(
    ("key", "status"), [(None, 401), ("wrong-key-of-the-cli-test", 401), (READ, 403)]
)
def test_a_missing_wrong_or_weaker_key_exits_1_and_says_to_check_it(
    server: AbscopeServer, key: str | None, status: int
) -> None:
    result = cli(server, "create", "--name", "Keys", "--control-model", "a",
                 "--treatment-model", "b", key=key)  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {status}: ")
    assert result.stderr.endswith("(check --api-key or ABSCOPE_API_KEY)\n")
    assert key is None or key not in result.stderr


def test_the_key_and_url_come_from_the_environment_too(server: AbscopeServer) -> None:
    env = {"ABSCOPE_URL": server.url, "ABSCOPE_API_KEY": READ}
    result = runner.invoke(app, ["experiments", "list", "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    assert "experiments" in json.loads(result.stdout)
    refused = runner.invoke(app, ["experiments", "list"], env={**env, "ABSCOPE_API_KEY": "x" * 20})
    assert refused.exit_code == 1 and refused.stderr.startswith("error: 401: ")


def test_an_unreachable_server_exits_1_and_a_missing_url_2() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["experiments", "list", "--url", url, "--timeout", "2"], env=NO_ENV)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot reach {url}: ConnectError")
    missing = runner.invoke(app, ["experiments", "list"], env=NO_ENV)
    assert missing.exit_code == 2 and "--url" in missing.stderr
    no_name = runner.invoke(app, ["experiments", "create", "--url", url], env=NO_ENV)
    assert no_name.exit_code == 2 and "--name" in no_name.stderr


def test_the_cli_extra_alone_manages_a_server_from_a_real_process(server: AbscopeServer) -> None:
    ok(cli(server, "create", "--id", "light", "--name", "Light", "--control-model", "a",
           "--treatment-model", "b"))  # fmt: skip
    run = run_without(
        CLI_EXTRA_LACKS,
        ["experiments", "show", "light"],
        private=TYPER_NEEDS,
        env={"ABSCOPE_URL": server.url, "ABSCOPE_API_KEY": READ},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("light\n  name               Light\n")
    assert not [a for a in run.attempts if "(by abscope" in a], run.attempts
    refused = run_without(
        CLI_EXTRA_LACKS,
        ["experiments", "start", "light", "--url", server.url, "--api-key", READ],
        private=TYPER_NEEDS,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: 403: ")


def _readme_block() -> str:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.DOTALL)
    managing = [b for b in blocks if "abscope experiments" in b]
    assert len(managing) == 1, "the README has one block of management commands"
    return managing[0]


def test_the_readme_management_commands_run_as_pasted(
    server: AbscopeServer, tmp_path: Path
) -> None:
    """The block, run by bash as written, with make serve's address pointed at the test's
    server, ``.venv/bin/abscope`` at this interpreter's, and the admin key exported as the
    block says to when keys are set."""
    block = _readme_block()
    assert "http://127.0.0.1:8000" in block and "Needs a running server" in block
    script = "set -euo pipefail\n" + block.replace("http://127.0.0.1:8000", server.url).replace(
        ".venv/bin/abscope", f"{shlex.quote(sys.executable)} -m abscope.cli"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ABSCOPE_")}
    environment["PYTHONPATH"] = os.pathsep.join([str(SRC), environment.get("PYTHONPATH", "")])
    environment["ABSCOPE_API_KEY"] = ADMIN
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=environment, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "checkout-v2: completed, serving treatment to everyone" in done.stdout
    header = (tmp_path / "hours.csv").read_text().splitlines()[0]
    assert header.startswith("hour,variant,samples,conversions")


def test_metrics_are_declared_at_creation_and_added_later(
    server: AbscopeServer, tmp_path: Path
) -> None:
    listed = tmp_path / "metrics.json"
    cost = {"name": "cost", "kind": "mean", "role": "guardrail", "higher_is_better": False,
            "margin": 0.1, "min_samples": 300, "description": "dollars per user"}  # fmt: skip
    listed.write_text(json.dumps([cost]))
    created = ok(
        cli(server, "create", "--id", "guarded", "--name", "Guarded", "--control-model", "m1",
            "--treatment-model", "m2", "--metrics-file", str(listed),
            "--declare-metric", "latency_ms:ratio:guardrail:lower:0.05:pause",
            "--declare-metric", "revenue:mean", "--declare-metric", "errors:binary:guardrail::0.5")
    )  # fmt: skip
    assert created.splitlines() == [
        "created guarded (draft): control=m1 (50%), treatment=m2 (50%)",
        "  metric cost: mean guardrail, lower is better, margin 10.0%, alert on breach,"
        " acts from 300 users per arm",
        "  metric latency_ms: ratio guardrail, lower is better, margin 5.0%, pause on breach",
        "  metric revenue: mean secondary, higher is better",
        "  metric errors: binary guardrail, higher is better, margin 50.0%, alert on breach",
        "start it with: abscope experiments start guarded",
    ]
    ok(cli(server, "start", "guarded"))

    added = ok(cli(server, "add-metric", "guarded", "tokens:ratio:secondary",
                   "--description", "tokens per second"))  # fmt: skip
    assert added.splitlines() == [
        "added to guarded (running): tokens: ratio secondary, higher is better",
        "its metrics: cost, latency_ms, revenue, errors, tokens",
    ]
    piped = runner.invoke(
        app, ["experiments", "add-metric", "guarded", "--file", "-", "--json", "--url",
              server.url, "--api-key", ADMIN],
        input=json.dumps({"name": "clicks", "kind": "binary", "numerator": ""}), env=NO_ENV,
    )  # fmt: skip
    experiment = json.loads(ok(piped))
    assert [m["name"] for m in experiment["metrics"]][-1] == "clicks"
    with httpx.Client(base_url=server.url, headers={"X-API-Key": READ}) as http:
        stored = http.get("/experiments/guarded").json()
    assert stored == experiment
    declared = {m["name"]: m for m in stored["metrics"]}
    assert declared["cost"] == {**cost, "action": None, "numerator": "", "denominator": ""} | {
        "quantiles": None,
        "guard_quantile": None,
    }
    assert declared["latency_ms"]["higher_is_better"] is False
    assert (declared["latency_ms"]["margin"], declared["latency_ms"]["action"]) == (0.05, "pause")
    assert [entry["changes"]["metric"]["name"] for entry in stored["audit"]
            if entry["action"] == "metric_added"] == ["tokens", "clicks"]  # fmt: skip
    assert declared["tokens"]["description"] == "tokens per second"

    shown = ok(cli(server, "show", "guarded", key=READ))
    section = shown.split("Metrics:\n")[1].split("\n\n")[0].splitlines()
    assert section[0] == "  converted: binary primary, higher is better"  # the implicit one
    assert [line.split(":")[0].strip() for line in section[1:]] == [
        "cost", "latency_ms", "revenue", "errors", "tokens", "clicks",
    ]  # fmt: skip
    assert "metric_added  metric clicks: binary secondary, higher is better" in shown


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("revenue:median",), 2, "for SPEC: KIND must be binary, mean, ratio or quantile"),
        (("lat:ratio:guard",), 2, "ROLE must be primary, secondary or guardrail"),
        (("lat:ratio:guardrail:down:0.1",), 2, "DIRECTION must be higher or lower"),
        (("lat:ratio:guardrail:lower:five",), 2, "MARGIN must be a number such as 0.05"),
        (("lat:ratio:guardrail:lower:0.1:stop",), 2, "ACTION must be pause or alert"),
        (("a:mean:secondary:higher:0.1:alert:p95:x",), 2, "got 8 parts"),
        (("a:quantile:guardrail::0.1:alert:x",), 2, "QUANTILE must be p95 or 0.95"),
        ((":mean",), 2, "NAME is required"),
        ((), 2, "give NAME:KIND[:ROLE[:DIRECTION[:MARGIN[:ACTION[:QUANTILE]]]]] or --file"),
        (("x:mean", "--file", "-"), 2, "give --file or a spec"),
        (("revenue:mean",), 1, "error: 409: experiment checked has a metric named 'revenue'"),
        (("converted:binary",), 1, "error: 409: experiment checked has a metric named"),
        (("clicks:binary:primary",), 1, "error: 422: body.role: a metric added later is"),
        (("Lat:mean",), 1, "error: 422: body.name: String should match pattern"),
        (("lat:ratio:guardrail:lower",), 1, "error: 422: body.margin: Value error, a guardrail"),
    ],
)
def test_add_metric_errors_name_the_part_and_exit_1_or_2(
    server: AbscopeServer, args: tuple[str, ...], code: int, message: str
) -> None:
    if cli(server, "show", "checked").exit_code != 0:
        ok(cli(server, "create", "--id", "checked", "--name", "Checked", "--control-model",
               "a", "--treatment-model", "b", "--declare-metric", "revenue:mean"))  # fmt: skip
    result = cli(server, "add-metric", "checked", *args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert message in result.stderr
    assert result.stdout == ""
    with httpx.Client(base_url=server.url, headers={"X-API-Key": READ}) as http:
        metrics = http.get("/experiments/checked").json()["metrics"]
    assert [m["name"] for m in metrics] == ["revenue"]


def test_an_ended_experiment_takes_no_metric_and_create_names_the_option(
    server: AbscopeServer,
) -> None:
    ok(cli(server, "create", "--id", "ended", "--name", "Ended", "--control-model", "a",
           "--treatment-model", "b"))  # fmt: skip
    ok(cli(server, "start", "ended"))
    ok(cli(server, "stop", "ended"))
    stopped = cli(server, "add-metric", "ended", "revenue:mean")
    assert stopped.exit_code == 1
    assert stopped.stderr.startswith("error: 409: experiment ended is stopped; metrics can be")
    refused = cli(server, "create", "--name", "x", "--control-model", "a",
                  "--treatment-model", "b", "--declare-metric", "lat:ratio:guardrail")  # fmt: skip
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: 422: body.metrics.0.margin: Value error, a guardrail")
    assert refused.stderr.endswith("(--declare-metric/--metrics-file)\n")
    usage = cli(server, "create", "--name", "x", "--control-model", "a",
                "--treatment-model", "b", "--declare-metric", "lat")  # fmt: skip
    assert usage.exit_code == 2 and "--declare-metric: KIND is required" in usage.stderr
