"""Metric declarations and metric events in: ``POST /experiments/{id}/metrics``, and
``/log`` and ``/events`` naming their metric (in process; a real uvicorn in
``test_metric_ingest_server.py``).

Counts are read back from the store (``get_metric_counts``) and compared exactly with sums
computed here from the raw events sent: every value is a multiple of 0.25 and the sums are
small, so floating-point addition is exact in any order.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from abscope.models import MetricCounts
from abscope.service import ExperimentService
from tests.api.helpers import (
    MakeClient,
    TestClient,
    assert_status,
    create,
    error_fields,
    expect_422,
    route,
    started,
)

LATENCY = {
    "name": "latency_ms",
    "kind": "ratio",
    "role": "guardrail",
    "higher_is_better": False,
    "margin": 0.05,
    "action": "pause",
}
REVENUE = {"name": "revenue", "kind": "mean", "role": "secondary"}
ERRORS = {
    "name": "errors",
    "kind": "binary",
    "role": "guardrail",
    "higher_is_better": False,
    "margin": 0.5,
}
METRICS = [LATENCY, REVENUE, ERRORS]


def _service(client: TestClient) -> ExperimentService:
    service: ExperimentService = client.app.state.service  # type: ignore[attr-defined]
    return service


def _users(client: TestClient, experiment_id: str, per_variant: int) -> dict[str, list[str]]:
    """``per_variant`` users of each variant (decisions only: nothing is counted)."""
    found: dict[str, list[str]] = defaultdict(list)
    index = 0
    while len(found) < 2 or min(len(users) for users in found.values()) < per_variant:
        user = f"user-{index}"
        variant = route(client, user, experiment_id)["variant_name"]
        if len(found[variant]) < per_variant:
            found[variant].append(user)
        index += 1
    return dict(found)


class Expected:
    """The store's :class:`MetricCounts` computed from the raw events: per metric, per
    variant, the users' totals (x, y) and who converted."""

    def __init__(self) -> None:
        self.totals: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
        )
        self.converted: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))

    def value(self, metric: str, variant: str, user: str, x: float, y: float = 0.0) -> None:
        totals = self.totals[metric][variant][user]
        totals[0] += x
        totals[1] += y

    def conversion(self, metric: str, variant: str, user: str) -> None:
        self.converted[metric][variant].add(user)

    def counts(self) -> dict[str, dict[str, MetricCounts]]:
        out: dict[str, dict[str, MetricCounts]] = {}
        for metric in set(self.totals) | set(self.converted):
            variants = set(self.totals[metric]) | set(self.converted[metric])
            for variant in variants:
                users = self.totals[metric][variant].values()
                out.setdefault(metric, {})[variant] = MetricCounts(
                    conversions=len(self.converted[metric][variant]),
                    sum=sum(x for x, _ in users),
                    sum_squares=sum(x * x for x, _ in users),
                    denominator_sum=sum(y for _, y in users),
                    denominator_sum_squares=sum(y * y for _, y in users),
                    cross_sum=sum(x * y for x, y in users),
                )
        return out


def _log(client: TestClient, experiment_id: str, user: str, variant: str, **fields: Any) -> Any:
    body = {"experiment_id": experiment_id, "user_id": user, "variant_name": variant, **fields}
    return client.post("/log", json=body)


def _event(experiment_id: str, user: str, variant: str, kind: str, **fields: Any) -> Any:
    return {
        "experiment_id": experiment_id,
        "user_id": user,
        "variant_name": variant,
        "kind": kind,
        **fields,
    }


def _stored(client: TestClient, experiment_id: str) -> tuple[Any, Any]:
    store = _service(client).store
    return store.get_counts(experiment_id, 0), store.get_metric_counts(experiment_id, 0)


# --- declaring metrics -----------------------------------------------------------------------


