"""Number checks shared by the pure packages (statistics and assignment): standard library
only, so that the SDK, which assigns users with :mod:`abscope.assignment`, installs without
numpy or scipy."""

from __future__ import annotations

import math

__all__ = ["WEIGHT_TOLERANCE", "check_finite"]

WEIGHT_TOLERANCE = 1e-9


def check_finite(name: str, value: float) -> float:
    """Return ``value`` as a float, or raise if it is not a finite real number."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got a bool")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number
