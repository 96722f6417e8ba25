"""docker-compose.yml's topology, started from processes (no Docker): a real redis-server with
the compose file's own flags (append-only file, fsync every second) on a free port, and
``abscope serve`` with the compose file's own command (two workers) and environment (the
keys required) on it. Users are routed and logged through the API and read back; then
redis-server is stopped and started again from its append-only file alone, and the API
reads the same counts. Both compose healthchecks are run against these processes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.deploy.files import compose
from tests.fixtures.redis_servers import RedisServer, _executable
from tests.fixtures.uvicorn_server import HOST, AbscopeServer

USERS = 30
CONVERTED = 10
KEYS = {
    "ABSCOPE_ADMIN_API_KEY": "compose-admin-key-000001",
    "ABSCOPE_INGEST_API_KEY": "compose-ingest-key-00002",
    "ABSCOPE_READ_API_KEY": "compose-read-key-0000003",
}
EXPERIMENT = "compose-topology"


class ComposeRedis(RedisServer):
    """redis-server on a free port of its own directory, with ``flags`` (the compose
    service's command after ``redis-server``) instead of the fixture's persistence flags."""

    def __init__(self, directory: Path, flags: Sequence[str]) -> None:
        super().__init__(directory)
        self.flags = list(flags)

    def _command(self, binary: str) -> list[str]:
        return [
            binary, "--bind", HOST, "--port", str(self.port), "--dir", str(self.directory),
            "--logfile", str(self.log_file), "--daemonize", "no", *self.flags,
        ]  # fmt: skip


class ComposeApi(AbscopeServer):
    """``abscope serve`` as the compose service's command gives it, on loopback and a free
    port (inside compose it listens on the container's own 0.0.0.0:8000)."""

    def __init__(self, log_file: Path, command: Sequence[str], env: dict[str, str]) -> None:
        assert command[:2] == ["abscope", "serve"], command
        self.arguments = list(command[2:])
        workers = int(self.arguments[self.arguments.index("--workers") + 1])
        super().__init__(log_file, env=env, workers=workers, health_path="/health")

    def command(self) -> list[str]:
        arguments = list(self.arguments)
        arguments[arguments.index("--host") + 1] = HOST
        arguments[arguments.index("--port") + 1] = str(self.port)
        return [sys.executable, "-m", "abscope.cli", "serve", *arguments]


def _api_env(service: dict[str, Any], redis_url: str) -> dict[str, str]:
    """The compose API's environment, with this test's Redis and keys in place of the
    ``${...:?}`` values that compose takes from the operator's shell."""
    environment: dict[str, str] = service["environment"]
    assert set(environment) == {"ABSCOPE_REDIS_URL", *KEYS}, environment
    for key in KEYS:
        assert environment[key].startswith(f"${{{key}:?"), f"compose must require {key}"
    assert environment["ABSCOPE_REDIS_URL"].startswith("redis://redis:6379/")
    return {"ABSCOPE_REDIS_URL": redis_url, **KEYS}


def _healthcheck(test: list[str], replacements: dict[str, list[str]]) -> list[str]:
    assert test[0] == "CMD", test
    command = test[1:]
    return [part for word in command for part in replacements.get(word, [word])]


def _counts(client: httpx.Client) -> tuple[int, float, float]:
    """Users and rates of the experiment, once the API answers (it may 503 while Redis
    comes back)."""
    deadline = time.monotonic() + 30
    while True:
        response = client.get(
            f"/experiments/{EXPERIMENT}/results",
            headers={"X-API-Key": KEYS["ABSCOPE_READ_API_KEY"]},
        )
        if response.status_code == 200:
            body = response.json()
            return (
                body["control_samples"] + body["treatment_samples"],
                body["control_conversion_rate"],
                body["treatment_conversion_rate"],
            )
        assert response.status_code == 503 and time.monotonic() < deadline, response.text
        time.sleep(0.2)


def test_compose_topology_keeps_its_counts_across_a_redis_restart(tmp_path: Path) -> None:
    services = compose()["services"]
    redis_command = services["redis"]["command"]
    assert redis_command[0] == "redis-server"
    flags = redis_command[1:]
    assert flags[flags.index("--appendonly") + 1] == "yes"
    assert flags[flags.index("--appendfsync") + 1] == "everysec"
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"

    with ComposeRedis(tmp_path / "redis", flags) as redis:
        env = _api_env(services["api"], redis.url)
        with ComposeApi(tmp_path / "api.log", services["api"]["command"], env) as api:
            assert len(api.worker_pids()) == 2
            redis_check = _healthcheck(
                services["redis"]["healthcheck"]["test"],
                {"redis-cli": [_executable("redis-cli"), "-h", HOST, "-p", str(redis.port)]},
            )
            pong = subprocess.run(redis_check, capture_output=True, text=True, timeout=10)
            assert pong.stdout.strip() == "PONG", pong
            api_check = _healthcheck(
                services["api"]["healthcheck"]["test"], {"python": [sys.executable]}
            )
            api_check = [part.replace(":8000/", f":{api.port}/") for part in api_check]
            assert subprocess.run(api_check, capture_output=True, timeout=30).returncode == 0

            with api.client() as client:
                before = _fill(client)
                assert before[0] == USERS
                redis.stop()  # SIGTERM: redis-server flushes its append-only file and exits
                (tmp_path / "redis" / "dump.rdb").unlink(missing_ok=True)  # the AOF alone
                assert any((tmp_path / "redis" / "appendonlydir").iterdir())
                redis.restart()
                assert "DB loaded from append only file" in redis.log_file.read_text()
                assert _counts(client) == before


def _fill(client: httpx.Client) -> tuple[int, float, float]:
    admin = {"X-API-Key": KEYS["ABSCOPE_ADMIN_API_KEY"]}
    ingest = {"X-API-Key": KEYS["ABSCOPE_INGEST_API_KEY"]}
    created = client.post("/experiments", headers=admin, json={
        "id": EXPERIMENT, "name": "Compose topology", "control_model_id": "m-1",
        "treatment_model_id": "m-2", "traffic_percentage": 100, "control_weight": 0.5,
    })  # fmt: skip
    assert created.status_code == 201, created.text
    assert client.post(f"/experiments/{EXPERIMENT}/start", headers=admin).status_code == 200
    converted: dict[str, int] = {"control": 0, "treatment": 0}
    served: dict[str, int] = {"control": 0, "treatment": 0}
    for i in range(USERS):
        routed = client.post(
            "/route", headers=ingest, json={"user_id": f"user-{i}", "experiment_id": EXPERIMENT}
        )
        assert routed.status_code == 200 and routed.json()["exposure_recorded"], routed.text
        variant = routed.json()["variant_name"]
        served[variant] += 1
        if i < CONVERTED:
            logged = client.post("/log", headers=ingest, json={
                "experiment_id": EXPERIMENT, "user_id": f"user-{i}", "variant_name": variant,
                "converted": True, "event_id": f"order-{i}",
            })  # fmt: skip
            assert logged.status_code == 200, logged.text
            converted[variant] += 1
    counted = _counts(client)
    assert counted == (
        USERS,
        converted["control"] / served["control"],
        converted["treatment"] / served["treatment"],
    )
    return counted
