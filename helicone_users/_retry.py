"""RetryPolicy: a frozen value over a hidden tenacity, with Retry-After and a test mode."""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Protocol, TypeVar

import aiohttp
import attrs
import tenacity

from helicone_users._config import (
    DEFAULT_MAX_ATTEMPTS,
    LOGGER_NAME,
    RETRY_AFTER_CAP,
    RETRY_INITIAL_DELAY,
    RETRY_MAX_DELAY,
    RETRYABLE_STATUSES,
)
from helicone_users._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    InvalidRequestError,
    RateLimitError,
)

__all__ = [
    "RetryPolicy",
    "Slot",
    "hold_slot",
    "is_testing",
    "parse_retry_after",
    "set_testing",
    "states_budget",
]

_T = TypeVar("_T")
_log = logging.getLogger(LOGGER_NAME)

# Every 5xx except "not implemented" and "version not supported", which never heal by waiting.
_DEFAULT_RETRY_STATUSES = frozenset(RETRYABLE_STATUSES | set(range(500, 600))) - {501, 505}

# Transport failures that a second attempt cannot fix: a bad URL, a redirect loop, a bad cert.
_PERMANENT_TRANSPORT = (
    aiohttp.InvalidURL,
    aiohttp.RedirectClientError,
    aiohttp.NonHttpUrlClientError,
    aiohttp.TooManyRedirects,
    aiohttp.ClientConnectorCertificateError,
    aiohttp.ServerFingerprintMismatch,
)

_testing = False


class Slot(Protocol):
    """A place among the requests allowed in flight, given up while a retry waits."""

    def release(self) -> None:
        """Give the place up (a no-op when not held)."""
        ...

    async def acquire(self) -> None:
        """Wait for a place and take it."""
        ...


_slot: contextvars.ContextVar[Slot | None] = contextvars.ContextVar(
    "helicone_users_slot", default=None
)


def hold_slot(slot: Slot | None) -> None:
    """Declare that the current task holds ``slot``: retry waits in it give the slot up and
    take it back before the next attempt, so a request waiting out a backoff holds no place."""
    _slot.set(slot)


_BUDGET_HEADERS = ("ratelimit-remaining", "ratelimit-limit", "ratelimit-reset", "ratelimit-policy")


def states_budget(headers: Mapping[str, str]) -> bool:
    """Whether an answer states a request budget (any draft-6 ``RateLimit-*`` header)."""
    return any(key.lower() in _BUDGET_HEADERS for key in headers)


def set_testing(testing: bool) -> None:
    """Switch every RetryPolicy to never sleep between attempts (for test suites)."""
    global _testing
    _testing = bool(testing)


