"""Listing every user: one page at a time vs the pager at concurrency 1, 4 and 16.

A local server answers each request after a fixed delay (50 ms), 100 pages in all. Targets:
concurrency 16 at least 8x faster than the sequential loop, and within 1.3x of the latency
bound ceil(pages / 16) x delay. Run: ``python benchmarks/bench_pagination.py``.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import serve_in_process

from helicone_users import AsyncHeliconeUsers, RetryPolicy

DELAY = 0.050
PAGES = 100
PAGE_SIZE = 10
USERS = PAGES * PAGE_SIZE


async def sequential(client: AsyncHeliconeUsers) -> int:
    """The loop a caller writes without the pager: one page, then the next."""
    seen, offset = 0, 0
    while True:
        page = await client.users.metrics(offset=offset, limit=PAGE_SIZE, sort=("user_id", "asc"))
        seen += len(page.users)
        offset += PAGE_SIZE
        if len(page.users) < PAGE_SIZE or offset >= page.count:
            return seen


async def pager(client: AsyncHeliconeUsers, concurrency: int, eager: bool = False) -> int:
    async with client.users.iter_metrics(
        page_size=PAGE_SIZE, concurrency=concurrency, eager=eager
    ) as it:
        return sum([1 async for _ in it])


async def timed(label: str, run: object) -> float:
    started = time.perf_counter()
    seen = await run  # type: ignore[misc]
    elapsed = time.perf_counter() - started
    assert seen == USERS, (label, seen)
    print(f"{label:<24} {elapsed * 1000:8.0f} ms")
    return elapsed


async def main(base_url: str) -> int:
    if True:
        async with AsyncHeliconeUsers(
            "bench", base_url=base_url, retry=RetryPolicy.disabled(), max_concurrency=16
        ) as client:
            await pager(client, 16)  # open the connections before timing
            print(f"{PAGES} pages x {PAGE_SIZE} users, {DELAY * 1000:.0f} ms per request")
            seq = await timed("sequential loop", sequential(client))
            results = {}
            for c in (1, 4, 16):
                results[str(c)] = await timed(f"pager concurrency {c}", pager(client, c))
            results["16 eager"] = await timed("pager concurrency 16 eager", pager(client, 16, True))
    bound = math.ceil(PAGES / 16) * DELAY
    print()
    for name, elapsed in results.items():
        print(f"speed-up at concurrency {name:<8}: {seq / elapsed:5.2f}x")
    met = True
    for name in ("16", "16 eager"):
        speedup, over = seq / results[name], results[name] / bound
        ok = speedup >= 8 and over <= 1.3
        met = met and ok
        print(
            f"concurrency {name:<8}: {speedup:5.2f}x sequential (target >= 8), "
            f"{over:.2f}x the {bound * 1000:.0f} ms latency bound (target <= 1.3): "
            + ("met" if ok else "missed")
        )
    # Without eager, the first page must come back before the rest can start: one round trip
    # more than the bound counts, so that variant cannot go below ceil(1 + 99 / 16) / 7 = 1.14x.
    return 0 if met else 1


if __name__ == "__main__":
    with serve_in_process(users=USERS, delay=DELAY) as url:
        raise SystemExit(asyncio.run(main(url)))
