"""A :class:`~abscope.storage.base.Store` that times every call of another store.

:class:`InstrumentedStore` wraps a store: each call goes to it unchanged (same arguments,
same result, same error), and its duration, and whether it failed with
``StorageUnavailable``, go to a function of its operation, bound once per operation
(:class:`StoreObserver`). Other errors (``NotFound``, ``Conflict``) are answers, not
failures of the store. The contract suite runs over it (``tests/contract``).

The storage package knows nothing of what is done with the figures: the HTTP layer's
metrics (:mod:`abscope.api.metrics`) are one observer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from time import perf_counter
from typing import Final, ParamSpec, Protocol, TypeVar

from abscope.errors import StorageUnavailable
from abscope.models import (
    CovariateCounts,
    Event,
    Experiment,
    MetricCounts,
    Status,
    VariantCounts,
    WeightedCounts,
)
from abscope.storage.base import (
    CovariateItem,
    CovariateOutcome,
    EventResult,
    HourCounts,
    MetricHourCounts,
    Store,
)

__all__ = ["OPERATIONS", "InstrumentedStore", "Observe", "StoreObserver"]

OPERATIONS: Final = (
    "ping",
    "create_experiment",
    "get_experiment",
    "list_experiments",
    "save_experiment",
    "delete_experiment",
    "get_assignment",
    "assign_if_absent",
    "record_events",
    "record_events_async",
    "get_exposure",
    "get_counts",
    "get_timeseries",
    "get_metric_counts",
    "get_metric_timeseries",
    "get_quantile_counters",
    "record_covariates",
    "get_covariate_counts",
    "get_metric_covariate_counts",
    "get_weighted_counts",
    "acquire_lease",
    "release_lease",
)
"""The store's operations that are timed: every call of the interface but ``close`` and
``aclose``."""

Observe = Callable[[float, bool], None]
"""Told of one call: its duration in seconds, and whether it raised ``StorageUnavailable``."""

P = ParamSpec("P")
R = TypeVar("R")


class StoreObserver(Protocol):
    """What an :class:`InstrumentedStore` reports to."""

    def store_operation(self, operation: str) -> Observe:
        """The function told of each call of ``operation`` (one of :data:`OPERATIONS`)."""
        ...


class _Timed:
    """Times one call for ``observe``: ``with _Timed(observe): ...``, for the sync calls
    and the async one alike. Only ``StorageUnavailable`` counts as a failure."""

    __slots__ = ("_observe", "_started")

    def __init__(self, observe: Observe) -> None:
        self._observe = observe
        self._started = perf_counter()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        failed = kind is not None and issubclass(kind, StorageUnavailable)
        self._observe(perf_counter() - self._started, failed)


class InstrumentedStore(Store):
    """``inner``, with each call's duration and failure told to ``observer``."""

    def __init__(self, inner: Store, observer: StoreObserver) -> None:
        self.inner = inner
        self._observe = {operation: observer.store_operation(operation) for operation in OPERATIONS}

    def _call(
        self, operation: str, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        with _Timed(self._observe[operation]):
            return function(*args, **kwargs)

    def ping(self) -> None:
        self._call("ping", self.inner.ping)

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def create_experiment(self, experiment: Experiment) -> None:
        self._call("create_experiment", self.inner.create_experiment, experiment)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._call("get_experiment", self.inner.get_experiment, experiment_id)

    def list_experiments(self, status: Status | None = None) -> list[Experiment]:
        return self._call("list_experiments", self.inner.list_experiments, status)

    def save_experiment(self, experiment: Experiment) -> None:
        self._call("save_experiment", self.inner.save_experiment, experiment)

    def delete_experiment(self, experiment_id: str) -> None:
        self._call("delete_experiment", self.inner.delete_experiment, experiment_id)

    def get_assignment(self, experiment_id: str, phase: int, user_id: str) -> str | None:
        return self._call(
            "get_assignment", self.inner.get_assignment, experiment_id, phase, user_id
        )

    def assign_if_absent(self, experiment_id: str, phase: int, user_id: str, variant: str) -> str:
        return self._call(
            "assign_if_absent", self.inner.assign_if_absent, experiment_id, phase, user_id, variant
        )

    def record_events(self, events: Sequence[Event]) -> list[EventResult]:
        return self._call("record_events", self.inner.record_events, events)

    async def record_events_async(self, events: Sequence[Event]) -> list[EventResult]:
        with _Timed(self._observe["record_events_async"]):
            return await self.inner.record_events_async(events)

    def get_exposure(self, experiment_id: str, phase: int, user_id: str) -> str | None:
        return self._call("get_exposure", self.inner.get_exposure, experiment_id, phase, user_id)

    def get_counts(self, experiment_id: str, phase: int) -> dict[str, VariantCounts]:
        return self._call("get_counts", self.inner.get_counts, experiment_id, phase)

    def get_timeseries(self, experiment_id: str, phase: int) -> list[HourCounts]:
        return self._call("get_timeseries", self.inner.get_timeseries, experiment_id, phase)

    def get_metric_counts(
        self, experiment_id: str, phase: int
    ) -> dict[str, dict[str, MetricCounts]]:
        return self._call("get_metric_counts", self.inner.get_metric_counts, experiment_id, phase)

    def get_metric_timeseries(self, experiment_id: str, phase: int) -> list[MetricHourCounts]:
        return self._call(
            "get_metric_timeseries", self.inner.get_metric_timeseries, experiment_id, phase
        )

    def get_quantile_counters(
        self, experiment_id: str, phase: int
    ) -> dict[str, dict[str, dict[str, int]]]:
        return self._call(
            "get_quantile_counters", self.inner.get_quantile_counters, experiment_id, phase
        )

    def record_covariates(
        self, experiment_id: str, phase: int, covariates: Sequence[CovariateItem]
    ) -> list[CovariateOutcome]:
        return self._call(
            "record_covariates", self.inner.record_covariates, experiment_id, phase, covariates
        )

    def get_metric_covariate_counts(
        self, experiment_id: str, phase: int
    ) -> dict[str, dict[str, CovariateCounts]]:
        return self._call(
            "get_metric_covariate_counts",
            self.inner.get_metric_covariate_counts,
            experiment_id,
            phase,
        )

    def get_covariate_counts(self, experiment_id: str, phase: int) -> dict[str, CovariateCounts]:
        return self._call(
            "get_covariate_counts", self.inner.get_covariate_counts, experiment_id, phase
        )

    def get_weighted_counts(self, experiment_id: str, phase: int) -> dict[str, WeightedCounts]:
        return self._call(
            "get_weighted_counts", self.inner.get_weighted_counts, experiment_id, phase
        )

    def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        return self._call("acquire_lease", self.inner.acquire_lease, name, holder, ttl)

    def release_lease(self, name: str, holder: str) -> None:
        self._call("release_lease", self.inner.release_lease, name, holder)
