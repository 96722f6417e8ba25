"""The bodies of ``/route``, ``/log`` and ``/events``: one function each, run by the FastAPI
route and by the fast path (:mod:`abscope.api.fast_path`) alike, so the two answer byte for
byte alike.

``/route`` and ``/log`` check the request on the event loop when that needs no I/O (hash
routing on a usable snapshot), else in the thread pool, and commit their events with those
of concurrent requests (:class:`abscope.api.group_commit.GroupCommit`) before they answer.
``/events`` checks its batch likewise (a thread-pool hand-off would not free the loop
anyway: the check holds the interpreter), writes it in one store call on the store's
asyncio client, and writes its answer from fragments that ``BatchResult`` serialised once,
not from a model per event.

Each counts its events in the app's :class:`~abscope.api.metrics.Metrics` (when metrics are
on): by kind and outcome, rejected ones and those the store could not take included.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from abscope.api.group_commit import GroupCommit
from abscope.api.metrics import Metrics
from abscope.errors import Conflict, InvalidInput, NotFound, StorageUnavailable
from abscope.models import Event, EventKind
from abscope.schemas import BatchRequest, BatchResult, LogRequest, LogResponse, RouteRequest
from abscope.service import Traffic, batch_result
from abscope.serving import Serving
from abscope.storage.base import EventResult

__all__ = ["batch_json", "events_body", "log_body", "record_exposures", "route_body"]

_log = logging.getLogger("abscope.api")

_LOG_ANSWERS = {
    (status, exposure, conversion): LogResponse(
        status=status, new_exposure=exposure, new_conversion=conversion
    )
    .model_dump_json()
    .encode()
    for status in ("counted", "duplicate")
    for exposure in (False, True)
    for conversion in (False, True)
}


async def record_exposures(
    serving: Serving, events: list[Event], metrics: Metrics | None = None
) -> list[str | None] | None:
    """``Serving.record_exposures_async``, for the exposures' group commit: a bug there is
    logged, and its requests are answered as if the store were down (never a 500)."""
    try:
        recorded = await serving.record_exposures_async(events)
    except Exception:
        _log.exception("recording %d exposures failed", len(events))
        recorded = None
    if metrics is not None:
        metrics.exposures(events, recorded)
    return recorded


async def route_body(
    serving: Serving, exposures: GroupCommit[str | None], request: RouteRequest
) -> bytes:
    """The ``/route`` answer, its exposures committed first. The errors of
    ``Serving.plan`` pass through."""
    plan = serving.plan_without_io(request.user_id, request.experiment_id, request.expose)
    if plan is None:
        plan = await run_in_threadpool(
            serving.plan, request.user_id, request.experiment_id, request.expose
        )
    recorded: list[str | None] | None = []
    if plan.exposures:
        recorded = await exposures.record(plan.exposures)
    return serving.answer(plan, recorded)


async def log_body(
    traffic: Traffic,
    events: GroupCommit[EventResult],
    request: LogRequest,
    metrics: Metrics | None = None,
) -> bytes:
    """The ``/log`` answer, its events committed first. The use case's errors pass through:
    ``Conflict`` or ``InvalidInput`` before anything is written, ``StorageUnavailable``
    when none of the call's events was applied."""
    try:
        checked = traffic.log_events_without_io(request)
        if checked is None:
            checked = await run_in_threadpool(traffic.log_events, request)
    except (NotFound, Conflict, InvalidInput):
        if metrics is not None:
            metrics.rejected("log", _log_kinds(request))
        raise
    try:
        results: Sequence[EventResult] | None = await events.record(checked)
    except StorageUnavailable:
        if metrics is not None:
            metrics.unavailable("log", checked)
        raise
    assert results is not None  # the store's write answers for every event
    if metrics is not None:
        metrics.stored("log", checked, results)
    if any(r.outcome == "variant_mismatch" for r in results):  # reads the first exposure
        answer = await run_in_threadpool(traffic.log_outcome, request, checked, list(results))
    else:
        answer = traffic.log_outcome(request, checked, list(results))
    return _LOG_ANSWERS[(answer.status, answer.new_exposure, answer.new_conversion)]


def _log_kinds(request: LogRequest) -> list[EventKind]:
    kinds: list[EventKind] = ["conversion" if request.converted else "exposure"]
    return [*kinds, "value"] if request.value is not None else kinds


async def events_body(
    traffic: Traffic, request: BatchRequest, metrics: Metrics | None = None
) -> bytes:
    """The ``/events`` answer, its valid events applied in one store call first."""
    try:
        batch = traffic.check_batch_without_io(request)
        if batch is None:
            batch = await run_in_threadpool(traffic.check_batch, request)
    except (InvalidInput, StorageUnavailable) as error:  # the whole batch: too large, no snapshot
        if metrics is not None:
            outcome = "rejected" if isinstance(error, InvalidInput) else "unavailable"
            metrics.refused("events", [item.kind for item in request.events], outcome)
        raise
    if metrics is not None and batch.rejected:
        metrics.rejected("events", [request.events[index].kind for index in batch.rejected])
    try:
        stored = await traffic.store.record_events_async(batch.events) if batch.events else []
    except StorageUnavailable:
        if metrics is not None:
            metrics.unavailable("events", batch.events)
        raise
    if metrics is not None:
        metrics.stored("events", batch.events, stored)
    return batch_json(batch.outcomes(stored))


_FRAGMENTS: dict[EventResult, bytes] = {}


def _fragment(result: EventResult) -> bytes:
    fragment = _FRAGMENTS.get(result)
    if fragment is None:  # a dozen kinds at most
        fragment = _FRAGMENTS[result] = batch_result(result).model_dump_json().encode()
    return fragment


def batch_json(outcomes: Sequence[EventResult | str]) -> bytes:
    """``BatchResponse(...).model_dump_json()`` of these outcomes (a store result, or a
    rejection's message), byte for byte, at a fraction of its cost per event."""
    parts: list[bytes] = []
    counted = duplicates = rejected = unavailable = 0
    for outcome in outcomes:
        if isinstance(outcome, str):
            parts.append(BatchResult(status="rejected", error=outcome).model_dump_json().encode())
            rejected += 1
            continue
        parts.append(_fragment(outcome))
        status = outcome.outcome
        if status == "counted":
            counted += 1
        elif status == "duplicate":
            duplicates += 1
        elif status == "unavailable":
            unavailable += 1
        else:
            rejected += 1
    return b'{"results":[%s],"counted":%d,"duplicates":%d,"rejected":%d,"unavailable":%d}' % (
        b",".join(parts),
        counted,
        duplicates,
        rejected,
        unavailable,
    )
