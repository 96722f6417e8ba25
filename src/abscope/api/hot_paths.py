"""The bodies of ``/route`` and ``/log``: one function each, run by the FastAPI route and by
the fast path (:mod:`abscope.api.fast_path`) alike, so the two answer byte for byte alike.

Both check the request on the event loop when that needs no I/O (hash routing on a usable
snapshot), else in the thread pool, and commit their events with those of concurrent
requests (:class:`abscope.api.group_commit.GroupCommit`) before they answer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from abscope.api.group_commit import GroupCommit
from abscope.models import Event
from abscope.schemas import LogRequest, LogResponse, RouteRequest
from abscope.service import ExperimentService
from abscope.serving import Serving
from abscope.storage.base import EventResult

__all__ = ["log_body", "record_exposures", "route_body"]

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


async def record_exposures(serving: Serving, events: list[Event]) -> list[str | None] | None:
    """``Serving.record_exposures_async``, for the exposures' group commit: a bug there is
    logged, and its requests are answered as if the store were down (never a 500)."""
    try:
        return await serving.record_exposures_async(events)
    except Exception:
        _log.exception("recording %d exposures failed", len(events))
        return None


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
    service: ExperimentService, events: GroupCommit[EventResult], request: LogRequest
) -> bytes:
    """The ``/log`` answer, its events committed first. The service's errors pass through:
    ``Conflict`` or ``InvalidInput`` before anything is written, ``StorageUnavailable``
    when none of the call's events was applied."""
    checked = service.log_events_without_io(request)
    if checked is None:
        checked = await run_in_threadpool(service.log_events, request)
    results: Sequence[EventResult] | None = await events.record(checked)
    assert results is not None  # the store's write answers for every event
    if any(r.outcome == "variant_mismatch" for r in results):  # reads the first exposure
        answer = await run_in_threadpool(service.log_outcome, request, checked, list(results))
    else:
        answer = service.log_outcome(request, checked, list(results))
    return _LOG_ANSWERS[(answer.status, answer.new_exposure, answer.new_conversion)]
