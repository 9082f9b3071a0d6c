"""When the retries run out: the typed error with its last cause, and nothing left running."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from helicone_users import (
    APIConnectionError,
    APITimeoutError,
    InternalServerError,
    RateLimitError,
)
from helicone_users.testing import FaultPlan
from helicone_users.testing._faults import FaultInjector

from .conftest import (
    aiohttp_session,
    assert_pool_closed,
    busy_connections,
    fast_retry,
    no_leaks,
    served,
    user_rows,
)

ATTEMPTS = 3


@pytest.mark.parametrize(
    ("kind", "error", "cause"),
    [
        ("503", InternalServerError, None),
        ("429", RateLimitError, None),
        ("reset", APIConnectionError, aiohttp.ServerDisconnectedError),
        ("truncate", APIConnectionError, aiohttp.ClientPayloadError),
        ("slow", APITimeoutError, asyncio.TimeoutError),
    ],
)
async def test_a_request_that_always_fails_raises_the_typed_error_of_the_last_attempt(
    kind: str, error: type[Exception], cause: type[BaseException] | None
) -> None:
    plan = FaultPlan(rate=1.0, kinds=(kind,), delay=0.3)
    async with no_leaks(), served(user_rows(5), faults=plan) as emulator:
        client = emulator.client(retry=fast_retry(ATTEMPTS), timeout=0.1)
        async with client:
            pool = aiohttp_session(client)
            with pytest.raises(error) as raised:
                await client.users.metrics(limit=5)
            assert busy_connections(pool) == 0
        assert_pool_closed(pool)
        assert emulator.state.seen_requests == ATTEMPTS
    if cause is None:
        assert raised.value.__cause__ is None
        assert f"status {kind}" in str(raised.value)
    else:
        assert isinstance(raised.value.__cause__, cause)


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
async def test_the_error_raised_is_the_one_of_the_last_attempt(seed: int) -> None:
    plan = FaultPlan(rate=1.0, seed=seed, kinds=("500", "502", "503", "reset"))
    async with no_leaks(), served(user_rows(5), faults=plan) as emulator:
        async with emulator.client(retry=fast_retry(5)) as client:
            with pytest.raises((InternalServerError, APIConnectionError)) as raised:
                await client.users.metrics(limit=5)
        injected = emulator.state.faults.injected
    assert len(injected) == 5
    if injected[-1] == "reset":
        assert isinstance(raised.value, APIConnectionError)
        assert isinstance(raised.value.__cause__, aiohttp.ServerDisconnectedError)
    else:
        assert isinstance(raised.value, InternalServerError)
        assert raised.value.status == int(injected[-1])


async def test_the_pager_stops_cleanly_when_a_later_page_runs_out_of_retries() -> None:
    async with no_leaks(), served(user_rows(200)) as emulator:
        client = emulator.client(retry=fast_retry(ATTEMPTS), max_concurrency=8)
        async with client:
            pool = aiohttp_session(client)
            got: list[str] = []
            pager = client.users.iter_metrics(page_size=10)

            async def consume() -> None:
                async for user in pager:
                    got.append(user.user_id)
                    if len(got) == 1:
                        # From now on every request fails: the pages in flight and the rest.
                        emulator.state.faults = FaultInjector(FaultPlan(rate=1.0, kinds=("500",)))

            with pytest.raises(InternalServerError) as raised:
                await consume()
            await pager.aclose()
            assert busy_connections(pool) == 0
        assert_pool_closed(pool)
    assert raised.value.status == 500
    assert got == [f"u{i:06d}" for i in range(len(got))]
    assert len(got) < 200


async def test_connection_refused_is_an_api_connection_error_after_every_attempt(
    unused_port: int,
) -> None:
    async with no_leaks():
        from helicone_users import AsyncHeliconeUsers

        client = AsyncHeliconeUsers(
            "sk-unused", base_url=f"http://127.0.0.1:{unused_port}", retry=fast_retry(ATTEMPTS)
        )
        async with client:
            pool = aiohttp_session(client)
            with pytest.raises(APIConnectionError) as raised:
                await client.users.iter_metrics(page_size=10).first_page()
        assert_pool_closed(pool)
    assert isinstance(raised.value.__cause__, aiohttp.ClientConnectorError)
    assert not isinstance(raised.value, APITimeoutError)
