"""One client shared by many tasks: right answers, bounded connections, a steady request rate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from helicone_users import AsyncHeliconeUsers, UserStats
from helicone_users._config import DEFAULT_CONNECTION_LIMIT_PER_HOST

from .conftest import Traffic, aiohttp_session, assert_pool_closed, fast_retry, no_leaks, served
from .conftest import user_rows as make_rows

TASKS = 50
REQUESTS_PER_TASK = 20
USERS = 60


def _ids(task: int, request: int) -> list[str]:
    first = (task * REQUESTS_PER_TASK + request) % USERS
    return [f"u{first:06d}", f"u{(first * 7 + 3) % USERS:06d}"]


async def test_fifty_tasks_sharing_one_client_get_the_sequential_answers(
    traffic: Traffic,
) -> None:
    async with served(make_rows(USERS, per_user=3)) as emulator, no_leaks():
        client = emulator.client(retry=fast_retry(), timeout=60)
        async with client:
            pool = aiohttp_session(client)
            wanted: dict[tuple[str, ...], list[UserStats]] = {}
            for task in range(TASKS):
                for request in range(REQUESTS_PER_TASK):
                    key = tuple(_ids(task, request))
                    if key not in wanted:
                        wanted[key] = await client.users.query(list(key))
            sequential_connections = traffic.max_connections

            async def worker(task: int) -> list[list[UserStats]]:
                return [
                    await client.users.query(_ids(task, request))
                    for request in range(REQUESTS_PER_TASK)
                ]

            answers = await asyncio.gather(*(worker(task) for task in range(TASKS)))
        assert_pool_closed(pool)

    for task, results in enumerate(answers):
        for request, result in enumerate(results):
            assert result == wanted[tuple(_ids(task, request))], (task, request)
    assert all(len(stats) == 2 and stats[0].count == 3 for stats in wanted.values())
    assert sequential_connections == 1
    assert 1 < traffic.max_connections <= DEFAULT_CONNECTION_LIMIT_PER_HOST
    assert 1 < traffic.max_in_flight <= DEFAULT_CONNECTION_LIMIT_PER_HOST


def _page(request: web.Request) -> web.Response:
    body = b'{"data":{"users":[],"count":0,"hasUsers":false},"error":null}'
    return web.Response(body=body, content_type="application/json")


@pytest.fixture
async def fast_server() -> AsyncIterator[tuple[str, Traffic]]:
    """A server answering an empty metrics page at once, so only the client sets the pace."""
    seen = Traffic()

    async def metrics(request: web.Request) -> web.Response:
        await request.read()
        return _page(request)

    app = web.Application(middlewares=[seen.middleware])
    app.router.add_post("/v1/user/metrics/query", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def _burst(client: AsyncHeliconeUsers, tasks: int, each: int) -> None:
    async def worker() -> None:
        for _ in range(each):
            await client.users.metrics(limit=1)

    await asyncio.gather(*(worker() for _ in range(tasks)))


async def test_the_rate_limit_holds_in_every_window_while_tasks_compete(
    fast_server: tuple[str, Traffic],
) -> None:
    base_url, traffic = fast_server
    count, period = 20, 0.5
    async with AsyncHeliconeUsers(
        "sk-test", base_url=base_url, retry=fast_retry(), rate_limit=(count, period)
    ) as client:
        await _burst(client, tasks=10, each=10)
    assert len(traffic.arrivals) == 100
    # Arrival times carry loopback jitter on top of the grant times: a window slightly shorter
    # than the period absorbs it; without the limit all 100 requests fit in one such window.
    assert traffic.busiest_window(period * 0.8) <= count
    assert traffic.arrivals[-1] - traffic.arrivals[0] >= (100 / count - 1) * period * 0.9


async def test_without_a_rate_limit_the_same_burst_exceeds_the_budget(
    fast_server: tuple[str, Traffic],
) -> None:
    base_url, traffic = fast_server
    async with AsyncHeliconeUsers("sk-test", base_url=base_url, retry=fast_retry()) as client:
        await _burst(client, tasks=10, each=10)
    assert traffic.busiest_window(0.45) > 20
