"""Small shared types for the statistics modules."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["Alternative", "check_alternative"]

Alternative = Literal["two-sided", "greater", "less"]
"""Direction of the alternative hypothesis for ``treatment − control``.

``"greater"`` means the treatment is better (its rate or mean is higher), ``"less"`` that it is
lower, and ``"two-sided"`` either. The names follow ``scipy.stats``.
"""


def check_alternative(value: str, name: str = "alternative") -> Alternative:
    """Return ``value`` if it is one of the three alternatives, else raise ``ValueError``."""
    if value == "two-sided":
        return "two-sided"
    if value == "greater":
        return "greater"
    if value == "less":
        return "less"
    raise ValueError(f"{name} must be one of {', '.join(get_args(Alternative))}; got {value!r}")
