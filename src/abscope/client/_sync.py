"""``Client``: the SDK for threaded code (a Flask, Django or plain WSGI model server)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx

from abscope.client._base import ClientState
from abscope.client._decisions import Decision
from abscope.client._errors import ClientError, ServerUnavailable
from abscope.client._events import Backoff, ClientStats, wire
from abscope.client._http import DEFAULT_TIMEOUT, Call, Options, calls, decode, describe_failure

__all__ = ["Client"]

_log = logging.getLogger("abscope.client")
_JSON = {"Content-Type": "application/json"}


class Client:
    """An abscope client: local decisions, background exposures, the management API.

    Parameters
    ----------
    url : str, optional
        The service, e.g. ``http://127.0.0.1:8000``; ``ABSCOPE_URL`` when not given.
    api_key : str, optional
        Sent as ``X-API-Key``; ``ABSCOPE_API_KEY`` when not given. Routing and events need
        the ingest key (or the admin key); reads the read key; changes the admin key.
    timeout : float, default 2
        Seconds for every HTTP call.
    local_evaluation : bool, default True
        Decide hash-routed experiments in-process from the cached configuration; False
        asks the server for every decision.
    refresh_interval : float, default 10
        Seconds between configuration refreshes (a 304 while nothing changed).
    flush_interval : float, default 0.5
        Seconds an event waits at most before it is sent (a full batch goes at once).
    batch_size : int, default 500
        Events per ``/events`` call.
    max_queue : int, default 100000
        Events held while the server cannot take them; beyond it the oldest are dropped
        and counted in ``stats.dropped``.
    close_timeout : float, default 5
        Seconds :meth:`close` spends sending what is left.
    retry_seconds : float, default 2
        After a failed call, decisions that need the server fall back at once for this long.
    transport : httpx.BaseTransport, optional
        For tests and custom networking.
    start : bool, default True
        Fetch the routing configuration and start the background thread now. False for a
        client used only for management calls (the ``abscope experiments`` commands).

    Notes
    -----
    :meth:`route` never raises and never waits on a server that just failed: when the
    server must be asked (sticky and bandit experiments, an experiment created since the
    last refresh) and cannot answer, it returns the control with ``fallback`` true.
    A background thread refreshes the configuration and sends the events; :meth:`close`
    (or leaving the ``with`` block) flushes them.

    Examples
    --------
    ::

        with Client("http://127.0.0.1:8000", api_key=INGEST_KEY) as abscope:
            decision = abscope.route("user-42", "ranker-v2")
            model = models[decision.model_id]
            ...
            abscope.track("ranker-v2", "user-42", decision.variant_name, converted=True)
    """

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
        transport: httpx.BaseTransport | None = None,
        start: bool = True,
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
        # A local decision is one call: the state's ``local`` is this client's ``route``,
        # and asks the server through ``_ask_one`` when it must (one Python frame less per
        # decision: 10% of its time, measured by benchmarks/sdk.py).
        self._state.ask = self._ask_one
        self.route = self._state.local  # type: ignore[method-assign, assignment]
        self._http = httpx.Client(
            base_url=self.options.url,
            headers=self.options.headers(),
            timeout=self.options.timeout,
            transport=transport,
        )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        if start and self.options.local_evaluation:
            self.refresh()
        if start:
            self._thread = threading.Thread(target=self._run, name="abscope-client", daemon=True)
            self._thread.start()

    # --- context manager -----------------------------------------------------------------

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def stats(self) -> ClientStats:
        """The client's counters (decisions, events, drops, retries)."""
        return self._state.counters()

    # --- routing -------------------------------------------------------------------------

    def route(
        self,
        user_id: str,
        experiment_id: str,
        *,
        expose: bool = True,
        default: str | None = None,
        covariate: float | None = None,
    ) -> Decision:
        """The variant and model to serve ``user_id`` in ``experiment_id``; never raises.

        ``expose`` queues the user's exposure (once per user and phase). ``default`` is the
        variant to fall back to for an experiment this client has never seen.

        ``covariate`` is the user's pre-exposure covariate for CUPED (the same metric over a
        period before the experiment, say): a finite number, sent with the exposure this
        call queues (batched like every event). A decision the server makes (sticky
        experiments, one this client has not seen) records the exposure itself, so the
        covariate follows it to ``POST /experiments/{id}/covariates`` (a failure is logged
        and counted in ``stats.covariate_errors``, never raised). Only a user's first
        exposure carries it: for users exposed already, use :meth:`set_covariates`. An
        invalid covariate gives a fallback decision with the error, like an invalid user id.
        """
        decision = self._state.local(user_id, experiment_id, expose, default, covariate)
        assert decision is not None  # the sync client's state always asks the server
        return decision  # (an instance's route is the state's local itself: see __init__)

    def _ask_one(
        self,
        user_id: str,
        experiment_id: str,
        expose: bool,
        default: str | None,
        covariate: float | None = None,
    ) -> Decision:
        return self._ask(user_id, experiment_id, expose, default, covariate)[0]

    def route_all(self, user_id: str, *, expose: bool = True) -> list[Decision]:
        """The user's decision in every running experiment they are in (``/route``
        without an experiment id); never raises (a fallback is one decision with
        ``experiment_id`` ``"*"``)."""
        decisions = self._state.local_all(user_id, expose)
        if decisions is not None:
            return decisions
        return self._ask(user_id, None, expose, None)

    def _ask(
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
            response = self._http.post(
                "/route", json=state.route_body(user_id, experiment_id, expose)
            )
            body = response.json() if response.content else None
        except (httpx.HTTPError, ValueError) as error:
            return [state.asking_failed(error, where, default)]
        decisions = state.answered_route(response.status_code, body, experiment_id, default)
        if experiment_id is not None and covariate is not None:
            if state.needs_backfill(decisions, covariate):
                try:
                    self.set_covariates(experiment_id, [(user_id, covariate)])
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
        """Queue a conversion (``converted=True``) or a value; sent in the background.

        Give ``event_id`` (an order id, say) to make the caller's own retries count once;
        without one the client makes one, so its own retries count once.

        ``metric`` names a metric the experiment declares (a conversion for a binary
        metric, a value for a mean or ratio one); without it the event is the primary
        metric's. ``denominator`` is a ratio metric's denominator increment (1 when not
        given: ``track(..., metric="latency_ms", value=elapsed_ms)`` per request gives
        latency per request). An event the server finds unfit for its metric is rejected
        alone and counted in ``stats.rejected``.

        Raises
        ------
        ValueError
            A field is invalid (nothing is queued): a bad event never costs the others.
        """
        full = self._state.track(
            experiment_id, user_id, variant_name, converted, value, event_id, metric, denominator
        )
        if full:
            self._wake.set()

    def flush(self, timeout: float | None = None) -> bool:
        """Send every queued event now; True when the queue is empty at the end."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.options.timeout)
        backoff = Backoff(random.Random().random)
        while len(self._state.queue) and time.monotonic() < deadline:
            if not self._send_one():
                time.sleep(min(backoff.next_delay(), max(0.0, deadline - time.monotonic())))
        return len(self._state.queue) == 0

    def close(self) -> None:
        """Stop the background thread, send what is left (for ``close_timeout`` seconds),
        and close the connections. Events still unsent are counted in ``stats.lost``."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self.flush(self.options.close_timeout)
        self._state.closed()
        self._http.close()

    def refresh(self) -> bool:
        """Fetch the routing configuration now; True when the server answered."""
        state = self._state
        try:
            response = self._http.get("/sdk/config", headers=state.config_headers())
        except httpx.HTTPError as error:
            state.config_failed(error)
            return False
        state.config_answered(response.status_code, response.content, response.headers.get("ETag"))
        return response.status_code in (200, 304)

    def _send_one(self) -> bool:
        """Send one batch; False when it must be sent again later (it is put back)."""
        state = self._state
        events = state.queue.take(state.batch_size)
        if not events:
            return True
        try:
            response = self._http.post("/events", content=wire(events), headers=_JSON)
            status: int | None = response.status_code
            body: Any = response.json() if response.content else None
        except (httpx.HTTPError, ValueError):
            status, body = None, None
        return state.batch_answered(events, status, body)

    def _run(self) -> None:
        backoff = Backoff(random.Random().random)
        next_refresh = time.monotonic() + self.options.refresh_interval
        while not self._stop.is_set():
            self._wake.wait(self.options.flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            if self.options.local_evaluation and time.monotonic() >= next_refresh:
                self.refresh()
                next_refresh = time.monotonic() + self.options.refresh_interval
            while len(self._state.queue) and not self._stop.is_set():
                if self._send_one():
                    backoff.reset()
                    continue
                self._stop.wait(backoff.next_delay())
                break

    # --- management ----------------------------------------------------------------------

    def _call(self, call: Call) -> Any:
        try:
            response = self._http.request(
                call.method, call.path, json=call.json, params=call.params or None
            )
        except httpx.HTTPError as error:
            raise ServerUnavailable(describe_failure(error)) from None
        return decode(call, response)

    def list_experiments(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every experiment (or those in ``status``)."""
        return list(self._call(calls.list_experiments(status))["experiments"])

    def get_experiment(self, experiment_id: str) -> dict[str, Any]:
        return dict(self._call(calls.get_experiment(experiment_id)))

    def create_experiment(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Create a draft from a ``POST /experiments`` body."""
        return dict(self._call(calls.create_experiment(spec)))

    def update_experiment(self, experiment_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call(calls.update_experiment(experiment_id, changes)))

    def delete_experiment(self, experiment_id: str) -> None:
        self._call(calls.delete_experiment(experiment_id))

    def add_metric(self, experiment_id: str, metric: dict[str, Any]) -> dict[str, Any]:
        """Declare a secondary or guardrail metric (a ``POST /experiments/{id}/metrics``
        body); the experiment as it is now."""
        return dict(self._call(calls.add_metric(experiment_id, metric)))

    def transition(
        self, experiment_id: str, action: str, winner: str | None = None
    ) -> dict[str, Any]:
        """``start``, ``pause``, ``resume``, ``complete`` (with ``winner``) or ``stop``."""
        return dict(self._call(calls.transition(experiment_id, action, winner)))

    def results(self, experiment_id: str, phase: int | None = None) -> dict[str, Any]:
        return dict(self._call(calls.results(experiment_id, phase)))

    def gate(self, experiment_id: str) -> dict[str, Any]:
        """The deployment gate's answer (``verdict``: pass, fail or inconclusive, with its
        reasons), whatever the verdict (``GET /experiments/{id}/gate?report=true``)."""
        return dict(self._call(calls.gate(experiment_id)))

    def timeseries(self, experiment_id: str, phase: int | None = None) -> dict[str, Any]:
        return dict(self._call(calls.timeseries(experiment_id, phase)))

    def set_covariates(
        self,
        experiment_id: str,
        covariates: Mapping[str, float] | Iterable[tuple[str, float]],
    ) -> dict[str, Any]:
        """Backfill the pre-exposure covariates (CUPED) of users already exposed in the
        experiment's current phase (``POST /experiments/{id}/covariates``), ``{user_id:
        value}`` or ``(user_id, value)`` pairs, at most the server's batch size a call.

        The answer counts ``set``, ``unchanged`` (the same value again: a retry is safe),
        ``conflicts`` (another value: the first is kept) and ``not_exposed``, with a result
        per user.
        """
        return dict(self._call(calls.set_covariates(experiment_id, covariates)))

    def simulate(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Run the bandit simulator (``POST /charts/simulate``)."""
        return dict(self._call(calls.simulate(spec)))
