"""``abscope experiments results`` on a bandit experiment: the block of estimates corrected
for adaptive allocation, against a real ``abscope serve`` on a SQLite file. The figures the
block prints are the server's own ``adaptive_estimates`` answer, formatted; a fixed split
prints no such block (its JSON says why: ``fixed_allocation``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from abscope.cli import app
from tests.fixtures.uvicorn_server import AbscopeServer

NO_ENV: dict[str, str | None] = {"ABSCOPE_URL": None, "ABSCOPE_API_KEY": None}
runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AbscopeServer]:
    tmp = tmp_path_factory.mktemp("adaptive-cli")
    env = {"ABSCOPE_DB_PATH": str(tmp / "abscope.db"), "ABSCOPE_BANDIT_REFRESH_SECONDS": "0.01"}
    with AbscopeServer(tmp / "server.log", env=env, health_path="/health") as started:
        yield started


def results(server: AbscopeServer, experiment_id: str, *extra: str) -> Result:
    return runner.invoke(
        app, ["experiments", "results", experiment_id, *extra, "--url", server.url], env=NO_ENV
    )


def _experiment(http: httpx.Client, experiment_id: str, **fields: Any) -> None:
    body = {"id": experiment_id, "name": experiment_id, "control_model_id": "ranker-v1",
            "treatment_model_id": "ranker-v2", **fields}  # fmt: skip
    assert http.post("/experiments", json=body).status_code == 201
    assert http.post(f"/experiments/{experiment_id}/start").status_code == 200


def _traffic(http: httpx.Client, experiment_id: str, users: int) -> None:
    rng = random.Random(3)
    for start in range(0, users, 40):
        events = []
        for i in range(start, start + 40):
            user = f"user-{i}"
            answer = http.post(
                "/route", json={"user_id": user, "experiment_id": experiment_id, "expose": True}
            ).json()
            variant = answer["variant_name"]
            if rng.random() < (0.3 if variant == "treatment" else 0.1):
                events.append({"experiment_id": experiment_id, "user_id": user,
                               "variant_name": variant, "kind": "conversion"})  # fmt: skip
        if events:
            assert http.post("/events", json={"events": events}).json()["rejected"] == 0


def test_a_bandits_results_print_the_corrected_estimates(server: AbscopeServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        _experiment(http, "bandit-cli", allocation="thompson")
        _traffic(http, "bandit-cli", 200)
        _experiment(http, "fixed-cli")
        _traffic(http, "fixed-cli", 40)

    answer = json.loads(results(server, "bandit-cli", "--json").stdout)
    section = answer["adaptive_estimates"]
    text = results(server, "bandit-cli").stdout
    assert "Estimates corrected for adaptive allocation (thompson;" in text
    assert "Inference (fixed-horizon):" in text and "not always-valid" in text
    assert "Report the Hájek estimate and the stabilized interval" in " ".join(text.split())
    block = text[text.index("Estimates corrected") :]
    for arm in section["arms"]:
        row = next(line.split() for line in block.splitlines()
                   if line.split()[:1] == [arm["variant"]])  # fmt: skip
        hajek, stabilized = arm["estimates"]["hajek"], arm["estimates"]["stabilized"]
        naive = arm["estimates"]["naive"]
        assert row[1] == f"{arm['users']:,}"  # the arms' table comes first
        assert row[2] == f"{naive['estimate']:.2%}" and row[3] == f"{hajek['estimate']:.2%}"
        low, high = stabilized["interval"]
        assert row[4:7] == [f"{low:.2%}", "to", f"{high:.2%}"]
    [comparison] = section["comparisons"]
    row = next(line.split() for line in block.splitlines() if line.startswith("treatment")
               and "+" in line)  # fmt: skip
    assert row[2] == f"{comparison['estimates']['hajek']['estimate']:+.2%}"

    fixed = json.loads(results(server, "fixed-cli", "--json").stdout)
    assert fixed["adaptive_estimates"] is None
    assert fixed["null_reasons"]["adaptive_estimates"] == "fixed_allocation"
    assert "adaptive allocation (" not in results(server, "fixed-cli").stdout
