"""The results' estimates corrected for adaptive allocation, in words: a pure function.

``abscope experiments results`` prints :func:`format_adaptive` under the CUPED block for a
bandit experiment (the server sends ``adaptive_estimates``; for a fixed split it sends
``null`` and nothing is printed, the plain estimates being unbiased there). Per arm: the
naive mean beside the Hájek estimate (the unbiased one) and the square-root-weighted
("stabilized") interval (the one to report), then Horvitz-Thompson and AIPW; per
treatment the same for the difference from the control. Every figure is fixed-horizon,
which the block says. As in :mod:`abscope.cli.views`, a null value is ``n/a (reason)``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from abscope.cli.tables import na, num, pct, pct_span, table

__all__ = ["format_adaptive"]

NOTE_WIDTH = 92
"""Where the notes under the tables are wrapped."""

Json = Mapping[str, Any]


def _value(figure: Json, binary: bool, signed: bool = False) -> str:
    reason = figure.get("reason")
    if binary:
        return pct(figure.get("estimate"), 2, signed, reason=reason)
    return num(figure.get("estimate"), signed, reason=reason)


def _span(figure: Json, binary: bool, signed: bool = False) -> str:
    interval = figure.get("interval")
    if not interval or interval[0] is None or interval[1] is None:
        return na(figure.get("reason"))
    if binary:
        return pct_span(interval[0], interval[1], 2, signed=signed)
    return f"{num(interval[0], signed)} to {num(interval[1], signed)}"


def _row(label: str, estimates: Json, binary: bool, signed: bool) -> list[str]:
    return [
        label,
        _value(estimates["naive"], binary, signed),
        _value(estimates["hajek"], binary, signed),
        _span(estimates["stabilized"], binary, signed),
        _value(estimates["horvitz_thompson"], binary, signed),
        _value(estimates["aipw"], binary, signed),
    ]


def format_adaptive(section: Json, metric_type: str) -> str:
    """The ``adaptive_estimates`` block of a results answer (not ``None``)."""
    binary = metric_type == "binary"
    level = f"{section['confidence_level']:.0%}"
    what = "rate" if binary else "mean"
    headers = ["arm", f"naive {what}", "Hájek (estimate)", f"{level} CI (stabilized)",
               "Horvitz-Thompson", "AIPW"]  # fmt: skip
    rows = []
    for arm in section["arms"]:
        label, *cells = _row(arm["variant"], arm["estimates"], binary, False)
        rows.append([label, f"{arm['users']:,}", *cells])
    arms = table([headers[0], "users", *headers[1:]], rows)
    differences = table(
        ["vs control", *headers[1:]],
        [_row(c["variant"], c["estimates"], binary, True) for c in section["comparisons"]],
    )
    head = (
        f"Estimates corrected for adaptive allocation ({section['allocation']}; primary"
        f" metric {section['metric']}, per user its {section['outcome']}): each user weighted"
        " by the inverse of"
        " the probability with which the bandit chose the user's arm. Report the Hájek"
        " estimate and the stabilized interval; the naive figure is biased when the bandit"
        " starves an arm."
    )
    inference = f"Inference (fixed-horizon): {section['inference_note']}"
    notes = [inference, section["outcome_model_note"]]
    wrapped = "\n".join(textwrap.fill(str(note), NOTE_WIDTH) for note in notes)
    return "\n\n".join([textwrap.fill(head, NOTE_WIDTH), arms, differences, wrapped])
