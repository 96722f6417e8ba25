"""The traffic use cases: route users, check and build the events of ``/log`` and
``/events``, and the SDK's routing configuration.

Routing never reads an experiment's configuration from the store per request: it reads the
:class:`~abscope.routing.RoutingTable` of the :class:`~abscope.serving.Serving` it is given,
rebuilt at most once per ``config_refresh_seconds`` (1 s by default), and at once after a
change made through this process, so every worker sees a change within that interval.
Events are checked against the same snapshot, so a user is never routed to one variant and
refused an event for it by another snapshot.

The HTTP layer (:mod:`abscope.api.hot_paths`) calls the ``*_without_io`` checks on the
event loop, and the general ones in a thread when those answer ``None``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from abscope import schemas
from abscope.config import Settings
from abscope.errors import Conflict, InvalidInput, NotFound, StorageUnavailable
from abscope.models import VALUE_EVENT_ID_SUFFIX, Event, EventKind, Experiment
from abscope.routing import CompiledExperiment, RoutingTable
from abscope.sdk_config import ConfigDocument, config_document
from abscope.service._clock import Clock, utc_now
from abscope.service.batches import CheckedBatch
from abscope.service.covariates import split_covariates
from abscope.service.event_metrics import event_metric, log_metric, quantile_increments
from abscope.serving import STICKY_PHASE, Serving
from abscope.storage.base import EventResult, Store

__all__ = ["Traffic"]


class Traffic:
    """The traffic use cases over one store and one routing snapshot. Safe to share
    between threads.

    Parameters
    ----------
    store
        Where the events go (the same store as ``serving``'s).
    settings
        ``max_batch_size`` and ``max_clock_skew_seconds`` bound what is accepted.
    serving
        The routing snapshot and the exposures' recorder: one per service, shared with
        whatever else routes, so that routing and the event checks read one snapshot.
    clock
        The wall clock of an event without a timestamp, and of the clock-skew check.
    """

    def __init__(
        self, store: Store, settings: Settings, serving: Serving, *, clock: Clock = utc_now
    ) -> None:
        self.store = store
        self.settings = settings
        self.serving = serving
        self._clock = clock
        self._config_document: tuple[RoutingTable, ConfigDocument] | None = None

    # --- routing -------------------------------------------------------------------------

    def route(
        self, user_id: str, experiment_id: str | None = None, *, expose: bool = True
    ) -> schemas.RouteResponse:
        """Assign a user to one experiment, or to every running one they qualify for, and
        record the exposures (one store call). The HTTP layer runs the same steps, with the
        exposures of concurrent requests committed together."""
        plan = self.serving.plan(user_id, experiment_id, expose)
        body = self.serving.answer(plan, self.serving.record(plan))
        return schemas.RouteResponse.model_validate_json(body)

    def routing_config(self) -> ConfigDocument:
        """The SDK's routing configuration (:mod:`abscope.sdk_config`) of the current
        snapshot, built once per snapshot. Served from the last snapshot while the store is
        down, as routing is; ``StorageUnavailable`` only when there is none."""
        table = self.serving.table()
        cached = self._config_document
        if cached is None or cached[0] is not table:
            cached = (table, config_document(table))
            self._config_document = cached
        return cached[1]

    # --- events --------------------------------------------------------------------------

    def log(self, request: schemas.LogRequest) -> schemas.LogResponse:
        """Record what a user did (and their exposure, if it was not recorded yet)."""
        events = self.log_events(request)
        return self.log_outcome(request, events, self.store.record_events(events))

    def log_events_without_io(self, request: schemas.LogRequest) -> list[Event] | None:
        """:meth:`log_events` when its checks need no I/O (a usable snapshot, a hash-routed
        experiment), else ``None``: the HTTP layer then runs :meth:`log_events` in a thread."""
        table = self.serving.fresh_table()
        compiled = None if table is None else table.by_id.get(request.experiment_id)
        if compiled is None or compiled.experiment.sticky or not compiled.pure:
            return None
        return self.log_events(request)

    def log_events(self, request: schemas.LogRequest) -> list[Event]:
        """The events a ``/log`` call records, once the request is checked against the
        experiment (``Conflict`` when it contradicts the user's assignment, ``InvalidInput``
        when it does not fit the metric it names: :mod:`abscope.service.event_metrics`)."""
        compiled, probability = self._check_log_target(
            request.experiment_id, request.user_id, request.variant_name
        )
        experiment = compiled.experiment
        at = self._event_time(experiment, request.timestamp, "timestamp")
        metric, denominator = request.metric, request.denominator
        if metric is not None or denominator is not None:  # else the primary's
            metric, denominator = log_metric(
                compiled.metrics, experiment.id, metric, request.converted, request.value,
                denominator,
            )  # fmt: skip
        kind: EventKind = "conversion" if request.converted else "exposure"
        user, variant = request.user_id, request.variant_name
        events = [
            self._event(
                experiment,
                user,
                variant,
                kind,
                probability,
                at,
                None,
                request.event_id,
                metric if kind == "conversion" else None,
            )  # fmt: skip
        ]
        if request.value is not None:
            value_id = f"{request.event_id}{VALUE_EVENT_ID_SUFFIX}" if request.event_id else None
            increments = None
            if metric is not None:
                increments = quantile_increments(
                    compiled.metrics.get(metric), experiment.id, experiment.phase, user,
                    request.value, "value",
                )  # fmt: skip
            events.append(
                self._event(
                    experiment,
                    user,
                    variant,
                    "value",
                    probability,
                    at,
                    request.value,
                    value_id,
                    metric,
                    denominator,
                    increments,
                )  # fmt: skip
            )
        return events

    def log_outcome(
        self, request: schemas.LogRequest, events: list[Event], results: list[EventResult]
    ) -> schemas.LogResponse:
        """The answer to a ``/log`` call whose ``events`` the store applied with ``results``
        (a contradiction reads the user's first exposure: I/O). The events of one call
        belong to one experiment and are applied together: ``unavailable`` (a Redis
        Cluster node failed in a batch committed with other calls' events) means that
        none of them was."""
        if any(r.outcome == "unavailable" for r in results):
            raise StorageUnavailable(
                f"the store did not apply the events of a /log call to {request.experiment_id}",
                public="the store could not record the events",
            )
        if any(r.outcome == "variant_mismatch" for r in results):
            first = self.store.get_exposure(request.experiment_id, events[0].phase, request.user_id)
            raise Conflict(
                f"user {request.user_id} was exposed to {first}, not {request.variant_name}"
            )
        duplicate = all(r.outcome == "duplicate" for r in results)
        return schemas.LogResponse(
            status="duplicate" if duplicate else "counted",
            new_exposure=any(r.new_exposure for r in results),
            new_conversion=any(r.new_conversion for r in results),
        )

    def ingest(self, request: schemas.BatchRequest) -> schemas.BatchResponse:
        """Apply a batch: each event is checked, then all valid ones go in one store call."""
        batch = self.check_batch(request)
        return batch.response(self.store.record_events(batch.events))

    def check_batch_without_io(self, request: schemas.BatchRequest) -> CheckedBatch | None:
        """:meth:`check_batch` when it needs no I/O (a usable snapshot on which every event's
        experiment is hash-routed), else ``None``: the HTTP layer then runs
        :meth:`check_batch` in a thread."""
        table = self.serving.fresh_table()
        if table is None:
            return None
        by_id = table.by_id
        for experiment_id in {item.experiment_id for item in request.events}:
            compiled = by_id.get(experiment_id)
            if compiled is None or not compiled.pure:
                return None
        return self.check_batch(request, table)

    def check_batch(
        self, request: schemas.BatchRequest, table: RoutingTable | None = None
    ) -> CheckedBatch:
        """The events of a batch that pass their checks, and why each other one is rejected.

        Each event is checked as ``/log`` checks its call. Events of a hash-routed
        experiment on the snapshot are checked without I/O, at a few microseconds each;
        the rest (a sticky or bandit experiment, one that is not running) by the general
        check, which may read the store.
        """
        if len(request.events) > self.settings.max_batch_size:
            raise InvalidInput("events", f"at most {self.settings.max_batch_size} events per batch")
        now = self._clock()
        if table is None:
            table = self.serving.table()
        events: list[Event] = []
        slots: list[int] = []
        rejected: dict[int, str] = {}
        for index, item in enumerate(request.events):
            try:
                compiled, probability = self._check_log_target(
                    item.experiment_id, item.user_id, item.variant_name, table
                )
                experiment = compiled.experiment
                if item.kind == "value" and item.value is None:
                    raise InvalidInput(f"events.{index}.value", "required for a value event")
                if item.kind != "value" and item.value is not None:
                    raise InvalidInput(f"events.{index}.value", f"not allowed for {item.kind}")
                if item.covariate is not None and item.kind != "exposure":
                    raise InvalidInput(
                        f"events.{index}.covariate",
                        f"only exposure events carry a covariate, not {item.kind} events",
                    )
                covariate, named = item.covariate, None
                if item.covariates:
                    if item.kind != "exposure":
                        raise InvalidInput(
                            f"events.{index}.covariates",
                            f"only exposure events carry covariates, not {item.kind} events",
                        )
                    covariate, named = split_covariates(
                        compiled.metrics, experiment.id, covariate, item.covariates,
                        f"events.{index}.",
                    )  # fmt: skip
                at = now
                if item.timestamp is not None:
                    at = self._event_time(
                        experiment, item.timestamp, f"events.{index}.timestamp", now
                    )
                metric, denominator = item.metric, item.denominator
                if metric is not None or denominator is not None:  # else the primary's
                    metric, denominator = event_metric(
                        compiled.metrics, experiment.id, metric, item.kind, denominator,
                        f"events.{index}.",
                    )  # fmt: skip
                increments = None
                if metric is not None:
                    increments = quantile_increments(
                        compiled.metrics.get(metric), experiment.id, experiment.phase,
                        item.user_id, item.value, f"events.{index}.value",
                    )  # fmt: skip
                event = Event.trusted(
                    experiment.id, experiment.phase, item.user_id, item.variant_name, item.kind,
                    item.value, probability, at if at.tzinfo else at.replace(tzinfo=UTC),
                    item.event_id, metric, denominator, covariate, increments, named,
                )  # fmt: skip
            except (NotFound, Conflict, InvalidInput) as error:
                rejected[index] = error.message
                continue
            events.append(event)
            slots.append(index)
        return CheckedBatch(len(request.events), events, slots, rejected)

    # --- the checks ----------------------------------------------------------------------

    def _check_log_target(
        self,
        experiment_id: str,
        user_id: str,
        variant_name: str,
        table: RoutingTable | None = None,
    ) -> tuple[CompiledExperiment, float]:
        """The experiment and the assignment probability of an event, once it is checked
        against the user's assignment; ``table`` is the snapshot to check it on (a batch
        passes the one it read once), else the current one."""
        if table is None:
            table = self.serving.table()
        compiled = table.by_id.get(experiment_id)
        if compiled is None:
            status = self.store.get_experiment(experiment_id).status  # NotFound if absent
            raise Conflict(
                f"experiment {experiment_id} is {status.value}; events are accepted only while"
                " it is running or paused"
            )
        experiment = compiled.experiment
        if compiled.pure:
            return compiled, self._hashed_probability(compiled, user_id, variant_name)
        if variant_name not in compiled.answers:
            raise Conflict(f"{variant_name!r} is not a variant of {experiment_id}")
        if experiment.sticky:
            stored = self.store.get_assignment(experiment.id, STICKY_PHASE, user_id)
            if stored is not None:
                if stored != variant_name:
                    raise Conflict(
                        f"user {user_id} is assigned {stored} in {experiment_id},"
                        f" not {variant_name}"
                    )
                return compiled, self.serving.assignment_probability(
                    compiled, user_id, variant_name
                )
        if experiment.allocation == "fixed":
            assigned = compiled.router.choose(user_id)
            if assigned != variant_name:
                where = assigned or "no variant (not in the experiment's traffic)"
                raise Conflict(
                    f"user {user_id} is assigned {where} in {experiment_id}, not {variant_name}"
                )
        # Bandit assignments are random per request: the first exposure decides, and the
        # store refuses a later event for another variant.
        return compiled, self.serving.assignment_probability(compiled, user_id, variant_name)

    @staticmethod
    def _hashed_probability(compiled: CompiledExperiment, user_id: str, variant_name: str) -> float:
        """:meth:`_check_log_target` of a hash-routed experiment (``compiled.pure``): no I/O."""
        if variant_name not in compiled.answers:
            raise Conflict(f"{variant_name!r} is not a variant of {compiled.experiment.id}")
        assigned = compiled.router.choose(user_id)
        if assigned != variant_name:
            where = assigned or "no variant (not in the experiment's traffic)"
            raise Conflict(
                f"user {user_id} is assigned {where} in {compiled.experiment.id},"
                f" not {variant_name}"
            )
        if user_id in compiled.experiment.forced_variants:
            return 1.0
        return compiled.probability[variant_name]

    def _event_time(
        self,
        experiment: Experiment,
        timestamp: datetime | None,
        field: str,
        now: datetime | None = None,
    ) -> datetime:
        """When the event happened: ``timestamp`` (naive means UTC) or now.

        A time after now plus ``max_clock_skew_seconds``, or before the experiment was
        created, is refused: it cannot be the time of a real exposure or conversion, and
        far-future stamps would otherwise sit in the hourly series for good.
        """
        current = now or self._clock()
        if timestamp is None:
            return current
        at = timestamp if timestamp.utcoffset() is not None else timestamp.replace(tzinfo=UTC)
        skew = timedelta(seconds=self.settings.max_clock_skew_seconds)
        try:
            late = at - current > skew
        except OverflowError:  # pragma: no cover - aware datetimes subtract exactly
            late = True
        if late:
            raise InvalidInput(
                field,
                f"{at.isoformat()} is more than {skew.total_seconds():g} s in the future"
                f" (the service's clock says {current.isoformat()})",
            )
        created = experiment.created_at
        if created.utcoffset() is None:
            created = created.replace(tzinfo=UTC)
        if at < created:
            raise InvalidInput(
                field,
                f"{at.isoformat()} is before the experiment was created"
                f" ({experiment.created_at.isoformat()})",
            )
        return at

    def _event(
        self,
        experiment: Experiment,
        user_id: str,
        variant: str,
        kind: EventKind,
        probability: float,
        at: datetime,
        value: float | None,
        event_id: str | None,
        metric: str | None = None,
        denominator: float | None = None,
        quantile: dict[str, int] | None = None,
    ) -> Event:
        """The event of a validated request's fields (``LogRequest`` or ``BatchEvent``),
        checked against ``experiment`` already: built without validating them again."""
        aware = at if at.tzinfo else at.replace(tzinfo=UTC)
        return Event.trusted(
            experiment.id, experiment.phase, user_id, variant, kind, value, probability, aware,
            event_id, metric, denominator, None, quantile,
        )  # fmt: skip
