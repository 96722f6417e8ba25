"""Sample-ratio mismatch: are the users split the way the experiment was configured?"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as _sp

from abscope.stats._validate import check_count, check_open_unit, check_weights

__all__ = ["DEFAULT_SRM_THRESHOLD", "SRMResult", "sample_ratio_mismatch"]

DEFAULT_SRM_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class SRMResult:
    """Outcome of the chi-square goodness-of-fit check of the observed split.

    ``statistic`` and ``p_value`` are ``None`` (and ``mismatch`` is ``False``) with
    ``reason = "no_samples"`` when there are no users at all.
    """

    statistic: float | None
    p_value: float | None
    df: int
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    threshold: float
    mismatch: bool
    reason: str | None = None


def sample_ratio_mismatch(
    observed: Sequence[int],
    weights: Sequence[float],
    *,
    threshold: float = DEFAULT_SRM_THRESHOLD,
) -> SRMResult:
    """Chi-square goodness-of-fit test of the users per variant against the weights.

    Parameters
    ----------
    observed : sequence of int
        Users per variant (two or more variants).
    weights : sequence of float
        Configured traffic weights, each > 0, summing to 1 within 1e-9.
    threshold : float
        Flag a mismatch when ``p < threshold`` (0.001 by default: SRM checks run on every
        look, so a strict level keeps false alarms rare).

    Returns
    -------
    SRMResult
        With no users at all the test is undefined: ``statistic`` and ``p_value`` are
        ``None``, ``reason = "no_samples"`` and there is no mismatch.

    Notes
    -----
    ``χ² = Σ (O_i − E_i)² / E_i`` with ``E_i = N w_i``, on ``k − 1`` degrees of freedom.
    Matches ``scipy.stats.chisquare(observed, N * weights)``.

    References
    ----------
    Fabijan, A. et al. (2019). Diagnosing Sample Ratio Mismatch in Online Controlled
    Experiments. KDD '19.

    Examples
    --------
    >>> r = sample_ratio_mismatch([5000, 5200], [0.5, 0.5])
    >>> round(r.p_value, 4), r.mismatch
    (0.0477, False)
    """
    counts = tuple(check_count(f"observed[{i}]", value) for i, value in enumerate(observed))
    if len(counts) < 2:
        raise ValueError(f"observed must have at least 2 variants, got {len(counts)}")
    shares = check_weights(tuple(weights), len(counts))
    level = check_open_unit("threshold", threshold)
    total = sum(counts)
    expected = tuple(total * w for w in shares)
    df = len(counts) - 1
    if total == 0:
        return SRMResult(None, None, df, counts, expected, level, False, "no_samples")
    statistic = math.fsum((o - e) ** 2 / e for o, e in zip(counts, expected, strict=True))
    p_value = float(_sp.chi2.sf(statistic, df))
    return SRMResult(statistic, p_value, df, counts, expected, level, p_value < level)
