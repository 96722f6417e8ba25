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
import json
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
    "check_covariate",
    "covariate_exposure",
    "exposure_id",
    "judge_batch",
    "outcome_event",
    "wire",
]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")
_EVENT_ID = re.compile(r"^[A-Za-z0-9._:@/+=~-]{1,128}\Z")
_PLAIN_USER = re.compile(r"^[A-Za-z0-9._:@/+=~-]{1,100}\Z")
_MAX_VALUE = 1e12
_MAX_USER_ID = 256
DEDUP_SIZE = 200_000
"""Users remembered per experiment and phase; the set is emptied when it is full."""


@dataclass(slots=True)
class ClientStats:
    """Counters of one client since it was made.

    ``queued``: events put in the queue; ``sent``: events the server answered for;
    ``counted``, ``duplicates``, ``rejected``: its answers (a rejected event contradicts the
    server, e.g. a variant the user is not assigned); ``dropped``: the oldest events pushed
    out of a full queue; ``failed``: events of batches the server refused as a whole (a
    4xx: a wrong key, say); ``lost``: events still unsent when the client closed;
    ``retries``: batches sent again; ``server_decisions``: decisions the server made (sticky
    and bandit experiments, unknown ids); ``fallbacks``: decisions that fell back to the
    control; ``covariate_errors``: covariates of server-made decisions that could not be
    backfilled (:meth:`abscope.client.Client.route`). Local decisions are not counted: they
    cost no I/O, and a counter would cost a tenth of their time.
    """

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
    covariate_errors: int = 0


def exposure_id(experiment_id: str, phase: int, user_id: str) -> str:
    """The exposure's event id: the same in every process for the same user and phase.

    Event ids are scoped to their experiment on the server, so the id is the phase and the
    user id (``sdk-x:<phase>:<user>``) when the user id is made of the characters an event
    id allows, else a digest of it (``sdk-xh:<phase>:<sha256 prefix>``). Ids that start
    with ``sdk-`` are the SDK's: don't give your own events such ids.

    >>> exposure_id("ranker", 0, "alice")
    'sdk-x:0:alice'
    >>> exposure_id("ranker", 1, "Zoë Dupont")
    'sdk-xh:1:d48eb6ae71056784367d3f6b5c2200ab3505e3a2'
    """
    if _PLAIN_USER.match(user_id):
        return f"sdk-x:{phase}:{user_id}"
    return f"sdk-xh:{phase}:" + hashlib.sha256(user_id.encode()).hexdigest()[:40]


def outcome_event(
    experiment_id: str,
    user_id: str,
    variant_name: str,
    *,
    converted: bool,
    value: float | None,
    event_id: str | None,
    at: float,
    metric: str | None = None,
    denominator: float | None = None,
) -> bytes:
    """A conversion or value event as its JSON, checked as the server checks it, so that
    one bad event never makes the server refuse a whole batch.

    ``metric`` names the declared metric it counts for (the primary's without one);
    ``denominator`` is a ratio metric's denominator increment for a value (the server
    takes 1 without one). Whether the metric is declared, and of a fitting kind, only the
    server knows: it rejects that one event otherwise (``stats.rejected``).

    Raises
    ------
    ValueError
        A field is invalid; the message names it.
    """
    if not isinstance(experiment_id, str) or not _SLUG.match(experiment_id):
        raise ValueError(f"experiment_id must be a slug ({_SLUG.pattern}), got {experiment_id!r}")
    if not isinstance(variant_name, str) or not _SLUG.match(variant_name):
        raise ValueError(f"variant_name must be a slug ({_SLUG.pattern}), got {variant_name!r}")
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
    if metric is not None and (not isinstance(metric, str) or not _SLUG.match(metric)):
        raise ValueError(f"metric must be a slug ({_SLUG.pattern}), got {metric!r}")
    if denominator is not None:
        if isinstance(denominator, bool) or not isinstance(denominator, int | float):
            raise ValueError(f"denominator must be a number, got {denominator!r}")
        if not math.isfinite(denominator) or abs(denominator) > _MAX_VALUE:
            raise ValueError(f"denominator must be finite and within ±1e12, got {denominator!r}")
        if value is None or metric is None:
            raise ValueError(
                "denominator goes with a value of a ratio metric: give value= and metric="
            )
    event: dict[str, Any] = {
        "experiment_id": experiment_id,
        "user_id": user_id,
        "variant_name": variant_name,
        "kind": "value" if value is not None else "conversion",
        "event_id": event_id,
        "timestamp": _stamp(at),
    }
    if value is not None:
        event["value"] = value
    if metric is not None:
        event["metric"] = metric
    if denominator is not None:
        event["denominator"] = denominator
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def check_covariate(covariate: object) -> float:
    """A pre-exposure covariate as the server takes it: a finite number within ±1e12.

    >>> check_covariate(17.5), check_covariate(3)
    (17.5, 3.0)

    Raises
    ------
    ValueError
        It is not such a number; the message names ``covariate``.
    """
    if isinstance(covariate, bool) or not isinstance(covariate, int | float):
        raise ValueError(f"covariate must be a number, got {covariate!r}")
    value = float(covariate)
    if not math.isfinite(value) or abs(value) > _MAX_VALUE:
        raise ValueError(f"covariate must be finite and within ±1e12, got {covariate!r}")
    return value


