"""Blocking facades over the async clients, for scripts and notebooks.

Each facade owns a private event loop running in a background thread and submits the async
client's own coroutines to it, so there is one implementation and it works even where an event
loop is already running (Jupyter)::

    from helicone_users import HeliconeUsers, U

    with HeliconeUsers() as client:  # HELICONE_API_KEY
        page = client.users.metrics(U.cost > 1, sort=("cost", "desc"), limit=10)
        for user in client.users.iter_metrics():
            print(user.user_id, user.cost)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Concatenate,
    Generic,
    Literal,
    ParamSpec,
    TypeVar,
)

import aiohttp

from helicone_users._client import AsyncHeliconeUsers, Users
from helicone_users._config import DEFAULT_CONCURRENCY, DEFAULT_REGION, DEFAULT_TIMEOUT
from helicone_users._models import UserMetrics, UserMetricsPage
from helicone_users._pagination import UserMetricsPager
from helicone_users._ratelimit import RateLimit
from helicone_users._retry import RetryPolicy
from helicone_users.weave import AsyncWeaveStats

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

__all__ = ["HeliconeUsers", "SyncMetricsPager", "SyncPager", "SyncUsers", "WeaveStats"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_Client = TypeVar("_Client", bound="_BlockingClient")
_Item = TypeVar("_Item")


class _LoopThread:
    """An event loop serving one facade from a daemon thread; ``run`` blocks on a coroutine."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    @property
    def closed(self) -> bool:
        """True once ``stop`` has run."""
        return self._closed

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the loop thread and return its result (or raise its exception)."""
        if self._closed:
            coro.close()
            raise RuntimeError("this client is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a blocking client cannot be called from its own event loop")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except (KeyboardInterrupt, concurrent.futures.CancelledError):
            # Ctrl-C in the caller: stop the work in the loop too, then let the interrupt go on.
            future.cancel()
            raise

    def stop(self) -> None:
        """Finish async generators, stop the loop, join the thread and close the loop."""
        with self._lock:
            if self._closed:
                return
            try:
                self.run(self._loop.shutdown_asyncgens())
                self.run(self._loop.shutdown_default_executor())
            finally:
                self._closed = True
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join()
                self._loop.close()


async def _await(awaitable: Awaitable[_T]) -> _T:
    return await awaitable


class _Facade:
    """Base of the blocking wrappers: the loop thread and the async object they forward to."""

    _runner: _LoopThread
    _target: Any

    def _run(self, awaitable: Awaitable[_T]) -> _T:
        if self._runner.closed:
            if isinstance(awaitable, Coroutine):
                awaitable.close()  # never started: no "never awaited" warning
            raise RuntimeError("this client is closed")
        return self._runner.run(_await(awaitable))


def _blocking(
    method: Callable[Concatenate[Any, _P], Coroutine[Any, Any, _T]],
) -> Callable[Concatenate[_Facade, _P], _T]:
    """The blocking twin of an async method: same signature and docs, runs on the loop thread."""
    name = method.__name__

    @functools.wraps(method)
    def call(self: _Facade, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        result: _T = self._run(getattr(self._target, name)(*args, **kwargs))
        return result

    return call


class SyncPager(Generic[_Item]):
    """A plain iterator backed by an async pager or async iterator running on the loop thread.

    Closed when exhausted, by ``close()``, by ``with``, or when its client closes.
    """

    def __init__(self, owner: _Registry, source: Callable[[], AsyncIterator[_Item]]) -> None:
        self._owner = owner
        self._source = source
        self._iterator: AsyncIterator[_Item] | None = None
        self._done = False
        owner.track(self)

    def __iter__(self) -> SyncPager[_Item]:
        return self

    def __next__(self) -> _Item:
        if self._done:
            raise StopIteration
        try:
            return self._owner.runner.run(self._next())
        except StopAsyncIteration:
            self._finish()
            raise StopIteration from None
        except BaseException:
            # The async iterator is finished once it has raised; so is this one.
            self._finish()
            raise

    def _finish(self) -> None:
        self._done = True
        self._owner.untrack(self)

    async def _next(self) -> _Item:
        if self._iterator is None:
            self._iterator = self._source()
        return await self._iterator.__anext__()

    def close(self) -> None:
        """Stop iterating and cancel what the pager has in flight."""
        if self._done:
            return
        self._finish()
        if self._iterator is not None and not self._owner.runner.closed:
            self._owner.runner.run(_aclose(self._iterator))

    def __enter__(self) -> SyncPager[_Item]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _aclose(iterator: AsyncIterator[Any]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class _Registry:
    """The loop thread of one client and the pagers still open on it."""

    def __init__(self, name: str) -> None:
        self.runner = _LoopThread(name)
        self._open: weakref.WeakSet[SyncPager[Any]] = weakref.WeakSet()

    def track(self, pager: SyncPager[Any]) -> None:
        self._open.add(pager)

    def untrack(self, pager: SyncPager[Any]) -> None:
        self._open.discard(pager)

    def close(self, aclose: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Close open pagers, then the async client, then stop the loop thread."""
        if self.runner.closed:
            return
        try:
            for pager in list(self._open):
                pager.close()
            self.runner.run(aclose())
        finally:
            self.runner.stop()


