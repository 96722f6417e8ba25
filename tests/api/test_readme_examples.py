"""The README's curl examples run as pasted against a real ``make serve``-like server.

The block is run by bash exactly as written, with ``localhost:8000`` pointed at a uvicorn
process of the test's own and ``curl`` made to print each reply's status after it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.api.helpers import MakeServer

README = Path(__file__).resolve().parents[2] / "README.md"
STATUS = re.compile(r"^HTTP (\d{3})$", re.MULTILINE)


def _curl_blocks() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return [b for b in blocks if "curl " in b]


def _curl_block(marker: str = "ranker-v2") -> str:
    """The block of curl examples about the experiment ``marker``: the service's
    (``ranker-v2``), the gate's (``model-v2``) or the latency quantiles' (``checkout-latency``)."""
    curls = [b for b in _curl_blocks() if f"/experiments/{marker}/" in b]
    assert len(curls) == 1, f"the README has one block of curl examples of {marker}"
    return curls[0]


def _calculate_block() -> str:
    """The block of curl examples of the planner with CUPED."""
    blocks = [b for b in _curl_blocks() if "/calculate" in b]
    assert len(blocks) == 1, "the README has one block of curl examples of /calculate"
    return blocks[0]


def test_every_curl_block_is_run_here() -> None:
    blocks = {
        _curl_block(),
        _curl_block("model-v2"),
        _curl_block("checkout-latency"),
        _curl_block("basket-v2"),
        _calculate_block(),
    }
    assert len(_curl_blocks()) == 5 == len(blocks)


def _run(block: str, host: str) -> tuple[list[str], list[str]]:
    script = (
        "set -euo pipefail\n"
        "curl() { command curl -w '\\nHTTP %{http_code}\\n' \"$@\"; }\n"
        + block.replace("localhost:8000", host)
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    replies = [part.strip() for part in STATUS.split(done.stdout)[::2] if part.strip()]
    return STATUS.findall(done.stdout), replies


def test_the_readme_curl_examples_run_as_pasted(make_server: MakeServer, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: install Debian's curl package")
    server = make_server(ABSCOPE_DB_PATH=str(tmp_path / "abscope.db"))
    statuses, replies = _run(_curl_block(), server.url.removeprefix("http://"))
    assert statuses == ["201", "200", "200", "200", "201", "200", "200"], replies
    created = json.loads(replies[0])
    assert [m["name"] for m in created["metrics"]] == ["latency_ms"]
    route, logged, added, batch, results = (json.loads(r) for r in replies[2:7])
    assert route["exposure_recorded"] and route["experiment_id"] == "ranker-v2"
    assert route["variant_name"] == "treatment"  # as the README shows it, and its events say
    assert logged == {"status": "counted", "new_exposure": False, "new_conversion": True}
    assert [m["name"] for m in added["metrics"]] == ["latency_ms", "revenue"]
    assert added["audit"][-1]["action"] == "metric_added"
    assert (batch["counted"], batch["rejected"]) == (2, 0), batch
    assert results["control_samples"] + results["treatment_samples"] == 1
    assert results["min_relative_lift"] == 0.05


def test_the_readme_gate_examples_run_as_pasted(make_server: MakeServer, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: install Debian's curl package")
    server = make_server(ABSCOPE_DB_PATH=str(tmp_path / "abscope.db"))
    block = _curl_block("model-v2")
    statuses, replies = _run(block, server.url.removeprefix("http://"))
    assert statuses == ["201", "200", "202", "200"], replies
    created, _, gate, report = (json.loads(r) for r in replies)
    assert [m["role"] for m in created["metrics"]] == ["primary", "guardrail"]
    assert gate == report
    assert gate["verdict"] == "inconclusive"
    (metric,) = gate["metrics"]
    assert (metric["name"], metric["reason"]) == ("latency_ms", "too_little_data")
    # The reply the block shows after "# =>" is the server's (the "..." elides fields).
    shown = " ".join(
        line.lstrip("# ").strip()
        for line in block.split("# =>", 1)[1].splitlines()
        if line.startswith("#")
    )
    reason = gate["reasons"][0]
    assert reason == (
        "latency_ms (treatment): inconclusive: too little data (0 users in the smaller arm,"
        " 100 needed)"
    )
    assert " ".join(reason.split()) in " ".join(shown.replace('"', " ").split())


def test_the_readme_cuped_plan_runs_as_pasted_and_shows_the_servers_figures(
    make_server: MakeServer, tmp_path: Path
) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: install Debian's curl package")
    server = make_server(ABSCOPE_DB_PATH=str(tmp_path / "abscope.db"))
    block = _calculate_block()
    statuses, replies = _run(block, server.url.removeprefix("http://"))
    assert statuses == ["200"], replies
    (plan,) = (json.loads(r) for r in replies)
    without = plan["unadjusted"]
    assert without is not None and without["days"] > plan["days"]
    # Each figure the block shows after "# =>" is the server's (the "..." elides fields).
    shown = block.split("# =>", 1)[1]
    figures = [(k, plan[k]) for k in ("control_samples", "days", "variance_factor")]
    figures += [(k, without[k]) for k in ("mode", "control_samples", "days")]
    for name, value in figures:
        assert f'"{name}": {json.dumps(value)}' in shown, name


def test_the_readme_latency_examples_run_as_pasted(make_server: MakeServer, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: install Debian's curl package")
    server = make_server(ABSCOPE_DB_PATH=str(tmp_path / "abscope.db"))
    block = _curl_block("checkout-latency")
    statuses, replies = _run(block, server.url.removeprefix("http://"))
    assert statuses == ["201", "200", "200", "200"], replies
    created, _, batch, results = (json.loads(r) for r in replies)
    assert created["metrics"][0]["quantiles"] == [0.5, 0.95, 0.99]
    assert (batch["counted"], batch["rejected"]) == (3, 0), batch
    (latency,) = [m for m in results["metrics"] if m["name"] == "latency_ms"]
    assert latency["variants"]["control"] == {
        "users": 1, "requests": 2, "value": None, "value_reason": "quantile_metric",
    }  # fmt: skip
    p50 = latency["quantile_results"][0]
    assert p50["label"] == "p50" and p50["arms"]["control"]["reason"] == "insufficient_samples"
    # Two requests of 182.5 and 240 ms: the estimate lies in 182.5's 1% bucket.
    assert abs(p50["arms"]["control"]["estimate"] / 182.5 - 1) < 0.021


def test_the_readme_metric_cuped_examples_run_as_pasted(
    make_server: MakeServer, tmp_path: Path
) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: install Debian's curl package")
    server = make_server(ABSCOPE_DB_PATH=str(tmp_path / "abscope.db"))
    block = _curl_block("basket-v2")
    statuses, replies = _run(block, server.url.removeprefix("http://"))
    assert statuses == ["201", "200", "200", "200", "200"], replies
    _, _, batch, backfill, results = (json.loads(r) for r in replies)
    assert (batch["counted"], batch["rejected"]) == (4, 0), batch
    assert [r["status"] for r in backfill["results"]] == ["set"]
    (basket,) = [m for m in results["metrics"] if m["name"] == "basket_value"]
    cuped = basket["cuped"]
    assert (cuped["users"], cuped["covariate_users"]) == (2, 2)
    (comparison,) = cuped["comparisons"]
    assert comparison["reason"] == "insufficient_samples"  # as the README says
    assert results["metrics"][0]["cuped_reason"] == "primary_in_results_cuped"
