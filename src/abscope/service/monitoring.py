"""The guardrail monitor: judge every running experiment's guardrails, and act on a breach.

:meth:`Monitor.run_once` is one look. It first takes (or renews) the store's lease
:data:`MONITOR_LEASE` for three intervals, so among the workers sharing a store exactly
one acts at a time, and a worker that dies is replaced once its lease expires; a worker
that does not hold the lease does nothing. The holder then reads, for each running
experiment with guardrails, its counts and metric counts in the current phase and judges
every guardrail for every treatment arm with
:func:`abscope.metric_analysis.guardrail_checks` (the results page and the gate judge them
there too, so the three never disagree):

``non_inferior`` / ``inconclusive``
    reported, never acted on: with fewer users per arm than the guardrail's
    ``min_samples`` (or the ``guardrail_min_samples`` setting) the verdict is
    "inconclusive: too little data", not an error;
``breach``
    acted on once per (phase, metric, variant): an audit entry ``guardrail_breach`` with
    the metric, the variant, the relative effect, its always-valid interval, the margin,
    the breach p-value, the action and the worker that acted (``holder``); with the action
    ``pause`` the experiment moves from running to paused in the same save (the normal
    transition, ``"by": "monitor"`` in its audit entry), so routing sends everyone to the
    control; with ``alert`` it keeps running. Then a webhook notice per breach, if a
    sender is configured.

A breach already recorded for the phase is not acted on again: a person who resumes an
experiment the monitor paused has seen the breach, and a new phase (new weights) starts
the judgement afresh.

The save is a compare-and-set on the version that was judged: if anyone changed the
experiment meanwhile, the monitor reads it again and judges it again (at most
:data:`SAVE_ATTEMPTS` times), or leaves it alone when it is no longer running. Store
errors are reported per experiment; nothing here raises into the loop that calls it.
:class:`MonitorLoop` runs the looks in the background of an asyncio app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal, Protocol

from abscope.config import Settings
from abscope.errors import AbscopeError, Conflict, NotFound, StorageUnavailable
from abscope.metric_analysis import guardrail_checks
from abscope.models import BreachAction, Experiment, Status
from abscope.service._clock import Clock, utc_now
from abscope.service._quantile_reads import quantile_counters
from abscope.service.experiments import Experiments
from abscope.stats.decision_rule import GuardrailCheck
from abscope.stats.guardrails import GuardrailVerdict
from abscope.storage.base import Store

__all__ = [
    "BREACH_ACTION",
    "ExperimentOutcome",
    "ExperimentReport",
    "GuardrailLook",
    "MONITOR_ACTOR",
    "MONITOR_LEASE",
    "Monitor",
    "MonitorLoop",
    "MonitorReport",
    "Notifier",
    "SAVE_ATTEMPTS",
    "Taken",
    "breaches_recorded",
]

MONITOR_LEASE: Final = "monitor"
"""The store lease whose holder is the one monitor that acts."""
MONITOR_ACTOR: Final = "monitor"
"""Who the monitor's transitions are ``by`` in the audit."""
BREACH_ACTION: Final = "guardrail_breach"
"""The audit action of a breach."""
SAVE_ATTEMPTS: Final = 3
"""Judgements of one experiment in one look when saves conflict."""
LEASE_INTERVALS: Final = 3
"""The lease lasts this many intervals, so a missed renewal or two does not lose it."""

Taken = Literal["none", "paused", "alerted", "reported_before"]
"""What a look did about one guardrail of one arm: nothing (not a breach), paused the
experiment, recorded an alert, or nothing because the breach was recorded before."""
ExperimentOutcome = Literal["watched", "paused", "alerted", "skipped", "conflict", "failed"]
"""What a look did about one experiment: nothing new to act on; paused it; recorded
alerts only; left it (it stopped running, or was deleted, while judged); gave up after
:data:`SAVE_ATTEMPTS` conflicting saves; or could not read or save it (``error``)."""

_log = logging.getLogger("abscope.monitor")


class Notifier(Protocol):
    """Sends a breach notice without blocking for long (:class:`abscope.webhooks.WebhookSender`)."""

    def send(self, payload: Mapping[str, Any]) -> object: ...


@dataclass(frozen=True, slots=True)
class GuardrailLook:
    """One guardrail of one treatment arm at one look."""

    metric: str
    variant: str
    verdict: GuardrailVerdict
    reason: str | None
    summary: str
    estimate: float | None
    interval: tuple[float, float] | None
    margin: float
    p_value: float | None
    """The always-valid p-value of "within the margin" (small: a breach)."""
    n_control: int
    n_treatment: int
    action: BreachAction
    taken: Taken


