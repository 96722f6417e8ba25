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

__all__ = ["app", "run"]

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


def run() -> None:
    """Run the app on ``sys.argv``."""
    app()
