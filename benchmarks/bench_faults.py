"""Listing 100 pages when 10% of them fail once: the pager vs a work-stealing loop.

A local server (in a child process) answers each request after 50 ms; ten pages, drawn once from
a fixed seed, fail on their first request, with 429 ``Retry-After: 1`` in one scenario and 503 in
the other (retried after the policy's jittered backoff). Both sides use the same client and
retry policy at concurrency 16. The work-stealing loop is the bound for that concurrency: 16
workers each take the next page as soon as they are free, in no order, keeping every result.
The pager must deliver in order and exactly once, holding at most its reorder buffer.
A third row (one run) shows the pager with ``buffer=16``: no room to run ahead of a page that
waits, as when finished pages counted against the concurrency.
Interleaved rounds; the ratio is the median of the paired rounds' ratios.
Target: pager / work-stealing <= 1.3 for both scenarios. Run: ``python benchmarks/bench_faults.py``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import random
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import serve_app_in_process, wire_page, wire_user

from helicone_users import AsyncHeliconeUsers
from helicone_users._config import LOGGER_NAME

PAGES = 100
PAGE_SIZE = 10
DELAY = 0.050
FAILING = 10
CONCURRENCY = 16
ROUNDS = 3
TARGET = 1.3
SEED = 12
_runs = itertools.count()


def faulty_app(kind: str) -> web.Application:
    """Pages answered after ``DELAY``; the failing pages fail on their first request of a run."""
    rows = [wire_user(i) for i in range(PAGES * PAGE_SIZE)]
    offsets = list(range(0, PAGES * PAGE_SIZE, PAGE_SIZE))
    failing = set(random.Random(SEED).sample(offsets[1:], FAILING))
    failed: set[tuple[str, int]] = set()

    async def metrics(request: web.Request) -> web.Response:
        body = await request.json()
        offset, limit = int(body["offset"]), int(body["limit"])
        await asyncio.sleep(DELAY)
        key = (request.match_info["run"], offset)
        if offset in failing and key not in failed:
            failed.add(key)
            if kind == "429":
                return web.json_response({"error": "Too many requests, please try again later."},
                                         status=429, headers={"Retry-After": "1"})  # fmt: skip
            return web.json_response({"error": "Service Unavailable"}, status=503)
        page = wire_page(rows[offset : offset + limit], len(rows))
        return web.Response(body=page, content_type="application/json")

    app = web.Application()
    app.router.add_post("/run/{run}/v1/user/metrics/query", metrics)
    return app


def _client(base_url: str) -> AsyncHeliconeUsers:
    # A fresh path per run, so that each run meets every failure once.
    run_url = f"{base_url}/run/{next(_runs)}"
    return AsyncHeliconeUsers("bench", base_url=run_url, max_concurrency=CONCURRENCY)


async def work_stealing(base_url: str) -> int:
    """16 workers taking the next page as soon as they are free; no order, nothing dropped."""
    async with _client(base_url) as client:
        sort = ("user_id", "asc")
        first = await client.users.metrics(offset=0, limit=PAGE_SIZE, sort=sort)
        todo = iter(range(PAGE_SIZE, first.count, PAGE_SIZE))
        pages = {0: first}

        async def worker() -> None:
            for offset in todo:
                pages[offset] = await client.users.metrics(offset=offset, limit=PAGE_SIZE,
                                                           sort=sort)  # fmt: skip

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return sum(len(page.users) for page in pages.values())


async def pager(base_url: str, buffer: int | None = None) -> int:
    async with _client(base_url) as client:
        last, seen = "", 0
        async with client.users.iter_metrics(page_size=PAGE_SIZE, buffer=buffer) as users:
            async for user in users:
                assert user.user_id > last, "out of order"
                last, seen = user.user_id, seen + 1
    return seen


def timed(run: Callable[[str], Coroutine[Any, Any, int]], base_url: str) -> float:
    started = time.perf_counter()
    seen = asyncio.run(run(base_url))
    elapsed = time.perf_counter() - started
    assert seen == PAGES * PAGE_SIZE, seen
    return elapsed


def scenario(kind: str) -> tuple[dict[str, float], float]:
    variants: dict[str, Callable[[str], Coroutine[Any, Any, int]]] = {
        "work-stealing loop": work_stealing,
        "pager": pager,
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    with serve_app_in_process(functools.partial(faulty_app, kind)) as base_url:
        for index in range(ROUNDS):
            order = list(variants.items())
            for name, run in order if index % 2 == 0 else order[::-1]:
                times[name].append(timed(run, base_url))
        # For contrast, once: no room to run ahead, as when finished pages held the slots.
        narrow = timed(functools.partial(pager, buffer=CONCURRENCY), base_url)
    ratio = statistics.median(
        p / w for p, w in zip(times["pager"], times["work-stealing loop"], strict=True)
    )
    medians = {name: statistics.median(values) for name, values in times.items()}
    medians[f"pager, buffer={CONCURRENCY}"] = narrow
    return medians, ratio


def main() -> int:
    # Each retry is logged at WARNING; the figures are what this script is about.
    logging.getLogger(LOGGER_NAME).setLevel(logging.ERROR)
    print(f"{PAGES} pages x {PAGE_SIZE} users, {DELAY * 1000:.0f} ms per request, {FAILING} pages "
          f"failing once, concurrency {CONCURRENCY}, median of {ROUNDS} rounds")  # fmt: skip
    lines = []
    for kind, label in (("429", "429 Retry-After: 1"), ("503", "503")):
        medians, ratio = scenario(kind)
        print(f"\n{label}")
        for name, seconds in medians.items():
            print(f"  {name:<22} {seconds * 1000:7.0f} ms")
        verdict = "met" if ratio <= TARGET else "missed"
        lines.append(f"{label} on 10% of pages: pager {ratio:.2f}x the work-stealing loop "
                     f"(target <= {TARGET}): {verdict}")  # fmt: skip
    print()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
