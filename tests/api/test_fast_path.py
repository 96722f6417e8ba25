"""The ``/route`` fast path answers exactly as the FastAPI route does, and leaves the rest to it.

Two apps on two fresh stores get the same requests: one as built, one whose fast path passes
every request on to FastAPI. Their answers must be the same, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from abscope.api.app import create_app
from abscope.api.fast_path import FastPath
from abscope.models import Event
from abscope.storage.base import EventResult
from abscope.storage.sqlite import SQLiteStore
from tests.api.helpers import TestClient, assert_status, make_settings

KEYS = {"admin_api_key": "admin-secret-0123456789", "ingest_api_key": "ingest-secret-0123456789"}
INGEST = {"X-API-Key": "ingest-secret-0123456789"}
ADMIN = {"X-API-Key": "admin-secret-0123456789"}


@pytest.fixture
def pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, TestClient]]:
    """(fast, plain): the app as built, and one whose fast path always passes on."""
    with ExitStack() as stack:
        fast = stack.enter_context(
            TestClient(create_app(make_settings(tmp_path / "fast.db", **KEYS)))
        )
        plain_app = create_app(make_settings(tmp_path / "plain.db", **KEYS))
        plain = stack.enter_context(TestClient(plain_app))

        async def never(self: FastPath, path: str, headers: Any, body: bytes) -> None:
            return None

        # Only the plain app's instance: the middleware stack is built on the first request.
        plain.get("/health")
        monkeypatch.setattr(_fast_path(plain_app), "_answer", never.__get__(_fast_path(plain_app)))
        fast.get("/health")
        answered: list[bytes] = []
        layer = _fast_path(fast.app)
        original = layer._answer

        async def counted(path: str, headers: Any, body: bytes) -> bytes | None:
            answer = await original(path, headers, body)
            if answer is not None:
                answered.append(answer)
            return answer

        monkeypatch.setattr(layer, "_answer", counted)
        fast.answered = answered  # type: ignore[attr-defined]
        for client in (fast, plain):
            for experiment_id, extra in (("plain", {}), ("half", {"traffic_percentage": 50}),
                                         ("sticky", {"sticky": True}), ("paused", {})):  # fmt: skip
                body = {"id": experiment_id, "name": experiment_id, "control_model_id": "m1",
                        "treatment_model_id": "m2"} | extra  # fmt: skip
                assert_status(client.post("/experiments", json=body, headers=ADMIN), 201)
                assert_status(
                    client.post(f"/experiments/{experiment_id}/start", headers=ADMIN), 200
                )
            assert_status(client.post("/experiments/paused/pause", headers=ADMIN), 200)
        yield fast, plain


def _fast_path(app: Any) -> FastPath:
    layer: Any = app.middleware_stack
    while not isinstance(layer, FastPath):
        layer = layer.app
    return layer


def _same(
    pair: tuple[TestClient, TestClient],
    path: str = "/route",
    *,
    clock: bool = False,
    **request: Any,
) -> Any:
    """POST to both; the same answer, byte for byte (``clock``: whose message quotes the
    clock or a creation time, the same field)."""
    fast, plain = (client.post(path, **request) for client in pair)
    assert fast.status_code == plain.status_code, (fast.text, plain.text)
    assert fast.headers["content-type"] == plain.headers["content-type"]
    if clock:
        assert fast.json()["detail"][0]["loc"] == plain.json()["detail"][0]["loc"]
    else:
        assert fast.content == plain.content
    return fast


def test_ordinary_routes_are_answered_alike(pair: tuple[TestClient, TestClient]) -> None:
    for i in range(60):
        for experiment_id in ("plain", "half", "sticky", "paused", None):
            body: dict[str, Any] = {"user_id": f"user-{i}"}
            if experiment_id is not None:
                body["experiment_id"] = experiment_id
            if i % 3 == 0:
                body["expose"] = False
            answer = _same(pair, json=body, headers=INGEST)
            assert answer.status_code == 200
    fast, _ = pair
    assert len(fast.answered) == 60 * 5  # type: ignore[attr-defined]  # all by the fast path
    for client in pair:  # both counted the same users
        results = client.get("/experiments/plain/results", headers=ADMIN).json()
        assert results["control_samples"] + results["treatment_samples"] == 40


@pytest.mark.parametrize(
    ("request_args", "status"),
    [
        ({"json": {"user_id": "u1", "experiment_id": "plain"}}, 401),  # no key
        (
            {"json": {"user_id": "u1", "experiment_id": "plain"}, "headers": {"X-API-Key": "no"}},
            401,
        ),
        ({"json": {"user_id": "", "experiment_id": "plain"}, "headers": INGEST}, 422),
        ({"json": {"user_id": "u1", "experiment_id": "Bad Id"}, "headers": INGEST}, 422),
        ({"json": {"user_id": "u1", "expose": "maybe"}, "headers": INGEST}, 422),
        ({"json": {"user_id": "u1", "extra": 1}, "headers": INGEST}, 422),
        ({"json": {"user_id": "u1", "experiment_id": "nope"}, "headers": INGEST}, 404),
        ({"content": b"{not json", "headers": INGEST | {"Content-Type": "application/json"}}, 422),
        ({"content": b"user_id=u1", "headers": INGEST | {"Content-Type": "text/plain"}}, 422),
    ],
)
def test_everything_else_is_answered_as_fastapi_answers_it(
    pair: tuple[TestClient, TestClient], request_args: dict[str, Any], status: int
) -> None:
    assert _same(pair, **request_args).status_code == status
    assert pair[0].answered == []  # type: ignore[attr-defined]


ASSIGNED = "assigned"  # replaced by the user's variant


def _log(user: str, variant: str, **extra: Any) -> dict[str, Any]:
    return {"experiment_id": "plain", "user_id": user, "variant_name": variant} | extra


def test_ordinary_logs_are_answered_alike(pair: tuple[TestClient, TestClient]) -> None:
    fast, _ = pair
    before = len(fast.answered)  # type: ignore[attr-defined]
    for i in range(40):
        user = f"log-user-{i}"
        variant = _same(pair, json={"user_id": user, "experiment_id": "plain", "expose": False},
                        headers=INGEST).json()["variant_name"]  # fmt: skip
        extra: dict[str, Any] = {"event_id": f"e-{i}", "converted": i % 2 == 0}
        if i % 3 == 0:
            extra["value"] = i * 0.5
        for _ in range(2):  # the retry is a duplicate on both
            answer = _same(pair, "/log", json=_log(user, variant, **extra), headers=INGEST)
            assert answer.status_code == 200
    assert len(fast.answered) - before == 40 + 80  # type: ignore[attr-defined]
    for client in pair:
        results = client.get("/experiments/plain/results", headers=ADMIN).json()
        assert results["control_samples"] + results["treatment_samples"] == 40
        assert sum(v["conversions"] for v in results["variants"]) == 20


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (_log("u1", "control"), {}, 401),
        (_log("u1", "control"), {"X-API-Key": "no"}, 401),
        (_log("u1", "Control"), INGEST, 422),
        (_log("u1", "control", value=float("inf")), INGEST, 422),
        (_log("u1", "control", event_id="not valid!"), INGEST, 422),
        (_log("u1", "control", extra=1), INGEST, 422),
        (_log("u1", "nope"), INGEST, 409),  # not a variant
        (_log("u1", "control") | {"experiment_id": "nope"}, INGEST, 404),
        (_log("u1", ASSIGNED, timestamp="2999-01-01T00:00:00Z"), INGEST, 422),
    ],
)
def test_bad_logs_are_answered_as_fastapi_answers_them(
    pair: tuple[TestClient, TestClient], body: dict[str, Any], headers: dict[str, str], status: int
) -> None:
    if body.get("value") == float("inf"):
        request: dict[str, Any] = {"content": b'{"experiment_id": "plain", "user_id": "u1", '
                                   b'"variant_name": "control", "value": 1e999}'}  # fmt: skip
        headers = headers | {"Content-Type": "application/json"}
    else:
        if body["variant_name"] == ASSIGNED:
            route = {"user_id": "u1", "experiment_id": "plain", "expose": False}
            body = body | {"variant_name": pair[0].post("/route", json=route, headers=INGEST)
                           .json()["variant_name"]}  # fmt: skip
            pair[0].answered.clear()  # type: ignore[attr-defined]
        request = {"json": body}
    clock = "timestamp" in body
    assert _same(pair, "/log", headers=headers, clock=clock, **request).status_code == status
    assert pair[0].answered == []  # type: ignore[attr-defined]
    for client in pair:  # nothing was counted
        results = client.get("/experiments/plain/results", headers=ADMIN).json()
        assert results["control_samples"] + results["treatment_samples"] == 0


def test_a_log_for_another_variant_than_assigned_is_a_conflict_on_both(
    pair: tuple[TestClient, TestClient],
) -> None:
    assigned = _same(pair, json={"user_id": "u7", "experiment_id": "plain", "expose": False},
                     headers=INGEST).json()["variant_name"]  # fmt: skip
    other = "treatment" if assigned == "control" else "control"
    answer = _same(pair, "/log", json=_log("u7", other), headers=INGEST)
    assert answer.status_code == 409
    assert "u7" in answer.json()["detail"]


class _PartlyAppliedStore(SQLiteStore):
    """As a Redis Cluster answers when a node failed after others applied their part of a
    group-committed batch: the events of ``failing`` come back ``unavailable``."""

    failing: set[str] = set()

    async def record_events_async(self, events: Sequence[Event]) -> list[EventResult]:
        results = await super().record_events_async(
            [e for e in events if e.experiment_id not in self.failing]
        )
        applied = iter(results)
        return [
            EventResult("unavailable") if e.experiment_id in self.failing else next(applied)
            for e in events
        ]


def test_a_log_whose_events_were_not_applied_is_a_503_and_counts_nothing(tmp_path: Path) -> None:
    store = _PartlyAppliedStore(tmp_path / "partly.db")
    with TestClient(create_app(make_settings(tmp_path / "partly.db", **KEYS), store=store)) as c:
        for experiment_id in ("ok", "broken"):
            body = {"id": experiment_id, "name": experiment_id, "control_model_id": "m1",
                    "treatment_model_id": "m2"}  # fmt: skip
            assert_status(c.post("/experiments", json=body, headers=ADMIN), 201)
            assert_status(c.post(f"/experiments/{experiment_id}/start", headers=ADMIN), 200)
        store.failing = {"broken"}
        for experiment_id, status in (("ok", 200), ("broken", 503)):
            route = {"user_id": "u1", "experiment_id": experiment_id, "expose": False}
            variant = c.post("/route", json=route, headers=INGEST).json()["variant_name"]
            body = {"experiment_id": experiment_id, "user_id": "u1", "variant_name": variant,
                    "converted": True}  # fmt: skip
            answer = c.post("/log", json=body, headers=INGEST)
            assert answer.status_code == status, answer.text
            results = c.get(f"/experiments/{experiment_id}/results", headers=ADMIN).json()
            assert results["control_samples"] + results["treatment_samples"] == (status == 200)
        assert answer.headers["Retry-After"] == "1"
        assert "could not record" in answer.json()["detail"]