def covariate_exposure(tag: Tag, user_id: str, at: float, covariate: float) -> bytes:
    """An exposure event carrying the user's pre-exposure ``covariate`` (CUPED), as its
    JSON: the event :func:`wire` makes of ``(tag, user_id, at)`` (the same deterministic
    id), with ``"covariate"`` added. Encoded when queued: such events are few."""
    experiment_id, phase, variant_name = tag
    event = {
        "experiment_id": experiment_id,
        "user_id": user_id,
        "variant_name": variant_name,
        "kind": "exposure",
        "event_id": exposure_id(experiment_id, phase, user_id),
        "timestamp": _stamp(at),
        "covariate": covariate,
    }
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


Tag = tuple[str, int, str]
"""An exposure's experiment, phase and variant: one tuple per variant, built once."""

Item = tuple[Tag, str, float] | bytes
"""A queued event: an exposure as (tag, user, unix time), encoded when it is sent (off the
caller's path); a conversion or value already encoded."""


class EventQueue:
    """A bounded FIFO of events to send, safe to share between threads.

    Exposures are deduplicated per (experiment, phase) over its last 200,000 users, so a
    returning user costs no queue space. Queueing an exposure is a set lookup, a set add
    and a deque append, each atomic under the GIL, so callers take no lock; the queue's
    bound is enforced (and drops counted) under a lock, only once it is exceeded. Two
    threads routing the same new user at once may both queue the exposure: it has one id,
    so the server counts it once. The event's JSON and id are made by the sender.
    """

    def __init__(self, max_size: int, stats: ClientStats) -> None:
        if max_size < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_size}")
        self.max_size = max_size
        self.stats = stats
        self._events: deque[Item] = deque()
        self._seen: dict[tuple[str, int], set[str]] = {}
        self._lock = threading.Lock()
        self._taken = 0  # net of the events put back

    def __len__(self) -> int:
        return len(self._events)

    @property
    def queued(self) -> int:
        """Events queued so far (counted from the queue's own state, so that queueing costs
        no counter): those waiting, those taken for sending, and those dropped."""
        return len(self._events) + self._taken + self.stats.dropped

    def seen(self, key: tuple[str, int]) -> set[str]:
        """The users whose exposure in ``key`` (experiment, phase) was queued: kept here, so
        that a new configuration (a refresh) keeps them."""
        seen = self._seen.get(key)
        if seen is None:
            seen = self._seen.setdefault(key, set())
        return seen

    def expose(self, seen: set[str], tag: Tag, user_id: str) -> None:
        """Queue the exposure of a user who is not in ``seen`` (the :meth:`seen` set of the
        tag's experiment and phase; the caller checked it)."""
        if len(seen) >= DEDUP_SIZE:
            seen.clear()
        seen.add(user_id)
        events = self._events
        events.append((tag, user_id, _now()))
        if len(events) > self.max_size:
            self.shed()

    def expose_with_covariate(
        self, seen: set[str], tag: Tag, user_id: str, covariate: float
    ) -> None:
        """:meth:`expose` for an exposure that carries a (checked) covariate."""
        if len(seen) >= DEDUP_SIZE:
            seen.clear()
        seen.add(user_id)
        self.put(covariate_exposure(tag, user_id, _now(), covariate))

    def put(self, event: bytes) -> None:
        self._events.append(event)
        if len(self._events) > self.max_size:
            self.shed()

    def shed(self) -> None:
        """Drop the oldest events over the bound, counting them."""
        with self._lock:
            events = self._events
            while len(events) > self.max_size:
                events.popleft()
                self.stats.dropped += 1

    def take(self, n: int) -> list[Item]:
        """Up to ``n`` of the oldest events, removed from the queue (one taker at a time)."""
        with self._lock:
            events = self._events
            count = min(n, len(events))
            self._taken += count
            return [events.popleft() for _ in range(count)]

    def put_back(self, events: Sequence[Item]) -> None:
        """Return unsent events to the front, oldest first (dropping the oldest over the
        bound, as :meth:`put` does)."""
        with self._lock:
            room = self.max_size - len(self._events)
            keep = list(events)[-room:] if room > 0 else []
            self._taken -= len(events)
            self.stats.dropped += len(events) - len(keep)
            self._events.extendleft(reversed(keep))


