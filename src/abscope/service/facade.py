""":class:`ExperimentService`: the use cases of one store, composed.

It builds one :class:`~abscope.serving.Serving` (the routing snapshot, the bandit
allocations, the exposures already recorded, the store's health) and the three parts that
share it: :class:`~abscope.service.experiments.Experiments` (whose changes invalidate the
snapshot), :class:`~abscope.service.traffic.Traffic` (which routes and checks events on it)
and :class:`~abscope.service.analysis.Analysis`.

Each use case is an attribute of the service that *is* the part's bound method
(``service.log_events`` is ``service.traffic.log_events``): the facade adds no call, and no
lookup beyond the attribute's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from abscope.config import Settings
from abscope.service._clock import Clock, utc_now
from abscope.service.analysis import Analysis
from abscope.service.covariates import Covariates
from abscope.service.experiments import Experiments
from abscope.service.traffic import Traffic
from abscope.serving import Serving
from abscope.storage.base import Store

__all__ = ["ExperimentService"]


class ExperimentService:
    """abscope's use cases over one store. Safe to share between threads.

    Parameters
    ----------
    store
        The store every part uses.
    settings
        The service's settings (routing refresh intervals, batch and clock-skew limits).
    clock
        The wall clock (injected, so tests control time).
    monotonic
        The clock of the caches' ages: ``time.monotonic`` by default, or the wall clock's
        seconds when a ``clock`` is injected without one, so that a test moves both at once.
    rng
        The randomness of bandit draws and generated ids (seed it for reproducible runs).
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        # Cache ages use a monotonic clock unless the caller injects one: a wall clock that
        # steps back would otherwise freeze the routing snapshot.
        ages = monotonic or (time.monotonic if clock is utc_now else lambda: clock().timestamp())
        randomness = rng if rng is not None else np.random.default_rng()
        self.serving = Serving(store, settings, clock=clock, monotonic=ages, rng=randomness)
        self.experiments = Experiments(
            store, clock=clock, rng=randomness, on_change=self.serving.invalidate
        )
        self.traffic = Traffic(store, settings, self.serving, clock=clock)
        self.covariates = Covariates(store, settings)
        self.analysis = Analysis(
            store, clock=clock, guardrail_min_samples=settings.guardrail_min_samples
        )

        experiments, traffic, analysis = self.experiments, self.traffic, self.analysis
        self.create = experiments.create
        self.get = experiments.get
        self.list_experiments = experiments.list_experiments
        self.patch = experiments.patch
        self.add_metric = experiments.add_metric
        self.transition = experiments.transition
        self.record = experiments.record
        self.delete = experiments.delete

        self.route = traffic.route
        self.routing_config = traffic.routing_config
        self.log = traffic.log
        self.log_events = traffic.log_events
        self.log_events_without_io = traffic.log_events_without_io
        self.log_outcome = traffic.log_outcome
        self.ingest = traffic.ingest
        self.check_batch = traffic.check_batch
        self.check_batch_without_io = traffic.check_batch_without_io
        self.backfill_covariates = self.covariates.backfill

        self.results = analysis.results
        self.summary = analysis.summary
        self.gate = analysis.gate
        self.timeseries = analysis.timeseries
        self.explain = analysis.explain
        self.calculate = analysis.calculate
        self.experiment_charts = analysis.experiment_charts
        self.plan_charts = analysis.plan_charts
        self.simulate_bandits = analysis.simulate_bandits
