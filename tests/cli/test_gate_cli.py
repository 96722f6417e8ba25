"""``abscope experiments gate`` and the metrics table of ``results``, against a real
``abscope serve`` with API keys, on a SQLite file.

The experiments are created with ``create --file`` (their metrics declared); their traffic
is recorded into the server's SQLite file by this process (``store.record_events``, as
``/events`` records it). What the commands print is checked against the server's own JSON
answers, and the README's gate example against what the command prints.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from abscope.cli import app
from abscope.storage.sqlite import SQLiteStore
from tests.fixtures.guardrails import SCENARIOS, guarded_body, latency_traffic
from tests.fixtures.light_install import CLI_EXTRA_LACKS, TYPER_NEEDS, run_without
from tests.fixtures.uvicorn_server import AbscopeServer

ADMIN = "admin-key-for-the-gate-cli"
INGEST = "ingest-key-for-the-gate-cli"
READ = "read-key-for-the-gate-cli"
NO_ENV: dict[str, str | None] = {"ABSCOPE_URL": None, "ABSCOPE_API_KEY": None}
README = Path(__file__).resolve().parents[2] / "README.md"
EXIT = {"pass": 0, "fail": 1, "inconclusive": 3}

runner = CliRunner()


def cli(url: str, *args: str, key: str = READ) -> Result:
    return runner.invoke(app, ["experiments", *args, "--url", url, "--api-key", key], env=NO_ENV)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AbscopeServer]:
    tmp = tmp_path_factory.mktemp("gate-cli")
    database = tmp / "abscope.db"
    env = {
        "ABSCOPE_DB_PATH": str(database),
        "ABSCOPE_ADMIN_API_KEY": ADMIN,
        "ABSCOPE_INGEST_API_KEY": INGEST,
        "ABSCOPE_READ_API_KEY": READ,
    }
    with AbscopeServer(tmp / "server.log", env=env, health_path="/health") as started:
        bodies = {f"cli-{name}": guarded_body(f"cli-{name}") for name in SCENARIOS}
        bodies["model-v2"] = guarded_body("model-v2")  # the README's, without traffic
        for experiment_id, body in bodies.items():
            spec = tmp / f"{experiment_id}.json"
            spec.write_text(json.dumps(body))
            created = cli(started.url, "create", "--file", str(spec), key=ADMIN)
            assert created.exit_code == 0, created.stderr
            assert cli(started.url, "start", experiment_id, key=ADMIN).exit_code == 0
        store = SQLiteStore(database)
        try:
            for name, scenario in SCENARIOS.items():
                store.record_events(
                    latency_traffic(
                        f"cli-{name}", scenario.users, scenario.treatment_latency,
                        datetime.now(UTC),
                    )
                )  # fmt: skip
        finally:
            store.close()
        yield started


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_gate_prints_the_verdict_and_exits_with_its_code(
    server: AbscopeServer, name: str
) -> None:
    result = cli(server.url, "gate", f"cli-{name}")
    assert result.exit_code == EXIT[name], (result.stdout, result.stderr)
    answer = json.loads(cli(server.url, "gate", f"cli-{name}", "--json").stdout)
    assert answer["verdict"] == name
    expected = [f"cli-{name}: {name} (running)", *(f"  {r}" for r in answer["reasons"])]
    assert result.stdout.splitlines() == expected


def test_the_gate_needs_the_read_key(server: AbscopeServer) -> None:
    refused = cli(server.url, "gate", "cli-pass", key=INGEST)
    assert refused.exit_code == 1 and refused.stderr.startswith("error: 403: ")
    missing = cli(server.url, "gate", "no-such-experiment")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: 404: ")


def test_results_print_every_metric_the_guardrails_and_the_decision_rule(
    server: AbscopeServer,
) -> None:
    shown = cli(server.url, "results", "cli-fail")
    assert shown.exit_code == 0, shown.stderr
    answer = json.loads(cli(server.url, "results", "cli-fail", "--json").stdout)
    text = shown.stdout
    metrics_part = text.split("\n\nMetrics:\n", 1)[1]
    rows = {line.split()[0]: line for line in metrics_part.splitlines()[2:4]}
    latency = next(m for m in answer["metrics"] if m["name"] == "latency_ms")
    (guard,) = latency["comparisons"]
    row = rows["latency_ms"].split()
    assert row[:4] == ["latency_ms", "guardrail", "ratio", "treatment"]
    assert row[4] == f"{latency['variants']['control']['value']:.4g}"
    assert row[5] == f"{latency['variants']['treatment']['value']:.4g}"
    assert row[6] == f"{guard['estimate']:+.2%}"
    lower, upper = guard["interval"]
    assert " ".join(row[7:10]) == f"{lower:+.1%} to {upper:+.1%}"
    assert row[-3:] == ["breach", "(margin", "5%)"]
    converted = next(m for m in answer["metrics"] if m["name"] == "converted")
    (primary,) = converted["comparisons"]
    assert rows["converted"].split()[6] == f"{primary['estimate']:+.2%}"
    assert "Guardrails: failing" in text
    sentence = answer["decision_rule"]["sentence"]
    assert sentence.startswith("Do not ship: guardrail latency_ms is")
    assert f"Decision rule: {sentence}" in text
    # An experiment without declared metrics prints the primary's tables alone.
    created = cli(server.url, "create", "--id", "cli-plain", "--name", "Plain",
                  "--control-model", "a", "--treatment-model", "b", key=ADMIN)  # fmt: skip
    assert created.exit_code == 0, created.stderr
    plain = cli(server.url, "results", "cli-plain")
    assert plain.exit_code == 0 and "Decision:" in plain.stdout
    assert "Metrics:" not in plain.stdout and "Decision rule:" not in plain.stdout


def test_the_readme_gate_example_is_what_the_command_prints(server: AbscopeServer) -> None:
    blocks = re.findall(r"```console\n(.*?)```", README.read_text(), flags=re.DOTALL)
    (block,) = [b for b in blocks if "abscope experiments gate" in b]
    command, rest = block.split("\n", 1)
    printed, status = rest.split("$ echo $?\n")
    assert command == "$ .venv/bin/abscope experiments gate model-v2"
    result = cli(server.url, "gate", "model-v2")
    assert result.stdout == printed
    assert str(result.exit_code) == status.strip() == "3"


def test_the_gate_exit_code_reaches_a_real_process_with_the_cli_extra_alone(
    server: AbscopeServer,
) -> None:
    run = run_without(
        CLI_EXTRA_LACKS,
        ["experiments", "gate", "cli-fail"],
        private=TYPER_NEEDS,
        env={"ABSCOPE_URL": server.url, "ABSCOPE_API_KEY": READ},
    )
    assert run.returncode == 1, run.stderr
    assert run.stdout.startswith("cli-fail: fail (running)\n  latency_ms (treatment): breach:")
