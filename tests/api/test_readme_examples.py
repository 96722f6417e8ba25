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


def _curl_block() -> str:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.DOTALL)
    curls = [b for b in blocks if "curl " in b]
    assert len(curls) == 1, "the README has one block of curl examples"
    return curls[0]


def test_the_readme_curl_examples_run_as_pasted(make_server: MakeServer, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: install Debian's curl package")
    server = make_server(ABSCOPE_DB_PATH=str(tmp_path / "abscope.db"))
    host = server.url.removeprefix("http://")
    script = (
        "set -euo pipefail\n"
        "curl() { command curl -w '\\nHTTP %{http_code}\\n' \"$@\"; }\n"
        + _curl_block().replace("localhost:8000", host)
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    statuses = STATUS.findall(done.stdout)
    assert statuses == ["201", "200", "200", "200", "201", "200", "200"], done.stdout
    replies = [part.strip() for part in STATUS.split(done.stdout)[::2] if part.strip()]
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
