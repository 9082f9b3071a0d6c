"""RetryPolicy: what is retried, how long it waits, and that tests never sleep."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from typing import Any

import aiohttp
import pytest

from helicone_users import _retry
from helicone_users._errors import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    HeliconeAPIError,
    InternalServerError,
    InvalidRequestError,
    RateLimitError,
    ResponseValidationError,
)
from helicone_users._retry import RetryPolicy, parse_retry_after


def _status(cls: type[Any], status: int, headers: dict[str, str] | None = None) -> Any:
    return cls("boom", status=status, method="POST", path="/x", headers=headers or {})


def _connection_error(cause: BaseException) -> APIConnectionError:
    error = APIConnectionError("down", method="POST", path="/x")
    error.__cause__ = cause
    return error


class _Flaky:
    """Raises the given errors in turn, then returns "ok"; counts the calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Records every real sleep a policy asks for; none may happen with sleep=False."""
    recorded: list[float] = []
    original = asyncio.sleep

    async def fake_sleep(seconds: float, result: Any = None) -> Any:
        recorded.append(seconds)
        return await original(0, result)

    monkeypatch.setattr("helicone_users._retry.asyncio.sleep", fake_sleep)
    return recorded


def test_retry_policy_is_a_frozen_value_with_documented_defaults() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 4
    assert policy.initial_delay == 0.5
    assert policy.max_delay == 8.0
    assert policy.retry_after_cap == 60.0
    assert {408, 409, 429, 500, 502, 503, 504} <= policy.retry_statuses
    assert 501 not in policy.retry_statuses
    assert policy == RetryPolicy()
    with pytest.raises(AttributeError):
        policy.max_attempts = 2  # type: ignore[misc]


def test_disabled_policy_makes_one_attempt() -> None:
    assert RetryPolicy.disabled().max_attempts == 1


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_max_attempts_below_one_is_refused(bad: Any) -> None:
    with pytest.raises(InvalidRequestError) as info:
        RetryPolicy(max_attempts=bad)
    assert info.value.field == "max_attempts"


def test_negative_delay_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidRequestError) as info:
        RetryPolicy(max_delay=-1)
    assert info.value.field == "max_delay"


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses_are_retried(status: int) -> None:
    assert RetryPolicy().should_retry(_status(InternalServerError, status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 501])
def test_other_client_errors_are_never_retried(status: int) -> None:
    assert not RetryPolicy().should_retry(_status(BadRequestError, status))


def test_connection_errors_and_timeouts_are_retried() -> None:
    policy = RetryPolicy()
    assert policy.should_retry(_connection_error(aiohttp.ServerDisconnectedError()))
    assert policy.should_retry(APITimeoutError("slow", method="POST", path="/x"))


def test_a_bad_url_is_not_retried() -> None:
    assert not RetryPolicy().should_retry(_connection_error(aiohttp.InvalidURL("nope")))


def test_envelope_errors_and_bad_bodies_are_not_retried() -> None:
    policy = RetryPolicy()
    assert not policy.should_retry(HeliconeAPIError("x", error="No request count found"))
    assert not policy.should_retry(ResponseValidationError("x"))


def test_backoff_is_full_jitter_exponential_capped_at_max_delay() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=8.0)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (9, 8.0)]:
        waits = [policy.backoff(attempt) for _ in range(200)]
        assert all(0.0 <= wait <= ceiling for wait in waits)
        assert max(waits) > ceiling / 2  # jitter spreads over the whole range


def test_retry_after_seconds_header_sets_the_wait() -> None:
    error = _status(InternalServerError, 503, {"Retry-After": "7"})
    assert RetryPolicy().backoff(1, error) == 7.0


def test_retry_after_ms_header_wins_over_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5


def test_retry_after_http_date_is_converted_to_seconds() -> None:
    now = time.time()
    header = email.utils.formatdate(now + 30, usegmt=True)
    wait = parse_retry_after({"Retry-After": header}, now=now)
    assert wait is not None
    assert 28.0 <= wait <= 31.0


def test_ratelimit_reset_is_used_when_retry_after_is_missing() -> None:
    assert parse_retry_after({"RateLimit-Reset": "12"}) == 12.0


def test_unparseable_retry_after_falls_back_to_backoff() -> None:
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"Retry-After": "nan"}) is None
    assert parse_retry_after({}) is None


def test_a_date_in_the_past_means_no_wait() -> None:
    header = email.utils.formatdate(time.time() - 100, usegmt=True)
    assert parse_retry_after({"Retry-After": header}) == 0.0


def test_retry_after_beyond_the_cap_is_not_retried() -> None:
    policy = RetryPolicy(retry_after_cap=10)
    error = RateLimitError(
        "slow down", retry_after=120.0, status=429, method="POST", path="/x", headers={}
    )
    assert not policy.should_retry(error)
    assert policy.should_retry(
        RateLimitError("slow down", retry_after=3.0, status=429, method="POST", path="/x")
    )


async def test_call_retries_until_success_without_sleeping(sleeps: list[float]) -> None:
    flaky = _Flaky(_status(InternalServerError, 503), _connection_error(OSError("reset")))
    assert await RetryPolicy().without_sleep().call(flaky) == "ok"
    assert flaky.calls == 3
    assert all(seconds == 0 for seconds in sleeps)


async def test_call_sleeps_for_the_server_wait_when_sleeping_is_on(sleeps: list[float]) -> None:
    flaky = _Flaky(_status(InternalServerError, 503, {"Retry-After": "2"}))
    assert await RetryPolicy().call(flaky) == "ok"
    assert sleeps == [2.0]


async def test_set_testing_turns_sleeping_off_for_every_policy(sleeps: list[float]) -> None:
    RetryPolicy.set_testing(True)
    try:
        assert _retry.is_testing()
        flaky = _Flaky(_status(InternalServerError, 503, {"Retry-After": "5"}))
        assert await RetryPolicy().call(flaky) == "ok"
    finally:
        RetryPolicy.set_testing(False)
    assert sleeps == [0]


async def test_exhausted_attempts_raise_the_last_typed_error(sleeps: list[float]) -> None:
    first = _status(InternalServerError, 500)
    last = _status(InternalServerError, 502)
    flaky = _Flaky(first, _status(InternalServerError, 503), last, _status(BadRequestError, 400))
    with pytest.raises(InternalServerError) as info:
        await RetryPolicy.testing(3).call(flaky)
    assert info.value is last
    assert flaky.calls == 3


@pytest.mark.parametrize("max_attempts", [1, 2, 3, 5])
async def test_a_request_is_tried_exactly_max_attempts_times(
    sleeps: list[float], max_attempts: int
) -> None:
    failures = [_status(InternalServerError, 503) for _ in range(max_attempts + 2)]
    flaky = _Flaky(*failures)
    with pytest.raises(InternalServerError) as info:
        await RetryPolicy.testing(max_attempts).call(flaky)
    assert flaky.calls == max_attempts
    assert info.value is failures[max_attempts - 1]
    assert len(sleeps) == max_attempts - 1


async def test_rate_limit_beyond_the_cap_raises_at_once(sleeps: list[float]) -> None:
    error = RateLimitError("slow", retry_after=3600.0, status=429, method="POST", path="/x")
    flaky = _Flaky(error)
    with pytest.raises(RateLimitError):
        await RetryPolicy.testing().call(flaky)
    assert flaky.calls == 1


async def test_non_retryable_error_is_raised_after_one_attempt() -> None:
    flaky = _Flaky(_status(BadRequestError, 400))
    with pytest.raises(BadRequestError):
        await RetryPolicy.testing().call(flaky)
    assert flaky.calls == 1


async def test_each_retry_is_logged_with_reason_attempt_and_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="helicone_users")
    flaky = _Flaky(
        _status(InternalServerError, 503), _connection_error(aiohttp.ServerDisconnectedError())
    )
    await RetryPolicy.testing().call(flaky, what="POST /v1/user/query")
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "POST /v1/user/query" in messages[0]
    assert "status 503" in messages[0]
    assert "attempt 1/4" in messages[0]
    assert "waiting" in messages[0]
    assert "ServerDisconnectedError" in messages[1]
    assert "attempt 2/4" in messages[1]
    assert all(record.levelno == logging.WARNING for record in caplog.records)


def test_the_repr_shows_the_retried_statuses_as_ranges() -> None:
    text = repr(RetryPolicy())
    assert "retry_statuses={408, 409, 429, 500, 502-504, 506-599}" in text
    assert len(text) < 200
    assert "retry_statuses={429, 503}" in repr(RetryPolicy(retry_statuses={503, 429}))


async def test_in_test_mode_the_retry_log_says_the_wait_was_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = _status(InternalServerError, 503, {"Retry-After": "1"})
    await RetryPolicy.testing().call(_Flaky(error), what="POST /x")
    (message,) = [r.getMessage() for r in caplog.records if r.name == "helicone_users"]
    assert "test mode: not waiting 1.00 s" in message
    assert "; waiting" not in message
