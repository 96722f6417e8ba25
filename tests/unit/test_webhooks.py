"""Webhook notices against a real HTTP receiver: the signature, the retries with backoff,
what is not retried, and a close that never hangs."""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from abscope.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Delivery,
    WebhookSender,
    sign,
    verify,
)
from tests.fixtures.webhook_receiver import Receiver

SECRET = "whsec-test-0123456789"
PAYLOAD = {"type": "guardrail_breach", "experiment_id": "ranker", "estimate": 0.2}


README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_verifier() -> Callable[[str, str, bytes, str], bool]:
    """The receiver's check exactly as the README gives it (its Python block)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    (block,) = [b for b in blocks if "def verify_abscope_signature" in b]
    namespace: dict[str, Any] = {}
    exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    check: Callable[[str, str, bytes, str], bool] = namespace["verify_abscope_signature"]
    return check


_check = _readme_verifier()


def _sender(url: str, **options: object) -> tuple[WebhookSender, list[Delivery]]:
    settled: list[Delivery] = []
    options.setdefault("base_delay", 0.05)
    sender = WebhookSender(
        url,
        SECRET,
        rng=random.Random(7),
        on_delivery=settled.append,
        **options,  # type: ignore[arg-type]
    )
    return sender, settled


def _settled(settled: list[Delivery], count: int = 1) -> list[Delivery]:
    deadline = time.monotonic() + 30
    while len(settled) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return settled


def test_a_notice_is_posted_signed_and_returns_at_once() -> None:
    with Receiver() as receiver:
        sender, settled = _sender(receiver.url)
        delivery_id = sender.send(PAYLOAD)
        (delivery,) = _settled(settled)
        sender.close()
    (got,) = receiver.received
    assert got.json() == PAYLOAD
    assert delivery == Delivery(delivery_id or "", 1, True, 200, None)
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers[DELIVERY_HEADER] == delivery_id
    timestamp, signature = got.headers[TIMESTAMP_HEADER], got.headers[SIGNATURE_HEADER]
    assert abs(int(timestamp) - time.time()) < 60
    assert _check(SECRET, timestamp, got.body, signature)
    assert verify(SECRET, timestamp, got.body, signature)
    assert not _check("another-secret-xyz", timestamp, got.body, signature)
    assert not verify(SECRET, timestamp, got.body + b" ", signature)
    assert not verify(SECRET, str(int(timestamp) - 3600), got.body, signature)  # too old


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers() -> None:
    with Receiver(statuses=[500, 503]) as receiver:
        sender, settled = _sender(receiver.url, base_delay=0.2)
        sender.send(PAYLOAD)
        (delivery,) = _settled(settled)
        sender.close()
    assert delivery.delivered and delivery.attempts == 3 and delivery.status == 200
    statuses = [r.status for r in receiver.received]
    assert statuses == [500, 503, 200]
    ids = {r.headers[DELIVERY_HEADER] for r in receiver.received}
    assert ids == {delivery.id}  # one notice, the same id on each attempt
    for r in receiver.received:  # each attempt signed with its own timestamp
        assert _check(SECRET, r.headers[TIMESTAMP_HEADER], r.body, r.headers[SIGNATURE_HEADER])
    # Full jitter: the waits are the seeded uniform draws in [0, 0.2] and [0, 0.4].
    draws = random.Random(7)
    expected = [draws.uniform(0, 0.2), draws.uniform(0, 0.4)]
    gaps = [b.at - a.at for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    for gap, wait in zip(gaps, expected, strict=True):
        assert gap >= wait


def test_a_refusal_is_not_retried_and_attempts_are_bounded() -> None:
    with Receiver(statuses=[403]) as receiver:
        sender, settled = _sender(receiver.url)
        sender.send(PAYLOAD)
        (refused,) = _settled(settled)
        sender.close()
    assert (refused.delivered, refused.attempts, refused.status) == (False, 1, 403)
    with Receiver(statuses=[500] * 10) as receiver:
        sender, settled = _sender(receiver.url, attempts=4, base_delay=0.01)
        sender.send(PAYLOAD)
        (failed,) = _settled(settled)
        sender.close()
    assert (failed.delivered, failed.attempts, failed.status) == (False, 4, 500)
    assert len(receiver.received) == 4


def test_an_unreachable_receiver_gives_up_and_close_does_not_hang() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender, settled = _sender(f"http://127.0.0.1:{port}/", attempts=3, base_delay=0.01)
    sender.send(PAYLOAD)
    (delivery,) = _settled(settled)
    assert not delivery.delivered and delivery.attempts == 3
    assert delivery.status is None and delivery.error is not None
    slow, _ = _sender(f"http://127.0.0.1:{port}/", attempts=5, base_delay=30.0)
    slow.send(PAYLOAD)
    started = time.monotonic()
    slow.close(timeout=0.2)  # cuts the 30 s backoff short
    assert time.monotonic() - started < 10
    assert slow.send(PAYLOAD) is None  # closed: refused, not raised


def test_sign_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"a":1}'
    expected = hmac.new(b"k" * 20, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("k" * 20, "1700000000", body) == f"sha256={expected}"


def test_invalid_options_name_the_argument() -> None:
    with pytest.raises(ValueError, match="attempts"):
        WebhookSender("http://127.0.0.1:1/", attempts=0)
