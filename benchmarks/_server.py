"""A tiny local metrics/query server with a fixed per-request delay, for the benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import multiprocessing
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

__all__ = [
    "fixed_delay_app",
    "generated_app",
    "serve_app_in_process",
    "serve_in_process",
    "wire_page",
    "wire_user",
]


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


_GENERATED_USER = (
    '{"id":"user-%(i)09d","user_id":"user-%(i)09d","active_for":"%(days)d",'
    '"first_active":"2024-05-01T12:34:56.000Z","last_active":"2024-06-01T01:02:03.000Z",'
    '"total_requests":%(requests)d,"average_requests_per_day_active":%(per_day).2f,'
    '"average_tokens_per_request":512.5,"total_completion_tokens":%(completion)d,'
    '"total_prompt_tokens":%(prompt)d,"cost":%(cost).6f,"rate_limited_count":"0"}'
)


def _generated_user(i: int) -> str:
    """User number ``i`` as wire JSON, the same every time it is asked for."""
    return _GENERATED_USER % {
        "i": i,
        "days": 1 + i % 30,
        "requests": 10 + i % 1000,
        "per_day": 3.25 + i % 7,
        "completion": 1000 * (i % 97),
        "prompt": 2000 * (i % 89),
        "cost": 0.000123 * (i % 1000),
    }


async def _generated_metrics(request: web.Request) -> web.Response:
    count = int(request.match_info["count"])
    body = await request.json()
    offset, limit = int(body["offset"]), int(body["limit"])
    users = ",".join(_generated_user(i) for i in range(offset, min(offset + limit, count)))
    text = f'{{"data":{{"users":[{users}],"count":{count},"hasUsers":true}},"error":null}}'
    return web.Response(text=text, content_type="application/json")


def generated_app() -> web.Application:
    """Any number of users, each page generated from its offset (nothing stored, so the
    server's memory stays flat): the base URL ``<server>/n/<count>`` serves ``count`` users."""
    app = web.Application()
    app.router.add_post("/n/{count}/v1/user/metrics/query", _generated_metrics)
    return app


def fixed_delay_app(users: int, delay: float) -> web.Application:
    """``users`` users on metrics/query, each request answered after ``delay`` seconds."""
    rows = [wire_user(i) for i in range(users)]

    async def metrics(request: web.Request) -> web.Response:
        body = await request.json()
        offset, limit = int(body["offset"]), int(body["limit"])
        await asyncio.sleep(delay)
        page = wire_page(rows[offset : offset + limit], len(rows))
        return web.Response(body=page, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/user/metrics/query", metrics)
    return app


def serve_in_process(*, users: int, delay: float) -> contextlib.AbstractContextManager[str]:
    """The fixed-delay server in a child process; yields the base URL."""
    return serve_app_in_process(functools.partial(fixed_delay_app, users, delay))


@contextlib.contextmanager
def serve_app_in_process(build: Callable[[], web.Application]) -> Iterator[str]:
    """Serve ``build()`` on 127.0.0.1 in a child process, so that the server's work does not
    share the client's CPU (as with a real remote server); yields the base URL. ``build`` must
    be a module-level function (or a partial of one): the child is spawned."""
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    process = context.Process(target=_run_forever, args=(build, ports), daemon=True)
    process.start()
    try:
        yield ports.get(timeout=30)
    finally:
        process.terminate()
        process.join(10)
        ports.close()
        ports.join_thread()


def _run_forever(build: Callable[[], web.Application], ports: Any) -> None:
    async def main() -> None:
        runner = web.AppRunner(build(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports.put(f"http://127.0.0.1:{runner.addresses[0][1]}")
        await asyncio.Event().wait()

    asyncio.run(main())
