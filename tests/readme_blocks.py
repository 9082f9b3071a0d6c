"""The README's ```python blocks: find them, and run one as a new user would (``__main__``).

``python tests/readme_blocks.py README.md LINE`` runs the block whose fence opens on line LINE in
a fresh interpreter, with the environment pointing at an emulator. Top-level ``await``,
``async with`` and ``async for`` are allowed. Line numbers in a traceback are the README's own.

A block must also teach something true on the demo data: every API call it makes returns rows
(a page with users, histograms with bins, totals, call stats with calls), and every filter it
names at top level matches a user. A block that cannot run against the local emulator is
preceded by ``<!-- no-run: the reason -->``.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import inspect
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NO_RUN = re.compile(r"<!--\s*no-run:\s*(?P<reason>.*?)\s*-->")


@dataclass(frozen=True)
class Block:
    """One fenced ```python block: where it opens, its code, and why it is skipped, if it is."""

    line: int  # the line of the opening fence, counted from 1
    code: str  # padded with blank lines, so that line numbers are the README's
    no_run: str | None

    def __repr__(self) -> str:
        return f"Block(line={self.line}, no_run={self.no_run!r})"


def python_blocks(text: str) -> list[Block]:
    """Every ```python block of a Markdown text, in order."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        if lines[index].strip() != "```python":
            index += 1
            continue
        end = next(
            (i for i in range(index + 1, len(lines)) if lines[i].strip() == "```"), len(lines)
        )
        before = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        match = NO_RUN.fullmatch(before.strip())
        code = "\n" * (index + 1) + "\n".join(lines[index + 1 : end]) + "\n"
        blocks.append(Block(index + 1, code, match["reason"] if match else None))
        index = end + 1
    return blocks


# --- run one block -------------------------------------------------------------------------------

EMPTY: list[str] = []  # what a block asked for that came back with nothing


def _record(what: str, empty: Callable[[Any], bool]) -> Callable[[Any], Any]:
    """Wrap an async API method so that an empty result is written down."""

    def wrap(method: Any) -> Any:
        @functools.wraps(method)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = await method(*args, **kwargs)
            if empty(result):
                EMPTY.append(f"{what} returned nothing")
            return result

        return wrapper

    return wrap


def _watch_the_api() -> Callable[[], None]:
    """Record empty results of the API methods; the function returned undoes it."""
    # Before anything imports the blocking facade, which wraps these same methods.
    from helicone_users._client import Users
    from helicone_users.weave import AsyncWeaveStats

    watched = {
        (Users, "metrics"): ("users.metrics()", lambda page: not page.users),
        (Users, "_fetch_page"): (
            "the first page of users.iter_metrics()",
            lambda page: page.offset == 0 and not page.users,
        ),
        (Users, "overview"): ("users.overview()", lambda o: not (o.request_count or o.user_cost)),
        (Users, "query"): ("users.query()", lambda stats: not stats),
        (AsyncWeaveStats, "call_stats"): (
            "call_stats()",
            lambda s: not any(b.count for b in (*s.call_buckets, *s.usage_buckets)),
        ),
    }
    originals = {(owner, name): getattr(owner, name) for owner, name in watched}
    for (owner, name), (what, empty) in watched.items():
        setattr(owner, name, _record(what, empty)(originals[owner, name]))
    return lambda: [setattr(owner, name, method) for (owner, name), method in originals.items()]


async def _unmatched_filters(namespace: dict[str, Any]) -> list[str]:
    from helicone_users import AsyncHeliconeUsers, Filter

    named = {k: v for k, v in namespace.items() if isinstance(v, Filter) and not k.startswith("_")}
    if not named:
        return []
    async with AsyncHeliconeUsers() as client:
        counts = {name: (await client.users.metrics(f, limit=1)).count for name, f in named.items()}
    return [f"the filter {name!r} matches no user" for name, count in counts.items() if not count]


def run(readme: Path, line: int) -> None:
    """Run the block opening on ``line``; raise when it fails or teaches nothing."""
    [block] = [b for b in python_blocks(readme.read_text(encoding="utf-8")) if b.line == line]
    code = compile(block.code, str(readme), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    unwatch = _watch_the_api()
    namespace: dict[str, Any] = {"__name__": "__main__"}
    if code.co_flags & inspect.CO_COROUTINE:
        asyncio.run(eval(code, namespace))
    else:
        exec(code, namespace)
    unwatch()
    EMPTY.extend(asyncio.run(_unmatched_filters(namespace)))
    if EMPTY:
        raise SystemExit(f"{readme.name} line {line}: the block runs but " + "; ".join(EMPTY))


if __name__ == "__main__":
    warnings.simplefilter("error")  # unclosed sessions, un-awaited coroutines, SDK warnings
    run(Path(sys.argv[1]), int(sys.argv[2]))
