"""The emulator's rate limit: the hosted fixed window, a sliding one, and clients against both."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from helicone_users import InvalidRequestError, RetryPolicy
from helicone_users.testing import Emulator
from helicone_users.testing._auth import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_fixed_window_counts_refused_requests_until_it_ends() -> None:
    clock = Clock()
    limiter = RateLimiter(2, 60.0, clock=clock)
    allowed, headers = limiter.hit()
    assert allowed
    assert headers == {"RateLimit-Policy": "2;w=60", "RateLimit-Limit": "2",
                       "RateLimit-Remaining": "1", "RateLimit-Reset": "60"}  # fmt: skip
    clock.now += 10
    assert limiter.hit()[0]
    clock.now += 20.5
    allowed, headers = limiter.hit()
    assert not allowed
    assert (headers["RateLimit-Remaining"], headers["Retry-After"]) == ("0", "30")
    clock.now += 29.5  # the window that began at the first request is over
    assert limiter.hit()[0]


def test_the_sliding_window_admits_again_as_soon_as_the_oldest_leaves() -> None:
    clock = Clock()
    limiter = RateLimiter(2, 1.0, mode="sliding", clock=clock)
    assert limiter.hit()[0]
    clock.now += 0.5
    allowed, headers = limiter.hit()
    assert allowed
    assert (headers["RateLimit-Remaining"], headers["RateLimit-Reset"]) == ("0", "1")
    clock.now += 0.25
    allowed, headers = limiter.hit()
    assert not allowed
    assert headers["Retry-After"] == "1"  # 0.25 s until the first leaves, in whole seconds
    clock.now += 0.25  # a fixed window from t=100 would refuse until 101 too; this one:
    allowed, headers = limiter.hit()
    assert allowed
    assert headers["RateLimit-Remaining"] == "0"
    clock.now += 0.25  # refused requests did not count: 100.5 and 101.0 are in the window
    assert not limiter.hit()[0]
    clock.now += 0.25
    assert limiter.hit()[0]


def test_an_unknown_window_is_refused_naming_the_option() -> None:
    with pytest.raises(InvalidRequestError) as info:
        Emulator(rate_limit=(2, 1.0), rate_limit_window="leaky")  # type: ignore[arg-type]
    assert info.value.field == "rate_limit_window"


@pytest.mark.parametrize("window", ["fixed", "sliding"])
async def test_a_client_limited_to_the_same_numbers_never_meets_a_429(window: Any) -> None:
    emulator = Emulator.synthetic(
        users=60, requests=300, rate_limit=(20, 1.0), rate_limit_window=window
    )
    async with emulator:
        # With no retries, a single 429 would raise RateLimitError.
        client = emulator.client(rate_limit=(20, 1.0), retry=RetryPolicy.disabled())
        pager = client.users.iter_metrics(page_size=2, concurrency=8, time_range=None)
        async with client, pager:
            count = (await pager).count
            users = [user.user_id async for user in pager]
    assert count > 40  # over 20 pages: beyond one window's budget
    assert len(users) == len(set(users)) == count


async def test_a_spent_emulator_budget_pauses_the_whole_client_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator = Emulator.synthetic(users=5, requests=20, rate_limit=(3, 1.0))
    async with emulator:  # noqa: SIM117 - the client needs the started emulator's URL
        async with emulator.client(retry=RetryPolicy(initial_delay=0.01)) as client:
            results = await asyncio.gather(*(client.users.metrics(limit=1) for _ in range(6)))
    assert all(len(page.users) == 1 for page in results)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "429 with the rate limit spent; every request waits" in warnings[0]
