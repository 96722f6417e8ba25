"""``POST /calculate`` with the planner's new inputs: fractions as before (an old body gives
the old plan), continuous metrics, absolute effects, several arms, warnings, and a 422 that
names the field for each new mistake."""

from __future__ import annotations

from typing import Any

import pytest

from abscope.jsonable import to_jsonable
from abscope.stats.planner import plan_duration
from tests.api.helpers import TestClient, assert_status, expect_422

OLD = {"baseline_rate": 0.1, "min_relative_lift": 0.05, "daily_traffic": 20000, "allocation": 0.5,
       "treatment_share": 0.4, "power": 0.9, "alpha": 0.01, "two_sided": False}  # fmt: skip


def _plan(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/calculate", json=body)
    assert_status(response, 200)
    plan: dict[str, Any] = response.json()
    return plan


def test_a_body_in_fractions_from_before_gives_the_librarys_plan(client: TestClient) -> None:
    served = _plan(client, OLD)
    expected = to_jsonable(plan_duration(**OLD))
    for name, value in expected.items():
        assert served[name] == value, name
    assert served["arms"] == 2 and served["effect_scale"] == "relative"
    assert served["warnings"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"metric_type": "continuous", "baseline_mean": 42.0, "standard_deviation": 30.0,
         "min_absolute_effect": 1.5, "daily_traffic": 5000, "arms": 3},
        {"baseline_rate": 0.04, "min_absolute_effect": 0.005, "daily_traffic": 500, "arms": 4,
         "treatment_share": 0.2, "sequential": False, "max_days": 30},
        {"baseline_rate": 0.1, "min_relative_lift": 0.05, "daily_traffic": 20000, "arms": 3,
         "covariate_correlation": 0.7},
    ],
)  # fmt: skip
def test_new_cases_are_the_librarys_plan_with_their_warnings(
    client: TestClient, body: dict[str, Any]
) -> None:
    served = _plan(client, body)
    library = plan_duration(**{"baseline_rate": None, "min_relative_lift": None, **body})
    for name, value in to_jsonable(library).items():
        assert served[name] == value, name
    assert served["comparisons"] == body["arms"] - 1
    assert served["total_samples"] == (
        served["control_samples"] + served["comparisons"] * served["treatment_samples"]
    )
    codes = [w["code"] for w in served["warnings"]]
    assert codes == [w.code for w in library.warnings]
    if "max_days" in body:
        assert codes == ["traffic_cannot_reach"] and served["days"] > 30
    if "covariate_correlation" in body:
        # The plan without CUPED, as the same body without the correlation gives it.
        plain = _plan(client, {k: v for k, v in body.items() if k != "covariate_correlation"})
        assert served["unadjusted"] == plain["always_valid"]
        assert served["days"] < plain["days"] and served["variance_factor"] == 1 - 0.7**2
        assert served["sensitivity"]["unadjusted_days"] == plain["sensitivity"]["days"]
    else:
        assert served["unadjusted"] is None and served["covariate_correlation"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"min_absolute_effect": 0.01}, "min_relative_lift"),  # both effects
        ({"min_relative_lift": None}, "min_relative_lift"),  # neither
        ({"arms": 1}, "arms"),
        ({"arms": "3"}, "arms"),  # strict: a whole number, not text
        ({"arms": 3, "treatment_share": 0.5}, "treatment_share"),
        ({"max_days": 0}, "max_days"),
        ({"metric_type": "ratio"}, "metric_type"),
        ({"baseline_mean": 10.0}, "baseline_mean"),  # for a continuous metric only
        ({"metric_type": "continuous", "baseline_rate": None, "baseline_mean": 10.0},
         "standard_deviation"),
        ({"metric_type": "continuous", "standard_deviation": 2.0, "baseline_mean": 10.0},
         "baseline_rate"),
        ({"covariate_correlation": 1.0}, "covariate_correlation"),
        ({"covariate_correlation": -0.3}, "covariate_correlation"),
        ({"covariate_correlation": "high"}, "covariate_correlation"),
    ],
)  # fmt: skip
def test_bad_new_inputs_are_422_naming_the_field(
    client: TestClient, change: dict[str, Any], field: str
) -> None:
    body = {**OLD, **change}
    expect_422(client.post("/calculate", json=body), field)
    expect_422(client.post("/charts/plan", json=body), field)
