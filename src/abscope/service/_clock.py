"""The clock the use cases take (injected, so tests control time), and its default."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "utc_now"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, in UTC: the default ``clock`` of every use case."""
    return datetime.now(UTC)
