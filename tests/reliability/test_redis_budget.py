"""RedisRateLimit against a real redis-server: one budget for many clients and processes.

The server is started here on a free loopback port. Where ``redis-server`` is not installed the
tests skip, except under CI (the ``CI`` variable set), where they fail: CI installs it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from helicone_users import (
    APIConnectionError,
    AsyncHeliconeUsers,
    InvalidRequestError,
    RateLimit,
    RedisRateLimit,
    RetryPolicy,
)
from helicone_users.testing._redis import redis_server

from .conftest import Traffic, aiohttp_session, assert_pool_closed, no_leaks

WORKER = Path(__file__).with_name("redis_worker.py")
EMPTY_PAGE = b'{"data":{"users":[],"count":0,"hasUsers":false},"error":null}'


def _absent(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the Redis tests (.ci/run installs redis-server)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if shutil.which("redis-server") is None:
        _absent("redis-server is not installed (apt-get install redis-server)")
    if importlib.util.find_spec("redis") is None:
        _absent("redis-py is not installed (pip install -e '.[dev]')")
    with redis_server() as url:
        yield url


@pytest.fixture
def name() -> str:
    """A budget name of this test's own."""
    return f"test-{uuid.uuid4().hex[:12]}"


async def _redis(url: str) -> Any:
    import redis.asyncio

    return redis.asyncio.Redis.from_url(url)


async def _close(client: Any) -> None:
    await client.aclose()


