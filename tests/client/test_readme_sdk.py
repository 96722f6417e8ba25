"""The README's SDK examples (its ```py blocks) run as pasted, after its curl examples,
against a real server."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx

from abscope.storage.sqlite import SQLiteStore
from tests.client.conftest import MakeServer, samples

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks(info: str) -> list[str]:
    return re.findall(rf"```{info}\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_sdk_examples_run(make_server: MakeServer, tmp_path: Path) -> None:
    server = make_server()
    host = server.url.removeprefix("http://")
    curls = [b for b in _blocks("sh") if "curl " in b and "/experiments/ranker-v2/" in b]
    assert len(curls) == 1
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + curls[0].replace("localhost:8000", host)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    examples = _blocks("py")
    assert len(examples) == 2
    for example in examples:
        exec(compile(example.replace("localhost:8000", host), str(README), "exec"), {})  # noqa: S102
    counted = samples(server.url, "ranker-v2")
    assert sum(counted.values()) == 3  # user-1 by curl, user-2 and user-3 by the SDK
    # user-2's covariate came with its exposure, user-1's by the backfill: CUPED counts both.
    with httpx.Client(base_url=server.url, timeout=30) as http:
        cuped = http.get("/experiments/ranker-v2/results").json()["cuped"]
    assert cuped is not None and cuped["covariate_users"] == 2
    # The latency of user-1 (curl, one request of 182.5 ms) and of user-2 (the SDK, one
    # request) reached the guardrail: two requests in all, one a user.
    store = SQLiteStore(tmp_path / "abscope.db")
    try:
        latency = store.get_metric_counts("ranker-v2", 0)["latency_ms"]
        covariates = store.get_covariate_counts("ranker-v2", 0)
    finally:
        store.close()
    assert sum(c.sum for c in covariates.values()) == 3.0 + 4.0  # the values sent
    assert sum(c.denominator_sum for c in latency.values()) == 2.0
    assert sum(c.denominator_sum_squares for c in latency.values()) == 2.0
    assert sum(c.sum for c in latency.values()) >= 182.5
