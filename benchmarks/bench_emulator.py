"""Emulator speed on a large synthetic dataset: load time and the median time of each query.

Run: ``python benchmarks/bench_emulator.py`` (1,000,000 requests; ``--requests`` to change).
Targets: generation and load under 20 s; each query under 300 ms at the median. Every figure is
printed with its ratio to the target (below 1.0 is within target).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from helicone_users.testing import Emulator

LOAD_TARGET = 20.0
QUERY_TARGET = 0.300


async def _median(call: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, Any]:
    timings: list[float] = []
    answer: Any = None
    for _ in range(runs):
        start = time.perf_counter()
        answer = await call()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings), answer


async def bench(requests: int, users: int, runs: int) -> None:
    """Load the dataset, then time each query ``runs`` times and print the medians."""
    started = time.perf_counter()
    emulator = Emulator.synthetic(seed=1, users=users, requests=requests, days=30)
    await emulator.start()
    load = time.perf_counter() - started
    print(
        f"generate + load {requests:,} requests for {users:,} users: {load:6.2f} s "
        f"(ratio to {LOAD_TARGET:g} s target: {load / LOAD_TARGET:.2f})"
    )
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    try:
        async with aiohttp.ClientSession(base_url=emulator.base_url, headers=headers) as http:

            async def post(path: str, body: dict[str, Any]) -> Any:
                async with http.post(path, json=body) as response:
                    response.raise_for_status()
                    return await response.json()

            ids = [f"user_{i:06d}" for i in range(1, 101)]
            filtered = {
                "left": {
                    "request_response_rmt": {"model": {"equals": "gpt-4o"}, "latency": {"gt": 1000}}
                },
                "operator": "and",
                "right": {
                    "request_response_rmt": {
                        "properties": {"environment": {"equals": "production"}}
                    }
                },
            }
            cases: list[tuple[str, str, dict[str, Any]]] = [
                (
                    "metrics page sorted by cost",
                    "/v1/user/metrics/query",
                    {"filter": "all", "offset": 0, "limit": 100, "sort": {"cost": "desc"}},
                ),
                (
                    "filtered metrics page",
                    "/v1/user/metrics/query",
                    {
                        "filter": filtered,
                        "offset": 0,
                        "limit": 100,
                        "sort": {"total_requests": "desc"},
                    },
                ),
                (
                    "metrics-overview p95",
                    "/v1/user/metrics-overview/query",
                    {"filter": "all", "pSize": "p95", "useInterquartile": False},
                ),
                ("100-user query", "/v1/user/query", {"userIds": ids}),
            ]
            for label, path, body in cases:
                median, answer = await _median(_bind(post, path, body), runs)
                size = _size(answer["data"])
                print(
                    f"{label:30s} median {median * 1000:7.1f} ms over {runs} runs "
                    f"(ratio to 300 ms target: {median / QUERY_TARGET:.2f}; {size})"
                )
    finally:
        await emulator.aclose()


def _bind(
    post: Callable[[str, dict[str, Any]], Awaitable[Any]], path: str, body: dict[str, Any]
) -> Callable[[], Awaitable[Any]]:
    return lambda: post(path, body)


def _size(data: Any) -> str:
    if isinstance(data, list):
        return f"{len(data)} users"
    if "users" in data:
        return f"{len(data['users'])} of {data['count']} users"
    return f"{len(data['request_count'])} + {len(data['user_cost'])} bins"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(bench(args.requests, args.users, args.runs))


if __name__ == "__main__":
    main()
