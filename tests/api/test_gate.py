"""``/experiments/{id}/gate`` on a real uvicorn server (SQLite, all three keys set), and the
deployment examples of ``deploy/`` run against it as Flagger and Argo Rollouts would.

The server holds a passing, a failing and an inconclusive experiment (and one without
guardrails), created over HTTP with their metrics; their traffic is recorded into the
server's SQLite file by this process (``store.record_events``, as ``/events`` records it).
The Flagger canary's webhooks are POSTed as Flagger does (its payload, and a status above
202 counted as a failure); the Argo Rollouts template's web metric is asked as its provider
does (its headers, any non-2xx an error) and its conditions evaluated by a tiny evaluator of
exactly their form, ``result.<field> == "<value>"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from abscope.storage.sqlite import SQLiteStore
from tests.fixtures.guardrails import SCENARIOS, guarded_body, latency_traffic
from tests.fixtures.uvicorn_server import ABSCOPE_APP, UvicornServer

REPO = Path(__file__).resolve().parents[2]
FLAGGER = REPO / "deploy" / "flagger-canary.yaml"
ARGO = REPO / "deploy" / "argo-analysis-template.yaml"
README = REPO / "README.md"
KEYS = {"admin": "gate-admin-key-4c1d7e", "ingest": "gate-ingest-key-9a02b3",
        "read": "gate-read-key-e6f518"}  # fmt: skip
ENV = {
    "ABSCOPE_ADMIN_API_KEY": KEYS["admin"],
    "ABSCOPE_INGEST_API_KEY": KEYS["ingest"],
    "ABSCOPE_READ_API_KEY": KEYS["read"],
}
IDS = {name: f"gate-{name}" for name in SCENARIOS}
NO_GUARDRAILS = "gate-none"
FLAGGER_PAYLOAD = {"name": "model-server", "namespace": "ml", "phase": "Progressing"}


@dataclass(frozen=True)
class Served:
    url: str
    host: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("gate-server")
    database = directory / "abscope.db"
    env = {"ABSCOPE_DB_PATH": str(database), **ENV}
    server = UvicornServer(ABSCOPE_APP, directory / "uvicorn.log", env=env, health_path="/health")
    with server:
        admin = {"X-API-Key": KEYS["admin"]}
        with httpx.Client(base_url=server.url, headers=admin, timeout=30.0) as client:
            bodies = {IDS[name]: guarded_body(IDS[name]) for name in SCENARIOS}
            bodies[NO_GUARDRAILS] = guarded_body(NO_GUARDRAILS, metrics=[])
            for experiment_id, body in bodies.items():
                assert client.post("/experiments", json=body).status_code == 201
                assert client.post(f"/experiments/{experiment_id}/start").status_code == 200
        store = SQLiteStore(database)
        try:
            for name, scenario in SCENARIOS.items():
                events = latency_traffic(
                    IDS[name], scenario.users, scenario.treatment_latency, datetime.now(UTC)
                )
                store.record_events(events)
        finally:
            store.close()
        yield Served(server.url, server.url.removeprefix("http://"))


def _get(served: Served, path: str, key: str | None = "read", **kwargs: Any) -> httpx.Response:
    headers = {"X-API-Key": KEYS[key]} if key else {}
    return httpx.get(served.url + path, headers=headers, timeout=30.0, **kwargs)


# --- the statuses and the bodies --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "plain", "promotion"),
    [("pass", 200, 200), ("inconclusive", 202, 412), ("fail", 412, 412)],
)
def test_the_gate_answers_each_verdict_with_its_status(
    served: Served, name: str, plain: int, promotion: int
) -> None:
    path = f"/experiments/{IDS[name]}/gate"
    answers = {
        plain: _get(served, path),
        promotion: _get(served, path + "?promotion=true"),
        200: _get(served, path + "?report=true"),
    }
    for status, response in answers.items():
        assert response.status_code == status, response.text
        body = response.json()
        assert body["verdict"] == name and body["experiment_id"] == IDS[name]
        assert body["status"] == "running"
    body = answers[200].json()
    (metric,) = body["metrics"]
    assert (metric["name"], metric["variant"], metric["margin"]) == (
        "latency_ms",
        "treatment",
        0.05,
    )
    expected = {"pass": "non_inferior", "fail": "breach", "inconclusive": "inconclusive"}[name]
    assert metric["verdict"] == expected
    assert body["reasons"] == [f"latency_ms (treatment): {metric['reason_text']}"]
    if name == "inconclusive":
        assert metric["reason"] == "too_little_data"
        assert metric["reason_text"].startswith("inconclusive: too little data (40 users")
    else:
        assert metric["reason"] is None
        lower, upper = metric["interval"]
        assert lower < metric["estimate"] < upper
        if name == "fail":
            assert lower > 0.05  # at least 5% slower: beyond the margin
        else:
            assert upper < 0.05  # at most 5% slower: within it
    # The results say the same, from the same checks.
    results = _get(served, f"/experiments/{IDS[name]}/results").json()
    status = {"pass": "passing", "fail": "failing", "inconclusive": "inconclusive"}[name]
    assert results["guardrail_status"] == status
    (guard,) = next(m for m in results["metrics"] if m["name"] == "latency_ms")["comparisons"]
    assert (guard["verdict"], guard["estimate"]) == (metric["verdict"], metric["estimate"])


def test_a_gate_with_nothing_to_judge_never_passes(served: Served) -> None:
    response = _get(served, f"/experiments/{NO_GUARDRAILS}/gate")
    assert response.status_code == 202
    assert response.json()["reasons"] == ["inconclusive: no guardrails declared"]
    assert _get(served, f"/experiments/{NO_GUARDRAILS}/gate?promotion=true").status_code == 412


def test_a_webhook_post_is_judged_as_a_get(served: Served) -> None:
    for name, status in (("pass", 200), ("inconclusive", 202), ("fail", 412)):
        response = httpx.post(
            f"{served.url}/experiments/{IDS[name]}/gate",
            json=FLAGGER_PAYLOAD,
            headers={"X-API-Key": KEYS["read"]},
            timeout=30.0,
        )
        assert response.status_code == status and response.json()["verdict"] == name


def test_the_gate_needs_the_read_key(served: Served) -> None:
    path = f"/experiments/{IDS['pass']}/gate"
    assert _get(served, path, key=None).status_code == 401
    assert _get(served, path, key="ingest").status_code == 403
    assert _get(served, path, key="admin").status_code == 200
    assert _get(served, path, key="read").status_code == 200
    wrong = httpx.get(served.url + path, headers={"X-API-Key": "gate-wrong"}, timeout=30.0)
    assert wrong.status_code == 401
    bearer = {"Authorization": f"Bearer {KEYS['read']}"}
    assert httpx.get(served.url + path, headers=bearer, timeout=30.0).status_code == 200
    # The key as the password of Basic authentication, from the URL's user info.
    for key, status in (("read", 200), ("admin", 200), ("ingest", 403)):
        url = f"http://flagger:{KEYS[key]}@{served.host}{path}"
        assert httpx.get(url, timeout=30.0).status_code == status, key
    assert httpx.get(f"http://flagger:nope@{served.host}{path}", timeout=30.0).status_code == 401
    missing = _get(served, "/experiments/no-such-experiment/gate")
    assert missing.status_code == 404


# --- the deployment examples ------------------------------------------------------------


def _flagger_succeeds(status: int) -> bool:
    """Flagger's rule for a webhook: an error when the status is above 202."""
    return status <= 202


