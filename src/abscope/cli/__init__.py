"""The ``abscope`` command line (the ``cli`` extra: typer).

:func:`main` is the console script. Without typer it prints one line saying what to install
and exits 1; this module imports nothing else until a command runs (:mod:`abscope.cli.root`
lists the commands). ``app`` and the planning helpers are loaded on first access.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["app", "main", "parse_counts", "parse_means", "parse_weights"]

_INSTALL_HINT = "abscope: the command line needs typer: pip install 'abscope[cli]'"
_LAZY = {
    "app": "abscope.cli.root",
    "parse_counts": "abscope.cli.planning",
    "parse_means": "abscope.cli.planning",
    "parse_weights": "abscope.cli.planning",
}


def main() -> None:
    """Console-script entry point: ``abscope ...``."""
    try:
        import typer  # noqa: F401
    except ModuleNotFoundError as error:
        if error.name != "typer":
            raise
        print(_INSTALL_HINT, file=sys.stderr)
        raise SystemExit(1) from None
    from abscope.cli.root import run

    run()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
