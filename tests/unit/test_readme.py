"""The README's Python examples run as written, and its plan output is current."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from abscope.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_python_examples_run() -> None:
    blocks = _blocks("python")
    assert len(blocks) >= 3
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102


def test_readme_plan_output_matches_the_cli() -> None:
    consoles = [b for b in _blocks("console") if b.startswith("$ .venv/bin/abscope plan ")]
    assert len(consoles) == 2  # the command line's, and CUPED's
    for console in consoles:
        command, shown = console.split("$ ")[1].split("\n", 1)
        arguments = shlex.split(command.removeprefix(".venv/bin/abscope "))
        result = CliRunner().invoke(app, arguments)
        assert result.exit_code == 0, result.output
        assert result.output.strip() == shown.strip(), command
    assert any("--covariate-correlation 0.7" in console for console in consoles)