def _webhooks() -> dict[str, dict[str, Any]]:
    canary = yaml.safe_load(FLAGGER.read_text())
    assert canary["kind"] == "Canary" and canary["apiVersion"] == "flagger.app/v1beta1"
    hooks = canary["spec"]["analysis"]["webhooks"]
    return {hook["type"]: hook for hook in hooks}


def _flagger_call(served: Served, url: str, experiment_id: str) -> httpx.Response:
    """POST the webhook as Flagger does: its payload, the key from the URL's user info."""
    parts = urlsplit(url)
    assert parts.username == "flagger" and parts.password == "<ABSCOPE_READ_API_KEY>"
    assert parts.path == "/experiments/model-v2/gate"
    path = parts.path.replace("model-v2", experiment_id)
    query = f"?{parts.query}" if parts.query else ""
    target = f"http://flagger:{KEYS['read']}@{served.host}{path}{query}"
    return httpx.post(target, json=FLAGGER_PAYLOAD, timeout=30.0)


@pytest.mark.parametrize(
    ("name", "rollout_goes_on", "promotes"),
    [("pass", True, True), ("inconclusive", True, False), ("fail", False, False)],
)
def test_the_flagger_canary_rolls_back_on_fail_and_promotes_on_pass_only(
    served: Served, name: str, rollout_goes_on: bool, promotes: bool
) -> None:
    hooks = _webhooks()
    assert set(hooks) == {"rollout", "confirm-promotion"}
    rollout = _flagger_call(served, hooks["rollout"]["url"], IDS[name])
    promotion = _flagger_call(served, hooks["confirm-promotion"]["url"], IDS[name])
    assert urlsplit(hooks["confirm-promotion"]["url"]).query == "promotion=true"
    assert _flagger_succeeds(rollout.status_code) is rollout_goes_on
    assert _flagger_succeeds(promotion.status_code) is promotes
    assert rollout.json()["verdict"] == promotion.json()["verdict"] == name


