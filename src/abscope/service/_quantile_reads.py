"""Reading a quantile metric's counters only for experiments that declare one."""

from __future__ import annotations

from abscope.models import Experiment
from abscope.storage.base import Store

__all__ = ["quantile_counters"]


def quantile_counters(
    store: Store, experiment: Experiment, phase: int
) -> dict[str, dict[str, dict[str, int]]]:
    """The store's quantile counters of ``phase`` (:meth:`Store.get_quantile_counters`), or
    ``{}`` without I/O when the experiment declares no quantile metric: the results, the
    gate, the list and the monitor of other experiments cost what they did before."""
    if not any(m.kind == "quantile" for m in experiment.metrics):
        return {}
    return store.get_quantile_counters(experiment.id, phase)
