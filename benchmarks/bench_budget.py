"""Spending a request budget: 200 pages against a server allowing 20 requests in any 1 s.

The server (a child process) counts requests in a sliding window of one second, as a gateway in
front of an API may, and refuses the 21st with 429, ``Retry-After`` and draft-6 ``RateLimit-*``
headers (the emulator's sliding mode). Each page takes 20 ms. Three runs:

* the pager with the client limiter, ``rate_limit=(20, 1.0)``: target 0 refusals and at least
  0.9 of the budget's pace (20 pages per second);
* the pager without a limiter (and 12 attempts per request, as a page may be refused several
  times): the refusals and the pace, stated (no target);
* two processes, each listing 100 of the pages with its own client, sharing one
  ``RedisRateLimit(url, 20, 1.0)`` (a throwaway ``redis-server``): target 0 refusals and at least
  0.85 of the budget's pace, counted over both.

Run: ``python benchmarks/bench_budget.py`` (about 35 s).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import serve_app_in_process, wire_page, wire_user

from helicone_users import AsyncHeliconeUsers, RateLimit, RedisRateLimit, RetryPolicy
from helicone_users._config import LOGGER_NAME
from helicone_users.testing._auth import TOO_MANY, RateLimiter

COUNT, PERIOD = 20, 1.0
PAGES, PAGE_SIZE, PARTS = 200, 10, 2
DELAY = 0.020
CONCURRENCY = 16
LIMITED_TARGET = 0.9
SHARED_TARGET = 0.85
UNLIMITED_ATTEMPTS = 12


def budget_app() -> web.Application:
    """``PARTS`` listings of ``PAGES / PARTS`` pages; each run id has its own sliding window,
    shared by its parts; ``GET /run/{run}/stats`` says how many requests it refused."""
    rows = [wire_user(i) for i in range(PAGES * PAGE_SIZE // PARTS)]
    limiters: dict[str, RateLimiter] = {}
    refused: dict[str, int] = {}

    async def metrics(request: web.Request) -> web.Response:
        run = request.match_info["run"]
        body = await request.json()
        limiter = limiters.setdefault(run, RateLimiter(COUNT, PERIOD, mode="sliding"))
        allowed, headers = limiter.hit()
        if not allowed:
            refused[run] = refused.get(run, 0) + 1
            return web.json_response(dict(TOO_MANY), status=429, headers=headers)
        await asyncio.sleep(DELAY)
        offset, limit = int(body["offset"]), int(body["limit"])
        page = wire_page(rows[offset : offset + limit], len(rows))
        return web.Response(body=page, content_type="application/json", headers=headers)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"refused": refused.get(request.match_info["run"], 0)})

    app = web.Application()
    app.router.add_post("/run/{run}/part/{part}/v1/user/metrics/query", metrics)
    app.router.add_get("/run/{run}/stats", stats)
    return app


async def list_part(base_url: str, run: str, part: int, rate_limit: Any) -> int:
    """Every user of one part, in order, through the pager."""
    url = f"{base_url}/run/{run}/part/{part}"
    # Without a limit, a page can meet several 429s in a row: allow it enough attempts.
    retry = RetryPolicy(max_attempts=4 if rate_limit else UNLIMITED_ATTEMPTS)
    client = AsyncHeliconeUsers(
        "bench", base_url=url, rate_limit=rate_limit, retry=retry, max_concurrency=CONCURRENCY
    )
    async with client, client.users.iter_metrics(page_size=PAGE_SIZE) as pager:
        return sum([1 async for _ in pager])


async def refusals(base_url: str, run: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base_url}/run/{run}/stats") as response,
    ):
        answer: dict[str, int] = await response.json()
    return answer["refused"]


async def one_process(base_url: str, rate_limit: tuple[int, float] | None) -> tuple[float, int]:
    """All pages from this process, part after part; seconds taken and refusals."""
    run = uuid.uuid4().hex
    started = time.perf_counter()
    for part in range(PARTS):
        seen = await list_part(base_url, run, part, rate_limit)
        assert seen == PAGES * PAGE_SIZE // PARTS, seen
    return time.perf_counter() - started, await refusals(base_url, run)


def two_processes(base_url: str, redis_url: str) -> tuple[float, int]:
    """Both parts at once, from two processes sharing one Redis budget."""
    run, name = uuid.uuid4().hex, f"bench-{uuid.uuid4().hex[:8]}"
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", base_url, run, str(part), redis_url, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for part in range(PARTS)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        started = time.perf_counter()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "done"
        elapsed = time.perf_counter() - started
    finally:
        for worker in workers:
            if worker.stdin is not None:
                worker.stdin.close()
            worker.wait(30)
            if worker.stdout is not None:
                worker.stdout.close()
    return elapsed, asyncio.run(refusals(base_url, run))


def worker_main(base_url: str, run: str, part: int, redis_url: str, name: str) -> None:
    async def main() -> None:
        async with RedisRateLimit(redis_url, COUNT, PERIOD, name=name) as budget:
            limit: RateLimit = budget
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            seen = await list_part(base_url, run, part, limit)
            assert seen == PAGES * PAGE_SIZE // PARTS, seen
        print("done", flush=True)

    asyncio.run(main())


def pace(elapsed: float) -> float:
    """Pages per second as a fraction of the budget's pace."""
    return PAGES / elapsed / (COUNT / PERIOD)


