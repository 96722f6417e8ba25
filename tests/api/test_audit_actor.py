"""The audit trail names who made each change: the role of the API key that asked.

On a real uvicorn with keys set, every change (create, patch, a metric added, each
transition) is made with the admin key, and its audit entry says ``"by": "admin"``; without
keys nobody is known, and no entry claims an actor. The monitor's own pause says
``"by": "monitor"`` (tests/unit/test_monitoring.py).
"""

from __future__ import annotations

from pathlib import Path

from tests.api.helpers import MakeServer

ADMIN = "audit-admin-key-4c9e27d1"
READ = "audit-read-key-8a1f03b6"
BODY = {"id": "audited", "name": "Audited", "control_model_id": "a", "treatment_model_id": "b"}
METRIC = {"name": "latency_ms", "kind": "ratio", "role": "guardrail", "higher_is_better": False,
          "margin": 0.05}  # fmt: skip


def _changes(api_key: str | None, make_server: MakeServer, tmp_path: Path) -> list[dict]:  # type: ignore[type-arg]
    env = {"ABSCOPE_DB_PATH": str(tmp_path / f"{api_key}.db"), "ABSCOPE_MONITOR": "false"}
    if api_key is not None:
        env |= {"ABSCOPE_ADMIN_API_KEY": ADMIN, "ABSCOPE_READ_API_KEY": READ}
    server = make_server(**env)
    with server.client() as api:
        if api_key is not None:
            api.headers["X-API-Key"] = api_key
        for method, path, body in [
            ("POST", "/experiments", BODY),
            ("PATCH", "/experiments/audited", {"description": "now with a guardrail"}),
            ("POST", "/experiments/audited/metrics", METRIC),
            ("POST", "/experiments/audited/start", None),
            ("POST", "/experiments/audited/pause", None),
            ("POST", "/experiments/audited/resume", None),
            ("POST", "/experiments/audited/complete", {"winner": "control"}),
        ]:
            answer = api.request(method, path, json=body)
            assert answer.status_code in (200, 201), answer.text
        entries = api.get("/experiments/audited").json()["audit"]
    assert [e["action"] for e in entries] == [
        "create", "update", "metric_added", "start", "pause", "resume", "complete",
    ]  # fmt: skip
    return [e["changes"] for e in entries]


def test_with_keys_each_change_names_the_role_that_made_it(
    make_server: MakeServer, tmp_path: Path
) -> None:
    changes = _changes(ADMIN, make_server, tmp_path)
    assert [c.get("by") for c in changes] == ["admin"] * len(changes)


def test_without_keys_no_entry_claims_an_actor(make_server: MakeServer, tmp_path: Path) -> None:
    changes = _changes(None, make_server, tmp_path)
    assert all("by" not in c for c in changes), changes
