"""A tiny local metrics/query server with a fixed per-request delay, for the benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
from collections.abc import AsyncIterator, Iterator
from typing import Any

from aiohttp import web

__all__ = ["serve", "serve_in_process", "wire_page", "wire_user"]


def wire_user(i: int) -> dict[str, Any]:
    """One user row as the hosted server sends it (some numbers quoted, as ClickHouse does)."""
    user_id = f"user-{i:06d}"
    return {
        "id": user_id,
        "user_id": user_id,
        "active_for": str(1 + i % 30),
        "first_active": "2024-05-01T12:34:56.000Z",
        "last_active": "2024-06-01T01:02:03.000Z",
        "total_requests": 10 + i % 1000,
        "average_requests_per_day_active": 3.25 + i % 7,
        "average_tokens_per_request": 512.5 + i % 100,
        "total_completion_tokens": 1000 * (i % 97),
        "total_prompt_tokens": 2000 * (i % 89),
        "cost": 0.000123 * (i % 1000),
        "rate_limited_count": "0",
    }


def wire_page(users: list[dict[str, Any]], count: int) -> bytes:
    """The ``{data, error}`` body of one metrics/query page."""
    data = {"users": users, "count": count, "hasUsers": True}
    return json.dumps({"data": data, "error": None}).encode()


@contextlib.asynccontextmanager
async def serve(*, users: int, delay: float) -> AsyncIterator[str]:
    """Serve ``users`` users on 127.0.0.1, each request answered after ``delay`` seconds."""
    rows = [wire_user(i) for i in range(users)]

    async def metrics(request: web.Request) -> web.Response:
        body = await request.json()
        offset, limit = int(body["offset"]), int(body["limit"])
        await asyncio.sleep(delay)
        page = wire_page(rows[offset : offset + limit], len(rows))
        return web.Response(body=page, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/user/metrics/query", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _run_forever(users: int, delay: float, ports: Any) -> None:
    async def main() -> None:
        async with serve(users=users, delay=delay) as base_url:
            ports.put(base_url)
            await asyncio.Event().wait()

    asyncio.run(main())


@contextlib.contextmanager
def serve_in_process(*, users: int, delay: float) -> Iterator[str]:
    """``serve`` in a child process, so that the server's work does not share the client's CPU
    (as with a real remote server); yields the base URL."""
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    process = context.Process(target=_run_forever, args=(users, delay, ports), daemon=True)
    process.start()
    try:
        yield ports.get(timeout=30)
    finally:
        process.terminate()
        process.join(10)
        ports.close()
        ports.join_thread()
