"""Multiple-comparison correction of p-values (several treatments against one control).

:func:`adjust_p_values` takes ``None`` for a p-value that is undefined (a comparison with no
samples or no variance): it stays ``None`` and is left out of the family, so ``m`` counts the
defined p-values only. A comparison that cannot be tested makes no claim, and so spends no
error rate; when it becomes testable it joins the family and the others are corrected for it.
:func:`holm` and :func:`benjamini_hochberg` take defined p-values only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from abscope.stats._validate import check_probability

__all__ = ["Correction", "adjust_p_values", "benjamini_hochberg", "holm"]

Correction = Literal["holm", "bh", "none"]


def _checked(p_values: Sequence[float]) -> list[float]:
    return [check_probability(f"p_values[{i}]", p) for i, p in enumerate(p_values)]


def holm(p_values: Sequence[float]) -> tuple[float, ...]:
    """Holm–Bonferroni step-down adjusted p-values (controls the family-wise error rate).

    Notes
    -----
    With the p-values sorted ascending, ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j))``.
    Results are returned in the input order. Matches
    ``statsmodels.stats.multitest.multipletests(method="holm")`` and R's
    ``p.adjust(p, "holm")``.

    References
    ----------
    Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian
    Journal of Statistics 6, 65–70.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03])
    (0.03, 0.06, 0.06)
    """
    values = _checked(p_values)
    m = len(values)
    order = sorted(range(m), key=values.__getitem__)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * values[index]))
        adjusted[index] = running
    return tuple(adjusted)


def benjamini_hochberg(p_values: Sequence[float]) -> tuple[float, ...]:
    """Benjamini–Hochberg step-up adjusted p-values (controls the false discovery rate).

    Notes
    -----
    With the p-values sorted ascending, ``p̃_(i) = min_{j ≥ i} min(1, m p_(j) / j)``.
    Matches ``multipletests(method="fdr_bh")`` and R's ``p.adjust(p, "BH")``.

    References
    ----------
    Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57,
    289–300.

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, 0.03])
    (0.03, 0.04, 0.04)
    """
    values = _checked(p_values)
    m = len(values)
    order = sorted(range(m), key=values.__getitem__, reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for position, index in enumerate(order):
        rank = m - position
        running = min(running, min(1.0, m * values[index] / rank))
        adjusted[index] = running
    return tuple(adjusted)


def adjust_p_values(
    p_values: Sequence[float | None], method: Correction = "holm"
) -> tuple[float | None, ...]:
    """Adjust p-values by ``"holm"`` (default), ``"bh"`` or ``"none"``.

    ``None`` (an undefined p-value) stays ``None`` and is left out of the family: the
    defined p-values are adjusted among themselves (see the module docstring).

    Examples
    --------
    >>> adjust_p_values([0.2, 0.01], "none")
    (0.2, 0.01)
    >>> adjust_p_values([0.01, None, 0.04], "holm")
    (0.02, None, 0.04)
    """
    if method not in ("holm", "bh", "none"):
        raise ValueError(f"method must be one of holm, bh, none; got {method!r}")
    defined = [
        (i, check_probability(f"p_values[{i}]", p)) for i, p in enumerate(p_values) if p is not None
    ]
    values = [p for _, p in defined]
    if method == "holm":
        adjusted = holm(values)
    elif method == "bh":
        adjusted = benjamini_hochberg(values)
    else:
        adjusted = tuple(values)
    out: list[float | None] = [None] * len(p_values)
    for (index, _), value in zip(defined, adjusted, strict=True):
        out[index] = value
    return tuple(out)
