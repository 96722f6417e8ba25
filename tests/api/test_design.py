"""The pre-registered design: a minimum relative lift and a power, set at creation and
changeable while running (audited), and the results that follow from them."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_status, create, expect_422, seed_body, started


def test_create_takes_the_minimum_lift_and_power(client: TestClient) -> None:
    experiment = create(client, min_relative_lift=0.05, power=0.9)
    assert (experiment["min_relative_lift"], experiment["power"]) == (0.05, 0.9)
    default = create(client, name="defaults")
    assert (default["min_relative_lift"], default["power"]) == (None, 0.8)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"min_relative_lift": 0.0}, "min_relative_lift"),
        ({"min_relative_lift": -1.0}, "min_relative_lift"),
        ({"min_relative_lift": "inf"}, "min_relative_lift"),
        ({"power": 1.0}, "power"),
        ({"power": 0.04}, "power"),  # not above alpha = 0.05
        ({"power": 0.15, "confidence_level": 0.8}, "power"),  # alpha = 0.2
    ],
)
def test_invalid_design_is_a_422_naming_the_field(
    client: TestClient, overrides: dict[str, object], field: str
) -> None:
    expect_422(client.post("/experiments", json=seed_body(**overrides)), field)


def test_patch_while_running_is_audited_and_null_clears_the_lift(client: TestClient) -> None:
    experiment = started(client)
    url = f"/experiments/{experiment['id']}"
    response = client.patch(url, json={"min_relative_lift": 0.03, "power": 0.9})
    assert_status(response, 200)
    changed = response.json()
    assert (changed["min_relative_lift"], changed["power"]) == (0.03, 0.9)
    assert changed["audit"][-1]["changes"] == {
        "power": {"from": 0.8, "to": 0.9},
        "min_relative_lift": {"from": None, "to": 0.03},
    }
    # A patch that does not name the lift leaves it alone; an explicit null clears it.
    assert client.patch(url, json={"name": "renamed"}).json()["min_relative_lift"] == 0.03
    cleared = client.patch(url, json={"min_relative_lift": None}).json()
    assert cleared["min_relative_lift"] is None
    assert cleared["audit"][-1]["changes"] == {"min_relative_lift": {"from": 0.03, "to": None}}
    expect_422(client.patch(url, json={"min_relative_lift": 0}), "min_relative_lift")
    # Power must stay above alpha when the confidence level changes.
    assert_status(client.patch(url, json={"confidence_level": 0.6, "power": 0.3}), 422)


def test_results_use_the_design(client: TestClient) -> None:
    experiment = started(client, min_relative_lift=0.1)
    events = [
        {"experiment_id": experiment["id"], "user_id": f"{arm}-{i}", "variant_name": arm,
         "kind": "conversion" if i < rate else "exposure"}
        for arm, rate in (("control", 10), ("treatment", 12))
        for i in range(100)
    ]  # fmt: skip
    assert_status(client.post("/events", json={"events": events}), 200)
    results = client.get(f"/experiments/{experiment['id']}/results").json()
    assert results["min_relative_lift"] == 0.1
    assert results["comparisons"][0]["target_relative_lift"] == 0.1
    assert results["decision"]["remaining_samples"] > 0
    client.patch(f"/experiments/{experiment['id']}", json={"min_relative_lift": None})
    results = client.get(f"/experiments/{experiment['id']}/results").json()
    assert results["decision"]["remaining_samples"] is None
    assert results["decision"]["remaining_reason"] == "no_min_lift"
    assert results["null_reasons"]["min_relative_lift"] == "no_min_lift"