@pytest.fixture
async def metrics_server() -> AsyncIterator[tuple[str, Traffic]]:
    """A loopback metrics endpoint answering an empty page at once; records arrivals."""
    traffic = Traffic()

    async def metrics(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=EMPTY_PAGE, content_type="application/json")

    app = web.Application(middlewares=[traffic.middleware])
    app.router.add_post("/v1/user/metrics/query", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", traffic
    finally:
        await runner.cleanup()


async def test_two_processes_and_four_clients_never_exceed_one_shared_budget(
    redis_url: str, name: str, metrics_server: tuple[str, Traffic]
) -> None:
    base_url, traffic = metrics_server
    count, period, each = 10, 0.5, 8
    command = [sys.executable, str(WORKER), base_url, redis_url, name, str(count), str(period),
               str(each)]  # fmt: skip
    worker = await asyncio.to_thread(
        subprocess.Popen, command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None
        assert worker.stdin is not None
        assert (await asyncio.to_thread(worker.stdout.readline)).strip() == "ready"
        async with RedisRateLimit(redis_url, count, period, name=name) as budget:
            await budget.acquire()
            clients = [
                AsyncHeliconeUsers(
                    "sk-test", base_url=base_url, rate_limit=budget, retry=RetryPolicy.disabled()
                )
                for _ in range(2)
            ]
            worker.stdin.write("go\n")
            worker.stdin.flush()
            await asyncio.gather(
                *(client.users.metrics(limit=1) for client in clients for _ in range(each))
            )
            for client in clients:
                await client.aclose()
        assert (await asyncio.to_thread(worker.stdout.readline)).strip() == "done"
    finally:
        worker.stdin and worker.stdin.close()
        await asyncio.to_thread(worker.wait, 30)
        worker.stdout and worker.stdout.close()
    assert worker.returncode == 0
    assert len(traffic.arrivals) == 4 * each
    # Loopback and scheduling jitter lands on top of the grant times: a window a little
    # shorter than the period absorbs it. Two budgets instead of one would put ~15 in it.
    assert traffic.busiest_window(period * 0.8) <= count
    spread = traffic.arrivals[-1] - traffic.arrivals[0]
    assert spread >= (4 * each - 2) * period / count * 0.9


async def test_a_pause_in_one_process_holds_the_grants_of_another(
    redis_url: str, name: str
) -> None:
    async with (
        RedisRateLimit(redis_url, 100, 1, name=name) as here,
        RedisRateLimit(redis_url, 100, 1, name=name) as elsewhere,
    ):
        await here.pause(0.3)
        started = time.monotonic()
        await elsewhere.acquire()
        assert time.monotonic() - started >= 0.25


async def test_budgets_with_other_names_do_not_share(redis_url: str, name: str) -> None:
    async with (
        RedisRateLimit(redis_url, 1, 30, name=name) as one,
        RedisRateLimit(redis_url, 1, 30, name=name + "-other") as other,
    ):
        await one.acquire()
        started = time.monotonic()
        await other.acquire()  # its own budget: granted at once
        assert time.monotonic() - started < 1


async def test_cancelling_a_waiter_leaves_no_task_connection_or_lock(
    redis_url: str, name: str
) -> None:
    async with no_leaks():
        budget = RedisRateLimit(redis_url, 1, 30, name=name)
        await budget.acquire()
        waiter = asyncio.ensure_future(budget.acquire())  # its grant is 31.5 s away
        for _ in range(200):
            await asyncio.sleep(0.005)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await budget.aclose()
    checker = await _redis(redis_url)
    try:
        keys = await checker.keys(f"*{name}*")
        assert keys == [budget.key.encode()]  # one number, no lock or queue keys
        ttl = await checker.pttl(budget.key)
        assert 0 < ttl <= 2 * 31.5 * 1000 + 1000  # it expires on its own
        clients = await checker.client_list()
        assert len(clients) == 1  # only this checker: the limiter's connections are closed
    finally:
        await _close(checker)


async def test_leaving_a_pager_early_leaves_nothing_behind(
    redis_url: str, name: str, metrics_server: tuple[str, Traffic]
) -> None:
    base_url, _ = metrics_server
    async with no_leaks(), RedisRateLimit(redis_url, 5, 1, name=name) as budget:
        async with AsyncHeliconeUsers(
            "sk-test", base_url=base_url, rate_limit=budget, retry=RetryPolicy.testing()
        ) as client:
            pool = aiohttp_session(client)
            tasks = [asyncio.ensure_future(client.users.metrics(limit=1)) for _ in range(8)]
            await asyncio.sleep(0.3)  # two granted, six waiting on the budget
            for task in tasks:
                task.cancel()
            done = await asyncio.gather(*tasks, return_exceptions=True)
            assert any(isinstance(result, asyncio.CancelledError) for result in done)
        assert_pool_closed(pool)
    checker = await _redis(redis_url)
    try:
        assert len(await checker.client_list()) == 1
    finally:
        await _close(checker)


def test_a_redis_limit_is_a_rate_limit_and_hides_the_password() -> None:
    if importlib.util.find_spec("redis") is None:
        _absent("redis-py is not installed (pip install -e '.[dev]')")
    budget = RedisRateLimit("redis://user:s3cret@localhost:6379/0", 200, 60, name="acme")
    assert isinstance(budget, RateLimit)
    assert "s3cret" not in repr(budget)
    assert "helicone-users:budget:acme" in repr(budget)
    asyncio.run(budget.aclose())


def test_a_bad_url_is_refused_naming_the_field() -> None:
    if importlib.util.find_spec("redis") is None:
        _absent("redis-py is not installed (pip install -e '.[dev]')")
    with pytest.raises(InvalidRequestError) as info:
        RedisRateLimit("http://localhost:6379", 200, 60)
    assert info.value.field == "url"
    with pytest.raises(InvalidRequestError) as info:
        RedisRateLimit("redis://localhost:6379", 200, 60, name="")
    assert info.value.field == "name"


async def test_an_unreachable_redis_raises_a_connection_error_without_the_password() -> None:
    if importlib.util.find_spec("redis") is None:
        _absent("redis-py is not installed (pip install -e '.[dev]')")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with RedisRateLimit(f"redis://:pw123@127.0.0.1:{port}/0", 200, 60) as budget:
        with pytest.raises(APIConnectionError) as info:
            await budget.acquire()
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "pw123" not in str(info.value)
