"""``AsyncClient``: the SDK for asyncio code (a FastAPI or aiohttp model server).

Local decisions are plain computation (a SHA-256 or two); every network call is awaited
with the client's timeout, and the configuration refresh and the event batches run in a
background task, so the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx

from abscope.client._base import ClientState
from abscope.client._decisions import Decision
from abscope.client._errors import ClientError, ServerUnavailable
from abscope.client._events import Backoff, ClientStats, wire
from abscope.client._http import DEFAULT_TIMEOUT, Call, Options, calls, decode, describe_failure

__all__ = ["AsyncClient"]

_log = logging.getLogger("abscope.client")
_JSON = {"Content-Type": "application/json"}


class AsyncClient:
    """The asyncio form of :class:`abscope.client.Client`: the same parameters, decisions
    and counters; ``route``, ``route_all``, ``flush``, ``refresh``, ``aclose`` and the
    management calls are coroutines. Use it as ``async with AsyncClient(...) as client``
    (or call :meth:`start`), so the first configuration is fetched and the background task
    started inside the running loop."""

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        local_evaluation: bool = True,
        refresh_interval: float = 10.0,
        flush_interval: float = 0.5,
        batch_size: int = 500,
        max_queue: int = 100_000,
        close_timeout: float = 5.0,
        retry_seconds: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.options = Options.make(
            url,
            api_key,
            timeout=timeout,
            local_evaluation=local_evaluation,
            refresh_interval=refresh_interval,
            flush_interval=flush_interval,
            batch_size=batch_size,
            max_queue=max_queue,
            close_timeout=close_timeout,
            retry_seconds=retry_seconds,
        )
        self._state = ClientState(self.options)
        self._local = self._state.local
        self._http = httpx.AsyncClient(
            base_url=self.options.url,
            headers=self.options.headers(),
            timeout=self.options.timeout,
            transport=transport,
        )
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def __aenter__(self) -> AsyncClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def stats(self) -> ClientStats:
        return self._state.counters()

    async def start(self) -> None:
        """Fetch the configuration (waiting at most ``timeout``) and start the background
        task; a server that cannot be reached only means fallbacks until it can."""
        if self._task is not None:
            return
        self._wake = asyncio.Event()
        if self.options.local_evaluation:
            await self.refresh()
        self._task = asyncio.create_task(self._run(), name="abscope-client")

    # --- routing -------------------------------------------------------------------------

    async def route(
        self,
        user_id: str,
        experiment_id: str,
        *,
        expose: bool = True,
        default: str | None = None,
        covariate: float | None = None,
    ) -> Decision:
        """See :meth:`abscope.client.Client.route` (``covariate`` included); never raises."""
        decision = self._local(user_id, experiment_id, expose, default, covariate)
        if decision is not None:
            return decision
        return (await self._ask(user_id, experiment_id, expose, default, covariate))[0]

    def route_locally(
        self,
        user_id: str,
        experiment_id: str,
        *,
        expose: bool = True,
        covariate: float | None = None,
    ) -> Decision | None:
        """The decision when it needs no I/O (a hash-routed experiment), else None: for
        code that must not await. ``covariate`` rides on the exposure queued, as in
        :meth:`route`."""
        return self._state.local(user_id, experiment_id, expose, None, covariate)

    async def route_all(self, user_id: str, *, expose: bool = True) -> list[Decision]:
        decisions = self._state.local_all(user_id, expose)
        if decisions is not None:
            return decisions
        return await self._ask(user_id, None, expose, None)

    async def _ask(
        self,
        user_id: str,
        experiment_id: str | None,
        expose: bool,
        default: str | None,
        covariate: float | None = None,
    ) -> list[Decision]:
        state = self._state
        where = experiment_id or "*"
        refused = state.before_asking(user_id, where, default)
        if refused is not None:
            return [refused]
        try:
            response = await self._http.post(
                "/route", json=state.route_body(user_id, experiment_id, expose)
            )
            body = response.json() if response.content else None
        except (httpx.HTTPError, ValueError) as error:
            return [state.asking_failed(error, where, default)]
        decisions = state.answered_route(response.status_code, body, experiment_id, default)
        if experiment_id is not None and covariate is not None:
            if state.needs_backfill(decisions, covariate):
                try:
                    await self.set_covariates(experiment_id, [(user_id, covariate)])
                except ClientError as error:
                    state.backfill_failed(str(error))
        return decisions

    # --- events --------------------------------------------------------------------------

    def track(
        self,
        experiment_id: str,
        user_id: str,
        variant_name: str,
        *,
        converted: bool = False,
        value: float | None = None,
        event_id: str | None = None,
        metric: str | None = None,
        denominator: float | None = None,
    ) -> None:
        """See :meth:`abscope.client.Client.track` (not a coroutine: it only queues)."""
        full = self._state.track(
            experiment_id, user_id, variant_name, converted, value, event_id, metric, denominator
        )
        if full and self._wake is not None:
            self._wake.set()

    async def flush(self, timeout: float | None = None) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout if timeout is not None else self.options.timeout)
        backoff = Backoff(random.Random().random)
        while len(self._state.queue) and loop.time() < deadline:
            if not await self._send_one():
                await asyncio.sleep(min(backoff.next_delay(), max(0.0, deadline - loop.time())))
        return len(self._state.queue) == 0

    async def aclose(self) -> None:
        """Stop the background task, send what is left, close the connections."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush(self.options.close_timeout)
        self._state.closed()
        await self._http.aclose()

    async def refresh(self) -> bool:
        state = self._state
        try:
            response = await self._http.get("/sdk/config", headers=state.config_headers())
        except httpx.HTTPError as error:
            state.config_failed(error)
            return False
        state.config_answered(response.status_code, response.content, response.headers.get("ETag"))
        return response.status_code in (200, 304)

    async def _send_one(self) -> bool:
        state = self._state
        events = state.queue.take(state.batch_size)
        if not events:
            return True
        try:
            response = await self._http.post("/events", content=wire(events), headers=_JSON)
            status: int | None = response.status_code
            body: Any = response.json() if response.content else None
        except (httpx.HTTPError, ValueError):
            status, body = None, None
        return state.batch_answered(events, status, body)

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        backoff = Backoff(random.Random().random)
        next_refresh = loop.time() + self.options.refresh_interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.options.flush_interval)
            self._wake.clear()
            if self.options.local_evaluation and loop.time() >= next_refresh:
                await self.refresh()
                next_refresh = loop.time() + self.options.refresh_interval
            while len(self._state.queue):
                if await self._send_one():
                    backoff.reset()
                    continue
                await asyncio.sleep(backoff.next_delay())
                break

    # --- management ----------------------------------------------------------------------

    async def _call(self, call: Call) -> Any:
        try:
            response = await self._http.request(
                call.method, call.path, json=call.json, params=call.params or None
            )
        except httpx.HTTPError as error:
            raise ServerUnavailable(describe_failure(error)) from None
        return decode(call, response)

    async def list_experiments(self, status: str | None = None) -> list[dict[str, Any]]:
        return list((await self._call(calls.list_experiments(status)))["experiments"])

    async def get_experiment(self, experiment_id: str) -> dict[str, Any]:
        return dict(await self._call(calls.get_experiment(experiment_id)))

    async def create_experiment(self, spec: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._call(calls.create_experiment(spec)))

    async def update_experiment(
        self, experiment_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        return dict(await self._call(calls.update_experiment(experiment_id, changes)))

    async def delete_experiment(self, experiment_id: str) -> None:
        await self._call(calls.delete_experiment(experiment_id))

    async def add_metric(self, experiment_id: str, metric: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._call(calls.add_metric(experiment_id, metric)))

    async def transition(
        self, experiment_id: str, action: str, winner: str | None = None
    ) -> dict[str, Any]:
        return dict(await self._call(calls.transition(experiment_id, action, winner)))

    async def results(self, experiment_id: str, phase: int | None = None) -> dict[str, Any]:
        return dict(await self._call(calls.results(experiment_id, phase)))

    async def gate(self, experiment_id: str) -> dict[str, Any]:
        """The deployment gate's answer (``verdict``: pass, fail or inconclusive, with its
        reasons), whatever the verdict (``GET /experiments/{id}/gate?report=true``)."""
        return dict(await self._call(calls.gate(experiment_id)))

    async def timeseries(self, experiment_id: str, phase: int | None = None) -> dict[str, Any]:
        return dict(await self._call(calls.timeseries(experiment_id, phase)))

    async def set_covariates(
        self,
        experiment_id: str,
        covariates: Mapping[str, float] | Iterable[tuple[str, float]],
    ) -> dict[str, Any]:
        """See :meth:`abscope.client.Client.set_covariates`."""
        return dict(await self._call(calls.set_covariates(experiment_id, covariates)))

    async def simulate(self, spec: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._call(calls.simulate(spec)))