@dataclass(frozen=True, slots=True)
class ExperimentReport:
    """One experiment at one look: its guardrails' verdicts and what was done."""

    experiment_id: str
    phase: int
    status: Status
    """The status after the look."""
    outcome: ExperimentOutcome
    looks: tuple[GuardrailLook, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class MonitorReport:
    """One :meth:`Monitor.run_once`: whether this worker held the lease, and what it saw."""

    at: datetime
    holder: str
    leader: bool
    experiments: tuple[ExperimentReport, ...] = field(default_factory=tuple)
    error: str | None = None

    @property
    def paused(self) -> list[str]:
        """Ids of the experiments this look paused."""
        return [e.experiment_id for e in self.experiments if e.outcome == "paused"]

    def experiment(self, experiment_id: str) -> ExperimentReport | None:
        return next((e for e in self.experiments if e.experiment_id == experiment_id), None)


def breaches_recorded(experiment: Experiment) -> set[tuple[str, str]]:
    """The (metric, variant) pairs whose breach is in the audit for the current phase."""
    return {
        (str(entry.changes.get("metric")), str(entry.changes.get("variant")))
        for entry in experiment.audit
        if entry.action == BREACH_ACTION and entry.changes.get("phase") == experiment.phase
    }


def _default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Monitor:
    """The guardrail monitor of one worker. Safe to call from one thread at a time.

    Parameters
    ----------
    store
        Where the experiments, their counts and the lease live.
    experiments
        The experiments' use case, which saves the audit entries and the pause (and
        invalidates this worker's routing snapshot).
    settings
        ``monitor_interval_seconds`` (the lease lasts three of them) and
        ``guardrail_min_samples``.
    clock
        The time of the reports and notices.
    notifier
        Where breach notices go (a webhook), or ``None``.
    holder
        This worker's name on the lease; unique by default (host, pid and a random part).
    """

    def __init__(
        self,
        store: Store,
        experiments: Experiments,
        settings: Settings,
        *,
        clock: Clock = utc_now,
        notifier: Notifier | None = None,
        holder: str | None = None,
    ) -> None:
        self.store = store
        self.holder = holder or _default_holder()
        self._experiments = experiments
        self._min_samples = settings.guardrail_min_samples
        self.lease_ttl = timedelta(seconds=LEASE_INTERVALS * settings.monitor_interval_seconds)
        self._clock = clock
        self._notifier = notifier
        self._held = False

    def run_once(self) -> MonitorReport:
        """One look at every running experiment with guardrails, if this worker holds the
        lease (taken or renewed here); otherwise nothing is read or changed."""
        at = self._clock()
        try:
            self._held = self.store.acquire_lease(MONITOR_LEASE, self.holder, self.lease_ttl)
        except StorageUnavailable as error:
            return MonitorReport(at, self.holder, False, error=str(error))
        if not self._held:
            return MonitorReport(at, self.holder, False)
        try:
            running = self.store.list_experiments(Status.RUNNING)
        except StorageUnavailable as error:
            return MonitorReport(at, self.holder, True, error=str(error))
        reports = tuple(self._watch(e) for e in running if e.guardrails)
        return MonitorReport(at, self.holder, True, reports)

    def close(self) -> None:
        """Give the lease up (if held), so another worker takes over at its next look."""
        if not self._held:
            return
        self._held = False
        with contextlib.suppress(StorageUnavailable):
            self.store.release_lease(MONITOR_LEASE, self.holder)

    # --- one experiment ----------------------------------------------------------------

    def _watch(self, experiment: Experiment) -> ExperimentReport:
        current = experiment
        try:
            for _ in range(SAVE_ATTEMPTS):
                looks, entries, pause = self._judge(current)
                if not entries:
                    return _report(current, "watched", looks)
                try:
                    saved = self._experiments.record(
                        current, entries, action="pause" if pause else None, by=MONITOR_ACTOR
                    )
                except Conflict:  # changed since it was read: read it and judge it again
                    try:
                        current = self.store.get_experiment(current.id)
                    except NotFound:
                        return _report(current, "skipped", looks, "deleted while judged")
                    if current.status != Status.RUNNING:
                        return _report(current, "skipped", looks, f"{current.status} meanwhile")
                    continue
                self._notify(saved, looks)
                for look in looks:
                    if look.taken in ("paused", "alerted"):
                        _log.warning(
                            "guardrail breach in %s, %s of %s: %s (%s)",
                            saved.id, look.metric, look.variant, look.summary, look.taken,
                        )  # fmt: skip
                return _report(saved, "paused" if pause else "alerted", looks)
            return _report(current, "conflict", (), f"changed {SAVE_ATTEMPTS} times while judged")
        except AbscopeError as error:  # StorageUnavailable above all; never into the loop
            _log.error("guardrail monitor: %s: %s", current.id, error)
            return _report(current, "failed", (), str(error))

    def _judge(
        self, experiment: Experiment
    ) -> tuple[tuple[GuardrailLook, ...], list[tuple[str, dict[str, Any]]], bool]:
        """The looks at every guardrail, the audit entries of new breaches, and whether one
        of them pauses."""
        counts = self.store.get_counts(experiment.id, experiment.phase)
        metric_counts = self.store.get_metric_counts(experiment.id, experiment.phase)
        checks = guardrail_checks(
            experiment,
            counts,
            metric_counts,
            default_min_samples=self._min_samples,
            quantile_counters=quantile_counters(self.store, experiment, experiment.phase),
        )
        recorded = breaches_recorded(experiment)
        actions = {m.name: m.breach_action for m in experiment.guardrails}
        pause = any(
            c.result.verdict == "breach"
            and (c.metric, c.arm) not in recorded
            and actions[c.metric] == "pause"
            for c in checks
        )
        looks: list[GuardrailLook] = []
        entries: list[tuple[str, dict[str, Any]]] = []
        for check in checks:
            action = actions[check.metric]
            taken: Taken = "none"
            if check.result.verdict == "breach":
                if (check.metric, check.arm) in recorded:
                    taken = "reported_before"
                else:
                    taken = "paused" if action == "pause" else "alerted"
                    entry = _entry(experiment, check, action) | {"holder": self.holder}
                    entries.append((BREACH_ACTION, entry))
            looks.append(_look(check, action, taken))
        return tuple(looks), entries, pause

    def _notify(self, experiment: Experiment, looks: Sequence[GuardrailLook]) -> None:
        if self._notifier is None:
            return
        at = self._clock().isoformat()
        for look in looks:
            if look.taken not in ("paused", "alerted"):
                continue
            payload = {
                "type": BREACH_ACTION,
                "at": at,
                "experiment_id": experiment.id,
                "experiment_name": experiment.name,
                "phase": experiment.phase,
                "metric": look.metric,
                "variant": look.variant,
                "estimate": look.estimate,
                "interval": None if look.interval is None else list(look.interval),
                "margin": look.margin,
                "p_value": look.p_value,
                "action": look.action,
                "status": experiment.status.value,
                "summary": look.summary,
            }
            try:
                self._notifier.send(payload)
            except Exception:  # a notice is best effort: the pause and the audit are saved
                _log.exception("guardrail monitor: the webhook notice of %s failed", experiment.id)


def _report(
    experiment: Experiment,
    outcome: ExperimentOutcome,
    looks: tuple[GuardrailLook, ...],
    error: str | None = None,
) -> ExperimentReport:
    return ExperimentReport(
        experiment.id, experiment.phase, experiment.status, outcome, looks, error
    )


def _interval(check: GuardrailCheck) -> tuple[float, float] | None:
    interval = check.result.interval
    return None if interval is None else (interval.lower, interval.upper)


def _look(check: GuardrailCheck, action: BreachAction, taken: Taken) -> GuardrailLook:
    r = check.result
    return GuardrailLook(
        metric=check.metric,
        variant=check.arm,
        verdict=r.verdict,
        reason=r.reason,
        summary=r.summary,
        estimate=r.estimate,
        interval=_interval(check),
        margin=r.margin,
        p_value=r.p_breach,
        n_control=r.n_control,
        n_treatment=r.n_treatment,
        action=action,
        taken=taken,
    )


def _entry(experiment: Experiment, check: GuardrailCheck, action: BreachAction) -> dict[str, Any]:
    """The ``guardrail_breach`` audit entry's changes."""
    r = check.result
    interval = _interval(check)
    return {
        "metric": check.metric,
        "variant": check.arm,
        "estimate": r.estimate,
        "interval": None if interval is None else list(interval),
        "margin": r.margin,
        "action": action,
        "p_value": r.p_breach,
        "phase": experiment.phase,
        "n_control": r.n_control,
        "n_treatment": r.n_treatment,
        "summary": r.summary,
    }


class MonitorLoop:
    """Runs :meth:`Monitor.run_once` every ``interval`` seconds in an asyncio task, each
    look in a thread (the store calls block), until :meth:`stop`.

    The first look comes one interval after :meth:`start`. A look that raises is logged
    and the loop goes on.
    """

    def __init__(self, monitor: Monitor, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self.monitor = monitor
        self.interval = interval
        self.looks = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="abscope-monitor")

    async def stop(self) -> None:
        """Stop after the look in progress (if any), and give the lease up."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        await asyncio.to_thread(self.monitor.close)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval)
            if self._stop.is_set():
                return
            try:
                await asyncio.to_thread(self.monitor.run_once)
            except Exception:
                _log.exception("guardrail monitor: a look failed")
            self.looks += 1
