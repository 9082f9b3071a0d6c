"""A restartable batch job: export every user matching a filter to JSON Lines.

Pages are fetched concurrently and appended to the output strictly in order, one completed page
at a time. After each page a checkpoint (``<out>.checkpoint``) records how many pages are done
and how many bytes of output they fill. If the job dies (a crash, Ctrl-C, a failing request), run
it again with the same arguments: it cuts the output back to the last completed page and carries
on from the next one, so the final file equals a one-shot export.

Users are sorted by ``user_id`` (unique), so offsets name the same users on every run as long as
the data does not change between runs.

Run it::

    export HELICONE_API_KEY=sk-helicone-...
    python examples/export_job.py --filter 'cost > 0.01' --out users.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Literal

from helicone_users import AsyncHeliconeUsers, UserMetricsPage
from helicone_users.filters import coerce

PAGE_SIZE = 1000
CONCURRENCY = 4
SORT: tuple[str, Literal["asc", "desc"]] = ("user_id", "asc")


def checkpoint_path(out: Path) -> Path:
    """Where the job records its progress for ``out``."""
    return out.with_name(out.name + ".checkpoint")


def load_checkpoint(out: Path, job: dict[str, Any]) -> dict[str, Any]:
    """The saved progress of this job, or a fresh start; refuses a checkpoint of another job."""
    path = checkpoint_path(out)
    if not path.exists():
        return {"job": job, "pages_done": 0, "bytes": 0, "users": 0, "last_user_id": None}
    state: dict[str, Any] = json.loads(path.read_text())
    if state["job"] != job:
        raise SystemExit(
            f"{path} belongs to another export (filter or page size differ); delete it to restart"
        )
    return state


def save_checkpoint(out: Path, state: dict[str, Any]) -> None:
    """Replace the checkpoint atomically, so a crash leaves the old or the new one."""
    path = checkpoint_path(out)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def open_output(out: Path, committed_bytes: int) -> IO[str]:
    """Open ``out`` for appending, cut back to the bytes of the completed pages: whatever a
    crash left after the last checkpoint is dropped."""
    with open(out, "a+b") as raw:
        raw.truncate(committed_bytes)
    return open(out, "a")  # the caller closes it with ``with``


def append_page(f: Any, page: UserMetricsPage) -> None:
    """Write one page of users as JSON Lines and make it durable."""
    for user in page.users:
        record = {
            "user_id": user.user_id,
            "total_requests": user.total_requests,
            "cost": user.cost,
            "active_for": user.active_for,
            "first_active": user.first_active.isoformat(),
            "last_active": user.last_active.isoformat(),
            "total_prompt_tokens": user.total_prompt_tokens,
            "total_completion_tokens": user.total_completion_tokens,
        }
        f.write(json.dumps(record) + "\n")
    f.flush()
    os.fsync(f.fileno())


async def run_export(
    client: AsyncHeliconeUsers,
    filter_text: str,
    out: Path,
    *,
    page_size: int = PAGE_SIZE,
    concurrency: int = CONCURRENCY,
    on_page: Callable[[int], None] | None = None,
) -> int:
    """Export (or finish exporting) the users matching ``filter_text`` to ``out``; returns the
    number of users in the file. ``on_page(pages_done)`` runs after each completed page."""
    filter_ = coerce(filter_text)
    job = {"filter": filter_.to_json(), "page_size": page_size, "sort": list(SORT)}
    state = load_checkpoint(out, job)
    if state.get("complete"):
        return int(state["users"])

    async def fetch(page_number: int) -> UserMetricsPage:
        return await client.users.metrics(
            filter_, sort=SORT, offset=page_number * page_size, limit=page_size
        )

    first = await fetch(state["pages_done"])
    total_pages = math.ceil(first.count / page_size)
    with open_output(out, state["bytes"]) as f:
        window: deque[asyncio.Task[UserMetricsPage]] = deque()
        next_page = state["pages_done"] + 1
        try:
            page: UserMetricsPage | None = first if state["pages_done"] < total_pages else None
            while page is not None:
                while next_page < total_pages and len(window) < concurrency:
                    window.append(asyncio.ensure_future(fetch(next_page)))
                    next_page += 1
                _commit(f, out, state, page)
                if on_page is not None:
                    on_page(state["pages_done"])
                page = await window.popleft() if window else None
        finally:
            for task in window:
                task.cancel()
            await asyncio.gather(*window, return_exceptions=True)
    state["complete"] = True
    save_checkpoint(out, state)
    return int(state["users"])


def _commit(f: Any, out: Path, state: dict[str, Any], page: UserMetricsPage) -> None:
    append_page(f, page)
    state["pages_done"] += 1
    state["bytes"] = f.tell()
    state["users"] += len(page.users)
    if page.users:
        state["last_user_id"] = page.users[-1].user_id
    save_checkpoint(out, state)


async def main() -> None:
    """Parse the arguments and run the export."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filter", default="all", help="a filter in the filter language")
    parser.add_argument("--out", type=Path, required=True, help="the JSON Lines file to write")
    parser.add_argument("--page-size", type=int, default=PAGE_SIZE)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    args = parser.parse_args()
    async with AsyncHeliconeUsers() as client:  # HELICONE_API_KEY, HELICONE_BASE_URL
        count = await run_export(
            client,
            args.filter,
            args.out,
            page_size=args.page_size,
            concurrency=args.concurrency,
            on_page=lambda done: print(f"{done} pages done", flush=True),
        )
    print(f"{count} users in {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