@pytest.mark.parametrize("state", ["draft", "running", "paused"])
def test_a_metric_is_added_with_its_audit_entry(client: TestClient, state: str) -> None:
    experiment = create(client)
    experiment_id = experiment["id"]
    for action in {"draft": [], "running": ["start"], "paused": ["start", "pause"]}[state]:
        assert_status(client.post(f"/experiments/{experiment_id}/{action}"), 200)
    before = client.get(f"/experiments/{experiment_id}").json()

    response = client.post(f"/experiments/{experiment_id}/metrics", json=LATENCY)

    assert_status(response, 201)
    added = response.json()
    assert added["status"] == state
    assert added["version"] == before["version"] + 1
    assert [m["name"] for m in added["metrics"]] == ["latency_ms"]
    declared = {**LATENCY, "min_samples": None, "numerator": "", "denominator": ""}
    declared |= {"quantiles": None, "guard_quantile": None}
    assert added["metrics"][0] == {**declared, "description": ""}
    entry = added["audit"][-1]
    assert entry["action"] == "metric_added"
    assert entry["changes"] == {"metric": {**declared, "description": ""}}
    assert client.get(f"/experiments/{experiment_id}").json() == added  # it was saved
    # A second one goes after it; the phase and the counts are untouched.
    again = client.post(f"/experiments/{experiment_id}/metrics", json=REVENUE).json()
    assert [m["name"] for m in again["metrics"]] == ["latency_ms", "revenue"]
    assert again["phase"] == before["phase"]


@pytest.mark.parametrize("end", ["complete", "stop"])
def test_an_ended_experiment_takes_no_metric(client: TestClient, end: str) -> None:
    experiment_id = started(client)["id"]
    assert_status(client.post(f"/experiments/{experiment_id}/{end}"), 200)
    before = client.get(f"/experiments/{experiment_id}").json()

    response = client.post(f"/experiments/{experiment_id}/metrics", json=REVENUE)

    assert_status(response, 409)
    assert "metrics can be added in draft, running or paused" in response.json()["detail"]
    assert client.get(f"/experiments/{experiment_id}").json() == before


def test_a_metric_name_is_taken_once(client: TestClient) -> None:
    experiment_id = started(client, metrics=[REVENUE])["id"]
    before = client.get(f"/experiments/{experiment_id}").json()
    for clash in (
        {**LATENCY, "name": "revenue"},  # a declared metric's
        {"name": "converted", "kind": "binary"},  # the implicit primary's
    ):
        response = client.post(f"/experiments/{experiment_id}/metrics", json=clash)
        assert_status(response, 409)
        assert repr(clash["name"]) in response.json()["detail"]
    assert client.get(f"/experiments/{experiment_id}").json() == before


def test_a_primary_cannot_be_added(client: TestClient) -> None:
    experiment_id = started(client)["id"]
    before = client.get(f"/experiments/{experiment_id}").json()
    response = client.post(
        f"/experiments/{experiment_id}/metrics",
        json={"name": "clicks", "kind": "binary", "role": "primary"},
    )
    expect_422(response, "role")
    assert "declared when the experiment is created" in response.json()["detail"][0]["msg"]
    assert client.get(f"/experiments/{experiment_id}").json() == before


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"name": "Latency!", "kind": "ratio"}, "name"),
        ({"name": "latency", "kind": "median"}, "kind"),
        ({"name": "latency", "kind": "ratio", "role": "guardrail"}, "margin"),
        ({"name": "latency", "kind": "ratio", "margin": 0.1}, "margin"),
        ({"name": "latency", "kind": "ratio", "colour": "red"}, "colour"),
    ],
)
def test_a_malformed_metric_is_a_422(client: TestClient, body: dict[str, Any], named: str) -> None:
    experiment_id = started(client)["id"]
    response = client.post(f"/experiments/{experiment_id}/metrics", json=body)
    assert_status(response, 422)
    # The field is in the location, or (a rule across fields) in the message.
    assert named in error_fields(response)[0] or named in response.text
    assert client.get(f"/experiments/{experiment_id}").json()["metrics"] == []


