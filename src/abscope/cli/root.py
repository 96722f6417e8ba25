"""The ``abscope`` typer app: every command, ``--version``, and the entry point.

=================  ================================================  =========================
command            what it does                                      needs
=================  ================================================  =========================
``plan``           an experiment's users and days                    the ``server`` extra
``analyze``        the analysis of counts given on the command line  the ``server`` extra
``serve``          the HTTP service and dashboard                    the ``server`` extra
``simulate``       the bandit policies' regret, simulated here       the ``server`` extra
``experiments``    manage the experiments of a running server        ``abscope[cli]`` alone
=================  ================================================  =========================

Exit codes follow click: 0 on success, 2 for a usage error or an invalid value (the message
names the argument), 1 for any other error. Each command module imports NumPy, SciPy or the
server's packages inside its commands only, so ``abscope experiments ...`` and
``abscope --version`` run with the SDK and typer alone.
"""

from __future__ import annotations

from typing import Annotated

import typer

from abscope import __version__
from abscope.cli import experiments, planning, serve, simulate

__all__ = ["SERVER_EXTRA", "app", "run"]

app = typer.Typer(
    help="abscope: plan, run and analyse A/B experiments.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"abscope {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """abscope: plan, run and analyse A/B experiments."""


app.command()(planning.plan)
app.command()(planning.analyze)
app.command()(serve.serve)
app.command()(simulate.simulate)
app.add_typer(experiments.app, name="experiments")


SERVER_EXTRA = frozenset(
    {"numpy", "scipy", "fastapi", "starlette", "uvicorn", "pydantic_settings", "plotly", "redis"}
)
"""Packages of the ``server`` extra: a command that needs one says so in one line."""


def run() -> None:
    """Run the app on ``sys.argv``; a command that needs the ``server`` extra where it is
    not installed prints one line saying so, and exits 1."""
    try:
        app()
    except ModuleNotFoundError as error:
        if error.name is None or error.name.partition(".")[0] not in SERVER_EXTRA:
            raise
        typer.echo(
            f"abscope: this command needs the server extra ({error.name} is missing):"
            " pip install 'abscope[server]'",
            err=True,
        )
        raise SystemExit(1) from None
