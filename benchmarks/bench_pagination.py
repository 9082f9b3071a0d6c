"""Listing every user: one page at a time vs the pager at concurrency 1, 4 and 16; and the
client CPU per user against a hand-written gather + Semaphore(16) + orjson loop.

Latency: a local server answers each request after a fixed delay (50 ms), 100 pages of 10 users.
Targets: concurrency 16 at least 8x faster than the sequential loop, and within 1.3x of the
latency bound ceil(pages / 16) x delay.

CPU: 1000-user pages answered after 5 ms and after 50 ms. The baseline is what a caller writes
by hand: ``asyncio.gather`` over the pages under ``Semaphore(16)``, ``orjson.loads`` into dicts,
a loop over the users. The SDK lists the same users with ``iter_metrics(concurrency=16)`` into
typed ``UserMetrics``, with the ``fast`` extra (msgspec) and with the core install's decoder
(json + the converter; msgspec switched off in-process). Process CPU time (the server runs in
a child process), in interleaved rounds; the ratio is the median of the paired rounds' ratios.
Targets: at most 1.25x the baseline with the ``fast`` extra, 2.5x without.
Run: ``python benchmarks/bench_pagination.py`` (``--cpu-only`` skips the latency part).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import serve_in_process

from helicone_users import AsyncHeliconeUsers, RetryPolicy, _converter

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


# --- Client CPU per user -------------------------------------------------------------------------

CPU_PAGE_SIZE = 1000
CPU_PAGES = 40
CPU_DELAYS = (0.005, 0.050)
CPU_ROUNDS = 7
CPU_CONCURRENCY = 16
FAST_TARGET = 1.25
CORE_TARGET = 2.5


async def hand_written(base_url: str) -> int:
    """The loop a caller writes by hand: gather + Semaphore(16) + orjson into dicts."""
    semaphore = asyncio.Semaphore(CPU_CONCURRENCY)
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    url = base_url + "/v1/user/metrics/query"
    async with aiohttp.ClientSession() as session:

        async def page(offset: int) -> Any:
            body = json.dumps({"filter": "all", "offset": offset, "limit": CPU_PAGE_SIZE,
                               "sort": {"user_id": "asc"}}).encode()  # fmt: skip
            async with semaphore, session.post(url, data=body, headers=headers) as response:
                response.raise_for_status()
                return orjson.loads(await response.read())["data"]

        first = await page(0)
        offsets = range(CPU_PAGE_SIZE, first["count"], CPU_PAGE_SIZE)
        rest = await asyncio.gather(*(page(offset) for offset in offsets))
    delivered = 0
    for data in (first, *rest):
        for _user in data["users"]:
            delivered += 1
    return delivered


async def sdk(base_url: str) -> int:
    delivered = 0
    async with AsyncHeliconeUsers(
        "bench", base_url=base_url, retry=RetryPolicy.disabled(), max_concurrency=CPU_CONCURRENCY
    ) as client, client.users.iter_metrics(page_size=CPU_PAGE_SIZE) as pager:
        async for _user in pager:
            delivered += 1
    return delivered


def cpu_of(run: Callable[[str], Coroutine[Any, Any, int]], base_url: str) -> float:
    """Process CPU seconds of one whole listing (a fresh event loop and connection pool)."""
    started = time.process_time()
    delivered = asyncio.run(run(base_url))
    spent = time.process_time() - started
    assert delivered == CPU_PAGES * CPU_PAGE_SIZE, delivered
    return spent


def with_decoder(fast: bool, run: Callable[[str], Coroutine[Any, Any, int]]) -> Any:
    def switched(base_url: str) -> Coroutine[Any, Any, int]:
        # An empty cache lets the SDK find msgspec again; [None] is the core install's state.
        _converter._PAGE_DECODER[:] = [] if fast else [None]
        return run(base_url)

    return switched


def cpu_rounds(base_url: str) -> dict[str, list[float]]:
    variants = {
        "hand": hand_written,
        "fast": with_decoder(True, sdk),
        "core": with_decoder(False, sdk),
    }
    for run in variants.values():  # warm up: imports, first connections
        cpu_of(run, base_url)
    spent: dict[str, list[float]] = {name: [] for name in variants}
    for index in range(CPU_ROUNDS):
        order = list(variants.items())
        for name, run in order if index % 2 == 0 else order[::-1]:
            spent[name].append(cpu_of(run, base_url))
    _converter._PAGE_DECODER[:] = []
    return spent


def cpu_main() -> bool:
    users = CPU_PAGES * CPU_PAGE_SIZE
    print(f"\nclient CPU: {CPU_PAGES} pages x {CPU_PAGE_SIZE} users, concurrency "
          f"{CPU_CONCURRENCY}, {CPU_ROUNDS} interleaved rounds")  # fmt: skip
    print(f"{'delay':>6} {'hand µs/user':>13} {'sdk fast':>9} {'sdk core':>9}"
          f" {'fast / hand':>12} {'core / hand':>12}")  # fmt: skip
    met = True
    lines = []
    for delay in CPU_DELAYS:
        with serve_in_process(users=users, delay=delay) as url:
            spent = cpu_rounds(url)
        ratio = {
            name: statistics.median(s / h for s, h in zip(spent[name], spent["hand"], strict=True))
            for name in ("fast", "core")
        }
        per_user = {name: statistics.median(values) / users * 1e6 for name, values in spent.items()}
        print(f"{delay * 1000:4.0f} ms {per_user['hand']:13.2f} {per_user['fast']:9.2f} "
              f"{per_user['core']:9.2f} {ratio['fast']:11.2f}x {ratio['core']:11.2f}x")  # fmt: skip
        for name, target, label in (("fast", FAST_TARGET, "fast extra (msgspec)"),
                                    ("core", CORE_TARGET, "core install (json)")):  # fmt: skip
            ok = ratio[name] <= target
            met = met and ok
            lines.append(
                f"1000-user pages at {delay * 1000:.0f} ms: sdk CPU per user, {label}, "
                f"{ratio[name]:.2f}x the hand-written gather + orjson loop "
                f"(target <= {target}): " + ("met" if ok else "missed")
            )
    print()
    print("\n".join(lines))
    return met


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-only", action="store_true", help="skip the latency part")
    args = parser.parse_args()
    code = 0
    if not args.cpu_only:
        with serve_in_process(users=USERS, delay=DELAY) as url:
            code = asyncio.run(main(url))
    cpu_met = cpu_main()
    raise SystemExit(code or (0 if cpu_met else 1))
