"""GroupCommit: concurrent requests share store calls, and each gets its own results.

Each test runs its event loop in a thread of its own: the browser tests' sync Playwright
keeps a loop running in the main thread of the test process they ran in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import pytest

from abscope.api.group_commit import GroupCommit
from abscope.errors import StorageUnavailable
from abscope.models import Event

AT = datetime(2026, 12, 1, tzinfo=UTC)
T = TypeVar("T")


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(main())`` on a new loop in a thread of its own."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result(timeout=30)


def _events(request: int, count: int) -> list[Event]:
    return [Event.exposure("exp", 0, f"r{request}-u{i}", "control", 1.0, AT) for i in range(count)]


class _Store:
    """A write that records its calls and answers each event with its user id."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    async def write(self, events: list[Event]) -> Sequence[str]:
        self.calls.append([e.user_id for e in events])
        await asyncio.sleep(0.01)  # a round trip: requests that arrive meanwhile wait
        if self.fail:
            raise StorageUnavailable("down", public="the store could not record events")
        return [e.user_id for e in events]


def test_concurrent_requests_share_calls_and_get_their_own_results() -> None:
    store = _Store()
    commit = GroupCommit(store.write, max_in_flight=1)

    async def main() -> list[list[str] | None]:
        return await asyncio.gather(*(commit.record(_events(r, 1 + r % 3)) for r in range(30)))

    answers = _run(main)
    for request, answer in enumerate(answers):
        assert answer == [e.user_id for e in _events(request, 1 + request % 3)]
    assert len(store.calls) < 30  # batched: all 30 arrive while the first call runs
    assert sorted(u for call in store.calls for u in call) == sorted(
        u for a in answers for u in a or []
    )


def test_a_batch_stays_under_its_limit_unless_one_request_is_larger() -> None:
    store = _Store()
    commit = GroupCommit(store.write, max_batch=5, max_in_flight=1)

    async def main() -> None:
        await asyncio.gather(*(commit.record(_events(r, 2)) for r in range(10)),
                             commit.record(_events(99, 12)))  # fmt: skip

    _run(main)
    assert all(len(call) <= 5 or len(call) == 12 for call in store.calls)
    assert sum(len(call) for call in store.calls) == 32


def test_a_failed_call_fails_every_request_it_held_and_the_next_ones_still_run() -> None:
    store = _Store(fail=True)
    commit = GroupCommit(store.write, max_in_flight=1)

    async def main() -> list[object]:
        first = await asyncio.gather(
            *(commit.record(_events(r, 1)) for r in range(5)), return_exceptions=True
        )
        store.fail = False
        return [*first, await commit.record(_events(7, 1))]

    outcomes = _run(main)
    assert all(isinstance(o, StorageUnavailable) for o in outcomes[:5])
    assert outcomes[5] == ["r7-u0"]


def test_none_from_the_store_reaches_every_request() -> None:
    async def write(events: list[Event]) -> None:
        return None

    commit: GroupCommit[str] = GroupCommit(write)

    async def main() -> list[list[str] | None]:
        return await asyncio.gather(*(commit.record(_events(r, 1)) for r in range(4)))

    assert _run(main) == [None] * 4


@pytest.mark.parametrize("in_flight", [1, 4])
def test_a_new_event_loop_starts_afresh(in_flight: int) -> None:
    store = _Store()
    commit = GroupCommit(store.write, max_in_flight=in_flight)
    for loop_run in range(3):  # each asyncio.run is a new loop, as each test client makes
        assert _run(partial(commit.record, _events(loop_run, 1))) == [f"r{loop_run}-u0"]
