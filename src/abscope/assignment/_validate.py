"""Argument checks for the assignment package.

Like :mod:`abscope.stats._validate`, every check raises :class:`ValueError` whose message
starts with the argument's name, so the service can point at the offending field. The
package may not import :mod:`re` (see ``tests/unit/test_architecture.py``), so the slug rule
is checked with character sets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from abscope._checks import WEIGHT_TOLERANCE, check_finite

__all__ = [
    "MAX_USER_ID_LENGTH",
    "MAX_VARIANT_NAME_LENGTH",
    "check_allocation",
    "check_seed",
    "check_slug",
    "check_traffic_percentage",
    "check_user_id",
    "check_variant_names",
    "user_id_error",
]

MAX_USER_ID_LENGTH = 256
MAX_SLUG_LENGTH = 64
MAX_VARIANT_NAME_LENGTH = 64
_SLUG_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_SLUG_REST = _SLUG_FIRST | frozenset("_-")


def user_id_error(user_id: object, name: str = "user_id") -> ValueError:
    """The error for an invalid user id (shared with the router's inlined check)."""
    if not isinstance(user_id, str):
        return ValueError(f"{name} must be a string, got {type(user_id).__name__}")
    if not user_id:
        return ValueError(f"{name} must not be empty")
    if len(user_id) > MAX_USER_ID_LENGTH:
        return ValueError(
            f"{name} must be at most {MAX_USER_ID_LENGTH} characters, got {len(user_id)}"
        )
    return ValueError(f"{name} must be valid Unicode (encodable as UTF-8), got {user_id!r}")


def check_user_id(user_id: object, name: str = "user_id") -> str:
    """Return ``user_id`` if it is a string of 1 to 256 code points encodable as UTF-8."""
    if not isinstance(user_id, str) or not 0 < len(user_id) <= MAX_USER_ID_LENGTH:
        raise user_id_error(user_id, name)
    try:
        user_id.encode("utf-8")
    except UnicodeEncodeError:
        raise user_id_error(user_id, name) from None
    return user_id


def check_slug(value: object, name: str) -> str:
    """Return ``value`` if it matches ``[a-z0-9][a-z0-9_-]{0,63}``."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    if (
        not 0 < len(value) <= MAX_SLUG_LENGTH
        or value[0] not in _SLUG_FIRST
        or not _SLUG_REST.issuperset(value)
    ):
        raise ValueError(
            f"{name} must be 1 to {MAX_SLUG_LENGTH} characters of a-z, 0-9, '_' or '-', "
            f"starting with a letter or digit, got {value!r}"
        )
    return value


def check_seed(value: object, name: str) -> int:
    """Return ``value`` if it is a non-negative ``int`` (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def check_traffic_percentage(value: object, name: str = "traffic_percentage") -> float:
    """Return ``value`` as a float if it lies in ``(0, 100]``."""
    number = check_finite(name, value)  # type: ignore[arg-type]
    if not 0.0 < number <= 100.0:
        raise ValueError(f"{name} must be in (0, 100], got {value!r}")
    return number


def check_variant_names(variants: object, name: str = "variants") -> tuple[str, ...]:
    """Return the variant names as a tuple: at least two, unique, each 1 to 64 characters."""
    if isinstance(variants, str) or not isinstance(variants, Sequence):
        raise ValueError(f"{name} must be a sequence of variant names, got {variants!r}")
    names = tuple(variants)
    if len(names) < 2:
        raise ValueError(f"{name} must have at least 2 entries, got {len(names)}")
    for i, variant in enumerate(names):
        if not isinstance(variant, str) or not 0 < len(variant) <= MAX_VARIANT_NAME_LENGTH:
            raise ValueError(
                f"{name}[{i}] must be a string of 1 to {MAX_VARIANT_NAME_LENGTH} characters, "
                f"got {variant!r}"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"{name} must be unique, got {list(names)!r}")
    return names


def check_allocation(
    weights: Sequence[float], n: int, name: str = "weights", *, allow_zero: bool = False
) -> tuple[float, ...]:
    """Return ``n`` finite weights summing to 1 within 1e-9, each ``> 0`` (or ``>= 0``).

    Invalid weights raise; they are never quietly normalised or equalised. ``allow_zero``
    admits arms switched off by an adaptive allocation (a bandit's probabilities).
    """
    if isinstance(weights, str) or not isinstance(weights, Sequence):
        raise ValueError(f"{name} must be a sequence of numbers, got {weights!r}")
    values = tuple(check_finite(f"{name}[{i}]", w) for i, w in enumerate(weights))
    if len(values) != n:
        raise ValueError(f"{name} must have {n} entries (one per variant), got {len(values)}")
    for i, w in enumerate(values):
        if w < 0 or (w == 0 and not allow_zero):
            bound = "at least 0" if allow_zero else "greater than 0"
            raise ValueError(f"{name}[{i}] must be {bound}, got {w!r}")
    total = math.fsum(values)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ValueError(f"{name} must sum to 1 (within {WEIGHT_TOLERANCE}), got {total!r}")
    return values