def test_an_unknown_experiment_is_a_404(client: TestClient) -> None:
    assert_status(client.post("/experiments/nowhere/metrics", json=REVENUE), 404)


ADMIN, INGEST, READ = "metrics-admin-key-0d1e", "metrics-ingest-key-9a7c", "metrics-read-key-44b2"


def test_the_route_needs_the_admin_key(make_client: MakeClient) -> None:
    client = make_client(admin_api_key=ADMIN, ingest_api_key=INGEST, read_api_key=READ)
    body = {"name": "Keys", "control_model_id": "a", "treatment_model_id": "b"}
    experiment = client.post("/experiments", json=body, headers={"X-API-Key": ADMIN}).json()
    path = f"/experiments/{experiment['id']}/metrics"
    assert_status(client.post(path, json=REVENUE), 401)
    for other in (INGEST, READ):
        assert_status(client.post(path, json=REVENUE, headers={"X-API-Key": other}), 403)
    assert_status(client.post(path, json=REVENUE, headers={"X-API-Key": ADMIN}), 201)


def test_events_may_name_a_metric_once_it_is_added(client: TestClient) -> None:
    experiment_id = started(client)["id"]
    user, variant = "user-1", route(client, "user-1", experiment_id)["variant_name"]
    expect_422(_log(client, experiment_id, user, variant, metric="revenue", value=2.0), "metric")

    assert_status(client.post(f"/experiments/{experiment_id}/metrics", json=REVENUE), 201)

    # The change went through this process: its routing snapshot was rebuilt at once.
    assert_status(_log(client, experiment_id, user, variant, metric="revenue", value=2.0), 200)
    _, metric_counts = _stored(client, experiment_id)
    assert metric_counts == {"revenue": {variant: MetricCounts(sum=2.0, sum_squares=4.0)}}


# --- events naming their metric -----------------------------------------------------------


def test_log_counts_each_metric_exactly(client: TestClient) -> None:
    experiment_id = started(client, metrics=METRICS)["id"]
    users = _users(client, experiment_id, 4)
    expected = Expected()
    for variant, names in users.items():
        for index, user in enumerate(names):
            # Latency per request: one value a request, its denominator 1 by default...
            for request in range(index + 1):
                latency = 10.0 + 2.5 * request + (7.75 if variant == "treatment" else 0.0)
                logged = _log(client, experiment_id, user, variant, metric="latency_ms",
                              value=latency, event_id=f"{user}-lat-{request}")  # fmt: skip
                assert_status(logged, 200)
                expected.value("latency_ms", variant, user, latency, 1.0)
            # ... or several requests at once.
            assert_status(
                _log(client, experiment_id, user, variant, metric="latency_ms", value=40.5,
                     denominator=3.0),
                200,
            )  # fmt: skip
            expected.value("latency_ms", variant, user, 40.5, 3.0)
            if index % 2 == 0:
                logged = _log(client, experiment_id, user, variant, metric="revenue", value=4.25)
                assert logged.json() == {
                    "status": "counted", "new_exposure": False, "new_conversion": False,
                }  # fmt: skip
                expected.value("revenue", variant, user, 4.25)
            if index == 1:
                logged = _log(client, experiment_id, user, variant, metric="errors",
                              converted=True, event_id=f"{user}-err")  # fmt: skip
                assert logged.json()["new_conversion"] is True
                again = _log(client, experiment_id, user, variant, metric="errors",
                             converted=True, event_id=f"{user}-err")  # fmt: skip
                assert again.json()["status"] == "duplicate"
                expected.conversion("errors", variant, user)
    # Naming the primary is the primary's event, counted where the primary is.
    control = users["control"][0]
    named = _log(client, experiment_id, control, "control", metric="converted", converted=True)
    assert named.json()["new_conversion"] is True

    counts, metric_counts = _stored(client, experiment_id)
    assert metric_counts == expected.counts()
    assert "converted" not in metric_counts
    assert {v: (c.samples, c.conversions) for v, c in counts.items()} == {
        "control": (4, 1),
        "treatment": (4, 0),
    }