def shared_run(base_url: str) -> str:
    try:
        import redis  # noqa: F401

        from helicone_users.testing._redis import redis_server

        server = redis_server()
        redis_url = server.__enter__()
    except (ImportError, FileNotFoundError) as exc:
        return f"two processes sharing a Redis budget: not measured ({exc})"
    try:
        elapsed, refused = two_processes(base_url, redis_url)
    finally:
        server.__exit__(None, None, None)
    ok = refused == 0 and pace(elapsed) >= SHARED_TARGET
    print(f"{'two processes, RedisRateLimit':<34} {elapsed:8.1f} {pace(elapsed):7.2f} {refused:8d}")
    return (
        f"two processes sharing RedisRateLimit(20, 1.0): {refused} refusals, "
        f"{pace(elapsed):.2f} of the budget's pace (target 0 and >= {SHARED_TARGET}): "
        + ("met" if ok else "missed")
    )


def main() -> int:
    logging.getLogger(LOGGER_NAME).setLevel(logging.ERROR)  # the runs without a limit log 429s
    print(f"{PAGES} pages of {PAGE_SIZE} users, {DELAY * 1000:.0f} ms each, against a sliding "
          f"window of {COUNT} requests per {PERIOD:g} s; concurrency {CONCURRENCY}")  # fmt: skip
    print(f"{'run':<34} {'seconds':>8} {'pace':>7} {'refused':>8}")
    lines = []
    with serve_app_in_process(budget_app) as base_url:
        elapsed, refused = asyncio.run(one_process(base_url, (COUNT, PERIOD)))
        print(f"{'rate_limit=(20, 1.0)':<34} {elapsed:8.1f} {pace(elapsed):7.2f} {refused:8d}")
        ok = refused == 0 and pace(elapsed) >= LIMITED_TARGET
        lines.append(
            f"client limiter rate_limit=(20, 1.0): {refused} refusals, {pace(elapsed):.2f} of "
            f"the budget's pace (target 0 and >= {LIMITED_TARGET}): " + ("met" if ok else "missed")
        )
        elapsed, refused = asyncio.run(one_process(base_url, None))
        print(f"{'no client limit':<34} {elapsed:8.1f} {pace(elapsed):7.2f} {refused:8d}")
        lines.append(
            f"no client limit: {refused} refusals (the client pausing whenever the budget was "
            f"spent), {pace(elapsed):.2f} of the budget's pace"
        )
        lines.append(shared_run(base_url))
    print()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        base, run_id, part_number, redis_address, budget_name = args.worker
        worker_main(base, run_id, int(part_number), redis_address, budget_name)
        raise SystemExit(0)
    raise SystemExit(main())
