"""Signed webhook notices, delivered in the background with retries.

A notice is a JSON object POSTed to one URL. With a secret, each attempt carries

* ``X-Abscope-Timestamp``: the attempt's Unix time in whole seconds, and
* ``X-Abscope-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed by the secret, of
  ``timestamp + "." + body`` (the body's exact bytes),

so a receiver checks that the notice is ours and recent (the README has a snippet), as
Stripe and GitHub sign theirs. ``X-Abscope-Delivery`` is the notice's id, the same on every
attempt, for a receiver that wants to ignore a repeat.

:meth:`WebhookSender.send` only queues the notice and returns at once: one background
thread delivers the queue in order. An attempt that fails (no connection, a timeout, a 5xx,
408 or 429) is retried after an exponential backoff with full jitter (a uniform draw
between 0 and ``base_delay · 2^k``, at most ``max_delay``), up to ``attempts`` attempts in
all; another 4xx is the receiver refusing and is not retried. A notice that could not be
delivered is logged and dropped. Nothing here raises into the caller.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

__all__ = [
    "DELIVERY_HEADER",
    "Delivery",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookSender",
    "sign",
    "verify",
]

SIGNATURE_HEADER: Final = "X-Abscope-Signature"
TIMESTAMP_HEADER: Final = "X-Abscope-Timestamp"
DELIVERY_HEADER: Final = "X-Abscope-Delivery"
_RETRIED_STATUSES: Final = frozenset({408, 429})
_QUEUE_LIMIT: Final = 1000

_log = logging.getLogger("abscope.webhooks")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` + hex HMAC-SHA256 of ``timestamp.body``.

    Examples
    --------
    >>> sign("s3cret", "1700000000", b'{"a":1}')[:15]
    'sha256=1698a50b'
    """
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance: float = 300.0,
) -> bool:
    """Whether ``signature`` signs ``timestamp.body`` with ``secret`` and the timestamp is
    within ``tolerance`` seconds of ``now`` (the receiver's side, as in the README)."""
    if not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one notice went: its id, the attempts made and the last status (or error)."""

    id: str
    attempts: int
    delivered: bool
    status: int | None
    error: str | None


class WebhookSender:
    """Delivers notices to ``url`` from a background thread, with retries.

    Parameters
    ----------
    url
        The receiver.
    secret
        The HMAC key; ``None`` sends the notices unsigned.
    attempts
        Attempts per notice, the first included (at least 1).
    base_delay, max_delay
        The backoff: before retry ``k`` (from 0) a uniform draw in
        ``[0, min(max_delay, base_delay · 2^k)]`` seconds.
    timeout
        Seconds each attempt may take.
    rng
        The jitter's randomness (seed it in tests).
    on_delivery
        Called with each notice's :class:`Delivery` once it is settled (tests, metrics).
    transport
        An httpx transport (tests); the default opens real connections.
    """

    def __init__(
        self,
        url: str,
        secret: str | None = None,
        *,
        attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        timeout: float = 5.0,
        rng: random.Random | None = None,
        on_delivery: Callable[[Delivery], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts!r}")
        if not (base_delay >= 0 and max_delay >= 0 and timeout > 0):
            raise ValueError("base_delay and max_delay must be >= 0 and timeout > 0")
        self.url = url
        self._secret = secret
        self._attempts = attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._timeout = timeout
        self._rng = rng or random.Random()
        self._on_delivery = on_delivery
        self._transport = transport
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(_QUEUE_LIMIT)
        self._closed = False
        self._abort = threading.Event()  # cuts the backoff waits short at shutdown
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def send(self, payload: Mapping[str, Any]) -> str | None:
        """Queue ``payload`` for delivery and return its delivery id at once (``None`` when
        the sender is closed or its queue is full: the notice is logged and dropped)."""
        delivery_id = str(uuid.uuid4())
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
        with self._lock:
            if self._closed:
                _log.warning("webhook sender is closed; notice %s dropped", delivery_id)
                return None
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="abscope-webhooks", daemon=True
                )
                self._thread.start()
            try:
                self._queue.put_nowait((delivery_id, body))
            except queue.Full:
                _log.error("webhook queue is full; notice %s dropped", delivery_id)
                return None
        return delivery_id

    def close(self, timeout: float = 5.0) -> None:
        """Stop: the notices queued are tried for at most ``timeout`` seconds more (backoff
        waits are cut short), then the thread ends."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        with contextlib.suppress(queue.Full):  # after the notices queued (send refuses more)
            self._queue.put(None, timeout=timeout)
        thread.join(timeout)
        self._abort.set()
        thread.join(self._timeout + 1.0)

    # --- the delivery thread -----------------------------------------------------------

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout, transport=self._transport) as client:
            while True:
                item = self._queue.get()
                if item is None:  # close() queued the end
                    return
                delivery_id, body = item
                if self._abort.is_set():
                    _log.error("webhook sender closed; notice %s not delivered", delivery_id)
                    continue
                try:
                    delivery = self._deliver(client, delivery_id, body)
                except Exception:  # never let the thread die on one notice
                    _log.exception("webhook notice %s failed", delivery_id)
                    continue
                if self._on_delivery is not None:
                    self._on_delivery(delivery)

    def _deliver(self, client: httpx.Client, delivery_id: str, body: bytes) -> Delivery:
        status: int | None = None
        error: str | None = None
        for attempt in range(self._attempts):
            if attempt:
                cap = min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
                if self._abort.wait(self._rng.uniform(0.0, cap)):
                    break  # closed while waiting: give up on the retries
            status, error = self._attempt(client, delivery_id, body)
            if status is not None and 200 <= status < 300:
                return Delivery(delivery_id, attempt + 1, True, status, None)
            if status is not None and status < 500 and status not in _RETRIED_STATUSES:
                _log.error("webhook %s refused notice %s: %s", self.url, delivery_id, status)
                return Delivery(delivery_id, attempt + 1, False, status, error)
        else:
            attempt = self._attempts - 1
        _log.error(
            "webhook %s: notice %s not delivered after %d attempts (%s)",
            self.url,
            delivery_id,
            attempt + 1,
            error or status,
        )
        return Delivery(delivery_id, attempt + 1, False, status, error)

    def _attempt(
        self, client: httpx.Client, delivery_id: str, body: bytes
    ) -> tuple[int | None, str | None]:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "abscope-webhooks",
            DELIVERY_HEADER: delivery_id,
            TIMESTAMP_HEADER: timestamp,
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        try:
            response = client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, None
