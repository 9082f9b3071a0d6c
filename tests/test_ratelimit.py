"""Request budgets: the in-process limiter, the server's RateLimit headers, one pause per client."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from helicone_users import (
    AsyncHeliconeUsers,
    InvalidRequestError,
    LocalRateLimit,
    RateLimit,
    RetryPolicy,
)
from helicone_users._ratelimit import ServerBudget, rate_limit_from
from helicone_users._session import Session

PATH = "/v1/user/query"


class FakeClock:
    """A clock that moves only when a limiter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 9))
        self.now += seconds
        await asyncio.sleep(0)


def _limit(count: int, period: float, clock: FakeClock, **kwargs: Any) -> LocalRateLimit:
    return LocalRateLimit(count, period, clock=clock, sleep=clock.sleep, **kwargs)


async def _grant_times(limit: LocalRateLimit, clock: FakeClock, n: int) -> list[float]:
    times = []
    for _ in range(n):
        await limit.acquire()
        times.append(clock.now)
    return times


def _busiest(times: list[float], window: float) -> int:
    """The most grants in any half-open span of ``window`` seconds."""
    times = sorted(times)
    best, low = 0, 0
    for high, moment in enumerate(times):
        while moment - times[low] >= window - 1e-9:
            low += 1
        best = max(best, high - low + 1)
    return best


# --- LocalRateLimit ------------------------------------------------------------------------------


async def test_grants_are_spaced_evenly_with_the_margin() -> None:
    clock = FakeClock()
    limit = _limit(3, 60.0, clock, margin=0.0)
    assert await _grant_times(limit, clock, 4) == [0.0, 20.0, 40.0, 60.0]
    stretched = FakeClock()
    assert await _grant_times(_limit(3, 60.0, stretched), stretched, 3) == [0.0, 21.0, 42.0]


async def test_a_burst_goes_at_once_and_the_pace_slows_to_keep_the_window() -> None:
    clock = FakeClock()
    limit = _limit(4, 60.0, clock, burst=3, margin=0.0)
    # Three at once, then one every 60 / (4 - 3 + 1) = 30 s: never 5 in any 60 s.
    times = await _grant_times(limit, clock, 7)
    assert times == [0.0, 0.0, 0.0, 30.0, 60.0, 90.0, 120.0]
    assert _busiest(times, 60.0) == 4


@pytest.mark.parametrize("burst", [1, 2, 5])
async def test_no_window_of_the_period_ever_holds_more_than_count(burst: int) -> None:
    rng = random.Random(burst)
    clock = FakeClock()
    limit = _limit(5, 1.0, clock, burst=burst, margin=0.0)
    times = []
    for _ in range(200):
        clock.now += rng.expovariate(8.0)  # callers arrive faster than the budget allows
        await limit.acquire()
        times.append(clock.now)
    assert _busiest(times, 1.0) <= 5


async def test_waiters_are_served_in_arrival_order() -> None:
    clock = FakeClock()
    limit = _limit(1, 1.0, clock, margin=0.0)
    order: list[int] = []

    async def take(i: int) -> None:
        await limit.acquire()
        order.append(i)

    await asyncio.gather(*(take(i) for i in range(5)))
    assert order == [0, 1, 2, 3, 4]
    assert clock.now == 4.0


async def test_a_pause_holds_every_grant_until_it_ends() -> None:
    clock = FakeClock()
    limit = _limit(10, 1.0, clock, margin=0.0)
    await limit.acquire()
    await limit.pause(5.0)
    await limit.acquire()
    assert clock.now == 5.0
    await limit.pause(1.0)  # shorter than the next grant's wait: changes nothing
    await limit.acquire()
    assert clock.now == pytest.approx(6.0)


async def test_a_pause_reaches_a_waiter_already_asleep() -> None:
    clock = FakeClock()
    limit = _limit(1, 10.0, clock, margin=0.0)
    await limit.acquire()
    waiter = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0)
    assert clock.slept == [10.0]  # the fake clock is already at the waiter's grant time
    await limit.pause(30.0)  # ... but the pause came first: the waiter looks again
    await waiter
    assert clock.now == 40.0


