"""Leaving an iteration early, however it is left, stops every request and frees every socket."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import pytest

from helicone_users import AsyncHeliconeUsers
from helicone_users.testing import FaultPlan

from .conftest import (
    Served,
    Traffic,
    aiohttp_session,
    assert_pool_closed,
    busy_connections,
    fast_retry,
    no_leaks,
    served,
    settle,
    user_rows,
)

USERS = 400
PAGE_SIZE = 10


@pytest.fixture
async def emulator(traffic: Traffic) -> AsyncIterator[Served]:
    async with served(user_rows(USERS)) as running:
        yield running


@pytest.fixture
async def slow_emulator(traffic: Traffic) -> AsyncIterator[Served]:
    # Every request sleeps server-side, so that requests are in flight when the caller stops.
    plan = FaultPlan(rate=1.0, kinds=("slow",), delay=0.2)
    async with served(user_rows(USERS), faults=plan) as running:
        yield running


def _client(emulator: Served) -> AsyncHeliconeUsers:
    return emulator.client(retry=fast_retry(), max_concurrency=8, timeout=5)


async def _idle(client: AsyncHeliconeUsers) -> None:
    """Wait for cancelled requests to hand their connections back (bounded, never a sleep)."""
    pool = aiohttp_session(client)
    for _ in range(100):
        if busy_connections(pool) == 0:
            return
        await asyncio.sleep(0)
    assert busy_connections(pool) == 0


@pytest.mark.parametrize("after", [1, 15, 205])
async def test_breaking_out_after_n_users_cancels_the_rest(
    emulator: Served, traffic: Traffic, after: int
) -> None:
    async with no_leaks():
        async with _client(emulator) as client:
            pool = aiohttp_session(client)
            got: list[str] = []
            async with client.users.iter_metrics(page_size=PAGE_SIZE) as pager:
                async for user in pager:
                    got.append(user.user_id)
                    if len(got) == after:
                        break
            await _idle(client)
        assert_pool_closed(pool)
        for _ in range(200):  # the server sees the sockets close (bounded wait)
            if traffic.open_connections() == 0:
                break
            await asyncio.sleep(0.01)
    assert traffic.open_connections() == 0
    assert got == [f"u{i:06d}" for i in range(after)]


async def test_a_plain_break_without_async_with_leaves_nothing_behind(
    emulator: Served,
) -> None:
    async with no_leaks():
        async with _client(emulator) as client:
            pool = aiohttp_session(client)
            async for user in client.users.iter_metrics(page_size=PAGE_SIZE):
                if user.user_id == "u000042":
                    break
            await settle()
            await _idle(client)
        assert_pool_closed(pool)


async def test_cancelling_the_consuming_task_cancels_its_requests(
    slow_emulator: Served, traffic: Traffic
) -> None:
    async with no_leaks():
        async with _client(slow_emulator) as client:
            pool = aiohttp_session(client)
            first_user = asyncio.Event()

            async def consume() -> int:
                seen = 0
                async with client.users.iter_metrics(page_size=PAGE_SIZE) as pager:
                    async for _ in pager:
                        seen += 1
                        first_user.set()
                return seen

            task = asyncio.ensure_future(consume())
            await first_user.wait()
            for _ in range(200):  # until the next pages are on the wire (bounded)
                if traffic.in_flight:
                    break
                await asyncio.sleep(0.01)
            assert traffic.in_flight > 0
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await _idle(client)
        assert_pool_closed(pool)


async def test_wait_for_around_the_whole_iteration_cancels_it(slow_emulator: Served) -> None:
    async with no_leaks():
        async with _client(slow_emulator) as client:
            pool = aiohttp_session(client)

            async def everyone() -> list[str]:
                async with client.users.iter_metrics(page_size=PAGE_SIZE) as pager:
                    return [user.user_id async for user in pager]

            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(everyone(), timeout=0.5)
            await _idle(client)
        assert_pool_closed(pool)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is new in Python 3.11")
async def test_asyncio_timeout_around_a_bare_loop_cancels_it(slow_emulator: Served) -> None:
    async with no_leaks():
        async with _client(slow_emulator) as client:
            pool = aiohttp_session(client)
            seen: list[str] = []

            async def bounded() -> None:
                async with asyncio.timeout(0.5):  # type: ignore[attr-defined,unused-ignore]
                    async for user in client.users.iter_metrics(page_size=PAGE_SIZE):
                        seen.append(user.user_id)

            with pytest.raises(TimeoutError):
                await bounded()
            await settle()
            await _idle(client)
        assert_pool_closed(pool)
    assert 0 < len(seen) < USERS
