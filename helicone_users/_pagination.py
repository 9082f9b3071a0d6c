"""The pager: ``await`` = first page, ``async for`` = users, bounded concurrency, order kept.

Two bounds, kept apart: ``concurrency`` places for requests in flight, each taken per attempt
(a request waiting out a retry's backoff gives its place up, see ``_retry.hold_slot``), and a
reorder buffer of pages fetched ahead of the one being delivered. Free places go to the lowest
offset waiting, so the page the caller waits for is never queued behind later ones.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import warnings
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from helicone_users._config import DEFAULT_BUFFER_PER_SLOT
from helicone_users._errors import CountChangedWarning, InvalidRequestError
from helicone_users._models import UserMetrics, UserMetricsPage
from helicone_users._retry import hold_slot

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

__all__ = ["UserMetricsPager", "gather_bounded"]

_T = TypeVar("_T")
FetchPage = Callable[[int, int], Awaitable[UserMetricsPage]]


class _Slots:
    """``limit`` places; a freed place goes to the waiter with the lowest priority number."""

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def acquire(self, priority: int) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (priority, next(self._order), waiter)
        heapq.heappush(self._waiters, entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a place, then cancelled: pass it on
            else:
                self._waiters.remove(entry)
                heapq.heapify(self._waiters)
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


class _Lease:
    """One request's claim on a place in ``_Slots``: released while its retry waits."""

    def __init__(self, slots: _Slots, priority: int) -> None:
        self._slots = slots
        self._priority = priority
        self._held = False

    async def acquire(self) -> None:
        await self._slots.acquire(self._priority)
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()


async def _in_slot(slots: _Slots, priority: int, call: Callable[[], Awaitable[_T]]) -> _T:
    """``call()`` holding a place of ``slots`` (given up while its retries wait)."""
    lease = _Lease(slots, priority)
    hold_slot(lease)  # this task's own context: only its retries see the lease
    await lease.acquire()
    try:
        return await call()
    finally:
        lease.release()


class _Seen:
    """Drops users already delivered: the last id for a user_id-ascending order, else a set."""

    def __init__(self, ascending_user_id: bool) -> None:
        self._ascending = ascending_user_id
        self._last: str | None = None
        self._ids: set[str] = set()

    def fresh(self, users: tuple[UserMetrics, ...]) -> tuple[UserMetrics, ...]:
        if self._ascending and self._ascends_past_last(users):
            return users
        kept: list[UserMetrics] = []
        for user in users:
            if self._ascending:
                if self._last is not None and user.user_id <= self._last:
                    continue
                self._last = user.user_id
            else:
                if user.user_id in self._ids:
                    continue
                self._ids.add(user.user_id)
            kept.append(user)
        return users if len(kept) == len(users) else tuple(kept)

    def _ascends_past_last(self, users: tuple[UserMetrics, ...]) -> bool:
        """The common case, checked without building a list: every id is new and above the
        one before (then the last is moved on)."""
        last = self._last
        for user in users:
            if last is not None and user.user_id <= last:
                return False
            last = user.user_id
        self._last = last
        return True


class _Source:
    """What the generators need: the fetch, the sizes, the first page, the tasks in flight.

    The generators reference this, never the pager, so that a pager dropped after ``break``
    is freed at once and its generators' finalizers cancel what is in flight.
    """

    def __init__(
        self,
        fetch: FetchPage,
        page_size: int,
        concurrency: int,
        buffer: int,
        offset: int,
        ascending: bool,
        eager: bool,
    ) -> None:
        self.eager = eager
        self.fetch = fetch
        self.page_size = page_size
        self.concurrency = concurrency
        self.buffer = buffer
        self.offset = offset
        self.ascending = ascending
        self.first: UserMetricsPage | None = None
        self.first_lock: asyncio.Lock | None = None
        self.in_flight: set[asyncio.Future[UserMetricsPage]] = set()

    async def first_page(self) -> UserMetricsPage:
        if self.first_lock is None:
            self.first_lock = asyncio.Lock()
        async with self.first_lock:
            if self.first is None:
                self.first = await self.fetch(self.offset, self.page_size)
            return self.first

    def start(self, offset: int, slots: _Slots) -> asyncio.Future[UserMetricsPage]:
        size = self.page_size
        task = asyncio.ensure_future(_in_slot(slots, offset, lambda: self.fetch(offset, size)))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)
        return task


