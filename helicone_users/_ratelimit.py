"""Request budgets: the RateLimit protocol, an in-process limiter and one shared through Redis.

Both limiters run GCRA (the generic cell rate algorithm): a request is granted at its
"theoretical arrival time" minus the burst tolerance, and each grant moves that time on by one
emission interval, ``period * (1 + margin) / (count - burst + 1)``. So no span of ``period``
seconds ever holds more than ``count`` grants, even against a sliding window, and the margin
absorbs the network delaying one request more than another. GCRA keeps one number per budget,
which is what lets the Redis limiter grant in one atomic script step, with no lock to leave behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import attrs

from helicone_users._config import (
    DEFAULT_BUDGET_NAME,
    DEFAULT_RATE_MARGIN,
    LOGGER_NAME,
    REDIS_KEY_PREFIX,
)
from helicone_users._errors import APIConnectionError, InvalidRequestError
from helicone_users._retry import parse_retry_after

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "LocalRateLimit",
    "RateLimit",
    "RedisRateLimit",
    "ServerBudget",
    "rate_limit_from",
]

_log = logging.getLogger(LOGGER_NAME)


@runtime_checkable
class RateLimit(Protocol):
    """A request budget that clients draw from: ``LocalRateLimit`` (one process) and
    ``RedisRateLimit`` (every process that names the same budget) implement it.

    A client calls ``acquire()`` before each attempt, ``pause(seconds)`` when the server says
    the budget is spent (a 429 or ``RateLimit-Remaining: 0``), and ``adopt(count, period)`` when
    the server announces a stricter budget (``RateLimit-Policy``). A limit passed to a client is
    the caller's: the client never closes it.
    """

    async def acquire(self) -> None:
        """Wait until one more request fits the budget, and count it."""
        ...

    async def pause(self, seconds: float) -> None:
        """Grant nothing for the next ``seconds``."""
        ...

    def adopt(self, count: int, period: float) -> None:
        """Use ``count`` requests per ``period`` seconds from now on, if that is stricter."""
        ...

    async def aclose(self) -> None:
        """Release what the limit holds (connections); idempotent."""
        ...


@attrs.frozen
class _Pace:
    """The GCRA numbers of ``count`` requests per ``period`` seconds."""

    count: int
    period: float
    burst: int
    margin: float

    @property
    def interval(self) -> float:
        """Seconds between grants once the burst is spent."""
        return self.period * (1.0 + self.margin) / (self.count - self.burst + 1)

    @property
    def tolerance(self) -> float:
        """How far ahead of its theoretical time a grant may come (the burst)."""
        return (self.burst - 1) * self.interval

    def stricter(self, count: int, period: float) -> _Pace | None:
        """This pace at ``count`` per ``period`` if that allows fewer requests, else ``None``."""
        if count < 1 or period <= 0 or count / period >= self.count / self.period:
            return None
        return _Pace(count, period, min(self.burst, count), self.margin)


def _pace(count: Any, period: Any, burst: Any, margin: Any) -> _Pace:
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise InvalidRequestError(
            f"rate_limit count must be an integer >= 1, got {count!r}", field="rate_limit"
        )
    if not isinstance(period, (int, float)) or isinstance(period, bool) or not period > 0:
        raise InvalidRequestError(
            f"rate_limit period must be seconds > 0, got {period!r}", field="rate_limit"
        )
    if not isinstance(burst, int) or isinstance(burst, bool) or not 1 <= burst <= count:
        raise InvalidRequestError(
            f"burst must be an integer from 1 to the count ({count}), got {burst!r}",
            field="burst",
        )
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not 0 <= margin < 1:
        raise InvalidRequestError(
            f"margin must be a fraction from 0 to below 1, got {margin!r}", field="margin"
        )
    return _Pace(count, float(period), burst, float(margin))


class _Paced:
    """What both limiters share: the pace, its numbers, and adopting a stricter one."""

    _pace: _Pace

    @property
    def count(self) -> int:
        """Requests per period."""
        return self._pace.count

    @property
    def period(self) -> float:
        """The period in seconds."""
        return self._pace.period

    def adopt(self, count: int, period: float) -> None:
        """Use ``count`` requests per ``period`` seconds from now on, if that is stricter."""
        stricter = self._pace.stricter(count, period)
        if stricter is not None:
            _log.warning(
                "the server allows %d requests per %g s, fewer than this limit's %d per %g s: "
                "using the server's",
                count,
                period,
                self._pace.count,
                self._pace.period,
            )
            self._pace = stricter


class LocalRateLimit(_Paced):
    """At most ``count`` requests in any ``period`` seconds, for every client in this process
    that shares the object; waiters are served in arrival order.

    Grants are spaced evenly (GCRA), one every ``period * (1 + margin) / count`` seconds, so that
    a server counting the same numbers in a sliding window never refuses one; ``burst`` lets
    that many go at once, at the price of a slower steady pace. ``rate_limit=(200, 60)`` on a
    client builds one of these. Use it from one event loop. Example::

        budget = LocalRateLimit(200, 60)
        users = AsyncHeliconeUsers(rate_limit=budget)
    """

    def __init__(
        self,
        count: int,
        period: float,
        *,
        burst: int = 1,
        margin: float = DEFAULT_RATE_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._pace = _pace(count, period, burst, margin)
        self._clock = clock
        self._sleep = sleep
        self._tat = float("-inf")  # the theoretical arrival time of the next request
        self._lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        pace = self._pace
        return f"LocalRateLimit({pace.count}, {pace.period:g}, burst={pace.burst})"

    async def acquire(self) -> None:
        """Wait for a grant; waiters are served in arrival order (asyncio.Lock is FIFO)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                pace, now = self._pace, self._clock()
                wait = self._tat - pace.tolerance - now
                if wait <= 0:
                    self._tat = max(self._tat, now) + pace.interval
                    return
                # A pause arriving meanwhile moves the time on: look again after the sleep.
                await self._sleep(wait)

    async def pause(self, seconds: float) -> None:
        """Grant nothing for the next ``seconds``."""
        self._tat = max(self._tat, self._clock() + seconds + self._pace.tolerance)

    async def aclose(self) -> None:
        """Nothing to release; here for the protocol."""


