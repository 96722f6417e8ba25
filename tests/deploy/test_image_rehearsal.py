"""The image, rehearsed without Docker (:mod:`tests.deploy.rehearsal`): the same lock in a fresh
venv with the abscope wheel, served by the Dockerfile's own CMD, ENV, USER and WORKDIR as
an unprivileged user, with the API keys set as in production. It answers /health, its
HEALTHCHECK command passes, and one experiment goes the whole way: create, start, route,
log, results. Without keys the same CMD refuses to start (exit 2), as the README says.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.files import REPO
from tests.deploy.rehearsal import PIP_INSTALL, Rehearsal
from tests.fixtures.processes import log_tail
from tests.fixtures.uvicorn_server import HOST, free_port

KEYS = {
    "ABSCOPE_ADMIN_API_KEY": "rehearsal-admin-key-0001",
    "ABSCOPE_INGEST_API_KEY": "rehearsal-ingest-key-002",
    "ABSCOPE_READ_API_KEY": "rehearsal-read-key-00003",
}
START_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def rehearsal() -> Iterator[Rehearsal]:
    """The image laid out once for this module's tests."""
    laid_out = Rehearsal()
    try:
        laid_out.build()
        yield laid_out
    finally:
        laid_out.close()


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])  # the real uid; effective and saved follow
    raise AssertionError(f"no Uid line for {pid}")


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2.0) as probe:
        while time.monotonic() < deadline:
            assert process.poll() is None, f"the service exited:\n{log_tail(log)}"
            try:
                if probe.get(f"{url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"the service did not answer /health in time:\n{log_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group the test started
            process.wait()
    return process.returncode


def test_the_dockerfile_installs_the_lock_as_the_rehearsal_does() -> None:
    text = (REPO / "Dockerfile").read_text()
    for lock in ("requirements/build.lock", "requirements/server.lock"):
        assert f"pip install {' '.join(PIP_INSTALL)} \\\n       -r {lock}" in text, lock
    assert "pip wheel --no-deps --no-build-isolation" in text
    assert "pip install --no-deps /dist/abscope-" in text


def test_the_image_serves_a_whole_experiment_as_its_own_user(
    rehearsal: Rehearsal, tmp_path: Path
) -> None:
    image = rehearsal.image
    assert image.uid != 0 and image.builder_base == image.base
    assert image.cmd[:4] == ["abscope", "serve", "--host", "0.0.0.0"]
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = rehearsal.environment(KEYS)
    python = rehearsal.command(["python", "-c", "import abscope; print(abscope.__file__)"], port)
    where = subprocess.run(python, env=env, capture_output=True, text=True, check=True)
    # The service runs the installed wheel, not the repository's source.
    assert Path(where.stdout.strip()).is_relative_to(rehearsal.path(image.venv)), where.stdout
    log_file = tmp_path / "service.log"
    with log_file.open("ab") as log:
        process = rehearsal.popen(rehearsal.command(image.cmd, port), env, log)
        try:
            _wait_healthy(process, url, log_file)
            assert _uid_of(process.pid) == rehearsal.uid != 0
            health = subprocess.run(
                rehearsal.command(image.healthcheck, port),
                env=env,
                capture_output=True,
                timeout=30,
                check=False,
            )
            assert health.returncode == 0, health.stderr
            _round_trip(url)
            database = Path(env["ABSCOPE_DB_PATH"])  # the SQLite file in the image's data dir
            assert database.is_relative_to(rehearsal.path(image.workdir))
            assert database.stat().st_uid == rehearsal.uid
        finally:
            returncode = _stop(process)
    # One worker is uvicorn in process, which re-raises the SIGTERM it handled once it has
    # shut down gracefully (docker stop's usual 143).
    assert returncode in (0, -signal.SIGTERM), log_tail(log_file)
    assert "Application shutdown complete" in log_file.read_text()


def _round_trip(url: str) -> None:
    admin = {"X-API-Key": KEYS["ABSCOPE_ADMIN_API_KEY"]}
    ingest = {"X-API-Key": KEYS["ABSCOPE_INGEST_API_KEY"]}
    read = {"X-API-Key": KEYS["ABSCOPE_READ_API_KEY"]}
    with httpx.Client(base_url=url, timeout=30.0) as client:
        assert client.get("/experiments").status_code == 401  # keys set: no key, no data
        created = client.post("/experiments", headers=admin, json={
            "id": "image-rehearsal", "name": "Image rehearsal",
            "control_model_id": "ranker-v1", "treatment_model_id": "ranker-v2",
            "traffic_percentage": 100, "control_weight": 0.5, "min_relative_lift": 0.05,
        })  # fmt: skip
        assert created.status_code == 201, created.text
        started = client.post("/experiments/image-rehearsal/start", headers=admin)
        assert started.status_code == 200, started.text
        routed = client.post(
            "/route", headers=ingest, json={"user_id": "u-1", "experiment_id": "image-rehearsal"}
        )
        assert routed.status_code == 200, routed.text
        variant = routed.json()
        assert variant["exposure_recorded"] is True and variant["in_experiment"] is True
        logged = client.post("/log", headers=ingest, json={
            "experiment_id": "image-rehearsal", "user_id": "u-1",
            "variant_name": variant["variant_name"], "converted": True, "event_id": "order-1",
        })  # fmt: skip
        assert logged.status_code == 200, logged.text
        assert logged.json()["new_conversion"] is True
        assert client.get("/experiments/image-rehearsal/results", headers=ingest).status_code == 403
        results = client.get("/experiments/image-rehearsal/results", headers=read)
        assert results.status_code == 200, results.text
        body = results.json()
        assert body["control_samples"] + body["treatment_samples"] == 1
        rate = "treatment" if variant["variant_name"] == "treatment" else "control"
        assert body[f"{rate}_conversion_rate"] == 1.0


def test_the_image_refuses_to_start_without_keys(rehearsal: Rehearsal, tmp_path: Path) -> None:
    log_file = tmp_path / "refused.log"
    with log_file.open("ab") as log:
        process = rehearsal.popen(
            rehearsal.command(rehearsal.image.cmd, free_port()), rehearsal.environment(), log
        )
        try:
            returncode = process.wait(timeout=60)
        finally:
            _stop(process)
    assert returncode == 2, log_tail(log_file)
    assert "refusing to serve 0.0.0.0 with no API key set" in log_file.read_text()