class UserMetricsPager:
    """All users matching a query, fetched page by page with bounded concurrency.

    ``await pager`` gives the first page; ``async for user in pager`` gives every user once, in
    order; ``pager.pages()`` gives the pages. After the first page reveals ``count``, up to
    ``concurrency`` requests are in flight (a request waiting out a retry's backoff does not
    count), and up to ``buffer`` pages (default ``8 * concurrency``) are fetched ahead of the
    one being delivered, so that one slow or retried page does not stall the others; pages are
    yielded in offset order, so at most ``buffer`` pages wait in memory. Leaving early, use
    ``async with pager:`` or ``await pager.aclose()`` so that the requests in flight are
    cancelled at once::

        async with client.users.iter_metrics(filter=F.model.contains("gpt")) as pager:
            async for user in pager:
                ...
    """

    def __init__(
        self,
        fetch: FetchPage,
        *,
        page_size: int,
        concurrency: int,
        ascending_user_id: bool,
        offset: int = 0,
        eager: bool = False,
        buffer: int | None = None,
    ) -> None:
        ahead = DEFAULT_BUFFER_PER_SLOT * concurrency if buffer is None else buffer
        if not isinstance(ahead, int) or isinstance(ahead, bool) or ahead < 0:
            raise InvalidRequestError(
                f"buffer must be a whole number of pages >= 0, got {buffer!r}", field="buffer"
            )
        self._source = _Source(
            fetch, page_size, concurrency, ahead, offset, ascending_user_id, eager
        )
        self._open: list[AsyncGenerator[Any, None]] = []

    @property
    def page_size(self) -> int:
        """Users per request."""
        return self._source.page_size

    @property
    def concurrency(self) -> int:
        """Requests in flight at most."""
        return self._source.concurrency

    @property
    def buffer(self) -> int:
        """Pages fetched ahead of the one being delivered, at most."""
        return self._source.buffer

    def __repr__(self) -> str:
        return (
            f"UserMetricsPager(page_size={self.page_size}, concurrency={self.concurrency}, "
            f"buffer={self.buffer}, offset={self._source.offset})"
        )

    def __await__(self) -> Generator[Any, None, UserMetricsPage]:
        return self._source.first_page().__await__()

    async def first_page(self) -> UserMetricsPage:
        """The first page (fetched once, then kept)."""
        return await self._source.first_page()

    def pages(self) -> AsyncGenerator[UserMetricsPage, None]:
        """Every page in offset order, each holding only users not delivered before."""
        return self._track(_pages(self._source))

    def __aiter__(self) -> AsyncGenerator[UserMetrics, None]:
        return self._track(_users(self._source))

    def record_batches(self) -> AsyncGenerator[pa.RecordBatch, None]:
        """Every page as a ``pyarrow.RecordBatch`` with the schema of ``to_arrow()``, as the
        pages arrive: memory stays at the pages in flight. Needs the ``arrow`` extra."""
        from helicone_users._tables import page_batches, require_pyarrow

        require_pyarrow("record_batches()")
        return self._track(page_batches(self.pages()))

    async def to_arrow(self) -> pa.Table:
        """Every matching user as one ``pyarrow.Table`` (needs the ``arrow`` extra)::

            user_id                          string
            active_for                       int64      distinct UTC days with requests
            first_active, last_active        timestamp[ms, tz=UTC]
            total_requests                   int64
            average_requests_per_day_active  float64
            average_tokens_per_request       float64
            total_completion_tokens          int64
            total_prompt_tokens              int64
            cost                             float64    USD
            rate_limited_count               int64      null when the server omits it
        """
        from helicone_users._tables import USER_COLUMNS, collect

        return await collect(self.record_batches(), USER_COLUMNS)

    async def to_polars(self) -> pl.DataFrame:
        """Every matching user as a polars DataFrame (the columns of ``to_arrow()``); needs
        the ``polars`` extra."""
        from helicone_users._tables import require_frames, to_polars

        require_frames("polars")
        return to_polars(await self.to_arrow())

    async def to_pandas(self) -> pd.DataFrame:
        """Every matching user as a pandas DataFrame (the columns of ``to_arrow()``); needs
        the ``pandas`` extra."""
        from helicone_users._tables import require_frames, to_pandas

        require_frames("pandas")
        return to_pandas(await self.to_arrow())

    async def aclose(self) -> None:
        """Stop every iteration of this pager and cancel the requests in flight."""
        while self._open:
            await self._open.pop().aclose()
        await _cancel(list(self._source.in_flight))

    async def __aenter__(self) -> UserMetricsPager:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _track(self, generator: AsyncGenerator[_T, None]) -> AsyncGenerator[_T, None]:
        self._open.append(generator)
        return generator