_CONDITION = re.compile(r'^result\.(\w+) == "([^"]*)"$')


def _holds(condition: str, result: dict[str, Any]) -> bool:
    """Argo's expression, of exactly the form ``result.<field> == "<value>"``."""
    match = _CONDITION.fullmatch(condition)
    assert match is not None, f'not of the form result.<field> == "<value>": {condition}'
    field, value = match.groups()
    return bool(result.get(field) == value)


def _substitute(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\{\{args\.([\w-]+)\}\}", lambda m: args[m.group(1)], text)


@pytest.mark.parametrize(
    ("name", "phase"),
    [("pass", "Successful"), ("inconclusive", "Inconclusive"), ("fail", "Failed")],
)
def test_the_argo_analysis_template_judges_the_verdict_in_the_body(
    served: Served, name: str, phase: str
) -> None:
    template = yaml.safe_load(ARGO.read_text())
    assert template["kind"] == "AnalysisTemplate"
    assert template["apiVersion"] == "argoproj.io/v1alpha1"
    assert [a["name"] for a in template["spec"]["args"]] == ["experiment-id", "read-key"]
    (metric,) = template["spec"]["metrics"]
    web = metric["provider"]["web"]
    assert web["jsonPath"] == "{$}"  # the whole body is the result
    args = {"experiment-id": IDS[name], "read-key": KEYS["read"]}
    parts = urlsplit(_substitute(web["url"], args))
    assert parts.query == "report=true"
    headers = {h["key"]: _substitute(h["value"], args) for h in web["headers"]}
    response = httpx.get(f"{served.url}{parts.path}?{parts.query}", headers=headers, timeout=30.0)
    assert 200 <= response.status_code < 300  # any other status is an Error measurement
    result = response.json()
    success = _holds(metric["successCondition"], result)
    failure = _holds(metric["failureCondition"], result)
    measured = "Successful" if success else "Failed" if failure else "Inconclusive"
    assert measured == phase
    assert not (success and failure)
    # The run, as Argo assesses a metric after its count of looks: failed beyond
    # failureLimit, else inconclusive beyond inconclusiveLimit, else successful. Ten looks
    # of this answer give the phase the comments promise.
    looks = [measured] * metric["count"]
    if looks.count("Failed") > metric["failureLimit"]:
        run = "Failed"
    elif looks.count("Inconclusive") > metric["inconclusiveLimit"]:
        run = "Inconclusive"
    else:
        run = "Successful"
    assert run == phase
    assert (metric["count"], metric["failureLimit"], metric["inconclusiveLimit"]) == (10, 0, 9)


def test_the_readme_shows_the_deploy_files_as_they_are() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.DOTALL)
    for path in (FLAGGER, ARGO):
        assert path.read_text() in blocks, f"the README does not show {path.name} as it is"