def is_testing() -> bool:
    """Whether ``set_testing(True)`` is in force."""
    return _testing


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The server's requested wait in seconds, from ``retry-after-ms``, ``Retry-After`` or
    ``RateLimit-Reset``; ``None`` if it gave none that parses."""
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = _number(lowered.get("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000.0)
    retry_after = lowered.get("retry-after")
    if retry_after is not None:
        seconds = _number(retry_after)
        if seconds is None:
            seconds = _seconds_until_http_date(retry_after, now)
        if seconds is not None:
            return max(0.0, seconds)
    reset = _number(lowered.get("ratelimit-reset"))
    return None if reset is None else max(0.0, reset)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def _seconds_until_http_date(text: str, now: float | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp() - (time.time() if now is None else now)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How failed requests are retried: which failures, how often, how long to wait.

    Retries connection errors, timeouts and the statuses in ``retry_statuses`` (408, 409, 429,
    and 5xx but 501/505), never other 4xx. Waits use full-jitter exponential backoff from
    ``initial_delay`` capped at ``max_delay``; a server's ``Retry-After`` (seconds or HTTP date),
    ``retry-after-ms`` or ``RateLimit-Reset`` wins, and a wait longer than ``retry_after_cap``
    raises at once instead. Example::

        AsyncHeliconeUsers(retry=RetryPolicy(max_attempts=6, max_delay=20))
    """

    max_attempts: int = attrs.field(default=DEFAULT_MAX_ATTEMPTS)
    initial_delay: float = RETRY_INITIAL_DELAY
    max_delay: float = RETRY_MAX_DELAY
    retry_after_cap: float = RETRY_AFTER_CAP
    retry_statuses: frozenset[int] = attrs.field(
        default=_DEFAULT_RETRY_STATUSES, converter=frozenset, repr=lambda s: _ranges(s)
    )
    sleep: bool = True

    @max_attempts.validator
    def _check_attempts(self, _attribute: attrs.Attribute[int], value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidRequestError(
                f"max_attempts must be an integer >= 1, got {value!r}", field="max_attempts"
            )

    def __attrs_post_init__(self) -> None:
        for name in ("initial_delay", "max_delay", "retry_after_cap"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise InvalidRequestError(
                    f"{name} must be a number of seconds >= 0, got {value!r}", field=name
                )

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """One attempt, no retries."""
        return cls(max_attempts=1)

    @classmethod
    def testing(cls, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> RetryPolicy:
        """The default policy that computes waits but never sleeps (for tests)."""
        return cls(max_attempts=max_attempts, sleep=False)

    def without_sleep(self) -> RetryPolicy:
        """This policy, computing waits but never sleeping."""
        return attrs.evolve(self, sleep=False)

    @staticmethod
    def set_testing(testing: bool) -> None:
        """Switch every policy, the clients' defaults included, to never sleep between attempts:
        for test suites that drive a client they do not construct (``set_testing(False)`` undoes
        it)."""
        set_testing(testing)

    @property
    def sleeps(self) -> bool:
        """Whether waits are slept (``False`` in the test modes)."""
        return self.sleep and not _testing

    def should_retry(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt (the attempt budget aside)."""
        if isinstance(exc, APIConnectionError):
            return not isinstance(exc.__cause__, _PERMANENT_TRANSPORT)
        if isinstance(exc, APIStatusError) and exc.status in self.retry_statuses:
            wait = _server_wait(exc)
            return wait is None or wait <= self.retry_after_cap
        return False

    def backoff(self, attempt: int, exc: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if exc is not None:
            wait = _server_wait(exc)
            if wait is not None:
                return min(wait, self.retry_after_cap)
        ceiling = min(self.max_delay, self.initial_delay * 2 ** (attempt - 1))
        return random.uniform(0.0, ceiling)

    async def call(self, attempt: Callable[[], Awaitable[_T]], *, what: str = "request") -> _T:
        """Run ``attempt`` until it succeeds or the policy gives up; raises the last error."""
        # The first attempt runs bare: most requests succeed at once, and building tenacity's
        # machinery for each of them is most of the SDK's per-request overhead.
        try:
            return await attempt()
        except Exception as exc:
            if self.max_attempts == 1 or not self.should_retry(exc):
                raise
            first_failure = exc
        wait = self.backoff(1, first_failure)
        self._log(what, first_failure, 1, wait)
        await self._sleep(wait)
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.max_attempts - 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception(self.should_retry),
            sleep=self._sleep,
            before_sleep=lambda state: self._log_retry(state, what),
            reraise=True,
        )

        async def run() -> _T:
            # tenacity awaits only what a coroutine function returns, not a lambda's coroutine.
            return await attempt()

        result: _T = await retrying(run)
        return result

    # tenacity numbers the attempts it runs from 1; they are attempts 2.. of the request.

    def _wait(self, state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        return self.backoff(state.attempt_number + 1, exc)

    def _log_retry(self, state: tenacity.RetryCallState, what: str) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        self._log(what, exc, state.attempt_number + 1, wait)

    def _log(self, what: str, exc: BaseException | None, attempt: int, wait: float) -> None:
        # A spent budget is logged once by the session that pauses for it, not per request.
        level = logging.DEBUG if _refused_by_budget(exc) else logging.WARNING
        waiting = f"waiting {wait:.2f} s" if self.sleeps else f"test mode: not waiting {wait:.2f} s"
        _log.log(
            level,
            "retrying %s after %s (attempt %d/%d failed; %s)",
            what,
            _reason(exc),
            attempt,
            self.max_attempts,
            waiting,
        )

    async def _sleep(self, seconds: float) -> None:
        slot = _slot.get()
        if slot is not None:
            slot.release()
        await asyncio.sleep(seconds if self.sleeps else 0)
        if slot is not None:
            await slot.acquire()


def _server_wait(exc: BaseException) -> float | None:
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        return exc.retry_after
    if isinstance(exc, APIStatusError):
        return parse_retry_after(exc.headers)
    return None


def _refused_by_budget(exc: BaseException | None) -> bool:
    return isinstance(exc, RateLimitError) and states_budget(exc.headers)


def _ranges(statuses: Iterable[int]) -> str:
    """``{408, 409, 429, 500, 502-504, 506-599}``: runs of three or more as ranges."""
    runs: list[list[int]] = []
    for status in sorted(statuses):
        if runs and status == runs[-1][-1] + 1:
            runs[-1].append(status)
        else:
            runs.append([status])
    parts = [
        f"{run[0]}-{run[-1]}" if len(run) > 2 else ", ".join(map(str, run)) for run in runs
    ]
    return "{" + ", ".join(parts) + "}"


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, APIStatusError):
        return f"status {exc.status}"
    if isinstance(exc, APIError) and exc.__cause__ is not None:
        return f"{type(exc).__name__} ({type(exc.__cause__).__name__})"
    return type(exc).__name__ if exc is not None else "unknown failure"


RetryPolicy.__module__ = "helicone_users"
