"""What the deploy tests read from the repository's deployment files, parsed once here.

:func:`runtime_image` reads the Dockerfile: its instructions (continuation lines joined,
comments dropped), per stage, and what the runtime stage sets: ``ENV`` (``KEY=value`` pairs,
``$VAR`` and ``${VAR}`` expanded as Docker does), ``USER``, ``WORKDIR``, ``EXPOSE``,
``HEALTHCHECK`` and ``CMD`` (exec form only: a shell form is a failure here, as it would
put a shell between the container's signals and the service). :func:`compose` and
:func:`workflow` load the YAML files; :func:`task_definition` the ECS template.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "REPO",
    "Instruction",
    "RuntimeImage",
    "compose",
    "dockerfile_instructions",
    "expand",
    "runtime_image",
    "task_definition",
    "workflow",
]

REPO = Path(__file__).resolve().parents[2]
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword (upper case), its arguments, and its stage
    (the ``AS`` name of the ``FROM`` it follows)."""

    keyword: str
    arguments: str
    stage: str


def dockerfile_instructions(path: Path = REPO / "Dockerfile") -> list[Instruction]:
    """The Dockerfile's instructions, in order."""
    logical: list[str] = []
    pending = ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue  # a comment, or the syntax directive; also allowed inside a continuation
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        if pending or line.strip():
            logical.append(pending + line)
        pending = ""
    instructions = []
    stage = ""
    for text in logical:
        keyword, _, arguments = text.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = arguments.split()
            stage = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else parts[0]
        instructions.append(Instruction(keyword, arguments.strip(), stage))
    return instructions


def expand(value: str, env: dict[str, str]) -> str:
    """``$VAR`` and ``${VAR}`` replaced from ``env`` (unset: empty), as ENV does."""
    return _VARIABLE.sub(lambda m: env.get(m[1] or m[2], ""), value)


def _exec_form(arguments: str, what: str) -> list[str]:
    try:
        command = json.loads(arguments)
    except json.JSONDecodeError:
        raise AssertionError(f"{what} must be in the exec (JSON) form: {arguments}") from None
    assert isinstance(command, list) and all(isinstance(a, str) for a in command), what
    return command


@dataclass(frozen=True)
class RuntimeImage:
    """What the Dockerfile's last stage gives the running container."""

    base: str
    """The runtime stage's ``FROM`` image."""
    builder_base: str
    """The first stage's ``FROM`` image."""
    env: dict[str, str]
    """The stage's ``ENV``, expanded over ``base_env`` (the base image's PATH)."""
    uid: int
    gid: int
    workdir: str
    expose: list[int]
    healthcheck: list[str]
    """The ``HEALTHCHECK CMD`` command."""
    cmd: list[str]
    venv: str
    """Where the runtime stage copies the builder's venv (``COPY --from=builder X X``)."""
    builder_copies: list[tuple[list[str], str]]
    """The builder stage's ``COPY`` of build-context files: (sources, destination)."""
    builder_workdir: str


BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""PATH of the python:*-slim images, which the Dockerfile's ``$PATH`` expands to."""


def runtime_image(path: Path = REPO / "Dockerfile") -> RuntimeImage:
    """The runtime stage of the Dockerfile at ``path``."""
    instructions = dockerfile_instructions(path)
    froms = [i for i in instructions if i.keyword == "FROM"]
    assert len(froms) >= 2, "a builder stage and a runtime stage"
    runtime = [i for i in instructions if i.stage == froms[-1].stage]
    builder = [i for i in instructions if i.stage == froms[0].stage]

    def one(keyword: str) -> str:
        found = [i.arguments for i in runtime if i.keyword == keyword]
        assert len(found) == 1, f"the runtime stage has {len(found)} {keyword}, expected 1"
        return found[0]

    env = {"PATH": BASE_PATH}
    for instruction in (i for i in runtime if i.keyword == "ENV"):
        updates = {}
        for token in shlex.split(instruction.arguments):
            key, sep, value = token.partition("=")
            assert sep, f"ENV takes KEY=value pairs here, got {token!r}"
            updates[key] = expand(value, env)  # one ENV line expands from the ones before it
        env.update(updates)
    uid, _, gid = one("USER").partition(":")
    health = one("HEALTHCHECK")
    assert " CMD " in f" {health} ", "HEALTHCHECK must run a command"
    copies_from = [
        i.arguments.split()[1:] for i in runtime if i.keyword == "COPY" and "--from=" in i.arguments
    ]
    assert len(copies_from) == 1 and copies_from[0][0] == copies_from[0][1], copies_from
    builder_copies = []
    for instruction in (i for i in builder if i.keyword == "COPY"):
        *sources, destination = instruction.arguments.split()
        builder_copies.append((sources, destination))
    return RuntimeImage(
        base=froms[-1].arguments.split()[0],
        builder_base=froms[0].arguments.split()[0],
        env=env,
        uid=int(uid),
        gid=int(gid or uid),
        workdir=one("WORKDIR"),
        expose=[int(port.split("/")[0]) for port in one("EXPOSE").split()],
        healthcheck=_exec_form(health.split(" CMD ", 1)[1], "HEALTHCHECK CMD"),
        cmd=_exec_form(one("CMD"), "CMD"),
        venv=copies_from[0][0],
        builder_copies=builder_copies,
        builder_workdir=[i.arguments for i in builder if i.keyword == "WORKDIR"][-1],
    )


def _yaml(path: Path) -> Any:
    with path.open() as text:
        return yaml.safe_load(text)


def compose() -> dict[str, Any]:
    """docker-compose.yml."""
    loaded: dict[str, Any] = _yaml(REPO / "docker-compose.yml")
    return loaded


def workflow(name: str) -> dict[str, Any]:
    """``.github/workflows/<name>.yml``. YAML 1.1 reads the key ``on`` as True: it is put
    back under ``"on"``."""
    loaded: dict[Any, Any] = _yaml(REPO / ".github" / "workflows" / f"{name}.yml")
    if True in loaded:
        loaded["on"] = loaded.pop(True)
    return loaded


def task_definition() -> dict[str, Any]:
    """deploy/ecs-task-definition.json, the template the deploy workflow renders."""
    loaded: dict[str, Any] = json.loads((REPO / "deploy" / "ecs-task-definition.json").read_text())
    return loaded