async def _users(source: _Source) -> AsyncGenerator[UserMetrics, None]:
    async with contextlib.aclosing(_pages(source)) as pages:
        async for page in pages:
            for user in page.users:
                yield user


async def _pages(source: _Source) -> AsyncGenerator[UserMetricsPage, None]:
    seen = _Seen(source.ascending)
    page_size = source.page_size
    pending: collections.deque[tuple[int, asyncio.Future[UserMetricsPage]]] = collections.deque()
    next_offset = source.offset + page_size
    eager = source.eager and source.first is None
    # The first page's request takes no place: in eager mode, leave one for it meanwhile.
    slots = _Slots(source.concurrency - 1 if eager else source.concurrency)
    if eager:
        # Start the next pages with the first one, before its count is known: one round trip
        # fewer, at the price of requests for pages that may not exist.
        for _ in range(min(source.concurrency - 1, source.buffer)):
            pending.append((next_offset, source.start(next_offset, slots)))
            next_offset += page_size
    try:
        first = await source.first_page()
        count = first.count
        await _cancel([task for offset, task in pending if offset >= count])
        while pending and pending[-1][0] >= count:
            pending.pop()
            next_offset -= page_size
        if eager:
            slots.release()  # the first page's place
        yield _without_seen(first, seen)
        if _is_last(first, page_size):
            return
        while True:
            # The page awaited next plus ``buffer`` pages ahead of it.
            while len(pending) <= source.buffer and next_offset < count:
                pending.append((next_offset, source.start(next_offset, slots)))
                next_offset += page_size
            if not pending:
                return
            offset, task = pending.popleft()
            page = await task
            if page.count != count:
                _warn_count_changed(count, page.count, offset)
                count = page.count
                # Pages prefetched against the old total may be shifted: fetch them again.
                await _cancel([t for _, t in pending])
                pending.clear()
                next_offset = offset + page_size
            fresh = _without_seen(page, seen)
            if fresh.users:
                yield fresh
            if len(page.users) < page_size:
                return
    finally:
        await _cancel([t for _, t in pending])


def _without_seen(page: UserMetricsPage, seen: _Seen) -> UserMetricsPage:
    users = seen.fresh(page.users)
    return page if users is page.users else attrs.evolve(page, users=users)


def _is_last(page: UserMetricsPage, page_size: int) -> bool:
    return len(page.users) < page_size or page.offset + page_size >= page.count


def _warn_count_changed(before: int, after: int, offset: int) -> None:
    warnings.warn(
        CountChangedWarning(
            f"the number of matching users changed from {before} to {after} while paging "
            f"(at offset {offset}); users were de-duplicated and the following pages re-fetched. "
            "Pin time_range to a fixed window for a stable export."
        ),
        stacklevel=3,
    )


async def _cancel(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until they are finished, retrieving their outcomes."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # mark it retrieved: a failure after the caller stopped is moot


async def gather_bounded(
    calls: Sequence[Callable[[], Awaitable[_T]]], concurrency: int
) -> list[_T]:
    """Run ``calls`` with at most ``concurrency`` in flight; results in order; the first failure
    cancels the rest and is raised."""
    slots = _Slots(concurrency)
    tasks = [asyncio.ensure_future(_in_slot(slots, i, call)) for i, call in enumerate(calls)]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        await _cancel(tasks)


UserMetricsPager.__module__ = "helicone_users"
