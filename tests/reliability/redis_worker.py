"""A second process for the shared-budget test: two clients drawing on one Redis budget.

Run by tests/reliability/test_redis_budget.py with the arguments BASE_URL REDIS_URL NAME COUNT
PERIOD REQUESTS_PER_CLIENT; it prints ``ready``, waits for a line on stdin, sends its requests,
and prints ``done``.
"""

from __future__ import annotations

import asyncio
import sys

from helicone_users import AsyncHeliconeUsers, RedisRateLimit, RetryPolicy


async def main(
    base_url: str, redis_url: str, name: str, count: int, period: float, each: int
) -> None:
    async with RedisRateLimit(redis_url, count, period, name=name) as budget:
        clients = [
            AsyncHeliconeUsers(
                "sk-test", base_url=base_url, rate_limit=budget, retry=RetryPolicy.disabled()
            )
            for _ in range(2)
        ]
        try:
            await budget.acquire()  # connect before the start, so both processes start alike
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            await asyncio.gather(
                *(client.users.metrics(limit=1) for client in clients for _ in range(each))
            )
        finally:
            for client in clients:
                await client.aclose()
    print("done", flush=True)


if __name__ == "__main__":
    base, redis_url, name, count, period, each = sys.argv[1:]
    asyncio.run(main(base, redis_url, name, int(count), float(period), int(each)))
