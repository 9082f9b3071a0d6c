"""The pager: order, bounded concurrency, clean cancellation, exactly-once delivery under drift."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from helicone_users import (
    AsyncHeliconeUsers,
    CountChangedWarning,
    F,
    InvalidRequestError,
    RateLimitError,
    RetryPolicy,
    UserMetrics,
    UserMetricsPage,
    UserMetricsPager,
)
from helicone_users._pagination import gather_bounded

UTC = timezone.utc
_STAMP = datetime(2024, 5, 1, tzinfo=UTC)


def _user(user_id: str) -> UserMetrics:
    return UserMetrics(
        id=user_id,
        user_id=user_id,
        active_for=1,
        first_active=_STAMP,
        last_active=_STAMP,
        total_requests=1,
        average_requests_per_day_active=1.0,
        average_tokens_per_request=1.0,
        total_completion_tokens=1,
        total_prompt_tokens=1,
        cost=0.0,
    )


def _ids(n: int) -> list[str]:
    return [f"user-{i:04d}" for i in range(n)]


class FakeUsers:
    """An in-memory metrics endpoint: counts calls and requests in flight, can block or drift."""

    def __init__(self, ids: list[str], *, delays: dict[int, float] | None = None) -> None:
        self.ids = sorted(ids)
        self.delays = delays or {}
        self.blocked: set[int] = set()
        self.calls: list[int] = []
        self.cancelled: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.on_call: Callable[[int], None] | None = None
        self._never = asyncio.Event()

    async def fetch(self, offset: int, limit: int) -> UserMetricsPage:
        self.calls.append(offset)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.on_call is not None:
                self.on_call(len(self.calls))
            if offset in self.blocked:
                await self._never.wait()
            await asyncio.sleep(self.delays.get(offset, 0))
            users = tuple(_user(i) for i in self.ids[offset : offset + limit])
            return UserMetricsPage(
                users=users, count=len(self.ids), has_users=True, offset=offset, limit=limit
            )
        except asyncio.CancelledError:
            self.cancelled.append(offset)
            raise
        finally:
            self.in_flight -= 1


def _pager(fake: FakeUsers, page_size: int = 10, concurrency: int = 4) -> UserMetricsPager:
    return UserMetricsPager(
        fake.fetch, page_size=page_size, concurrency=concurrency, ascending_user_id=True
    )


def _other_tasks() -> set[asyncio.Task[Any]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


async def _collect(pager: UserMetricsPager) -> list[str]:
    return [user.user_id async for user in pager]


async def test_await_gives_the_first_page_and_iteration_reuses_it() -> None:
    fake = FakeUsers(_ids(25))
    pager = _pager(fake)
    first = await pager
    assert [u.user_id for u in first.users] == _ids(10)
    assert first.count == 25
    assert await _collect(pager) == _ids(25)
    assert fake.calls.count(0) == 1


async def test_pages_come_in_offset_order() -> None:
    fake = FakeUsers(_ids(35))
    pages = [page async for page in _pager(fake).pages()]
    assert [page.offset for page in pages] == [0, 10, 20, 30]
    assert [len(page.users) for page in pages] == [10, 10, 10, 5]


async def test_order_is_kept_when_pages_complete_out_of_order() -> None:
    # Later pages answer first: the first pages in each window are the slowest.
    delays = {offset: 0.002 * (10 - i % 10) for i, offset in enumerate(range(0, 300, 10))}
    fake = FakeUsers(_ids(300), delays=delays)
    assert await _collect(_pager(fake, concurrency=8)) == _ids(300)


@pytest.mark.parametrize("concurrency", [1, 3, 8])
async def test_concurrency_never_exceeds_the_bound(concurrency: int) -> None:
    fake = FakeUsers(_ids(200), delays=dict.fromkeys(range(0, 200, 10), 0.001))
    assert await _collect(_pager(fake, concurrency=concurrency)) == _ids(200)
    assert fake.max_in_flight == concurrency


async def test_iteration_stops_at_count_or_at_a_short_page() -> None:
    fake = FakeUsers(_ids(30))
    assert await _collect(_pager(fake)) == _ids(30)
    assert sorted(fake.calls) == [0, 10, 20]
    short = FakeUsers(_ids(7))
    assert await _collect(_pager(short)) == _ids(7)
    assert short.calls == [0]


async def test_an_empty_result_yields_one_empty_page_and_no_users() -> None:
    fake = FakeUsers([])
    pages = [page async for page in _pager(fake).pages()]
    assert len(pages) == 1
    assert pages[0].users == ()
    assert await _collect(_pager(fake)) == []


async def test_leaving_an_async_with_block_cancels_requests_in_flight() -> None:
    fake = FakeUsers(_ids(100))
    fake.blocked = set(range(20, 100, 10))
    async with _pager(fake, concurrency=4) as pager:
        async for user in pager:
            if user.user_id == "user-0015":
                assert fake.in_flight == 4  # page 10's place went on to page 50
                break
    assert fake.in_flight == 0
    assert sorted(fake.cancelled) == [20, 30, 40, 50]
    assert not _other_tasks()


async def test_aclose_after_break_cancels_requests_in_flight() -> None:
    fake = FakeUsers(_ids(100))
    fake.blocked = {20}
    pager = _pager(fake, concurrency=3)
    pages = pager.pages()
    async for page in pages:
        if page.offset == 10:
            break
    await pager.aclose()
    assert fake.in_flight == 0
    assert 20 in fake.cancelled
    assert not _other_tasks()


async def test_a_plain_break_releases_everything_once_the_loop_runs() -> None:
    fake = FakeUsers(_ids(100))
    fake.blocked = set(range(20, 100, 10))
    async for user in _pager(fake, concurrency=4):
        if user.user_id == "user-0015":
            assert fake.in_flight == 4
            break
    gc.collect()
    for _ in range(10):  # the generator's finalizer runs aclose() as a task
        await asyncio.sleep(0)
    assert fake.in_flight == 0
    assert not _other_tasks()


async def test_cancelling_the_consumer_cancels_requests_in_flight() -> None:
    fake = FakeUsers(_ids(100))
    fake.blocked = set(range(10, 100, 10))
    started = asyncio.Event()

    async def consume() -> None:
        async for user in _pager(fake, concurrency=5):
            started.set()
            del user

    task = asyncio.ensure_future(consume())
    await started.wait()
    for _ in range(5):
        await asyncio.sleep(0)
    assert fake.in_flight == 5
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fake.in_flight == 0
    # The place page 10 gave up may have gone to page 60 before the cancellation reached it.
    assert {10, 20, 30, 40, 50} <= set(fake.cancelled)
    assert not _other_tasks()


async def test_a_failing_page_raises_and_cancels_the_others() -> None:
    fake = FakeUsers(_ids(100))
    fake.blocked = set(range(20, 100, 10))

    async def failing(offset: int, limit: int) -> UserMetricsPage:
        if offset == 10:
            raise RuntimeError("page 10 failed")
        return await fake.fetch(offset, limit)

    pager = UserMetricsPager(failing, page_size=10, concurrency=4, ascending_user_id=True)
    with pytest.raises(RuntimeError, match="page 10"):
        await _collect(pager)
    assert fake.in_flight == 0
    assert not _other_tasks()


async def test_users_inserted_during_iteration_never_duplicate_or_drop_anyone() -> None:
    fake = FakeUsers(_ids(95))

    def insert(call: int) -> None:
        if call in (3, 6):  # users sorting first shift every later page by one
            fake.ids.insert(0, f"aaa-{call}")

    fake.on_call = insert
    with pytest.warns(CountChangedWarning, match="changed from 9[56] to 9[67]"):
        seen = await _collect(_pager(fake, concurrency=4))
    assert len(seen) == len(set(seen))
    assert [i for i in seen if i.startswith("user-")] == _ids(95)


async def test_users_appended_during_iteration_are_fetched_too() -> None:
    fake = FakeUsers(_ids(40))

    def append(call: int) -> None:
        if call == 2:
            fake.ids.extend(_ids(60)[40:])

    fake.on_call = append
    with pytest.warns(CountChangedWarning):
        seen = await _collect(_pager(fake, concurrency=2))
    assert seen == _ids(60)


async def test_a_count_that_shrinks_stops_early_without_duplicates() -> None:
    fake = FakeUsers(_ids(50))

    def delete(call: int) -> None:
        if call == 2:
            del fake.ids[30:]

    fake.on_call = delete
    with pytest.warns(CountChangedWarning):
        seen = await _collect(_pager(fake, concurrency=1))
    assert seen == _ids(30)


async def test_other_orders_are_deduplicated_by_a_set() -> None:
    users = [_user(i) for i in ["c", "a", "b", "a", "d", "c"]]

    async def fetch(offset: int, limit: int) -> UserMetricsPage:
        page = tuple(users[offset : offset + limit])
        return UserMetricsPage(users=page, count=6, has_users=True, offset=offset, limit=limit)

    pager = UserMetricsPager(fetch, page_size=2, concurrency=2, ascending_user_id=False)
    assert await _collect(pager) == ["c", "a", "b", "d"]


async def test_gather_bounded_keeps_order_and_bounds_concurrency() -> None:
    running = 0
    peak = 0

    def call(i: int) -> Callable[[], Any]:
        async def run() -> int:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.001 * (5 - i % 5))
            running -= 1
            return i

        return run

    assert await gather_bounded([call(i) for i in range(20)], 3) == list(range(20))
    assert peak == 3


async def test_gather_bounded_cancels_the_rest_on_failure() -> None:
    never = asyncio.Event()
    cancelled: list[int] = []

    def call(i: int) -> Callable[[], Any]:
        async def run() -> int:
            if i == 0:
                await asyncio.sleep(0)
                raise ValueError("first failed")
            try:
                await never.wait()
            except asyncio.CancelledError:
                cancelled.append(i)
                raise
            return i

        return run

    with pytest.raises(ValueError, match="first failed"):
        await gather_bounded([call(i) for i in range(6)], 3)
    assert {1, 2} <= set(cancelled)
    assert not _other_tasks()


# --- Through the client, against a local aiohttp server ------------------------------------------


class _Server:
    """A metrics endpoint over HTTP that records bodies and requests in flight."""

    def __init__(self, ids: list[str], delay_for: Callable[[int], float]) -> None:
        self.ids = sorted(ids)
        self.delay_for = delay_for
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_for(body["offset"]))
        finally:
            self.in_flight -= 1
        rows = self.ids[body["offset"] : body["offset"] + body["limit"]]
        users = [_wire_user(i) for i in rows]
        data = {"users": users, "count": len(self.ids), "hasUsers": True}
        return web.json_response({"data": data, "error": None})


def _wire_user(user_id: str) -> dict[str, Any]:
    return {
        "id": user_id,
        "user_id": user_id,
        "active_for": "1",
        "first_active": "2024-05-01T00:00:00.000Z",
        "last_active": "2024-05-01T00:00:00.000Z",
        "total_requests": 1,
        "average_requests_per_day_active": 1,
        "average_tokens_per_request": 1,
        "total_completion_tokens": 1,
        "total_prompt_tokens": 1,
        "cost": 0,
        "rate_limited_count": "0",
    }


@pytest.fixture
async def served() -> AsyncIterator[tuple[_Server, AsyncHeliconeUsers]]:
    # Pages at lower offsets answer later, so completions arrive out of order.
    fake = _Server(_ids(230), delay_for=lambda offset: 0.001 * ((200 - offset) % 7))
    app = web.Application()
    app.router.add_post("/v1/user/metrics/query", fake.handle)
    server = TestServer(app)
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        async with AsyncHeliconeUsers("k", base_url=base, retry=RetryPolicy.testing()) as client:
            yield fake, client
    finally:
        await server.close()


async def test_the_client_pager_lists_everyone_in_order_over_http(
    served: tuple[_Server, AsyncHeliconeUsers],
) -> None:
    fake, client = served
    before = datetime.now(UTC).timestamp()
    async with client.users.iter_metrics(
        filter=F.model.contains("gpt"), page_size=20, concurrency=3
    ) as pager:
        seen = [user.user_id async for user in pager]
    assert seen == _ids(230)
    assert fake.max_in_flight <= 3
    first = fake.bodies[0]
    assert first["sort"] == {"user_id": "asc"}
    assert first["filter"] == F.model.contains("gpt").to_json()
    window = first["timeFilter"]
    assert window["startTimeUnixSeconds"] == 0
    assert before - 1 <= window["endTimeUnixSeconds"] <= datetime.now(UTC).timestamp() + 1
    assert {b["timeFilter"]["endTimeUnixSeconds"] for b in fake.bodies} == {
        window["endTimeUnixSeconds"]
    }
    assert sorted(b["offset"] for b in fake.bodies) == list(range(0, 230, 20))


async def test_an_explicit_sort_and_no_window_are_sent_as_given(
    served: tuple[_Server, AsyncHeliconeUsers],
) -> None:
    fake, client = served
    page = await client.users.iter_metrics(time_range=None, sort=("cost", "desc"), page_size=5)
    assert len(page.users) == 5
    assert fake.bodies[0]["sort"] == {"cost": "desc"}
    assert "timeFilter" not in fake.bodies[0]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"page_size": 1001}, "page_size"),
        ({"page_size": 0}, "page_size"),
        ({"concurrency": 0}, "concurrency"),
        ({"sort": ("nope", "asc")}, "sort"),
    ],
)
async def test_bad_pager_arguments_are_refused_before_sending(
    served: tuple[_Server, AsyncHeliconeUsers], kwargs: dict[str, Any], field: str
) -> None:
    fake, client = served
    with pytest.raises(InvalidRequestError) as info:
        client.users.iter_metrics(**kwargs)
    assert info.value.field == field
    assert fake.bodies == []


async def test_breaking_out_over_http_leaves_no_task_behind(
    served: tuple[_Server, AsyncHeliconeUsers],
) -> None:
    fake, client = served
    fake.delay_for = lambda offset: 0 if offset == 0 else 0.05
    async with client.users.iter_metrics(page_size=10, concurrency=6) as pager:
        async for user in pager:
            if user.user_id == "user-0003":
                break
    leftover = [t for t in _other_tasks() if "RequestHandler" not in repr(t.get_coro())]
    assert leftover == []
    pool = client._session._session
    assert pool is not None
    connector = pool.connector
    assert connector is not None
    assert not connector._acquired  # every connection was released or closed


async def test_eager_starts_the_next_pages_with_the_first() -> None:
    fake = FakeUsers(_ids(100), delays={0: 0.01})
    pager = UserMetricsPager(
        fake.fetch, page_size=10, concurrency=4, ascending_user_id=True, eager=True
    )
    async with pager:
        seen = await _collect(pager)
    assert seen == _ids(100)
    assert fake.calls[:4] == [0, 10, 20, 30]
    assert fake.max_in_flight == 4


async def test_eager_pages_beyond_the_count_are_dropped() -> None:
    fake = FakeUsers(_ids(15), delays={0: 0.0, 20: 0.05, 30: 0.05})
    pager = UserMetricsPager(
        fake.fetch, page_size=10, concurrency=4, ascending_user_id=True, eager=True
    )
    assert await _collect(pager) == _ids(15)
    assert sorted(fake.cancelled) == [20, 30]
    assert fake.in_flight == 0
    assert not _other_tasks()


# --- Scheduling: places per attempt, the reorder buffer, the head first --------------------------


class _Attempts:
    """A fetch that goes through a RetryPolicy, as the client's does; ``fail_once`` offsets
    raise a retryable 429 on their first attempt. Counts attempts in flight."""

    def __init__(self, fake: FakeUsers, fail_once: set[int], policy: RetryPolicy) -> None:
        self.fake = fake
        self.fail_once = set(fail_once)
        self.policy = policy

    async def fetch(self, offset: int, limit: int) -> UserMetricsPage:
        async def attempt() -> UserMetricsPage:
            if offset in self.fail_once:
                self.fail_once.discard(offset)
                raise RateLimitError("slow down", retry_after=5.0, status=429, method="POST",
                                     path="/v1/user/metrics/query")  # fmt: skip
            return await self.fake.fetch(offset, limit)

        return await self.policy.call(attempt, what=f"page {offset}")


async def test_a_request_waiting_out_a_retry_holds_no_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backoff = asyncio.Event()
    waiting: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float, result: Any = None) -> Any:
        if seconds == 5.0:  # the retry's Retry-After: held until the test lets it go
            waiting.append(seconds)
            await backoff.wait()
        return await real_sleep(0, result)

    monkeypatch.setattr("helicone_users._retry.asyncio.sleep", sleep)
    fake = FakeUsers(_ids(100))
    fake.blocked = {20, 30}
    attempts = _Attempts(fake, {10}, RetryPolicy())
    pager = UserMetricsPager(attempts.fetch, page_size=10, concurrency=2, ascending_user_id=True)
    async with pager:
        task = asyncio.ensure_future(_collect(pager))
        for _ in range(20):
            await real_sleep(0)
        # Page 10 waits out its backoff; both places went to pages 20 and 30.
        assert waiting == [5.0]
        assert sorted(fake.calls) == [0, 20, 30]
        assert fake.in_flight == 2
        fake.blocked.clear()
        fake._never.set()
        backoff.set()
        assert await task == _ids(100)
    assert fake.max_in_flight == 2
    assert fake.calls.count(10) == 1  # the failed attempt never reached the fake


async def test_the_page_awaited_next_gets_the_first_free_slot() -> None:
    fake = FakeUsers(_ids(100))
    attempts = _Attempts(fake, {10}, RetryPolicy.testing())
    pager = UserMetricsPager(attempts.fetch, page_size=10, concurrency=1, ascending_user_id=True)
    assert await _collect(pager) == _ids(100)
    # Page 10 gave its place to page 20 while it waited, then went before pages 30 to 90,
    # which had queued for a place long before it came back.
    assert fake.calls == [0, 20, 10, *range(30, 100, 10)]


@pytest.mark.parametrize(("concurrency", "buffer"), [(1, 0), (2, 3), (4, 4), (3, 10)])
async def test_the_reorder_buffer_bound_is_never_exceeded(concurrency: int, buffer: int) -> None:
    # Later pages answer first, and the caller dawdles, so fetched pages pile up ahead.
    delays = {offset: 0.001 * (offset % 30 == 0) for offset in range(0, 400, 10)}
    fake = FakeUsers(_ids(400), delays=delays)
    pager = UserMetricsPager(
        fake.fetch, page_size=10, concurrency=concurrency, ascending_user_id=True, buffer=buffer
    )
    delivered, ahead = 0, []
    async for _page in pager.pages():
        delivered += 1
        for _ in range(10):
            await asyncio.sleep(0)
        ahead.append(len(fake.calls) - delivered)
    assert delivered == 40
    assert max(ahead) == buffer
    assert fake.max_in_flight == min(concurrency, buffer + 1)


async def test_order_and_exactly_once_hold_under_random_faults_and_delays() -> None:
    import random

    rng = random.Random(7)
    offsets = range(0, 1000, 10)
    fake = FakeUsers(_ids(1000), delays={o: rng.random() / 500 for o in offsets})
    failing = {o for o in offsets if rng.random() < 0.3}
    attempts = _Attempts(fake, failing, RetryPolicy.testing())
    pager = UserMetricsPager(attempts.fetch, page_size=10, concurrency=8, ascending_user_id=True)
    async with pager:
        assert await _collect(pager) == _ids(1000)
    assert sorted(fake.calls) == list(offsets)
    assert fake.max_in_flight <= 8


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_a_bad_buffer_is_refused(bad: Any) -> None:
    with pytest.raises(InvalidRequestError) as info:
        UserMetricsPager(FakeUsers([]).fetch, page_size=10, concurrency=2,
                         ascending_user_id=True, buffer=bad)  # fmt: skip
    assert info.value.field == "buffer"
