"""SDK overhead per request: ``client.users.metrics()`` vs a bare aiohttp POST + json.loads.

A tiny aiohttp server in a child process answers every request with the same small metrics page
(3 users). Both sides send 2,000 requests one after another over one kept-alive connection, in
short interleaved rounds; the table shows the median round of each, and the ratio is the median
of the paired rounds' ratios (so that load from other processes, which comes in bursts, hits
both sides of a pair alike). Target: the SDK costs at most 1.15x the bare request.
Run: ``python benchmarks/bench_overhead.py`` (``--profile`` adds the SDK's hottest functions).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import serve_app_in_process

from helicone_users import AsyncHeliconeUsers, RetryPolicy

REQUESTS = 2000
ROUNDS = 40
TARGET = 1.15
PATH = "/v1/user/metrics/query"
KEY = "sk-bench-overhead"


def page_body() -> bytes:
    """A small metrics page as the hosted server sends it (some numbers quoted)."""
    users = [
        {
            "id": f"user-{i}",
            "user_id": f"user-{i}",
            "active_for": str(3 + i),
            "first_active": "2024-05-01T12:34:56.000Z",
            "last_active": "2024-06-01T01:02:03.000Z",
            "total_requests": 40 + i,
            "average_requests_per_day_active": 13.3,
            "average_tokens_per_request": 512.5,
            "total_completion_tokens": 9000 + i,
            "total_prompt_tokens": 21000 + i,
            "cost": 0.0123 * (i + 1),
            "rate_limited_count": "0",
        }
        for i in range(3)
    ]
    return json.dumps(
        {"data": {"users": users, "count": 3, "hasUsers": True}, "error": None}
    ).encode()


def _app() -> web.Application:
    body = page_body()

    async def metrics(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post(PATH, metrics)
    return app


def bare_call(session: aiohttp.ClientSession, url: str) -> Callable[[], Awaitable[Any]]:
    """What a caller writes without the SDK: POST the same body, read, json.loads."""
    body = json.dumps({"filter": "all", "offset": 0, "limit": 100}).encode()
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

    async def call() -> Any:
        async with session.post(url + PATH, data=body, headers=headers) as response:
            response.raise_for_status()
            answer = json.loads(await response.read())
        if answer["error"] is not None:
            raise RuntimeError(answer["error"])
        return answer["data"]

    return call


def sdk_call(client: AsyncHeliconeUsers) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        return await client.users.metrics()

    return call


async def timed(call: Callable[[], Awaitable[Any]], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await call()
    return time.perf_counter() - started


async def measure(url: str, requests: int, rounds: int) -> tuple[list[float], list[float]]:
    per_round = requests // rounds
    async with (
        aiohttp.ClientSession() as session,
        AsyncHeliconeUsers(KEY, base_url=url, retry=RetryPolicy()) as client,
    ):
        bare, sdk = bare_call(session, url), sdk_call(client)
        await timed(bare, 50)  # open the connections and warm both paths up
        await timed(sdk, 50)
        bare_rounds: list[float] = []
        sdk_rounds: list[float] = []
        for index in range(rounds):
            # Alternate which side goes first, so drift in the machine hits both alike.
            order = [(bare, bare_rounds), (sdk, sdk_rounds)]
            for call, into in order if index % 2 == 0 else order[::-1]:
                into.append(await timed(call, per_round) / per_round)
    return bare_rounds, sdk_rounds


async def retry_wrapper_cost(count: int = 20000) -> float:
    """Seconds per call that ``RetryPolicy().call`` adds around an attempt that succeeds."""

    async def succeed() -> int:
        return 1

    policy = RetryPolicy()
    started = time.perf_counter()
    for _ in range(count):
        await succeed()
    direct = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(count):
        await policy.call(succeed)
    return (time.perf_counter() - started - direct) / count


async def profile(url: str, requests: int) -> str:
    async with AsyncHeliconeUsers(KEY, base_url=url) as client:
        call = sdk_call(client)
        await timed(call, 50)
        profiler = cProfile.Profile()
        profiler.enable()
        await timed(call, requests)
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
    stats.print_stats(r"helicone_users|tenacity|cattrs|attrs|json", 15)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--profile", action="store_true", help="print the SDK's hot spots")
    args = parser.parse_args()
    with serve_app_in_process(_app) as url:
        bare, sdk = asyncio.run(measure(url, args.requests, args.rounds))
        bare_us, sdk_us = statistics.median(bare) * 1e6, statistics.median(sdk) * 1e6
        ratio = statistics.median(s / b for s, b in zip(sdk, bare, strict=True))
        print(f"{args.requests} sequential requests on loopback, {args.rounds} interleaved rounds")
        print(f"{'path':<32} {'median µs/request':>18}")
        print(f"{'bare aiohttp + json.loads':<32} {bare_us:>18.1f}")
        print(f"{'sdk client.users.metrics()':<32} {sdk_us:>18.1f}")
        print(f"{'sdk overhead':<32} {sdk_us - bare_us:>18.1f}")
        wrapper_us = asyncio.run(retry_wrapper_cost()) * 1e6
        print(f"{'  of which RetryPolicy.call':<32} {wrapper_us:>18.1f}")
        verdict = "met" if ratio <= TARGET else "missed"
        print(f"\nsdk / bare: {ratio:.2f}x (target <= {TARGET}): {verdict}")
        if args.profile:
            print(asyncio.run(profile(url, args.requests)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
