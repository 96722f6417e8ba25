"""The README's Python examples run as written, and its plan output is current."""

from __future__ import annotations

import re
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
    console = next(b for b in _blocks("console") if b.startswith("$ .venv/bin/abscope plan "))
    shown = console.split("$ ")[1].split("\n", 1)[1].strip()
    result = CliRunner().invoke(
        app, ["plan", "--baseline-rate", "0.1", "--min-relative-lift", "0.05",
              "--daily-traffic", "20000"],
    )  # fmt: skip
    assert result.output.strip() == shown
