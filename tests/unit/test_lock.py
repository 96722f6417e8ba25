"""The container image's locks agree with pyproject.toml: every ``==`` pin of the service (the
base dependencies and the ``server`` and ``cli`` extras) is in ``requirements/server.lock`` at
the same version, the build backend's in ``requirements/build.lock``, and every locked line
carries its hashes. ``make lock`` (scripts/lock.sh) regenerates both."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#,]+)")
LOCKED = re.compile(r"^([a-z0-9][a-z0-9._-]*)==(\S+)")


def _name(name: str) -> str:
    """PEP 503's normalised name: ``Pydantic_Settings`` and ``pydantic-settings`` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for requirement in requirements:
        match = PIN.match(requirement.strip())
        if match:
            pins[_name(match[1])] = match[2]
    return pins


def _lock(name: str) -> dict[str, tuple[str, int]]:
    """Each locked package's version and how many hashes it carries."""
    text = (REPO / "requirements" / name).read_text()
    entries: dict[str, tuple[str, int]] = {}
    for block in re.split(r"\n(?=[a-z0-9])", text):
        match = LOCKED.match(block)
        if match:
            entries[_name(match[1])] = (match[2], block.count("--hash=sha256:"))
    return entries


def _service_pins() -> dict[str, str]:
    extras = PYPROJECT["project"]["optional-dependencies"]
    return _pins([*PYPROJECT["project"]["dependencies"], *extras["server"], *extras["cli"]])


def test_the_service_pins_are_what_pyproject_says() -> None:
    pins = _service_pins()
    # The extras pin what the service imports; the self-reference abscope[cli] is no pin.
    assert {"fastapi", "uvicorn", "redis", "numpy", "scipy", "typer", "httpx"} <= set(pins)
    assert "abscope" not in pins


@pytest.mark.parametrize(("lock", "pins"), [
    ("server.lock", _service_pins()),
    ("build.lock", _pins(PYPROJECT["build-system"]["requires"])),
])  # fmt: skip
def test_every_pin_is_locked_at_its_version(lock: str, pins: dict[str, str]) -> None:
    locked = _lock(lock)
    assert pins, f"no == pin found for {lock}"
    drifted = {
        name: (version, locked[name][0] if name in locked else "missing")
        for name, version in pins.items()
        if name not in locked or locked[name][0] != version
    }
    assert drifted == {}, f"pyproject's pin vs {lock} (run make lock): {drifted}"


@pytest.mark.parametrize("lock", ["server.lock", "build.lock"])
def test_every_locked_package_is_exact_and_hashed(lock: str) -> None:
    locked = _lock(lock)
    text = (REPO / "requirements" / lock).read_text()
    requirement_lines = [line for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert len(requirement_lines) == len(locked), "a requirement line that is not NAME==VERSION"
    unhashed = sorted(name for name, (_, hashes) in locked.items() if hashes == 0)
    assert unhashed == []
    assert "abscope" not in locked, "the lock is the dependencies; the image adds the wheel"
