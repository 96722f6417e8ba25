"""Keys at startup: an empty, short or repeated key is an error naming its setting (in
``Settings``, in the app factory, and from a real ``abscope serve`` as a message, not a
traceback); no key at all is a logged warning, and ``abscope serve`` refuses a
non-loopback address without keys unless ``--allow-no-keys``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

import abscope
from abscope.api import workers
from abscope.api.app import create_app
from abscope.api.workers import ServeOptions
from abscope.cli import app as cli
from abscope.config import KEY_SETTINGS, MIN_KEY_LENGTH, Settings, get_settings, setting_errors
from tests.api.helpers import make_settings

FIELDS = ["admin_api_key", "ingest_api_key", "read_api_key"]
SHORT = "short-key-15chr"  # 15 characters
_SRC = Path(abscope.__file__).resolve().parents[1]

runner = CliRunner()


def _errors(**settings: str) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        Settings(**settings)  # type: ignore[arg-type]
    assert SHORT not in str(raised.value)  # the key itself is never shown
    return setting_errors(raised.value)


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize(("value", "got"), [("", "an empty key"), (SHORT, "15 characters")])
def test_an_empty_or_short_key_is_an_error_naming_the_setting(
    field: str, value: str, got: str
) -> None:
    assert len(SHORT) == MIN_KEY_LENGTH - 1
    [message] = _errors(**{field: value})
    assert message.startswith(f"ABSCOPE_{field.upper()} must be at least 16 characters")
    assert got in message


@pytest.mark.parametrize(
    "value", [" padded-key-0123456789", "key-with-\u00e9-0123456789", "tab\tkey-0123456789"]
)
def test_a_key_a_header_cannot_carry_is_an_error(value: str) -> None:
    [message] = _errors(admin_api_key=value)
    assert message == "ABSCOPE_ADMIN_API_KEY must be printable ASCII with no space at either end"


def test_a_key_of_16_characters_is_accepted() -> None:
    settings = Settings(read_api_key="k" * MIN_KEY_LENGTH)  # type: ignore[arg-type]
    assert settings.has_keys and not Settings().has_keys


def test_two_roles_cannot_share_a_key() -> None:
    [message] = _errors(admin_api_key="same-key-0123456789", read_api_key="same-key-0123456789")
    assert all(name in message for name in KEY_SETTINGS) and "differ" in message


def test_the_app_factory_refuses_a_short_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ABSCOPE_INGEST_API_KEY", SHORT)
    get_settings.cache_clear()
    try:
        with pytest.raises(ValidationError, match="ABSCOPE_INGEST_API_KEY must be at least 16"):
            create_app()
    finally:
        get_settings.cache_clear()


def test_an_app_without_keys_logs_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="abscope.api"):
        app = create_app(make_settings(tmp_path / "open.db"))
        keyed = create_app(make_settings(tmp_path / "keyed.db", admin_api_key="k" * 20))
    for built in (app, keyed):
        built.state.service.store.close()
    warnings = [r.getMessage() for r in caplog.records if "no API key is set" in r.getMessage()]
    assert len(warnings) == 1
    assert all(name in warnings[0] for name in KEY_SETTINGS)


def _serve(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A real ``abscope serve`` process (it must exit by itself)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ABSCOPE_")}
    environment["PYTHONPATH"] = os.pathsep.join([str(_SRC), environment.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "abscope.cli", "serve", "--port", "0", *args],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ABSCOPE_ADMIN_API_KEY", "", "ABSCOPE_ADMIN_API_KEY must be at least 16 characters"),
        ("ABSCOPE_READ_API_KEY", SHORT, "ABSCOPE_READ_API_KEY must be at least 16 characters"),
    ],
)
def test_serve_exits_2_with_the_setting_named(variable: str, value: str, message: str) -> None:
    completed = _serve(**{variable: value})
    assert completed.returncode == 2, completed.stderr
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr + completed.stdout
    assert "Uvicorn running" not in completed.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3"])
def test_serve_refuses_a_non_loopback_address_without_keys(host: str) -> None:
    completed = _serve("--host", host)
    assert completed.returncode == 2, completed.stderr
    assert f"refusing to serve {host} with no API key set" in completed.stderr
    assert all(name in completed.stderr for name in KEY_SETTINGS)
    assert "--allow-no-keys" in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize(
    ("host", "args", "env"),
    [
        ("127.0.0.1", [], {}),
        ("::1", [], {}),
        ("localhost", [], {}),
        ("0.0.0.0", ["--allow-no-keys"], {}),
        ("0.0.0.0", [], {"ABSCOPE_ADMIN_API_KEY": "k" * 20}),
    ],
)
def test_serve_goes_on_on_loopback_with_the_flag_or_with_a_key(
    monkeypatch: pytest.MonkeyPatch, host: str, args: list[str], env: dict[str, str]
) -> None:
    served: list[ServeOptions] = []

    def record(options: ServeOptions) -> int:
        served.append(options)
        return 0

    monkeypatch.setattr(workers, "serve", record)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(cli, ["serve", "--host", host, "--port", "0", *args])
    assert result.exit_code == 0, result.output
    assert [options.host for options in served] == [host]
