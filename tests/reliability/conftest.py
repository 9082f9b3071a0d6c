"""Helpers for the reliability tests: leak checks, recording servers and fast retry policies."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from helicone_users import AsyncHeliconeUsers, RetryPolicy
from helicone_users.testing import Emulator, _emulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
START = datetime(2024, 3, 1, tzinfo=timezone.utc)


def user_rows(users: int, *, per_user: int = 1) -> list[dict[str, Any]]:
    """``per_user`` requests for each of ``users`` users, ids sortable as text."""
    return [
        {
            "request_id": f"r{i:06d}-{j}",
            "user_id": f"u{i:06d}",
            "request_created_at": (START + timedelta(minutes=i, seconds=j)).isoformat(),
            "model": "gpt-4o" if i % 2 else "claude-3",
            "latency": 100 + i % 50,
            "prompt_tokens": 10 + j,
            "completion_tokens": 5,
            "cost": 0.001 * (1 + i % 7),
        }
        for i in range(users)
        for j in range(per_user)
    ]


def fast_retry(max_attempts: int = 4) -> RetryPolicy:
    """The test-mode policy: waits are computed and logged, never slept."""
    return RetryPolicy.testing(max_attempts=max_attempts)


class Traffic:
    """What a server saw: request arrival times, the most requests in flight at once and the
    most connections open at once."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.transports: set[Any] = set()
        self.max_connections = 0

    def open_connections(self) -> int:
        """Connections the server still holds open."""
        return sum(1 for transport in list(self.transports) if not transport.is_closing())

    def busiest_window(self, seconds: float) -> int:
        """The most requests that arrived within any span of ``seconds``."""
        times = sorted(self.arrivals)
        best, low = 0, 0
        for high, moment in enumerate(times):
            while moment - times[low] >= seconds:
                low += 1
            best = max(best, high - low + 1)
        return best

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.arrivals.append(time.monotonic())
        if request.transport is not None:
            self.transports.add(request.transport)
        open_now = sum(1 for transport in self.transports if not transport.is_closing())
        self.max_connections = max(self.max_connections, open_now)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1


@pytest.fixture
def traffic(monkeypatch: pytest.MonkeyPatch) -> Traffic:
    """Record every request reaching any emulator started in this test."""
    seen = Traffic()
    build: Callable[[Any], web.Application] = getattr(_emulator, "build_app")  # noqa: B009

    def recording_app(state: Any) -> web.Application:
        app = build(state)
        app.middlewares.append(seen.middleware)
        return app

    monkeypatch.setattr(_emulator, "build_app", recording_app)
    return seen


class Served:
    """An emulator on its own event loop in a thread: the test's loop holds only client tasks."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return self.emulator.base_url

    @property
    def state(self) -> Any:
        """The running emulator's state (faults drawn, requests seen)."""
        return self.emulator.state

    @property
    def api_key(self) -> str:
        return self.emulator.api_key

    def client(self, **kwargs: Any) -> AsyncHeliconeUsers:
        """A client of this emulator (created in the caller's loop)."""
        kwargs.setdefault("api_key", self.api_key)
        return AsyncHeliconeUsers(base_url=self.base_url, **kwargs)

    async def call(self, coroutine: Any) -> Any:
        """Run ``coroutine`` on the server's loop and await its result from this one."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    def __enter__(self) -> Served:
        """Start from synchronous code (e.g. a module-scoped fixture of blocking tests)."""
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.emulator.start(), self.loop).result(60)
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.emulator.aclose(), self.loop).result(60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    async def __aenter__(self) -> Served:
        self.thread.start()
        await self.call(self.emulator.start())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.call(self.emulator.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            await asyncio.to_thread(self.thread.join, 10)
            self.loop.close()


def served(*args: Any, **kwargs: Any) -> Served:
    """``async with served(rows, faults=...) as server``: an ``Emulator`` in a thread."""
    return Served(Emulator(*args, **kwargs))


class LoopErrors:
    """Collects what the event loop's exception handler would report (never-retrieved errors)."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.contexts.append(context)


@contextlib.asynccontextmanager
async def no_leaks() -> AsyncIterator[LoopErrors]:
    """Fail unless the block leaves no task running and no loop error unreported."""
    loop = asyncio.get_running_loop()
    errors = LoopErrors()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(errors)
    before = asyncio.all_tasks()
    try:
        yield errors
        await settle()
        gc.collect()
        await settle()
        left = {task for task in asyncio.all_tasks() - before if not task.done()}
        assert not left, f"tasks still running: {left}"
        assert not errors.contexts, f"the loop reported: {errors.contexts}"
    finally:
        loop.set_exception_handler(previous)


async def settle() -> None:
    """Let callbacks scheduled by cancellations and closes run."""
    for _ in range(5):
        await asyncio.sleep(0)


def aiohttp_session(client: AsyncHeliconeUsers) -> aiohttp.ClientSession:
    """The client's pool, opened now, so a test can check it is closed afterwards."""
    session: aiohttp.ClientSession = client._session._client_session()
    return session


def busy_connections(session: aiohttp.ClientSession) -> int:
    """Connections taken from the pool and not yet given back."""
    connector = session.connector
    assert connector is not None
    return len(connector._acquired)


def assert_pool_closed(session: aiohttp.ClientSession) -> None:
    """The aiohttp session and its connector are both closed."""
    assert session.closed
    assert session.connector is None or session.connector.closed


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