def test_a_batch_counts_each_metric_exactly(client: TestClient) -> None:
    experiment_id = started(client, metrics=METRICS)["id"]
    users = _users(client, experiment_id, 5)
    expected = Expected()
    events = []
    for variant, names in users.items():
        for index, user in enumerate(names):
            events.append(_event(experiment_id, user, variant, "exposure"))
            for request in range(3):
                latency = 20.0 + 1.25 * index + 0.5 * request
                events.append(_event(experiment_id, user, variant, "value", value=latency,
                                     metric="latency_ms"))  # fmt: skip
                expected.value("latency_ms", variant, user, latency, 1.0)
            events.append(_event(experiment_id, user, variant, "value", value=-2.5,
                                 metric="latency_ms", denominator=0.0))  # fmt: skip
            expected.value("latency_ms", variant, user, -2.5, 0.0)
            events.append(_event(experiment_id, user, variant, "value", value=1.5 * index,
                                 metric="revenue"))  # fmt: skip
            expected.value("revenue", variant, user, 1.5 * index)
            if index < 2:
                events.append(_event(experiment_id, user, variant, "conversion",
                                     metric="errors"))  # fmt: skip
                expected.conversion("errors", variant, user)

    response = client.post("/events", json={"events": events})

    assert_status(response, 200)
    answer = response.json()
    assert (answer["counted"], answer["rejected"]) == (len(events), 0)
    counts, metric_counts = _stored(client, experiment_id)
    assert metric_counts == expected.counts()
    assert {v: c.samples for v, c in counts.items()} == {"control": 5, "treatment": 5}
    assert all(c.conversions == 0 and c.value_sum == 0 for c in counts.values())


LOG_MISFITS = [
    ({"metric": "latency", "value": 3.0}, "metric", "'latency' is not a metric of"),
    ({"metric": "revenue", "converted": True}, "converted", "'revenue' is mean"),
    ({"metric": "latency_ms", "converted": True}, "converted", "'latency_ms' is ratio"),
    ({"metric": "revenue", "converted": True, "value": 2.0}, "converted", "counts values"),
    ({"metric": "errors", "value": 3.0}, "value", "'errors' is binary"),
    ({"metric": "errors", "converted": True, "value": 1.0}, "value", "'errors' is binary"),
    ({"metric": "revenue"}, "value", "give a value"),
    ({"metric": "errors"}, "converted", "log converted: true"),
    ({"metric": "revenue", "value": 2.0, "denominator": 1.0}, "denominator", "'revenue' (mean)"),
    ({"metric": "errors", "converted": True, "denominator": 1.0}, "denominator", "(binary)"),
    ({"value": 2.0, "denominator": 1.0}, "denominator", "an event without a metric"),
    ({"metric": "converted", "value": 2.0, "denominator": 1.0}, "denominator", "'converted'"),
    ({"metric": "Latency", "value": 2.0}, "metric", "String should match pattern"),
    ({"metric": "latency_ms", "value": 2.0, "denominator": "two"}, "denominator", "number"),
    ({"metric": "latency_ms", "value": 2.0, "denominator": 1e13}, "denominator", "less than"),
]


@pytest.mark.parametrize("sticky", [False, True], ids=["hashed", "sticky"])
@pytest.mark.parametrize(("fields", "named", "message"), LOG_MISFITS)
def test_a_log_that_does_not_fit_its_metric_is_a_422_and_writes_nothing(
    client: TestClient, sticky: bool, fields: dict[str, Any], named: str, message: str
) -> None:
    # A sticky experiment is checked off the event loop, by the general path.
    experiment_id = started(client, metrics=METRICS, sticky=sticky)["id"]
    user = "user-7"
    variant = route(client, user, experiment_id)["variant_name"]
    before = _stored(client, experiment_id)

    response = _log(client, experiment_id, user, variant, event_id="misfit-1", **fields)

    expect_422(response, named)
    assert message in response.json()["detail"][0]["msg"]
    assert _stored(client, experiment_id) == before
    assert _service(client).store.get_exposure(experiment_id, 0, user) is None
    # The same id is free: nothing of the refused call was remembered.
    retry = _log(client, experiment_id, user, variant, event_id="misfit-1", converted=True)
    assert retry.json() == {"status": "counted", "new_exposure": True, "new_conversion": True}