# --- Redis ---------------------------------------------------------------------------------------

# One GCRA step, reserving the next grant: returns the microseconds to wait before sending.
# Redis's own clock is used, so hosts whose clocks disagree still share one budget.
_GRANT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
local next_tat = tat + interval
local ttl = math.ceil((next_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', ttl)
return math.floor(wait)
"""

# Grant nothing for ARGV[1] microseconds: move the theoretical arrival time past the pause.
_PAUSE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local until_tat = now + tonumber(ARGV[1]) + tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < until_tat then
  local ttl = math.ceil((until_tat - now) / 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.0f', until_tat), 'PX', ttl)
end
return 0
"""


class RedisRateLimit(_Paced):
    """One budget shared by every process and host that names it: at most ``count`` requests
    in any ``period`` seconds, granted by one atomic GCRA step in Redis per request.

    ``url`` is a Redis URL (``redis://host:6379/0``) or a ``redis.asyncio.Redis`` client (then
    never closed here). ``name`` names the budget, e.g. the organisation; processes sharing the
    URL and the name share the budget. Needs the ``redis`` extra. Close it after the clients
    that use it (``async with`` or ``aclose()``). Example::

        async with RedisRateLimit("redis://localhost:6379/0", 200, 60, name="acme") as budget:
            async with AsyncHeliconeUsers(rate_limit=budget) as client:
                ...

    The key holds one number and expires once the budget is idle again; a request cancelled
    while it waits gives up its grant, and never leaves a lock behind. A pause (a spent budget)
    reaches every process; a stricter budget announced by the server is adopted by each process
    as it sees it.
    """

    def __init__(
        self,
        url: str | Redis,
        count: int,
        period: float,
        *,
        name: str = DEFAULT_BUDGET_NAME,
        burst: int = 1,
        margin: float = DEFAULT_RATE_MARGIN,
        key_prefix: str = REDIS_KEY_PREFIX,
    ) -> None:
        self._pace = _pace(count, period, burst, margin)
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(
                f"name must be a non-empty string, got {name!r}", field="name"
            )
        self.key = key_prefix + name
        self._redis, self._owns = _redis_client(url)
        self._where = _safe_url(url) if isinstance(url, str) else repr(url)
        self._grant = self._redis.register_script(_GRANT)
        self._pause_script = self._redis.register_script(_PAUSE)
        self._lock: asyncio.Lock | None = None
        self._paused_until = 0.0  # this process's own pauses, in time.monotonic()
        self._closed = False

    def __repr__(self) -> str:
        pace = self._pace
        return (
            f"RedisRateLimit({self._where!r}, {pace.count}, {pace.period:g}, key={self.key!r}, "
            f"burst={pace.burst})"
        )

    async def __aenter__(self) -> RedisRateLimit:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def acquire(self) -> None:
        """Reserve the next grant in Redis and wait for its time; this process's waiters queue
        in arrival order, and the processes interleave in the order they reserved."""
        if self._closed:
            raise APIConnectionError(f"{self!r} is closed; create a new one")
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                paused_until = self._paused_until
                wait = await self._run(self._grant, self._micros(self._pace.interval))
                if wait > 0:
                    await asyncio.sleep(wait / 1e6)
                if self._paused_until == paused_until:
                    return
                # Paused while waiting: this grant fell inside the pause; take one after it.

    async def pause(self, seconds: float) -> None:
        """Grant nothing, in any process sharing the budget, for the next ``seconds``."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
        await self._run(self._pause_script, self._micros(seconds))

    async def aclose(self) -> None:
        """Close the Redis connections (unless the client was passed in); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns:
            await self._redis.aclose()
            await self._redis.connection_pool.disconnect()

    def _micros(self, seconds: float) -> int:
        return max(0, round(seconds * 1e6))

    async def _run(self, script: Any, first: int) -> int:
        args = [first, self._micros(self._pace.tolerance)]
        try:
            return int(await script(keys=[self.key], args=args))
        except _redis_errors() as exc:
            raise APIConnectionError(
                f"the rate limit store {self._where} failed ({type(exc).__name__}: {exc}); "
                "check that Redis is running and the URL"
            ) from exc


def _redis_client(url: Any) -> tuple[Redis, bool]:
    try:
        import redis.asyncio as redis_asyncio
    except ImportError:
        raise InvalidRequestError(
            "RedisRateLimit needs redis-py: pip install 'helicone-users[redis]'", field="url"
        ) from None
    if isinstance(url, redis_asyncio.Redis):
        return url, False
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise InvalidRequestError(
            f"url must be a Redis URL such as 'redis://localhost:6379/0' or a "
            f"redis.asyncio.Redis, got {_safe_url(url) if isinstance(url, str) else url!r}",
            field="url",
        )
    return redis_asyncio.Redis.from_url(url), True


def _redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError

    return (RedisError, OSError)


def _safe_url(url: str) -> str:
    """``url`` with its password blanked, for messages and reprs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


# --- What the server says about the budget -------------------------------------------------------


@attrs.frozen
class ServerBudget:
    """The draft-6 ``RateLimit-*`` headers of one answer (each ``None`` when absent)."""

    limit: int | None
    remaining: int | None
    reset: float | None
    window: float | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> ServerBudget | None:
        """The budget an answer states, or ``None`` when it carries no ``RateLimit-*`` header."""
        get = headers.get
        remaining, limit = get("RateLimit-Remaining"), get("RateLimit-Limit")
        reset, policy = get("RateLimit-Reset"), get("RateLimit-Policy")
        if remaining is None and limit is None and reset is None and policy is None:
            return None
        return cls(
            limit=_whole(limit),
            remaining=_whole(remaining),
            reset=_seconds(reset),
            window=_policy_window(policy),
        )

    def pause_after(self, status: int, headers: Mapping[str, str]) -> float | None:
        """How long every request must wait after this answer, or ``None``.

        A 429 waits what the server asks (``Retry-After``, else ``RateLimit-Reset``). A success
        that spent the last request waits for the reset; ``RateLimit-Reset`` is whole seconds
        rounded up, so the budget frees somewhere in its last second: wait until that second.
        """
        if status == 429:
            return parse_retry_after(headers)
        if self.remaining != 0 or self.reset is None:
            return None
        if self.reset.is_integer():
            return max(0.0, self.reset - 1.0)
        return self.reset


def _whole(text: str | None) -> int | None:
    try:
        return None if text is None else int(text.strip())
    except ValueError:
        return None


def _seconds(text: str | None) -> float | None:
    try:
        value = None if text is None else float(text.strip())
    except ValueError:
        return None
    return value if value is not None and 0 <= value < float("inf") else None


def _policy_window(policy: str | None) -> float | None:
    """The ``w`` of the first item of ``RateLimit-Policy: 200;w=60``."""
    if policy is None:
        return None
    for parameter in policy.split(",", 1)[0].split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        if key.strip().lower() == "w":
            return _seconds(value)
    return None


def rate_limit_from(value: tuple[int, float] | RateLimit | None) -> RateLimit | None:
    """The limiter a client's ``rate_limit=`` argument asks for."""
    if value is None or isinstance(value, RateLimit):
        return value
    try:
        count, period = value
    except (TypeError, ValueError):
        raise InvalidRequestError(
            "rate_limit must be (requests, seconds), e.g. (200, 60), or a RateLimit such as "
            f"RedisRateLimit(url, 200, 60), got {value!r}",
            field="rate_limit",
        ) from None
    return LocalRateLimit(count, period)


for _cls in (LocalRateLimit, RateLimit, RedisRateLimit):
    _cls.__module__ = "helicone_users"
del _cls
