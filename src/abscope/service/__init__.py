"""The use cases: create and change experiments, route users, log events, analyse results.

One module per concern, each over a :class:`~abscope.storage.base.Store` with the clock,
the rng and the settings it needs (injected, so tests control time and randomness):

==============================  ===========================================================
module                          use cases
==============================  ===========================================================
:mod:`.experiments`             create, get, list, patch, transition, delete; layer slices
:mod:`.traffic`                 route; ``/log`` and ``/events`` checks and events; the SDK's
                                routing configuration
:mod:`.batches`                 a checked ``/events`` batch and the answer per event
:mod:`.analysis`                results, gate, time series, explain, plans, charts, simulator
:mod:`.monitoring`              the guardrail monitor: one look at every running
                                experiment's guardrails by the lease holder, a pause or
                                an alert on a breach, and its background loop
:mod:`.facade`                  :class:`ExperimentService`, which composes them over one
                                routing snapshot
==============================  ===========================================================

The HTTP routes, the CLI and the SDK's tests call them; they call the pure packages
(``assignment``, ``bandits``, ``stats``), :mod:`abscope.serving` and the store, and never
the layers above (``tests/unit/test_architecture.py``).
"""

from __future__ import annotations

from abscope.service.analysis import Analysis
from abscope.service.batches import CheckedBatch, batch_result
from abscope.service.experiments import Action, Experiments
from abscope.service.facade import ExperimentService
from abscope.service.monitoring import Monitor, MonitorLoop, MonitorReport
from abscope.service.traffic import Traffic
from abscope.serving import STICKY_PHASE

__all__ = [
    "Action",
    "Analysis",
    "CheckedBatch",
    "ExperimentService",
    "Experiments",
    "Monitor",
    "MonitorLoop",
    "MonitorReport",
    "STICKY_PHASE",
    "Traffic",
    "batch_result",
]