_now = time.time
_ISO: dict[int, str] = {}


def _iso(second: int) -> str:
    """ISO 8601 of a unix second (UTC) without its offset, ``2026-12-01T14:03:07``, cached:
    a batch's events share a few seconds."""
    text = _ISO.get(second)
    if text is None:
        if len(_ISO) > 4096:
            _ISO.clear()
        text = _ISO[second] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text


def _stamp(at: float) -> str:
    """ISO 8601 (UTC) of a unix time, to the millisecond."""
    second = int(at)
    return f"{_iso(second)}.{int((at - second) * 1000):03d}+00:00"


_quote = json.encoder.encode_basestring  # C: text to a JSON string


def wire(events: Sequence[Item]) -> bytes:
    """The ``/events`` body of queued events (an exposure's JSON and id are made here).

    The experiment and the variant are slugs, and a plain user id (the characters of an
    event id) needs no escaping; any other user id goes through the JSON encoder.
    """
    parts: list[bytes] = []
    append = parts.append
    plain = _PLAIN_USER.match
    for item in events:
        if isinstance(item, bytes):
            append(item)
            continue
        (experiment_id, phase, variant_name), user_id, at = item
        second = int(at)  # the stamp keeps the milliseconds: an exposure in the second an
        # experiment was created must not come out before it (the server refuses that)
        stamp = f"{_ISO.get(second) or _iso(second)}.{int((at - second) * 1000):03d}+00:00"
        if plain(user_id):
            user, event_id = f'"{user_id}"', f"sdk-x:{phase}:{user_id}"
        else:
            user, event_id = _quote(user_id), exposure_id(experiment_id, phase, user_id)
        append(
            f'{{"experiment_id":"{experiment_id}","user_id":{user},'
            f'"variant_name":"{variant_name}","kind":"exposure",'
            f'"event_id":"{event_id}","timestamp":"{stamp}"}}'.encode()
        )
    return b'{"events":[' + b",".join(parts) + b"]}"


@dataclass(frozen=True, slots=True)
class BatchVerdict:
    """What to do after sending a batch: ``retry`` it all, ``done`` (with ``again``, the
    events to send again, and ``smaller``: the batch was too large), or ``refused``."""

    action: Literal["done", "retry", "refused"]
    again: tuple[Item, ...] = ()
    smaller: bool = False
    error: str | None = None


def judge_batch(
    events: Sequence[Item], status: int | None, body: Any, stats: ClientStats
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
        unavailable = int(body.get("unavailable", 0))
        counted, duplicates = int(body["counted"]), int(body["duplicates"])
    except (KeyError, TypeError, ValueError):
        return BatchVerdict("retry", error="an answer that is not a batch result")
    if not unavailable:  # the usual answer: its totals say it all
        stats.sent += len(events)
        stats.counted += counted
        stats.duplicates += duplicates
        stats.rejected += len(events) - counted - duplicates
        return BatchVerdict("done")
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
