"""The connection of the management commands to a server: their shared options, the SDK
client they use, and the one place where the SDK's errors become messages and exit codes.

=====================================  =========================================  ====
raised                                 printed on stderr                          exit
=====================================  =========================================  ====
``ApiError`` (a 4xx)                   ``error: <status>: <detail>``              1
``ServerUnavailable``, no answer       ``error: cannot reach <url>: <why>``       1
``ServerUnavailable``, a 5xx           ``error: <url> failed: <status>: <why>``   1
a missing or malformed ``--url``       click's usage error, naming ``--url``      2
=====================================  =========================================  ====

Only the SDK (:mod:`abscope.client`, over httpx) and typer are imported: the management
commands run with ``pip install 'abscope[cli]'``, without NumPy or the server's packages.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer

from abscope.client import ApiError, Client, ServerUnavailable

__all__ = ["ApiKeyOption", "JsonOption", "TimeoutOption", "UrlOption", "connect", "fail"]

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="ABSCOPE_URL",
        show_default=False,
        help="The service, e.g. http://127.0.0.1:8000 (what `make serve` serves).",
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="ABSCOPE_API_KEY",
        show_default=False,
        help="Sent as X-API-Key: the read key for reads, the admin key for changes. Prefer"
        " the variable: an option shows in the process list.",
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option(min=0.001, help="Seconds to wait for each answer of the server."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the server's answer as JSON.")]

_KEY_HINT = " (check --api-key or ABSCOPE_API_KEY)"


def fail(message: str) -> NoReturn:
    """Print ``message`` on stderr and exit 1."""
    typer.echo(message, err=True)
    raise typer.Exit(1)


@contextmanager
def connect(
    url: str | None,
    api_key: str | None,
    timeout: float,
    *,
    flags: Mapping[str, str] | None = None,
) -> Iterator[Client]:
    """A management client of ``url`` (no routing configuration, no background thread);
    the SDK's errors raised in the block are printed as one line, and exit 1.

    ``flags`` maps the body fields of the request to the options that set them: a 422 then
    names the option beside the field (``body.traffic_percentage: ... (--traffic)``).

    Raises
    ------
    typer.BadParameter
        ``url`` is missing or is not an http(s) URL (exit 2).
    typer.Exit
        With code 1, after an :class:`ApiError` or a :class:`ServerUnavailable`.
    """
    try:
        client = Client(url, api_key=api_key, timeout=timeout, local_evaluation=False, start=False)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--url (or ABSCOPE_URL)") from None
    try:
        yield client
    except ApiError as error:
        hint = _KEY_HINT if error.status_code in (401, 403) else _options(error, flags)
        fail(f"error: {error.status_code}: {error.detail}{hint}")
    except ServerUnavailable as error:
        where = client.options.url
        if error.status_code is None:
            fail(f"error: cannot reach {where}: {error.message}")
        fail(f"error: {where} failed: {error.message}")
    finally:
        client.close()


def _options(error: ApiError, flags: Mapping[str, str] | None) -> str:
    """`` (--a, --b)``: the options behind the body fields a validation error names."""
    named = []
    for where in error.fields:
        parts = where.split(".")
        option = (flags or {}).get(parts[1]) if len(parts) > 1 and parts[0] == "body" else None
        if option and option not in named:
            named.append(option)
    return f" ({', '.join(named)})" if named else ""
