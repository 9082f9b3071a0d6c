"""The pager under fire: 30% of requests fail in every way the emulator can fail them."""

from __future__ import annotations

import logging
from collections import Counter

import aiohttp
import pytest

from helicone_users.testing import FaultPlan

from .conftest import (
    Traffic,
    aiohttp_session,
    assert_pool_closed,
    busy_connections,
    fast_retry,
    no_leaks,
    served,
    user_rows,
)

USERS = 2000
PAGE_SIZE = 10  # 200 pages
# The emulator answers a page in about 30 ms, one query at a time: eight in flight wait up to a
# quarter second, so the timeout sits well above that and the "slow" fault well above the timeout.
TIMEOUT = 0.75
SLOW = 1.0
FAST_KINDS = ("429", "500", "502", "503", "reset", "truncate")
# Each slow fault stalls the in-order pager for a whole timeout: draw it half as often.
SEED = 7
KINDS = (*FAST_KINDS, *FAST_KINDS, "slow")


async def test_every_user_arrives_once_in_order_through_thirty_percent_faults(
    caplog: pytest.LogCaptureFixture, traffic: Traffic
) -> None:
    caplog.set_level(logging.WARNING, logger="helicone_users")
    plan = FaultPlan(rate=0.3, seed=SEED, kinds=KINDS, delay=SLOW, retry_after=1.0)
    async with no_leaks(), served(user_rows(USERS), faults=plan) as emulator:
        client = emulator.client(
            retry=fast_retry(max_attempts=14),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT),
            max_concurrency=8,
        )
        async with client:
            pool = aiohttp_session(client)
            async with client.users.iter_metrics(page_size=PAGE_SIZE, concurrency=8) as pager:
                ids = [user.user_id async for user in pager]
            assert busy_connections(pool) == 0
        assert_pool_closed(pool)
        injected = Counter(emulator.state.faults.injected)

    assert ids == [f"u{i:06d}" for i in range(USERS)]
    assert set(injected) == set(KINDS), injected
    assert sum(injected.values()) >= 0.2 * len(traffic.arrivals)
    retries = [
        r.getMessage()
        for r in caplog.records
        if r.name == "helicone_users" and r.getMessage().startswith("retrying")
    ]
    # Every injected fault cost one retry (a timed-out request may add one of its own).
    assert len(retries) >= sum(injected.values())
    reasons = " ".join(retries)
    for reason in ("status 429", "status 500", "status 502", "status 503", "APITimeoutError"):
        assert reason in reasons
    assert "APIConnectionError" in reasons
