"""Turn result dataclasses into JSON-ready values (shared by the CLI and the HTTP API)."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from abscope.stats.results import Interval

__all__ = ["interval_pair", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Dataclasses to dicts, tuples to lists, datetimes to ISO strings, and a non-finite float
    to ``None`` (JSON has no infinity: an unbounded interval end is null).

    Examples
    --------
    >>> to_jsonable({"ci": (-math.inf, 0.5)})
    {'ci': [None, 0.5]}
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def interval_pair(interval: Interval | None) -> list[float | None] | None:
    """An interval as JSON's ``[lower, upper]`` (an unbounded end ``None``), or ``None`` for
    an undefined interval.

    Examples
    --------
    >>> from abscope.stats.results import Interval
    >>> interval_pair(Interval(-math.inf, 0.5, 0.95)), interval_pair(None)
    ([None, 0.5], None)
    """
    return None if interval is None else to_jsonable([interval.lower, interval.upper])
