"""Contract fuzzing: schemathesis against a real uvicorn server, on SQLite and on Redis.

Every operation of the OpenAPI document is called with generated requests (valid ones, and
ones that break the schema), sent with the admin key, and every answer is checked against
the document: no 5xx, a documented status, a body and headers that match the status'
schema, and a documented content type.

The number of examples per operation is bounded (:data:`EXAMPLES`) and the seed is fixed
(:data:`SEED`), so a failure replays: run the module again (``-k redis`` for one backend).
Each operation is fuzzed with valid cases, with invalid ones, and (when its path names an
experiment) with valid cases on an experiment that exists and runs. Every failure is
reported, each with a curl command that reproduces it. The cases and statuses seen are
printed per backend at the end of the module (``-s`` shows them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.uvicorn_server import ABSCOPE_APP, UvicornServer

SEED = 20261201
"""The hypothesis seed of every operation's examples."""

EXAMPLES = 12
"""Generated requests per operation and backend (explicit examples come on top)."""

ADMIN_KEY = "contract-fuzz-admin-key-0123456789"
INGEST_KEY = "contract-fuzz-ingest-key-0123456789"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

STATUSES: dict[str, Counter[int]] = {"sqlite": Counter(), "redis": Counter()}
"""Statuses seen per backend, printed when the module ends."""


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, UvicornServer]]:
    """A real server with both keys set, on SQLite or on the session's redis-server."""
    directory = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    env = {"ABSCOPE_ADMIN_API_KEY": ADMIN_KEY, "ABSCOPE_INGEST_API_KEY": INGEST_KEY}
    if request.param == "redis":
        env["ABSCOPE_REDIS_URL"] = request.getfixturevalue("redis_url")
    else:
        env["ABSCOPE_DB_PATH"] = str(directory / "abscope.db")
    server = UvicornServer(
        ABSCOPE_APP, directory / "uvicorn.log", env=env, access_log=False, health_path="/health"
    )
    with server:
        yield request.param, server


@pytest.fixture(scope="module", autouse=True)
def _report_statuses() -> Iterator[None]:
    yield
    for backend, seen in STATUSES.items():
        if not seen:
            continue
        cases = sum(seen.values())
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(seen.items()))
        print(f"\ncontract fuzz on {backend}: {cases} cases; statuses {statuses}")


def _fuzz(
    operation: APIOperation,
    mode: GenerationMode,
    backend: str,
    url: str,
    path_parameters: dict[str, str] | None = None,
) -> None:
    """Up to :data:`EXAMPLES` cases of ``operation`` in ``mode`` (with ``path_parameters``
    fixed, if given); raises the (shrunk) first failure."""
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @given(case=strategy)
    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, headers={"X-API-Key": ADMIN_KEY}, timeout=30)
        STATUSES[backend][response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        # Nothing of the operation can break its schema (no parameters, or a path made of
        # any string): there is no negative case to send.
        assert mode is GenerationMode.NEGATIVE, operation.label


def _running_experiment(server: UvicornServer, experiment: str) -> None:
    """``experiment``, new and running, with a few users exposed and converted, so that
    the operations on an experiment reach its analysis, not only its 404 (only drafts can
    be deleted: each operation gets an experiment of its own)."""
    with httpx.Client(base_url=server.url, headers={"X-API-Key": ADMIN_KEY}) as client:
        created = client.post(
            "/experiments",
            # Half the traffic and a forced user: explain and route meet users outside
            # the experiment, whose variant is null.
            json={"id": experiment, "name": "fuzz", "control_model_id": "a",
                  "treatment_model_id": "b", "traffic_percentage": 50,
                  "forced_variants": {"user-0": "treatment"}},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        assert client.post(f"/experiments/{experiment}/start").status_code == 200
        for index in range(12):
            user = f"user-{index}"
            routed = client.post("/route", json={"user_id": user, "experiment_id": experiment})
            assert routed.status_code == 200, routed.text
            if index % 3 == 0 and routed.json()["in_experiment"]:
                variant = routed.json()["variant_name"]
                logged = client.post(
                    "/log",
                    json={"experiment_id": experiment, "user_id": user,
                          "variant_name": variant, "converted": True},
                )  # fmt: skip
                assert logged.status_code == 200, logged.text


def test_every_answer_follows_the_contract(served: tuple[str, UvicornServer]) -> None:
    backend, server = served
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # an Err (an operation the schema cannot describe) raises
        operations += 1
        runs: list[tuple[GenerationMode, dict[str, str] | None]] = [
            (GenerationMode.POSITIVE, None),
            (GenerationMode.NEGATIVE, None),
        ]
        if "{experiment_id}" in operation.path:
            runs.append((GenerationMode.POSITIVE, {"experiment_id": f"fuzz-{operations}"}))
        for mode, path_parameters in runs:
            if path_parameters:
                _running_experiment(server, path_parameters["experiment_id"])
            try:
                _fuzz(operation, mode, backend, server.url, path_parameters)
            except (Exception, BaseExceptionGroup) as failure:  # report every operation's
                failures.append(f"{operation.label} ({mode.value}, {path_parameters}):\n{failure}")
    assert operations >= 20, operations
    assert not failures, "\n\n".join(failures)
    # The cases reached the service: successes and its refusals, not only the schema's.
    seen = STATUSES[backend]
    assert {200, 201, 404, 409, 422} <= set(seen), seen