def test_a_stricter_server_budget_is_adopted_and_a_looser_one_ignored() -> None:
    limit = LocalRateLimit(200, 60)
    limit.adopt(400, 60)
    assert (limit.count, limit.period) == (200, 60)
    limit.adopt(100, 60)
    assert (limit.count, limit.period) == (100, 60)


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        ((0, 60), {}, "rate_limit"),
        ((10, 0), {}, "rate_limit"),
        ((1.5, 60), {}, "rate_limit"),
        ((10, 60), {"burst": 11}, "burst"),
        ((10, 60), {"burst": 0}, "burst"),
        ((10, 60), {"margin": 1.0}, "margin"),
    ],
)
def test_bad_limits_are_refused_naming_the_field(
    args: tuple[Any, ...], kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        LocalRateLimit(*args, **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize("bad", [(0, 60), (10, 0), (1.5, 60), "200/60", object()])
def test_a_bad_rate_limit_argument_is_refused(bad: Any) -> None:
    with pytest.raises(InvalidRequestError) as info:
        Session(base_url="http://x.test", authorization="Bearer k", rate_limit=bad)
    assert info.value.field == "rate_limit"


def test_rate_limit_accepts_a_pair_or_any_rate_limit() -> None:
    built = rate_limit_from((200, 60))
    assert isinstance(built, LocalRateLimit)
    assert (built.count, built.period) == (200, 60)
    shared = LocalRateLimit(10, 1)
    assert rate_limit_from(shared) is shared
    assert isinstance(shared, RateLimit)
    assert rate_limit_from(None) is None
    assert repr(built) == "LocalRateLimit(200, 60, burst=1)"


# --- What the server says ------------------------------------------------------------------------


def test_the_draft6_headers_are_read() -> None:
    budget = ServerBudget.from_headers(
        {
            "RateLimit-Policy": "200;w=60",
            "RateLimit-Limit": "200",
            "RateLimit-Remaining": "17",
            "RateLimit-Reset": "42",
        }
    )
    assert budget == ServerBudget(limit=200, remaining=17, reset=42.0, window=60.0)
    assert ServerBudget.from_headers({"Retry-After": "1"}) is None
    assert ServerBudget.from_headers({"RateLimit-Remaining": "x"}) == ServerBudget(
        limit=None, remaining=None, reset=None, window=None
    )


@pytest.mark.parametrize(
    ("status", "headers", "pause"),
    [
        (429, {"RateLimit-Remaining": "0", "RateLimit-Reset": "7", "Retry-After": "3"}, 3.0),
        (429, {"RateLimit-Remaining": "0", "RateLimit-Reset": "7"}, 7.0),
        (200, {"RateLimit-Remaining": "0", "RateLimit-Reset": "7"}, 6.0),
        (200, {"RateLimit-Remaining": "0", "RateLimit-Reset": "0.25"}, 0.25),
        (200, {"RateLimit-Remaining": "0", "RateLimit-Reset": "1"}, 0.0),
        (200, {"RateLimit-Remaining": "3", "RateLimit-Reset": "7"}, None),
    ],
)
def test_the_pause_after_an_answer(
    status: int, headers: dict[str, str], pause: float | None
) -> None:
    budget = ServerBudget.from_headers(headers)
    assert budget is not None
    assert budget.pause_after(status, headers) == pause


# --- One pause for the whole client --------------------------------------------------------------


class BudgetServer:
    """Answers ``{"data": [], "error": null}``; the first answers follow ``script``."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.arrivals: list[float] = []
        self.headers: dict[str, str] = {}

    async def dispatch(self, request: web.Request) -> web.Response:
        return await self.handle(request)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.arrivals.append(time.monotonic())
        status, headers = self.script.pop(0) if self.script else (200, self.headers)
        return web.json_response({"data": [], "error": None}, status=status, headers=headers)


@pytest.fixture
async def budget_server() -> AsyncIterator[tuple[BudgetServer, str]]:
    server = BudgetServer()
    app = web.Application()
    app.router.add_post(PATH, server.dispatch)
    test_server = TestServer(app)
    await test_server.start_server()
    try:
        yield server, str(test_server.make_url("")).rstrip("/")
    finally:
        await test_server.close()


def _session(base: str, **kwargs: Any) -> Session:
    kwargs.setdefault("retry", RetryPolicy(initial_delay=0.01, max_delay=0.01))
    return Session(base_url=base, authorization="Bearer k", **kwargs)


class _Signal(logging.Handler):
    """Sets an asyncio event when a record containing ``text`` is logged."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


async def _after_pause_logged(
    session: Session, caplog: pytest.LogCaptureFixture, then: Callable[[], Any]
) -> tuple[float, Any]:
    """Send one request that meets the spent budget; once the pause is logged, run ``then``."""
    signal = _Signal("rate limit spent")
    logging.getLogger("helicone_users").addHandler(signal)
    try:
        first = asyncio.ensure_future(session.post_json(PATH, {}))
        await signal.event.wait()
        paused_at = time.monotonic()
        others = await then()
        await first
    finally:
        logging.getLogger("helicone_users").removeHandler(signal)
    return paused_at, others


async def test_a_429_stating_the_budget_pauses_every_request(
    budget_server: tuple[BudgetServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, base = budget_server
    spent = {"RateLimit-Remaining": "0", "RateLimit-Reset": "1", "retry-after-ms": "300"}
    server.script = [(429, spent)]
    async with _session(base) as session:

        async def five_more() -> list[Any]:
            return await asyncio.gather(*(session.post_json(PATH, {}) for _ in range(5)))

        paused_at, answers = await _after_pause_logged(session, caplog, five_more)
    assert answers == [{"data": [], "error": None}] * 5
    later = [t for t in server.arrivals if t > paused_at]
    assert len(later) == 6
    # Nothing reached the server during the pause: not the five, not the first one's retry.
    assert min(later) >= paused_at + 0.3 - 0.05


async def test_a_spent_budget_met_by_many_requests_at_once_is_logged_once(
    budget_server: tuple[BudgetServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, base = budget_server
    spent = {"RateLimit-Remaining": "0", "RateLimit-Reset": "1", "retry-after-ms": "200"}
    server.script = [(429, spent)] * 4
    arrived = asyncio.Event()
    handle = server.handle

    async def together(request: web.Request) -> web.Response:
        # The first four requests are answered only once all four are on the wire.
        if len(server.arrivals) < 4:
            server.arrivals.append(time.monotonic())
            if len(server.arrivals) == 4:
                arrived.set()
            await arrived.wait()
            server.arrivals.pop()
        return await handle(request)

    server.handle = together  # type: ignore[method-assign]
    caplog.set_level(logging.DEBUG, logger="helicone_users")
    async with _session(base) as session:
        await asyncio.gather(*(session.post_json(PATH, {}) for _ in range(4)))
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "POST /v1/user/query answered 429 with the rate limit spent; every request waits 0.20 s"
    ]
    retries = [r for r in caplog.records if r.getMessage().startswith("retrying")]
    assert len(retries) == 4
    assert {r.levelno for r in retries} == {logging.DEBUG}


async def test_a_bare_429_delays_only_its_own_request(
    budget_server: tuple[BudgetServer, str],
) -> None:
    server, base = budget_server
    server.script = [(429, {"retry-after-ms": "500"})]
    async with _session(base) as session:
        first = asyncio.ensure_future(session.post_json(PATH, {}))
        for _ in range(1000):  # until the server has seen it (bounded)
            if server.arrivals:
                break
            await asyncio.sleep(0.001)
        refused_at = server.arrivals[0]
        await asyncio.gather(*(session.post_json(PATH, {}) for _ in range(3)))
        assert max(server.arrivals[1:]) < refused_at + 0.4
        await first
    assert server.arrivals[-1] >= refused_at + 0.45  # the refused request waited its 500 ms


async def test_a_success_spending_the_last_request_pauses_until_the_reset(
    budget_server: tuple[BudgetServer, str],
) -> None:
    server, base = budget_server
    server.script = [(200, {"RateLimit-Remaining": "0", "RateLimit-Reset": "0.3"})]
    async with _session(base) as session:
        await session.post_json(PATH, {})
        spent_at = time.monotonic()
        await session.post_json(PATH, {})
    assert server.arrivals[1] >= spent_at + 0.3 - 0.05


async def test_the_pause_reaches_every_client_sharing_the_limit(
    budget_server: tuple[BudgetServer, str],
) -> None:
    server, base = budget_server
    server.script = [(200, {"RateLimit-Remaining": "0", "RateLimit-Reset": "0.3"})]
    shared = LocalRateLimit(1000, 1)
    async with _session(base, rate_limit=shared) as one, _session(base, rate_limit=shared) as two:
        await one.post_json(PATH, {})
        spent_at = time.monotonic()
        await two.post_json(PATH, {})
    assert server.arrivals[1] >= spent_at + 0.3 - 0.05


async def test_a_stricter_server_policy_slows_the_client_limit(
    budget_server: tuple[BudgetServer, str],
) -> None:
    server, base = budget_server
    server.headers = {"RateLimit-Policy": "5;w=1", "RateLimit-Limit": "5",
                      "RateLimit-Remaining": "4", "RateLimit-Reset": "1"}  # fmt: skip
    limit = LocalRateLimit(100, 1)
    async with _session(base, rate_limit=limit) as session:
        await session.post_json(PATH, {})
    assert (limit.count, limit.period) == (5, 1)


async def test_in_test_mode_a_spent_budget_is_logged_but_not_waited_for(
    budget_server: tuple[BudgetServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, base = budget_server
    server.script = [(429, {"RateLimit-Remaining": "0", "Retry-After": "30"})]
    async with _session(base, retry=RetryPolicy.testing()) as session:
        started = time.monotonic()
        await session.post_json(PATH, {})
    assert time.monotonic() - started < 5
    assert any("test mode: not waiting 30.00 s" in r.getMessage() for r in caplog.records)


async def test_a_client_never_closes_a_limit_it_was_given() -> None:
    class Counting(LocalRateLimit):
        closed = 0

        async def aclose(self) -> None:
            Counting.closed += 1

    async with AsyncHeliconeUsers("k", base_url="http://x.test", rate_limit=Counting(1, 1)):
        pass
    assert Counting.closed == 0