class SyncMetricsPager(SyncPager[UserMetrics]):
    """Every matching user, blocking: iterate for users, ``pages()`` for pages,
    ``first_page()`` for the first page only. Close it (or use ``with``) when leaving early."""

    def __init__(self, owner: _Registry, pager: UserMetricsPager) -> None:
        super().__init__(owner, pager.__aiter__)
        self._pager = pager

    def __repr__(self) -> str:
        return f"SyncMetricsPager(page_size={self._pager.page_size})"

    def first_page(self) -> UserMetricsPage:
        """The first page (fetched once, then kept)."""
        return self._owner.runner.run(self._pager.first_page())

    def pages(self) -> SyncPager[UserMetricsPage]:
        """Every page in offset order, as a plain iterator."""
        return SyncPager(self._owner, self._pager.pages)

    def record_batches(self) -> SyncPager[pa.RecordBatch]:
        """Every page as a ``pyarrow.RecordBatch``, as a plain iterator (memory stays at the
        pages in flight); needs the ``arrow`` extra."""
        from helicone_users._tables import require_pyarrow

        require_pyarrow("record_batches()")
        return SyncPager(self._owner, self._pager.record_batches)

    def to_arrow(self) -> pa.Table:
        """Every matching user as one ``pyarrow.Table``; the schema of
        :meth:`UserMetricsPager.to_arrow`."""
        return self._owner.runner.run(self._pager.to_arrow())

    def to_polars(self) -> pl.DataFrame:
        """Every matching user as a polars DataFrame; needs the ``polars`` extra."""
        return self._owner.runner.run(self._pager.to_polars())

    def to_pandas(self) -> pd.DataFrame:
        """Every matching user as a pandas DataFrame; needs the ``pandas`` extra."""
        return self._owner.runner.run(self._pager.to_pandas())

    def close(self) -> None:
        """Stop every iteration of this pager and cancel the requests in flight."""
        super().close()
        if not self._owner.runner.closed:
            self._owner.runner.run(self._pager.aclose())

    def __enter__(self) -> SyncMetricsPager:
        return self


def _paging(
    method: Callable[Concatenate[Users, _P], UserMetricsPager],
) -> Callable[Concatenate[SyncUsers, _P], SyncMetricsPager]:
    """The blocking twin of ``Users.iter_metrics``: same arguments, a plain iterator back."""

    @functools.wraps(method)
    def call(self: SyncUsers, /, *args: _P.args, **kwargs: _P.kwargs) -> SyncMetricsPager:
        return SyncMetricsPager(self._registry, method(self._target, *args, **kwargs))

    return call


