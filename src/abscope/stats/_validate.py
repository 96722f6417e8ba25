"""Argument checks shared by the statistics modules.

Every check raises :class:`ValueError` whose message starts with the argument's name, so a
caller (CLI, API) can point at the offending field.
"""

from __future__ import annotations

import math

from abscope._checks import WEIGHT_TOLERANCE, check_finite

__all__ = [
    "check_alpha",
    "check_count",
    "check_finite",
    "check_open_unit",
    "check_positive",
    "check_probability",
    "check_weights",
]


def check_count(name: str, value: float) -> int:
    """Return ``value`` as an int, or raise if it is not a non-negative whole number."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a whole number, got a bool")
    number = check_finite(name, value)
    if number < 0:
        raise ValueError(f"{name} must be non-negative, got {value!r}")
    if number != int(number):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(number)


def check_probability(name: str, value: float) -> float:
    """Return ``value`` if it lies in the closed interval [0, 1]."""
    number = check_finite(name, value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return number


def check_open_unit(name: str, value: float) -> float:
    """Return ``value`` if it lies in the open interval (0, 1)."""
    number = check_finite(name, value)
    if not 0.0 < number < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return number


def check_alpha(value: float, name: str = "alpha") -> float:
    """Return a significance level in (0, 1)."""
    return check_open_unit(name, value)


def check_positive(name: str, value: float) -> float:
    """Return ``value`` if it is a finite number greater than zero."""
    number = check_finite(name, value)
    if number <= 0:
        raise ValueError(f"{name} must be greater than 0, got {value!r}")
    return number


def check_weights(
    weights: list[float] | tuple[float, ...], n: int, name: str = "weights"
) -> tuple[float, ...]:
    """Return the weights if there are ``n`` of them, each > 0, summing to 1 within 1e-9.

    Invalid weights raise; they are never quietly normalised or equalised.
    """
    values = tuple(check_finite(f"{name}[{i}]", w) for i, w in enumerate(weights))
    if len(values) != n:
        raise ValueError(f"{name} must have {n} entries (one per variant), got {len(values)}")
    for i, w in enumerate(values):
        if w <= 0:
            raise ValueError(f"{name}[{i}] must be greater than 0, got {w!r}")
    total = math.fsum(values)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ValueError(f"{name} must sum to 1 (within {WEIGHT_TOLERANCE}), got {total!r}")
    return values
