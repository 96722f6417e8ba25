"""The client's outgoing events: a bounded queue, deterministic ids, and what a batch's answer
means. Pure: no I/O (the clients' background senders do the sending).

Every event carries an ``event_id`` fixed when it is queued, so a batch sent again after a
timeout or a server restart is counted once: the server answers ``duplicate`` for the ones
it had applied. An exposure's id is a digest of (experiment, phase, user): the same user's
exposure has the same id in every process, so even two model servers that both route a
user send one exposure between them.

The queue holds at most ``max_size`` events; when it is full the oldest event is dropped and
counted (``dropped``), so a long outage costs memory bounded by ``max_size`` and the newest
events survive.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "Backoff",
    "BatchVerdict",
    "ClientStats",
    "EventQueue",
    "exposure_id",
    "judge_batch",
    "outcome_event",
]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_EVENT_ID = re.compile(r"^[A-Za-z0-9._:@/+=~-]{1,128}$")
_MAX_VALUE = 1e12
_MAX_USER_ID = 256
_DEDUP_SIZE = 200_000


@dataclass(slots=True)
class ClientStats:
    """Counters of one client since it was made.

    ``queued``: events put in the queue; ``sent``: events the server answered for;
    ``counted``, ``duplicates``, ``rejected``: its answers (a rejected event contradicts the
    server, e.g. a variant the user is not assigned); ``dropped``: the oldest events pushed
    out of a full queue; ``failed``: events of batches the server refused as a whole (a
    4xx: a wrong key, say); ``lost``: events still unsent when the client closed;
    ``retries``: batches sent again; ``fallbacks``: decisions that fell back to the control.
    """

    local_decisions: int = 0
    server_decisions: int = 0
    fallbacks: int = 0
    queued: int = 0
    sent: int = 0
    counted: int = 0
    duplicates: int = 0
    rejected: int = 0
    dropped: int = 0
    failed: int = 0
    lost: int = 0
    retries: int = 0
    config_refreshes: int = 0
    config_errors: int = 0


def exposure_id(experiment_id: str, phase: int, user_id: str) -> str:
    """The exposure's event id: the same in every process for the same user and phase.

    >>> exposure_id("ranker", 0, "alice")
    'sdk-x-e65d0a8ca911ed4a2236484b47df1e85ad002137'
    """
    digest = hashlib.sha256(f"{experiment_id}\x00{phase}\x00{user_id}".encode()).hexdigest()
    return "sdk-x-" + digest[:40]


def outcome_event(
    experiment_id: str,
    user_id: str,
    variant_name: str,
    *,
    converted: bool,
    value: float | None,
    event_id: str | None,
    at: float,
) -> dict[str, Any]:
    """A conversion or value event, checked as the server checks it, so that one bad event
    never makes the server refuse a whole batch.

    Raises
    ------
    ValueError
        A field is invalid; the message names it.
    """
    if not isinstance(experiment_id, str) or not _SLUG.match(experiment_id):
        raise ValueError(
            f"experiment_id must be a slug [a-z0-9][a-z0-9_-]{{0,63}}: {experiment_id!r}"
        )
    if not isinstance(variant_name, str) or not _SLUG.match(variant_name):
        raise ValueError(
            f"variant_name must be a slug [a-z0-9][a-z0-9_-]{{0,63}}: {variant_name!r}"
        )
    if not isinstance(user_id, str) or not 0 < len(user_id) <= _MAX_USER_ID:
        raise ValueError(f"user_id must be 1 to {_MAX_USER_ID} characters")
    if event_id is None:
        event_id = "sdk-e-" + uuid.uuid4().hex
    elif not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
        raise ValueError("event_id must be 1 to 128 of A-Z a-z 0-9 . _ : @ / + = ~ -")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"value must be a number, got {value!r}")
        if not math.isfinite(value) or abs(value) > _MAX_VALUE:
            raise ValueError(f"value must be finite and within ±1e12, got {value!r}")
        if converted:
            raise ValueError("send a conversion and a value as two calls")
    elif not converted:
        raise ValueError("nothing to log: give converted=True or a value")
    return {
        "experiment_id": experiment_id,
        "user_id": user_id,
        "variant_name": variant_name,
        "kind": "value" if value is not None else "conversion",
        "value": value,
        "event_id": event_id,
        "timestamp": at,
    }


class EventQueue:
    """A bounded FIFO of events to send, safe to share between threads.

    Exposures are deduplicated per (experiment, phase, user) over the last 200,000 users, so
    a returning user costs no queue space.
    """

    def __init__(self, max_size: int, stats: ClientStats) -> None:
        if max_size < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_size}")
        self.max_size = max_size
        self.stats = stats
        self._events: deque[dict[str, Any]] = deque()
        self._exposed: set[tuple[str, int, str]] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._events)

    def expose(self, experiment_id: str, phase: int, user_id: str, variant_name: str) -> bool:
        """Queue a user's exposure; False when it was queued before (nothing is added)."""
        key = (experiment_id, phase, user_id)
        with self._lock:
            if key in self._exposed:
                return False
            if len(self._exposed) >= _DEDUP_SIZE:
                self._exposed.clear()
            self._exposed.add(key)
            self._put(
                {
                    "experiment_id": experiment_id,
                    "user_id": user_id,
                    "variant_name": variant_name,
                    "kind": "exposure",
                    "event_id": exposure_id(experiment_id, phase, user_id),
                    "timestamp": time.time(),
                }
            )
        return True

    def put(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._put(event)

    def _put(self, event: dict[str, Any]) -> None:
        if len(self._events) >= self.max_size:
            self._events.popleft()
            self.stats.dropped += 1
        self._events.append(event)
        self.stats.queued += 1

    def take(self, n: int) -> list[dict[str, Any]]:
        """Up to ``n`` of the oldest events, removed from the queue."""
        with self._lock:
            count = min(n, len(self._events))
            return [self._events.popleft() for _ in range(count)]

    def put_back(self, events: Sequence[dict[str, Any]]) -> None:
        """Return unsent events to the front, oldest first (dropping the oldest over the
        bound, as :meth:`put` does)."""
        with self._lock:
            room = self.max_size - len(self._events)
            keep = list(events)[-room:] if room > 0 else []
            self.stats.dropped += len(events) - len(keep)
            self._events.extendleft(reversed(keep))


def wire(events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ``/events`` body of queued events (times as ISO 8601, UTC)."""
    out = []
    for event in events:
        item = {k: v for k, v in event.items() if v is not None}
        item["timestamp"] = datetime.fromtimestamp(event["timestamp"], UTC).isoformat()
        out.append(item)
    return {"events": out}


@dataclass(frozen=True, slots=True)
class BatchVerdict:
    """What to do after sending a batch: ``retry`` it all, ``done`` (with ``again``, the
    events to send again, and ``smaller``: the batch was too large), or ``refused``."""

    action: Literal["done", "retry", "refused"]
    again: tuple[dict[str, Any], ...] = ()
    smaller: bool = False
    error: str | None = None


def judge_batch(
    events: Sequence[dict[str, Any]], status: int | None, body: Any, stats: ClientStats
) -> BatchVerdict:
    """Account for the server's answer to a batch (``status`` None: no answer at all)."""
    if status is None or status >= 500 or status == 429:
        return BatchVerdict("retry", error=f"status {status}" if status else "no answer")
    if status == 413:
        return BatchVerdict("done", tuple(events), smaller=True)
    if status != 200:
        stats.failed += len(events)
        detail = body.get("detail") if isinstance(body, dict) else None
        return BatchVerdict("refused", error=f"{status}: {detail}")
    try:
        results = body["results"]
        if len(results) != len(events):
            raise ValueError("one result per event")
    except (KeyError, TypeError, ValueError):
        return BatchVerdict("retry", error="an answer that is not a batch result")
    again = []
    for event, result in zip(events, results, strict=True):
        outcome = result.get("status") if isinstance(result, dict) else None
        if outcome == "unavailable":  # a Redis Cluster node failed: not applied
            again.append(event)
            continue
        stats.sent += 1
        if outcome == "counted":
            stats.counted += 1
        elif outcome == "duplicate":
            stats.duplicates += 1
        else:
            stats.rejected += 1
    return BatchVerdict("done", tuple(again))


class Backoff:
    """Exponential backoff with full jitter: ``uniform(0, min(cap, base * 2**failures))``.

    ``random`` is injected (a ``random.Random``'s method) so tests can fix it.
    """

    def __init__(self, random: Any, base: float = 0.05, cap: float = 5.0) -> None:
        self._random = random
        self.base = base
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        delay = float(self._random()) * min(self.cap, self.base * 2.0**self.failures)
        self.failures = min(self.failures + 1, 30)
        return max(delay, self.base / 2)

    def reset(self) -> None:
        self.failures = 0
