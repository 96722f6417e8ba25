"""``abscope serve``: the HTTP service and its dashboard, configured by ``ABSCOPE_*``.

The server's modules (uvicorn, FastAPI, pydantic settings) are imported when the command
runs, so that the rest of the command line runs without the ``server`` extra.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

__all__ = ["serve"]


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes. Above 1, each listens on its own socket on the port"
            " (SO_REUSEPORT), so the kernel spreads connections over them."
        ),
    ] = 1,
    log_level: Annotated[
        str, typer.Option(help="uvicorn's log level: critical, error, warning, info, debug.")
    ] = "info",
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log",
            help="Log a line per request. Off by default: it made each request cost 6-11%"
            " more CPU (make bench).",
        ),
    ] = False,
    allow_no_keys: Annotated[
        bool,
        typer.Option(
            "--allow-no-keys",
            help="Serve a non-loopback address with no API key set, every route open to"
            " anyone who can reach it. Without it, that is refused.",
        ),
    ] = False,
) -> None:
    """Run the HTTP service and dashboard (settings from ABSCOPE_* variables).

    ABSCOPE_LOG_FORMAT=json logs one JSON object per line, each with its request's id.

    Exits 2, naming the setting, when a setting is invalid (an API key under 16 characters
    among them), or when the address is not loopback and no API key is set (unless
    --allow-no-keys).
    """
    from dataclasses import replace

    from pydantic import ValidationError

    from abscope.api.workers import ServeOptions
    from abscope.api.workers import serve as run_service
    from abscope.config import KEY_SETTINGS, Settings, setting_errors

    try:
        options = ServeOptions(host, port, workers, log_level.lower(), access_log)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    try:
        settings = Settings()
    except ValidationError as error:
        for line in setting_errors(error):
            typer.echo(f"Error: {line}", err=True)
        raise typer.Exit(2) from None
    if not settings.has_keys and not allow_no_keys and not _is_loopback(host):
        typer.echo(
            f"Error: refusing to serve {host} with no API key set: every route would be open"
            f" to anyone who can reach it. Set {', '.join(KEY_SETTINGS)} (16 characters or"
            " more), or pass --allow-no-keys.",
            err=True,
        )
        raise typer.Exit(2)
    options = replace(options, log_format=settings.log_format, metrics=settings.metrics)
    raise typer.Exit(run_service(options))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a name other than localhost: it may resolve anywhere
        return False
