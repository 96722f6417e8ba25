"""``ABSCOPE_LOG_FORMAT=json``: every line ``abscope serve`` writes is one JSON object, and
each line logged while a request is served carries that request's id, the one the client
sent when it is sane, else a new one, as the answer's ``X-Request-ID`` says.

A real supervisor with two workers, the access log on, on a redis-server of the test's own
that is stopped mid-test, so that a request logs the store's failure (a warning) in its
own context.
"""

from __future__ import annotations

import http.client
import json
import logging
import sys
from pathlib import Path
from typing import Any

from abscope.logs import JsonFormatter, log_config, request_id
from tests.api.helpers import seed_body
from tests.fixtures.redis_servers import RedisServer
from tests.fixtures.uvicorn_server import HOST, AbscopeServer, UvicornServer

KEYS = {"time", "level", "logger", "message", "request_id"}


def _call(
    server: AbscopeServer, method: str, path: str, body: Any = None, request_id: str | None = None
) -> tuple[int, str]:
    """One request; its status and the ``X-Request-ID`` of its answer."""
    connection = http.client.HTTPConnection(HOST, server.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    try:
        connection.request(method, path, None if body is None else json.dumps(body), headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("x-request-id") or ""
    finally:
        connection.close()


def _lines(log_file: Path) -> list[dict[str, Any]]:
    parsed = []
    for number, line in enumerate(log_file.read_text().splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"line {number} is not JSON: {line!r}") from None
        assert isinstance(record, dict) and KEYS <= set(record), f"line {number}: {line}"
        parsed.append(record)
    return parsed


def test_every_line_is_json_with_the_request_id_of_its_request(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as redis_server:  # ours alone: it is stopped below
        env = {
            "ABSCOPE_REDIS_URL": redis_server.url,
            "ABSCOPE_LOG_FORMAT": "json",
            "ABSCOPE_CONFIG_REFRESH_SECONDS": "60",
        }
        server = AbscopeServer(tmp_path / "serve.log", env=env, workers=2, access_log=True)
        with server:
            sent = {
                "health-1": ("GET", "/health", None),
                "create-1": ("POST", "/experiments", seed_body(id="logged")),
                "start-1": ("POST", "/experiments/logged/start", None),
            }
            for rid, (method, path, body) in sent.items():
                assert _call(server, method, path, body, rid) == (
                    200 if path != "/experiments" else 201,
                    rid,
                )
            # An id that is not sane (over 128 characters) is replaced by a new one.
            status, generated = _call(server, "GET", "/health", request_id="x" * 129)
            assert status == 200 and len(generated) == 32 and generated != "x" * 129
            redis_server.stop()
            log = {"experiment_id": "logged", "user_id": "u", "variant_name": "control"}
            assert _call(server, "POST", "/log", log, "log-503") == (503, "log-503")
        assert server.returncode == 0
    lines = _lines(server.log_file)
    by_id: dict[str | None, list[dict[str, Any]]] = {}
    for record in lines:
        by_id.setdefault(record["request_id"], []).append(record)
    # Lines outside any request: start-up (the no-key warning among them) and shutdown.
    outside = by_id[None]
    assert any("Application startup complete" in r["message"] for r in outside)
    assert any("no API key is set" in r["message"] and r["level"] == "WARNING" for r in outside)
    assert any("Stopping supervisor process" in r["message"] for r in outside)
    # Each request's access line carries its id.
    expected = {rid: path for rid, (_, path, _) in sent.items()}
    expected |= {generated: "/health", "log-503": "/log"}
    for rid, path in expected.items():
        access = [r for r in by_id.get(rid, []) if r["logger"] == "uvicorn.access"]
        assert len(access) == 1, (rid, by_id.get(rid))
        assert access[0]["path"] == path and access[0]["level"] == "INFO", access[0]
    # The store's failure is logged in the context of the request that met it.
    failed = by_id["log-503"]
    warning = [r for r in failed if r["logger"] == "abscope.api" and r["level"] == "WARNING"]
    assert warning and warning[0]["message"].startswith("503:"), failed
    assert [r["status"] for r in failed if r["logger"] == "uvicorn.access"] == [503]
    for record in lines:
        assert record["time"].endswith("Z") and record["level"] in logging.getLevelNamesMapping()


def test_an_unhandled_error_is_logged_with_its_traceback_and_request_id(tmp_path: Path) -> None:
    # Plain uvicorn, given abscope's JSON configuration as a file (--log-config).
    config = tmp_path / "log.json"
    config.write_text(json.dumps(log_config("json")))
    server = UvicornServer(
        "tests.api.failing_app:create_app",
        tmp_path / "uvicorn.log",
        env={"ABSCOPE_DB_PATH": str(tmp_path / "abscope.db")},
        health_path="/health",
        options=["--log-config", str(config)],
    )
    with server:
        assert _call(server, "GET", "/boom", request_id="boom-1")[0] == 500
        assert _call(server, "GET", "/health", request_id="after-1") == (200, "after-1")
    lines = _lines(server.log_file)
    errors = [r for r in lines if r["level"] == "ERROR"]
    assert len(errors) == 1, errors
    assert errors[0]["request_id"] == "boom-1" and errors[0]["logger"] == "uvicorn.error"
    assert "RuntimeError: boom: a bug" in errors[0]["exception"], errors[0]
    access = {r["request_id"]: r["status"] for r in lines if r["logger"] == "uvicorn.access"}
    assert {rid: access.get(rid) for rid in ("boom-1", "after-1")} == {
        "boom-1": 500,
        "after-1": 200,
    }
    assert None not in access  # the readiness probes' too, with ids of their own


def test_the_formatter_gives_the_exception_and_the_contexts_request_id() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "abscope.api", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info()
        )
    token = request_id.set("req-7")
    try:
        line = json.loads(formatter.format(record))
    finally:
        request_id.reset(token)
    assert line["message"] == "failed here" and line["request_id"] == "req-7"
    assert line["level"] == "ERROR" and line["logger"] == "abscope.api"
    assert "Traceback" in line["exception"] and "ValueError: boom" in line["exception"]
    assert json.loads(formatter.format(logging.makeLogRecord({"msg": "x"})))["request_id"] is None
