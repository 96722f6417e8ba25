"""Every refusal has its status and names its cause: 404, 409, 422 (naming the field), 413;
never a 500, and never a partial write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abscope.api.app import create_app
from tests.api.helpers import (
    MakeClient,
    TestClient,
    assert_status,
    create,
    error_fields,
    expect_422,
    make_settings,
    route,
    seed_body,
    started,
)

JSON = {"content-type": "application/json"}
ACTIONS = ["start", "pause", "resume", "complete", "stop"]
ALLOWED = {  # action -> states it applies to
    "start": {"draft"},
    "pause": {"running"},
    "resume": {"paused"},
    "complete": {"running", "paused"},
    "stop": {"running", "paused"},
}
NEXT = {  # state -> the states it may move to, as the 409 must name them
    "draft": ["running"],
    "running": ["completed", "paused", "stopped"],
    "paused": ["completed", "running", "stopped"],
    "completed": [],
    "stopped": [],
}


def _in_state(client: TestClient, state: str) -> str:
    experiment_id: str = create(client)["id"]
    steps = {
        "draft": [],
        "running": ["start"],
        "paused": ["start", "pause"],
        "completed": ["start", "complete"],
        "stopped": ["start", "stop"],
    }[state]
    for step in steps:
        assert_status(client.post(f"/experiments/{experiment_id}/{step}"), 200)
    return experiment_id


def _log(experiment_id: str, user_id: str, variant: str, **extra: Any) -> dict[str, Any]:
    return {"experiment_id": experiment_id, "user_id": user_id, "variant_name": variant, **extra}


def _samples(client: TestClient, experiment_id: str) -> tuple[int, int]:
    results = client.get(f"/experiments/{experiment_id}/results").json()
    return results["control_samples"], results["treatment_samples"]


# --- 404 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/experiments/nope", None),
        ("PATCH", "/experiments/nope", {"name": "x"}),
        ("DELETE", "/experiments/nope", None),
        *[("POST", f"/experiments/nope/{action}", None) for action in ACTIONS],
        ("GET", "/experiments/nope/results", None),
        ("GET", "/experiments/nope/timeseries", None),
        ("GET", "/experiments/nope/explain?user_id=u1", None),
        ("POST", "/route", {"user_id": "u1", "experiment_id": "nope"}),
        ("POST", "/log", _log("nope", "u1", "control")),
    ],
)
def test_an_unknown_experiment_is_404(
    client: TestClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = client.request(method, path, json=body)
    assert_status(response, 404)
    assert "nope" in response.json()["detail"]


# --- 409 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "action"),
    [(s, a) for s in NEXT for a in ACTIONS if s not in ALLOWED[a]],
)
def test_a_forbidden_transition_is_409_naming_the_allowed_ones(
    client: TestClient, state: str, action: str
) -> None:
    experiment_id = _in_state(client, state)
    response = client.post(f"/experiments/{experiment_id}/{action}")
    assert_status(response, 409)
    detail = response.json()["detail"]
    assert state in detail
    allowed = ", ".join(NEXT[state]) or "none"
    assert f"allowed transitions from {state}: {allowed}" in detail
    assert client.get(f"/experiments/{experiment_id}").json()["status"] == state


def test_a_taken_id_is_409(client: TestClient) -> None:
    create(client, id="taken")
    response = client.post("/experiments", json=seed_body(id="taken", name="Other"))
    assert_status(response, 409)
    assert "taken" in response.json()["detail"]
    assert client.get("/experiments/taken").json()["name"] == "Ranking model v2"


def test_a_log_that_contradicts_the_assignment_is_409_and_counts_nothing(
    client: TestClient,
) -> None:
    experiment_id = started(client)["id"]
    variant = route(client, "u1", experiment_id)["variant_name"]
    other = "treatment" if variant == "control" else "control"
    response = client.post("/log", json=_log(experiment_id, "u1", other, converted=True))
    assert_status(response, 409)
    assert "u1" in response.json()["detail"] and variant in response.json()["detail"]
    assert _samples(client, experiment_id) == (0, 0)
    # The same user under the right variant is counted.
    assert_status(client.post("/log", json=_log(experiment_id, "u1", variant)), 200)
    assert sum(_samples(client, experiment_id)) == 1


def test_a_log_for_a_variant_the_experiment_lacks_is_refused(client: TestClient) -> None:
    experiment_id = started(client)["id"]
    response = client.post("/log", json=_log(experiment_id, "u1", "no-such-variant"))
    assert_status(response, 409)
    assert "no-such-variant" in response.json()["detail"]
    assert _samples(client, experiment_id) == (0, 0)


@pytest.mark.parametrize("state", ["draft", "completed", "stopped"])
def test_logs_to_an_experiment_that_is_not_live_are_409(client: TestClient, state: str) -> None:
    experiment_id = _in_state(client, state)
    response = client.post("/log", json=_log(experiment_id, "u1", "control"))
    assert_status(response, 409)
    assert state in response.json()["detail"]
    assert _samples(client, experiment_id) == (0, 0)


def test_logs_to_a_paused_experiment_are_counted(client: TestClient) -> None:
    experiment_id = _in_state(client, "paused")
    # A paused experiment serves everyone the control and counts nobody; its users' late
    # events are still counted.
    paused = client.post("/route", json={"user_id": "u1", "experiment_id": experiment_id})
    assert_status(paused, 200)
    assert {k: paused.json()[k] for k in ("variant_name", "in_experiment", "reason")} == {
        "variant_name": "control", "in_experiment": False, "reason": "paused"
    }  # fmt: skip
    assert _samples(client, experiment_id) == (0, 0)
    variant = client.get(f"/experiments/{experiment_id}/explain", params={"user_id": "u1"}).json()[
        "variant_name"
    ]
    response = client.post("/log", json=_log(experiment_id, "u1", variant, converted=True))
    assert_status(response, 200)
    assert response.json() == {"status": "counted", "new_exposure": True, "new_conversion": True}
    assert sum(_samples(client, experiment_id)) == 1


# --- 422 --------------------------------------------------------------------------------


def _variants(*weights: float) -> list[dict[str, Any]]:
    return [{"name": f"v{i}", "model_id": f"model-{i}", "weight": w} for i, w in enumerate(weights)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "variants": _variants(0.5, 0.6)}, "variants"),
        ({"name": "x", "variants": _variants(0.3, 0.3, 0.3)}, "variants"),
        (seed_body(id="Not A Slug!"), "id"),
        (seed_body(id="-leading-dash"), "id"),
        (seed_body(id="x" * 65), "id"),
        (seed_body(traffic_percentage=0), "traffic_percentage"),
        (seed_body(traffic_percentage=150), "traffic_percentage"),
        (seed_body(traffic_percentage=-5), "traffic_percentage"),
        (seed_body(metric_type="revenue-per-click"), "metric_type"),
        (seed_body(allocation="softmax"), "allocation"),
        (seed_body(control_weight=1.0), "control_weight"),
        (seed_body(confidence_level=1.5), "confidence_level"),
        (seed_body(name=""), "name"),
        (seed_body(bogus_field=1), "bogus_field"),
        (
            {"name": "x", "variants": [{**_variants(0.5)[0], "colour": "red"}, *_variants(0.5)]},
            "variants.0.colour",
        ),  # fmt: skip
    ],
)
def test_an_invalid_experiment_is_422_naming_the_field_and_writes_nothing(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    create(client, id="existing")
    before = client.get("/experiments").json()
    expect_422(client.post("/experiments", json=body), field)
    assert client.get("/experiments").json() == before


def test_forced_variants_naming_an_unknown_variant_is_422_naming_the_field(
    client: TestClient,
) -> None:
    response = client.post("/experiments", json=seed_body(forced_variants={"qa-1": "nope"}))
    expect_422(response, "forced_variants")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "user_id"),
        ({"experiment_id": "e"}, "user_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "u" * 257}, "user_id"),
        ({"user_id": 17}, "user_id"),
        ({"user_id": "u1", "experiment_id": "Bad Id"}, "experiment_id"),
        ({"user_id": "u1", "variant": "control"}, "variant"),
    ],
)
def test_an_invalid_route_request_is_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    expect_422(client.post("/route", json=body), field)


def test_a_user_id_of_256_characters_is_accepted(client: TestClient) -> None:
    experiment_id = started(client)["id"]
    answer = route(client, "u" * 256, experiment_id)
    assert answer["variant_name"] in ("control", "treatment")
    response = client.post("/log", json=_log(experiment_id, "u" * 256, answer["variant_name"]))
    assert_status(response, 200)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"user_id": "u" * 257}, "user_id"),
        ({"variant_name": "Control!"}, "variant_name"),
        ({"converted": "maybe"}, "converted"),
        ({"value": 1e13}, "value"),
        ({"value": "much"}, "value"),
        ({"event_id": ""}, "event_id"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"kind": "exposure"}, "kind"),
    ],
)
def test_an_invalid_log_is_422_naming_the_field_and_counts_nothing(
    client: TestClient, extra: dict[str, Any], field: str
) -> None:
    experiment_id = started(client)["id"]
    variant = route(client, "u1", experiment_id)["variant_name"]
    body = {**_log(experiment_id, "u1", variant), **extra}
    expect_422(client.post("/log", json=body), field)
    assert _samples(client, experiment_id) == (0, 0)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_value_is_422_naming_the_field(client: TestClient, literal: str) -> None:
    experiment_id = started(client)["id"]
    variant = route(client, "u1", experiment_id)["variant_name"]
    text = json.dumps(_log(experiment_id, "u1", variant))[:-1] + f', "value": {literal}}}'
    expect_422(client.post("/log", content=text, headers=JSON), "value")
    assert _samples(client, experiment_id) == (0, 0)


@pytest.mark.parametrize("path", ["/experiments", "/route", "/log", "/events", "/calculate"])
def test_a_nan_in_any_body_is_never_a_500(client: TestClient, path: str) -> None:
    # The whole body is the `input` of a missing-field error: the 422 must still serialise.
    response = client.post(path, content='{"user_id": NaN, "events": [NaN]}', headers=JSON)
    assert_status(response, 422)


def test_a_batch_over_the_maximum_size_is_422_and_writes_nothing(make_client: MakeClient) -> None:
    client = make_client(max_batch_size=3)
    experiment_id = started(client)["id"]
    events = [
        {**_log(experiment_id, f"u{i}", route(client, f"u{i}", experiment_id)["variant_name"]),
         "kind": "exposure"}
        for i in range(4)
    ]  # fmt: skip
    response = client.post("/events", json={"events": events})
    expect_422(response, "events")
    assert "3" in response.json()["detail"][0]["msg"]
    assert _samples(client, experiment_id) == (0, 0)
    assert_status(client.post("/events", json={"events": events[:3]}), 200)
    assert sum(_samples(client, experiment_id)) == 3


def test_a_batch_with_one_malformed_event_is_422_and_writes_nothing(client: TestClient) -> None:
    experiment_id = started(client)["id"]
    events: list[dict[str, Any]] = [
        {**_log(experiment_id, f"u{i}", route(client, f"u{i}", experiment_id)["variant_name"]),
         "kind": "exposure"}
        for i in range(3)
    ]  # fmt: skip
    events[2]["user_id"] = "u" * 257
    expect_422(client.post("/events", json={"events": events}), "events.2.user_id")
    events[2]["user_id"] = "u2"
    events[1]["surprise"] = True
    expect_422(client.post("/events", json={"events": events}), "events.1.surprise")
    expect_422(client.post("/events", json={"events": []}), "events")
    assert _samples(client, experiment_id) == (0, 0)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/route", {"user_id": "u1", "extra": 1}, "extra"),
        ("/log", {**_log("e", "u1", "control"), "extra": 1}, "extra"),
        (
            "/events",
            {"events": [{**_log("e", "u1", "control"), "kind": "exposure"}], "x": 1},
            "x",
        ),  # fmt: skip
        (
            "/calculate",
            {"baseline_rate": 0.1, "min_relative_lift": 0.1, "daily_traffic": 10, "beta": 0.2},
            "beta",
        ),  # fmt: skip
    ],
)
def test_unknown_fields_are_422_naming_them(
    client: TestClient, path: str, body: dict[str, Any], field: str
) -> None:
    expect_422(client.post(path, json=body), field)


def test_an_unknown_patch_field_is_422_and_changes_nothing(client: TestClient) -> None:
    experiment = create(client)
    response = client.patch(f"/experiments/{experiment['id']}", json={"status": "running"})
    expect_422(response, "status")
    assert client.get(f"/experiments/{experiment['id']}").json() == experiment


# --- 413 --------------------------------------------------------------------------------

LIMIT = 2048


def _big_body() -> bytes:
    return json.dumps(seed_body(description="x" * 3000)).encode()


def test_a_body_over_the_limit_with_content_length_is_413(make_client: MakeClient) -> None:
    client = make_client(max_body_bytes=LIMIT)
    body = _big_body()
    response = client.post("/experiments", content=body, headers=JSON)
    assert_status(response, 413)
    assert str(LIMIT) in response.json()["detail"]
    assert client.get("/experiments").json() == {"experiments": []}
    # At the limit is fine.
    fits = json.dumps(seed_body(description="x" * 100)).encode()
    fits = fits[:-1] + b" " * (LIMIT - len(fits)) + b"}"
    assert len(fits) == LIMIT
    assert_status(client.post("/experiments", content=fits, headers=JSON), 201)


def test_a_chunked_body_over_the_limit_is_413(make_client: MakeClient) -> None:
    client = make_client(max_body_bytes=LIMIT)
    body = _big_body()

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    response = client.post("/experiments", content=chunks(), headers=JSON)
    assert_status(response, 413)
    assert client.get("/experiments").json() == {"experiments": []}


# --- fuzz -------------------------------------------------------------------------------

_FIELDS = [
    "id", "name", "description", "control_model_id", "treatment_model_id", "control_weight",
    "variants", "traffic_percentage", "metric_type", "allocation", "layer", "sticky",
    "forced_variants", "user_id", "experiment_id", "variant_name", "converted", "value",
    "event_id", "timestamp", "events", "kind", "weight", "model_id", "baseline_rate",
    "min_relative_lift", "daily_traffic", "power", "alpha",
]  # fmt: skip
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and infinities too: sent as the JSON text NaN / Infinity
    | st.text(max_size=20)
    | st.sampled_from(["control", "treatment", "fuzz", "exposure", "conversion", "value"])
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=20,
)
_bodies = st.dictionaries(st.sampled_from(_FIELDS), _json, max_size=8) | _json


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "abscope.db"
    with TestClient(create_app(make_settings(path)), raise_server_exceptions=False) as client:
        started(client, id="fuzz")
        yield client


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(["/experiments", "/route", "/log", "/events"]), body=_bodies)
def test_random_json_never_gets_a_500(fuzz_client: TestClient, path: str, body: Any) -> None:
    response = fuzz_client.post(path, content=json.dumps(body), headers=JSON)
    assert response.status_code < 500, f"{path} {body!r}: {response.text[:500]}"
    if response.status_code == 422:
        assert error_fields(response)


_VALID = {
    "/experiments": seed_body(),
    "/route": {"user_id": "u1", "experiment_id": "fuzz"},
    "/log": _log("fuzz", "u1", "control", converted=True, value=1.0, event_id="e1"),
    "/events": {"events": [{**_log("fuzz", "u1", "control"), "kind": "exposure"}]},
    "/calculate": {"baseline_rate": 0.1, "min_relative_lift": 0.05, "daily_traffic": 1000},
}
_FIELDS_OF = {
    "/experiments": [*seed_body(), "id", "variants", "min_sample_size", "confidence_level",
                     "metric_type", "allocation", "layer", "sticky", "sequential",
                     "forced_variants"],
    "/route": ["user_id", "experiment_id"],
    "/log": [*_VALID["/log"], "timestamp"],
    "/events": ["events"],
    "/calculate": [*_VALID["/calculate"], "allocation", "treatment_share", "power", "alpha",
                   "two_sided", "metric_type", "baseline_mean", "standard_deviation",
                   "min_absolute_effect", "arms", "max_days"],
}  # fmt: skip


@st.composite
def _near_valid(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    path = draw(st.sampled_from(sorted(_VALID)))
    changes = draw(st.dictionaries(st.sampled_from(_FIELDS_OF[path]), _json, max_size=3))
    return path, {**_VALID[path], **changes}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=_near_valid())
def test_a_valid_body_with_random_fields_never_gets_a_500(
    fuzz_client: TestClient, request: tuple[str, dict[str, Any]]
) -> None:
    path, body = request
    response = fuzz_client.post(path, content=json.dumps(body), headers=JSON)
    assert response.status_code < 500, f"{path} {body!r}: {response.text[:500]}"
