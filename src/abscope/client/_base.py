"""The state both clients keep, and the decisions they make without I/O."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from abscope.assignment._validate import check_user_id
from abscope.client._config import LocalConfig, parse_config
from abscope.client._decisions import (
    Decision,
    fallback_decision,
    server_decisions,
)
from abscope.client._events import (
    ClientStats,
    EventQueue,
    Item,
    check_covariate,
    judge_batch,
    outcome_event,
)
from abscope.client._http import Options, describe_failure

__all__ = ["ClientState"]

_log = logging.getLogger("abscope.client")


class ClientState:
    """The cached configuration, the event queue, the counters and the server's health.

    After a failed call to the server, calls that need it fall back at once for
    ``retry_seconds`` (one caller pays the timeout, not every request).
    """

    def __init__(self, options: Options, monotonic: Callable[[], float] = time.monotonic):
        self.options = options
        self.stats = ClientStats()
        self.queue = EventQueue(options.max_queue, self.stats)
        self.batch_size = options.batch_size  # halved when the server finds a batch too large
        self.config = LocalConfig()
        self.has_config = False
        self._monotonic = monotonic
        self._down_until = -float("inf")
        self._warned: set[str] = set()
        self.ask: Callable[[str, str, bool, str | None, float | None], Decision | None] = _no_answer

    def counters(self) -> ClientStats:
        """The counters, ``queued`` brought up to date (it is read off the queue)."""
        self.stats.queued = self.queue.queued
        return self.stats

    # --- the server's health -------------------------------------------------------------

    def server_usable(self) -> bool:
        return self._monotonic() >= self._down_until

    def server_failed(self, error: str) -> None:
        self._down_until = self._monotonic() + self.options.retry_seconds
        self.warn_once("server", f"the abscope server failed ({error}); serving fallbacks")

    def server_answered(self) -> None:
        if self._down_until != -float("inf"):
            self._down_until = -float("inf")
            self._warned.discard("server")
            _log.info("the abscope server answers again")

    def warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _log.warning("%s", message)

    # --- configuration -------------------------------------------------------------------

    def config_answered(self, status: int, body: bytes, etag: str | None) -> None:
        """Take a ``/sdk/config`` answer (a 304 keeps the current configuration). Without
        local evaluation the configuration is never kept, so nothing is decided locally."""
        if not self.options.local_evaluation:
            return
        if status == 304:
            self.stats.config_refreshes += 1
            return
        if status != 200:
            self.stats.config_errors += 1
            self.warn_once(f"config-{status}", f"/sdk/config answered {status}")
            return
        try:
            self.config = parse_config(body, etag, self.queue.seen)
        except ValueError as error:
            self.stats.config_errors += 1
            self.warn_once("config-format", str(error))
            return
        self.has_config = True
        self.stats.config_refreshes += 1

    def config_headers(self) -> dict[str, str]:
        etag = self.config.etag
        return {"If-None-Match": etag} if etag and self.has_config else {}

    # --- decisions -----------------------------------------------------------------------

    def local(
        self,
        user_id: str,
        experiment_id: str,
        expose: bool = True,
        default: str | None = None,
        covariate: float | None = None,
    ) -> Decision | None:
        """The decision when it can be made in-process, else what :attr:`ask` gives (the
        sync client's asks the server; by default None).

        See :mod:`abscope.client._decisions` for the table of decisions. The request path
        of every local decision: one dict lookup, the router, and for a new user one
        exposure queued; the decision itself was built with the configuration. The sync
        client uses this method as its ``route``, so that a local decision costs no other
        Python call.

        ``covariate`` (checked first: an invalid one is the caller's bug, answered with a
        fallback) rides on the exposure this call queues; a user whose exposure was queued
        already keeps the one sent.
        """
        if covariate is not None:
            try:
                covariate = check_covariate(covariate)
            except ValueError as error:
                return self.fallback(experiment_id, str(error), default)
        experiment = self.config.experiments.get(experiment_id)
        if experiment is None:  # unknown, or local evaluation is off (no configuration)
            return self.ask(user_id, experiment_id, expose, default, covariate)
        if experiment.served is not None:
            return experiment.served
        router = experiment.router
        if router is None:  # sticky or bandit: the server decides
            return self.ask(user_id, experiment_id, expose, default, covariate)
        try:
            variant = router.choose(user_id)
        except ValueError as error:  # an invalid user id: the caller's bug, not an outage
            return self.fallback(experiment_id, str(error), default)
        if variant is None:
            return experiment.outside
        if not expose:
            return experiment.not_requested[variant]
        seen = experiment.seen
        if user_id in seen:
            return experiment.already_queued[variant]
        if covariate is None:
            self.queue.expose(seen, experiment.tags[variant], user_id)
        else:
            self.queue.expose_with_covariate(seen, experiment.tags[variant], user_id, covariate)
        return experiment.queued[variant]

    def local_all(self, user_id: str, expose: bool) -> list[Decision] | None:
        """Every running experiment the user is in, when all are routed in-process."""
        if not self.options.local_evaluation or not self.has_config:
            return None
        running = self.config.running
        if any(e.router is None for e in running):
            return None
        decisions = []
        for experiment in running:
            decision = self.local(user_id, experiment.id, expose)
            if decision is None:
                return None
            if decision.in_experiment or decision.fallback:
                decisions.append(decision)
        return decisions

    def before_asking(self, user_id: str, where: str, default: str | None) -> Decision | None:
        """The fallback when the server must not be asked (an invalid user id, or a server
        that failed within ``retry_seconds``), else None."""
        try:
            check_user_id(user_id)
        except ValueError as error:
            return self.fallback(where, str(error), default)
        if not self.server_usable():
            return self.fallback(where, "the server failed recently", default)
        return None

    def asking_failed(self, error: Exception, where: str, default: str | None) -> Decision:
        """The fallback for a ``/route`` call that got no usable answer."""
        message = describe_failure(error) if isinstance(error, httpx.HTTPError) else str(error)
        self.server_failed(message)
        return self.fallback(where, message, default)

    def fallback(self, experiment_id: str, error: str, default: str | None) -> Decision:
        self.stats.fallbacks += 1
        return fallback_decision(self.config, experiment_id, error, default)

    def route_body(self, user_id: str, experiment_id: str | None, expose: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"user_id": user_id, "expose": expose}
        if experiment_id is not None:
            body["experiment_id"] = experiment_id
        return body

    def answered_route(
        self, status: int, body: Any, experiment_id: str | None, default: str | None
    ) -> list[Decision]:
        """The decisions of a ``/route`` answer, or a fallback."""
        where = experiment_id or "*"
        if status >= 500:
            self.server_failed(f"/route answered {status}")
            return [self.fallback(where, f"the server answered {status}", default)]
        if status != 200:
            detail = body.get("detail") if isinstance(body, dict) else None
            return [self.fallback(where, f"the server answered {status}: {detail}", default)]
        self.server_answered()
        try:
            decisions = server_decisions(body)
        except ValueError as error:
            return [self.fallback(where, str(error), default)]
        self.stats.server_decisions += len(decisions)
        return decisions

    # --- events --------------------------------------------------------------------------

    def track(
        self,
        experiment_id: str,
        user_id: str,
        variant_name: str,
        converted: bool,
        value: float | None,
        event_id: str | None,
        metric: str | None = None,
        denominator: float | None = None,
    ) -> bool:
        """Queue a conversion or a value (checked first); True when a batch is full."""
        event = outcome_event(
            experiment_id,
            user_id,
            variant_name,
            converted=converted,
            value=value,
            event_id=event_id,
            at=time.time(),
            metric=metric,
            denominator=denominator,
        )
        self.queue.put(event)
        return len(self.queue) >= self.batch_size

    def batch_answered(self, events: list[Item], status: int | None, body: Any) -> bool:
        """Account for the answer to a batch (``status`` None: no answer); False when the
        whole batch must be sent again later (it is put back)."""
        verdict = judge_batch(events, status, body, self.stats)
        if verdict.action == "refused":
            self.warn_once(f"events-{status}", f"/events refused a batch: {verdict.error}")
        if verdict.action == "retry":
            self.stats.retries += 1
            self.queue.put_back(events)
            return False
        if verdict.smaller:
            self.batch_size = max(1, self.batch_size // 2)
        if verdict.again:
            self.queue.put_back(verdict.again)
        return True

    @staticmethod
    def needs_backfill(decisions: list[Decision], covariate: float | None) -> bool:
        """Whether a server-made decision recorded an exposure whose covariate must follow
        (``/route`` takes none: it goes to ``POST /experiments/{id}/covariates``)."""
        return (
            covariate is not None
            and len(decisions) == 1
            and decisions[0].source == "server"
            and decisions[0].exposure == "recorded"
        )

    def backfill_failed(self, error: str) -> None:
        self.stats.covariate_errors += 1
        self.warn_once("covariates", f"a covariate could not be sent ({error})")

    def config_failed(self, error: httpx.HTTPError) -> None:
        self.stats.config_errors += 1
        self.warn_once(
            "config", f"cannot fetch the routing configuration: {describe_failure(error)}"
        )

    def closed(self) -> None:
        """Count what is still queued once the client has closed as lost."""
        left = len(self.queue)
        if left:
            self.stats.lost += left
            _log.warning("abscope client closed with %d events unsent", left)


def _no_answer(
    user_id: str, experiment_id: str, expose: bool, default: str | None, covariate: float | None
) -> None:
    """The default :attr:`ClientState.ask`: no decision without the server."""
    return None
