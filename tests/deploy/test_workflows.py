"""The workflows agree with the repository: the deploy workflow's ``paths`` exist and cover what
the image is built from, the task definition's container and placeholders are the ones the
workflow renders, and the service runs the same command and healthcheck in the image, in
compose and on ECS. (Their schemas and actionlint are checked by ``make lint``.)
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from abscope.config import KEY_SETTINGS
from tests.deploy.files import REPO, compose, runtime_image, task_definition, workflow

PLACEHOLDER = re.compile(r"<([A-Z][A-Z_]*)>")
VERSION_PIN = re.compile(r"^[\w.-]+/[\w.-]+@v\d+\.\d+\.\d+$")
# README.md and LICENSE go into the wheel's metadata only: a change there needs no deployment.
NOT_DEPLOYED = {"README.md", "LICENSE"}


def _steps(name: str) -> list[dict[str, Any]]:
    (job,) = workflow(name)["jobs"].values()
    steps: list[dict[str, Any]] = job["steps"]
    return steps


def _covered(path: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith("/**") and path.rstrip("/").startswith(pattern[:-3]):
            return True
        if path == pattern:
            return True
    return False


def test_the_deploy_paths_exist_and_cover_the_image_inputs() -> None:
    deploy = workflow("deploy")
    push = deploy["on"]["push"]
    assert push["branches"] == ["main"]
    patterns: list[str] = push["paths"]
    for pattern in patterns:
        literal = pattern.split("*", 1)[0].rstrip("/")
        assert (REPO / literal).exists(), f"the deploy workflow watches {pattern}: no {literal}"
    assert ".github/workflows/deploy.yml" in patterns
    image = runtime_image()
    inputs = {"Dockerfile", ".dockerignore"}
    inputs |= {source for sources, _ in image.builder_copies for source in sources}
    uncovered = {p for p in inputs - NOT_DEPLOYED if not _covered(p, patterns)}
    assert uncovered == set(), f"image inputs the deploy workflow does not watch: {uncovered}"
    assert _covered("deploy/ecs-task-definition.json", patterns)


def test_the_task_definition_is_what_the_workflow_renders() -> None:
    (job,) = workflow("deploy")["jobs"].values()
    definition = task_definition()
    (container,) = definition["containerDefinitions"]
    assert job["env"]["CONTAINER_NAME"] == container["name"]
    assert job["env"]["TASK_DEFINITION"] == "deploy/ecs-task-definition.json"
    render = next(s for s in _steps("deploy") if "render-task-definition" in str(s.get("uses")))
    assert render["with"] == {
        "task-definition": "${{ runner.temp }}/task-definition.json",
        "container-name": "${{ env.CONTAINER_NAME }}",
        "image": "${{ steps.image.outputs.image }}",
    }
    text = (REPO / "deploy" / "ecs-task-definition.json").read_text()
    # The image is the render action's; every other placeholder is filled by the sed step.
    placeholders = set(PLACEHOLDER.findall(text.replace(container["image"], "")))
    assert container["image"].startswith("<IMAGE"), "the template's image is a placeholder"
    fill = next(s for s in _steps("deploy") if str(s.get("name", "")).startswith("Fill in"))
    substituted = set(re.findall(r"s\|<([A-Z_]+)>\|\$([A-Z_]+)\|g", str(fill["run"])))
    assert {name for name, _ in substituted} == placeholders
    for name, variable in substituted:
        assert name == variable and fill["env"][variable] == f"${{{{ vars.{variable} }}}}"
    deploy = next(s for s in _steps("deploy") if "deploy-task-definition" in str(s.get("uses")))
    assert deploy["with"]["task-definition"] == "${{ steps.render.outputs.task-definition }}"
    assert deploy["with"]["wait-for-service-stability"] is True


def test_the_keys_come_from_secrets_manager_and_the_rest_from_the_task_definition() -> None:
    (container,) = task_definition()["containerDefinitions"]
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert set(secrets) == {*KEY_SETTINGS, "ABSCOPE_REDIS_URL"}
    assert all(value.startswith("<ABSCOPE_SECRET_ARN>:") for value in secrets.values())
    environment = {e["name"] for e in container["environment"]}
    assert environment.isdisjoint(secrets), "a setting is both in environment and secrets"
    assert all(name.startswith("ABSCOPE_") for name in environment)


def test_the_service_runs_alike_in_the_image_in_compose_and_on_ecs() -> None:
    image = runtime_image()
    (container,) = task_definition()["containerDefinitions"]
    api = compose()["services"]["api"]
    assert container["command"] == api["command"] == [*image.cmd, "--workers", "2"]
    assert container["healthCheck"]["command"] == api["healthcheck"]["test"]
    assert api["healthcheck"]["test"] == ["CMD", *image.healthcheck]
    assert [m["containerPort"] for m in container["portMappings"]] == image.expose


def test_the_workflows_pin_their_actions_and_ask_for_least_permissions() -> None:
    for name in ("ci", "deploy"):
        for step in _steps(name):
            if "uses" in step:
                assert VERSION_PIN.match(str(step["uses"])), f"{name}: {step['uses']} unpinned"
    ci = workflow("ci")
    assert ci["permissions"] == {"contents": "read"}
    assert {"push", "pull_request"} <= set(ci["on"])
    assert any(step.get("run") == "bash .ci/run" for step in _steps("ci"))
    deploy = workflow("deploy")
    assert deploy["permissions"] == {}
    (job,) = deploy["jobs"].values()
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert deploy["concurrency"]["cancel-in-progress"] is False
    credentials = next(s for s in _steps("deploy") if "configure-aws" in str(s.get("uses")))
    assert credentials["with"]["role-to-assume"] == "${{ secrets.AWS_DEPLOY_ROLE_ARN }}"


def test_the_readme_names_every_secret_and_variable_a_fork_sets() -> None:
    text = (REPO / ".github" / "workflows" / "deploy.yml").read_text()
    used = set(re.findall(r"\$\{\{ (?:secrets|vars)\.([A-Z_]+) \}\}", text))
    deploy_section = Path(REPO / "README.md").read_text().split("## Deploy", 1)[1]
    missing = {name for name in used if f"`{name}`" not in deploy_section}
    assert missing == set(), f"the README's Deploy section does not name {missing}"


ACCOUNT_VALUES = {
    "AWS_REGION": "eu-west-1",
    "ECS_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/abscope-execution",
    "ABSCOPE_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:abscope-AbCdEf",
}


def _fill(tmp_path: Path, values: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The workflow's own "Fill in" script, run by bash as the runner would."""
    fill = next(s for s in _steps("deploy") if str(s.get("name", "")).startswith("Fill in"))
    env = {"PATH": "/usr/bin:/bin", "RUNNER_TEMP": str(tmp_path), **values}
    env["TASK_DEFINITION"] = str(REPO / "deploy" / "ecs-task-definition.json")
    return subprocess.run(
        ["bash", "-e", "-c", fill["run"]], env=env, capture_output=True, text=True, timeout=30
    )


def test_the_fill_step_leaves_only_the_image_to_render(tmp_path: Path) -> None:
    done = _fill(tmp_path, ACCOUNT_VALUES)
    assert done.returncode == 0, done.stdout + done.stderr
    filled = json.loads((tmp_path / "task-definition.json").read_text())
    assert filled["executionRoleArn"] == ACCOUNT_VALUES["ECS_EXECUTION_ROLE_ARN"]
    (container,) = filled["containerDefinitions"]
    assert container["logConfiguration"]["options"]["awslogs-region"] == "eu-west-1"
    secret = ACCOUNT_VALUES["ABSCOPE_SECRET_ARN"]
    assert {s["valueFrom"].rsplit(":", 3)[0] for s in container["secrets"]} == {secret}
    assert container["image"].startswith("<IMAGE")  # the render action's to fill


def test_the_fill_step_refuses_an_unset_variable(tmp_path: Path) -> None:
    done = _fill(tmp_path, {**ACCOUNT_VALUES, "ABSCOPE_SECRET_ARN": ""})
    assert done.returncode == 1
    assert "the repository variable ABSCOPE_SECRET_ARN is not set" in done.stdout