class SyncUsers(_Facade):
    """The ``/v1/user/*`` endpoints, blocking, as ``HeliconeUsers(...).users``."""

    def __init__(self, registry: _Registry, target: Users) -> None:
        self._registry = registry
        self._runner = registry.runner
        self._target = target

    def __repr__(self) -> str:
        return f"Sync{self._target!r}"

    metrics = _blocking(Users.metrics)
    overview = _blocking(Users.overview)
    query = _blocking(Users.query)
    iter_metrics = _paging(Users.iter_metrics)


class _BlockingClient(_Facade):
    """The shell both blocking clients share: open the async client on a private loop thread,
    ``close()`` / ``with``, and a repr showing the base URL."""

    _thread_name: ClassVar[str]

    def _start(self, cls: Callable[..., Any], api_key: str | None, options: dict[str, Any]) -> None:
        self._registry = _Registry(self._thread_name)
        self._runner = self._registry.runner
        try:
            self._target = self._runner.run(_open(cls, api_key, options))
        except BaseException:
            self._runner.stop()
            raise

    @property
    def base_url(self) -> str:
        """The API root every path is joined to."""
        return str(self._target.base_url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def close(self) -> None:
        """Close open pagers and the connection pool, then stop and join the background
        thread; idempotent."""
        self._registry.close(self._target.aclose)

    def __enter__(self: _Client) -> _Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class HeliconeUsers(_BlockingClient):
    """Blocking client for Helicone's user-metrics endpoints, for scripts and notebooks.

    The same arguments and methods as :class:`AsyncHeliconeUsers`, without ``await``; it runs
    the async client on a private event loop in a background thread, so it also works inside
    Jupyter's running loop. Close it with ``close()`` or ``with``::

        with HeliconeUsers(region="eu") as client:   # key from HELICONE_API_KEY
            top = client.users.metrics(sort=("cost", "desc"), limit=10)
            for user in client.users.iter_metrics(F.model.contains("gpt")):
                print(user.user_id, user.cost)

    The endpoints are the methods of ``client.users``, as on the async client:
    ``client.users.metrics(...)`` (one page), ``client.users.iter_metrics(...)`` (a plain
    iterator over every user; ``.pages()``, ``.first_page()``, ``.close()``),
    ``client.users.overview(...)`` (histograms) and ``client.users.query(user_ids)`` (totals).
    """

    _thread_name = "helicone-users-sync"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        region: Literal["us", "eu"] = DEFAULT_REGION,
        base_url: str | None = None,
        timeout: float | aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        rate_limit: tuple[int, float] | RateLimit | None = None,
    ) -> None:
        options: dict[str, Any] = {
            "region": region,
            "base_url": base_url,
            "timeout": timeout,
            "retry": retry,
            "max_concurrency": max_concurrency,
            "rate_limit": rate_limit,
        }
        self._start(AsyncHeliconeUsers, api_key, options)
        self.users = SyncUsers(self._registry, self._target.users)


class WeaveStats(_BlockingClient):
    """Blocking twin of :class:`AsyncWeaveStats`; same arguments, same results.

    Example::

        with WeaveStats() as weave:  # WANDB_API_KEY
            stats = weave.call_stats("entity/project", start=week_ago)
    """

    _thread_name = "helicone-users-weave"

    def __init__(self, api_key: str | None = None, **kwargs: Any) -> None:
        self._start(AsyncWeaveStats, api_key, kwargs)

    call_stats = _blocking(AsyncWeaveStats.call_stats)
    call_stats_raw = _blocking(AsyncWeaveStats.call_stats_raw)


async def _open(cls: Callable[..., _T], api_key: str | None, kwargs: dict[str, Any]) -> _T:
    # Built and entered inside the loop thread, so the connection pool binds to our loop.
    client = cls(api_key, **kwargs)
    enter = getattr(client, "__aenter__", None)
    if enter is not None:
        await enter()
    return client


for _cls in (HeliconeUsers, WeaveStats):
    _cls.__module__ = "helicone_users"
del _cls