BATCH_MISFITS = [
    ({"kind": "value", "value": 1.0, "metric": "latency"}, "metric", "not a metric of"),
    ({"kind": "exposure", "metric": "revenue"}, "metric", "an exposure names no metric"),
    ({"kind": "conversion", "metric": "revenue"}, "kind", "takes value events"),
    ({"kind": "conversion", "metric": "latency_ms"}, "kind", "'latency_ms' is ratio"),
    ({"kind": "value", "value": 1.0, "metric": "errors"}, "kind", "takes conversion events"),
    ({"kind": "value", "value": 1.0, "metric": "revenue", "denominator": 2.0}, "denominator",
     "'revenue' (mean) takes no denominator"),
    ({"kind": "conversion", "metric": "errors", "denominator": 1.0}, "denominator", "(binary)"),
    ({"kind": "value", "value": 1.0, "denominator": 2.0}, "denominator", "without a metric"),
    ({"kind": "exposure", "denominator": 2.0}, "denominator", "without a metric"),
    ({"kind": "value", "value": 1.0, "metric": "value", "denominator": 2.0}, "metric",
     "'value' is not a metric of"),
]  # fmt: skip


@pytest.mark.parametrize("sticky", [False, True], ids=["hashed", "sticky"])
def test_a_batch_rejects_each_misfit_and_applies_the_others(
    client: TestClient, sticky: bool
) -> None:
    experiment_id = started(client, metrics=METRICS, sticky=sticky)["id"]
    users = _users(client, experiment_id, len(BATCH_MISFITS) + 2)
    good_user, good_variant = users["control"][-1], "control"
    expected = Expected()
    events = []
    for (fields, _, _), user in zip(BATCH_MISFITS, users["treatment"], strict=False):
        events.append(_event(experiment_id, user, "treatment", **fields))
        events.append(
            _event(
                experiment_id, good_user, good_variant, "value", value=2.25, metric="latency_ms"
            )  # fmt: skip
        )
        expected.value("latency_ms", good_variant, good_user, 2.25, 1.0)

    response = client.post("/events", json={"events": events})

    assert_status(response, 200)
    answer = response.json()
    assert (answer["counted"], answer["rejected"]) == (len(BATCH_MISFITS), len(BATCH_MISFITS))
    for position, (_, named, message) in enumerate(BATCH_MISFITS):
        rejected, applied = answer["results"][2 * position], answer["results"][2 * position + 1]
        assert rejected["status"] == "rejected"
        assert rejected["error"].startswith(f"events.{2 * position}.{named}: "), rejected
        assert message in rejected["error"]
        assert applied["status"] == "counted"
    counts, metric_counts = _stored(client, experiment_id)
    assert metric_counts == expected.counts()
    assert {v: c.samples for v, c in counts.items()} == {good_variant: 1}  # no refused user


def test_a_batch_event_naming_the_primary_is_the_primarys(client: TestClient) -> None:
    experiment_id = started(client, metric_type="continuous", metrics=[REVENUE])["id"]
    user = "user-3"
    variant = route(client, user, experiment_id)["variant_name"]
    events = [
        _event(experiment_id, user, variant, "value", value=5.5, metric="value"),
        _event(experiment_id, user, variant, "value", value=1.25),
        _event(experiment_id, user, variant, "exposure", metric="value"),
    ]
    answer = client.post("/events", json={"events": events}).json()
    assert answer["counted"] == 3, answer
    counts, metric_counts = _stored(client, experiment_id)
    assert metric_counts == {}
    assert (counts[variant].value_sum, counts[variant].value_sum_squares) == (6.75, 6.75**2)
