"""The results and time-series bodies: undefined is null, one inference mode, the design.

The compatible top-level fields must agree with the comparison they summarise, in the mode
the experiment runs in, and say why a value is null.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest

from abscope import reports
from abscope.models import Status, VariantCounts
from abscope.storage.base import HourCounts
from tests.fixtures.factories import T0, experiment


def _results(sequential: bool = True, **changes: object) -> dict:  # type: ignore[type-arg]
    counts = changes.pop("counts", None)
    if counts is None:
        counts = {
            "control": VariantCounts(samples=20_000, conversions=2000),
            "treatment": VariantCounts(samples=20_000, conversions=2250),
        }
    x = experiment(
        "exp-results", sequential=sequential, status=Status.RUNNING, started_at=T0, **changes
    )
    body = reports.results_view(x, 0, counts, T0 + timedelta(days=4))  # type: ignore[arg-type]
    json.dumps(body, allow_nan=False)  # strict JSON: no NaN, no infinity
    return body


def test_zero_baseline_gives_null_with_the_reason() -> None:
    body = _results(
        counts={
            "control": VariantCounts(samples=100, conversions=0),
            "treatment": VariantCounts(samples=100, conversions=5),
        }
    )
    assert body["relative_lift"] is None and body["relative_lift_interval"] is None
    assert body["null_reasons"]["relative_lift"] == "zero_baseline"
    assert body["null_reasons"]["relative_lift_interval"] == "zero_baseline"
    relative = body["comparisons"][0]["relative"]
    assert (relative["estimate"], relative["ci"]) == (None, None)
    assert body["absolute_difference"] == pytest.approx(0.05)
    assert body["control_conversion_rate"] == 0.0  # a rate of 0 is defined: 0 of 100


def test_constant_arms_give_a_null_p_value_that_is_never_significant() -> None:
    body = _results(
        sequential=False,
        metric_type="continuous",
        counts={
            "control": VariantCounts(samples=50, value_sum=150.0, value_sum_squares=450.0),
            "treatment": VariantCounts(samples=50, value_sum=250.0, value_sum_squares=1250.0),
        },
    )
    assert body["p_value"] is None and body["is_significant"] is False
    assert body["null_reasons"]["p_value"] == "zero_variance"
    assert body["confidence_interval"] is None
    assert body["decision"]["verdict"] == "keep_running"


def test_srm_without_samples_is_null() -> None:
    body = _results(counts={})
    assert body["srm"]["p_value"] is None and body["srm"]["reason"] == "no_samples"
    assert body["control_conversion_rate"] is None
    assert body["null_reasons"]["control_conversion_rate"] == "no_samples"


@pytest.mark.parametrize("sequential", [True, False])
def test_top_level_fields_come_from_the_mode_in_force(sequential: bool) -> None:
    body = _results(sequential=sequential)
    c = body["comparisons"][0]
    primary = c["primary"]
    assert (
        body["inference"] == primary["basis"] == ("sequential" if sequential else "fixed_horizon")
    )
    assert body["p_value"] == primary["adjusted_p_value"]
    assert body["is_significant"] == primary["significant"]
    assert body["confidence_interval"] == [
        primary["absolute_ci"]["lower"],
        primary["absolute_ci"]["upper"],
    ]
    assert body["relative_lift_interval"] == [
        primary["relative_ci"]["lower"], primary["relative_ci"]["upper"]
    ]  # fmt: skip
    if sequential:
        assert body["p_value"] == c["sequential_adjusted_p_value"]
        assert body["confidence_interval"] == [
            c["sequential"]["ci_lower"],
            c["sequential"]["ci_upper"],
        ]
        assert body["relative_lift_interval"] == [
            c["sequential_relative"]["ci_lower"], c["sequential_relative"]["ci_upper"]
        ]  # fmt: skip
        assert c["secondary"]["basis"] == "fixed_horizon"
    else:
        assert body["p_value"] == c["adjusted_p_value"]
        assert body["relative_lift_interval"] == [
            c["relative"]["ci"]["lower"],
            c["relative"]["ci"]["upper"],
        ]
    # Absolute and relative intervals describe the same effect: both exclude 0 or neither.
    low, high = body["confidence_interval"]
    rel_low, rel_high = body["relative_lift_interval"]
    assert (low > 0) == (rel_low > 0) and (high < 0) == (rel_high < 0)
    assert rel_low < body["relative_lift"] < rel_high


def test_without_a_minimum_lift_nothing_is_sized_against_the_observed_lift() -> None:
    body = _results(
        counts={
            "control": VariantCounts(samples=5000, conversions=500),
            "treatment": VariantCounts(samples=5000, conversions=520),
        }
    )
    decision = body["decision"]
    assert decision["verdict"] == "keep_running"
    assert decision["remaining_samples"] is None and decision["remaining_days"] is None
    assert decision["remaining_reason"] == "no_min_lift"
    assert "Set a minimum relative lift" in decision["message"]
    assert body["comparisons"][0]["power"] is None
    assert body["comparisons"][0]["power_reason"] == "no_min_lift"


def test_the_pre_registered_lift_and_power_drive_the_users_still_needed() -> None:
    counts = {
        "control": VariantCounts(samples=5000, conversions=500),
        "treatment": VariantCounts(samples=5000, conversions=520),
    }
    low = _results(counts=counts, min_relative_lift=0.1, power=0.8)
    high = _results(counts=counts, min_relative_lift=0.1, power=0.95)
    smaller = _results(counts=counts, min_relative_lift=0.05, power=0.8)
    needed = [r["decision"]["remaining_samples"] for r in (low, high, smaller)]
    assert all(isinstance(n, int) and n > 0 for n in needed)
    assert needed[0] < needed[1] and needed[0] < needed[2]
    assert low["comparisons"][0]["target_relative_lift"] == 0.1
    assert low["min_relative_lift"] == 0.1 and high["power"] == 0.95
    # 10,000 users in 4 days: 2,500 a day.
    assert low["decision"]["remaining_days"] == math.ceil(needed[0] / 2500)


def _hours(rows: list[tuple[int, int, int, int]]) -> list[HourCounts]:
    return [
        HourCounts(
            hour=T0 + timedelta(hours=i),
            variants={
                "control": VariantCounts(samples=nc, conversions=xc),
                "treatment": VariantCounts(samples=nt, conversions=xt),
            },
        )
        for i, (nc, xc, nt, xt) in enumerate(rows)
    ]


def test_timeseries_lift_is_null_where_undefined_and_never_below_minus_100_percent() -> None:
    x = experiment("exp-series", min_sample_size=500)
    rows = [(20, 0, 20, 1), (20, 1, 20, 0), (20, 3, 20, 0), *[(400, 40, 400, 50)] * 6]
    series = reports.timeseries_view(x, _hours(rows))
    json.dumps(series, allow_nan=False)
    lift = series["lift"]["treatment"]
    assert series["min_sample_size"] == 500
    assert lift["lift"][0] is None and lift["reason"][0] == "zero_baseline"
    assert lift["ci_lower"][0] is None and lift["cs_lower"][0] is None
    assert lift["scale"] == "log_ratio"
    known = [v for v in lift["ci_lower"] + lift["cs_lower"] if v is not None]
    assert known and min(known) > -1.0


def test_the_sequential_srm_check_sits_beside_the_chi_square_one() -> None:
    from abscope.stats.sequential_srm import sequential_sample_ratio_mismatch

    healthy = _results()["srm_sequential"]
    direct = sequential_sample_ratio_mismatch([20_000, 20_000], [0.5, 0.5])
    assert healthy["applicable"] and not healthy["mismatch"]
    assert healthy["p_value"] == pytest.approx(direct.p_value, rel=1e-12)
    skewed = _results(
        counts={
            "control": VariantCounts(samples=21_000, conversions=2000),
            "treatment": VariantCounts(samples=19_000, conversions=2000),
        }
    )
    assert skewed["srm_sequential"]["mismatch"] and skewed["srm"]["mismatch"]
    none = _results(counts={})["srm_sequential"]
    assert (none["p_value"], none["reason"], none["mismatch"]) == (None, "no_samples", False)
    adaptive = _results(allocation="thompson")["srm_sequential"]
    assert adaptive == {"applicable": False, "reason": "adaptive_allocation"}
