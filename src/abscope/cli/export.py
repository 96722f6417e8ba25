"""``abscope experiments export``: a results or time-series answer as CSV rows. Pure.

Results: one row per variant, in the experiment's order. Time series: one row per hour and
variant, hours in order, with the cumulative counts at the end of that hour (as the
``timeseries`` answer gives them) and, for each treatment, its lift against the control with
the fixed-horizon interval (``lift_ci_*``) and the confidence sequence (``lift_cs_*``).

A null is an empty cell, and the reason, when the answer gives one, has a column of its
own. Numbers are written as Python's shortest round-trip form (``repr``), so that a CSV cell
parses back to the JSON's number exactly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["RESULTS_COLUMNS", "TIMESERIES_COLUMNS", "results_rows", "timeseries_rows", "to_csv"]

Json = Mapping[str, Any]

RESULTS_COLUMNS = (
    "experiment_id",
    "phase",
    "variant",
    "is_control",
    "users",
    "conversions",
    "mean",
    "std",
    "ci_lower",
    "ci_upper",
    "weight",
    "observed_share",
    "prob_best",
    "inference",
    "relative_lift",
    "lift_lower",
    "lift_upper",
    "p_value",
    "chance_to_beat_control",
    "power",
    "lift_reason",
)
"""Per variant; the lift columns (from ``relative_lift``) are empty for the control.
``lift_lower``/``lift_upper`` and ``p_value`` (adjusted) come from the inference mode in
force (``inference``): the confidence sequence and always-valid p-value when sequential."""

TIMESERIES_COLUMNS = (
    "hour",
    "variant",
    "samples",
    "conversions",
    "value",
    "ci_lower",
    "ci_upper",
    "lift",
    "lift_ci_lower",
    "lift_ci_upper",
    "lift_cs_lower",
    "lift_cs_upper",
    "lift_reason",
)
"""Per hour and variant; the lift columns are empty for the control."""


def results_rows(results: Json) -> list[dict[str, Any]]:
    """One row (:data:`RESULTS_COLUMNS`) per variant of a results answer."""
    comparisons = {c["variant"]: c for c in results.get("comparisons") or []}
    rows = []
    for v in results["variants"]:
        ci = v.get("ci") or {}
        row: dict[str, Any] = {
            "experiment_id": results["experiment_id"],
            "phase": results["phase"],
            "variant": v["name"],
            "is_control": v["is_control"],
            "users": v["n"],
            "conversions": v.get("conversions"),
            "mean": v.get("mean"),
            "std": v.get("std"),
            "ci_lower": ci.get("lower"),
            "ci_upper": ci.get("upper"),
            "weight": v.get("weight"),
            "observed_share": v.get("observed_share"),
            "prob_best": v.get("prob_best"),
            "inference": results["inference"],
        }
        c = comparisons.get(v["name"])
        if c is not None:
            primary = c.get("primary") or {}
            interval = primary.get("relative_ci") or {}
            row |= {
                "relative_lift": c["relative"]["estimate"],
                "lift_lower": interval.get("lower"),
                "lift_upper": interval.get("upper"),
                "p_value": primary.get("adjusted_p_value"),
                "chance_to_beat_control": (c.get("bayesian") or {}).get("chance_to_beat_control"),
                "power": c.get("power"),
                "lift_reason": c["relative"].get("reason"),
            }
        rows.append(row)
    return rows


def timeseries_rows(series: Json) -> list[dict[str, Any]]:
    """One row (:data:`TIMESERIES_COLUMNS`) per hour and variant of a time-series answer."""
    rows = []
    lifts = series.get("lift") or {}
    for i, hour in enumerate(series["hours"]):
        for name, v in series["variants"].items():
            row: dict[str, Any] = {
                "hour": hour,
                "variant": name,
                "samples": v["samples"][i],
                "conversions": v["conversions"][i],
                "value": v["value"][i],
                "ci_lower": v["ci_lower"][i],
                "ci_upper": v["ci_upper"][i],
            }
            lift = lifts.get(name)
            if lift is not None:
                row |= {
                    "lift": lift["lift"][i],
                    "lift_ci_lower": lift["ci_lower"][i],
                    "lift_ci_upper": lift["ci_upper"][i],
                    "lift_cs_lower": lift["cs_lower"][i],
                    "lift_cs_upper": lift["cs_upper"][i],
                    "lift_reason": lift["reason"][i],
                }
            rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_csv(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """A header row and one line per row; a column a row lacks is an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue()
