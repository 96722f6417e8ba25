"""Tables and numbers as the command line prints them: plain text, standard library only.

Two spellings of an undefined value: the planning tables (``plan``, ``analyze``) show
:data:`UNDEFINED` and list the reasons below the table; the management tables show
``n/a (reason)`` in the cell itself (:func:`na`), as a server's answer carries the reason
next to the value. Neither ever shows 0 for a value that could not be computed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "UNDEFINED",
    "json_text",
    "fields",
    "na",
    "num",
    "p_value",
    "pct",
    "pct_span",
    "table",
    "when",
]

UNDEFINED = "\u2014"
"""What the planning tables show for an undefined value (an em dash); the reason is listed
below the table."""


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """Columns padded to their widest cell. ``align`` has an ``l`` or an ``r`` per column;
    by default the first column is left-aligned and the others (numbers) right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    sides = align or "l" + "r" * (len(headers) - 1)
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        cells = [
            c.ljust(w) if side == "l" else c.rjust(w)
            for c, w, side in zip(row, widths, sides, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def fields(rows: Sequence[tuple[str, str]], indent: str = "  ") -> str:
    """``label  value`` lines, the labels padded to the longest."""
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{indent}{label.ljust(width)}  {value}" for label, value in rows)


def na(reason: str | None) -> str:
    """The cell of a null value: ``n/a (reason)``."""
    return f"n/a ({reason or 'undefined'})"


def _undefined(x: float | None, reason: str | None) -> str | None:
    if x is None or not math.isfinite(x):
        return UNDEFINED if reason is None else na(reason)
    return None


def pct(
    x: float | None, digits: int = 2, signed: bool = False, *, reason: str | None = None
) -> str:
    """``12.34%`` (``+12.34%`` when signed); undefined: an em dash, or ``n/a (reason)``."""
    missing = _undefined(x, reason)
    if missing is not None:
        return missing
    assert x is not None
    return f"{x:+.{digits}%}" if signed else f"{x:.{digits}%}"


def num(x: float | None, signed: bool = False, *, reason: str | None = None) -> str:
    """Four significant digits; undefined: an em dash, or ``n/a (reason)``."""
    missing = _undefined(x, reason)
    if missing is not None:
        return missing
    assert x is not None
    return f"{x:+.4g}" if signed else f"{x:.4g}"


def p_value(x: float | None, *, reason: str | None = None) -> str:
    """Four decimals, ``<0.0001`` below; undefined: an em dash, or ``n/a (reason)``."""
    missing = _undefined(x, reason)
    if missing is not None:
        return missing
    assert x is not None
    return "<0.0001" if x < 1e-4 else f"{x:.4f}"


def pct_span(
    lower: float | None,
    upper: float | None,
    digits: int = 1,
    *,
    reason: str | None = None,
    signed: bool = True,
) -> str:
    """``-1.2% to +3.4%``; undefined when either bound is."""
    if lower is None or upper is None:
        return UNDEFINED if reason is None else na(reason)
    return f"{pct(lower, digits, signed)} to {pct(upper, digits, signed)}"


def when(stamp: str | None, *, reason: str) -> str:
    """An ISO-8601 time of the server as ``2026-12-01 14:00 UTC``; ``n/a (reason)`` if null."""
    if stamp is None:
        return na(reason)
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def json_text(value: Any) -> str:
    """Strict JSON, indented (NaN and infinities are refused, never printed)."""
    return json.dumps(value, indent=2, allow_nan=False)
