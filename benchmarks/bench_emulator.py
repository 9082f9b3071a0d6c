"""The emulator at scale: generating, loading and reopening data, peak memory, query medians.

For each size (100,000 and 1,000,000 requests by default; ``--full`` adds 10,000,000, which
takes a few minutes) three fresh processes run in turn, so each figure is that process's own:

1. *generate*: ``Emulator.synthetic`` (20,000 users, 30 days) into a database file, then
   ``export_parquet`` writes the requests to a Parquet file;
2. *load and query*: ``Emulator.from_parquet`` loads that file into a new database file (load
   seconds, microseconds per row), then each query is sent over HTTP 5 times (the median is
   reported) and the SQL statements it ran are run 5 times straight on DuckDB, one after another
   (HTTP / SQL is the emulator's overhead; below 1 where the emulator runs two statements at
   once); peak RSS / requests is the memory per stored request;
3. *reopen*: the same ``from_parquet`` call on the database file the load left behind serves at
   once without loading again (seconds until the first answer).

Targets (stated for the largest size run; they are meant for 10,000,000 requests: ``--full``):
each query's median under 300 ms and at most 300 bytes of peak RSS per stored request.
Run: ``python benchmarks/bench_emulator.py [--full] [--sizes N ...] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

USERS = 20_000
DAYS = 30
DEFAULT_SIZES = (100_000, 1_000_000)
FULL_SIZE = 10_000_000
QUERY_TARGET_MS = 300.0
BYTES_TARGET = 300.0
END = "2025-01-01T00:00:00+00:00"
FILTERED = {
    "left": {"request_response_rmt": {"model": {"equals": "gpt-4o"}, "latency": {"gt": 1000}}},
    "operator": "and",
    "right": {"request_response_rmt": {"properties": {"environment": {"equals": "production"}}}},
}
# /calls/stats bodies: what ``helicone-users calls-stats`` sends by default (call count and
# average latency), and the README's example (token and latency percentiles, and cost).
STATS_TYPICAL: dict[str, Any] = {
    "call_metrics": [{"metric": "call_count"},
                     {"metric": "latency_ms", "aggregations": ["avg"]}],
}  # fmt: skip
STATS_PERCENTILES: dict[str, Any] = {
    "usage_metrics": [
        {"metric": "input_tokens", "aggregations": ["sum", "avg"], "percentiles": [95]},
        {"metric": "total_cost"},
    ],
    "call_metrics": [{"metric": "latency_ms", "aggregations": ["avg"], "percentiles": [50, 99]}],
}
# (column, path, body); the Weave bodies get their range in ``_stats_body``.
QUERIES: list[tuple[str, str, dict[str, Any]]] = [
    ("filtered page", "/v1/user/metrics/query",
     {"filter": FILTERED, "offset": 0, "limit": 100, "sort": {"total_requests": "desc"}}),
    ("broad filter page", "/v1/user/metrics/query",
     {"filter": {"request_response_rmt": {"status": {"equals": 200}}}, "offset": 0,
      "limit": 100, "sort": {"total_requests": "desc"}}),
    ("sort by cost", "/v1/user/metrics/query",
     {"filter": "all", "offset": 0, "limit": 100, "sort": {"cost": "desc"}}),
    ("overview p95", "/v1/user/metrics-overview/query",
     {"filter": "all", "pSize": "p95", "useInterquartile": False}),
    ("filtered overview", "/v1/user/metrics-overview/query",
     {"filter": FILTERED, "pSize": "p95", "useInterquartile": True}),
    ("100-user query", "/v1/user/query", {"userIds": [f"user_{i:06d}" for i in range(1, 101)]}),
    ("stats 7 days", "/calls/stats", {"days": 7, **STATS_TYPICAL}),
    ("stats 31 days", "/calls/stats", {"days": 31, **STATS_TYPICAL}),
    ("stats 7 days, percentiles", "/calls/stats", {"days": 7, **STATS_PERCENTILES}),
    ("stats 31 days, percentiles", "/calls/stats", {"days": 31, **STATS_PERCENTILES}),
]  # fmt: skip


def peak_rss_bytes() -> int:
    """This process's peak resident set size."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


# --- children --------------------------------------------------------------------------------


async def generate(requests: int, folder: Path) -> dict[str, Any]:
    """Child 1: synthetic data into a database file, then to Parquet."""
    from datetime import datetime

    from helicone_users.testing import Emulator

    started = time.perf_counter()
    emulator = Emulator.synthetic(
        seed=1, users=USERS, requests=requests, days=DAYS, end=datetime.fromisoformat(END),
        db_path=folder / "generated.duckdb",
    )  # fmt: skip
    async with emulator:
        seconds = time.perf_counter() - started
        await emulator.export_parquet(folder / "requests.parquet")
    return {"generate_s": seconds, "generate_rss": peak_rss_bytes()}


class RecordingCursor:
    """A DuckDB cursor that keeps the statements run through it (and its own cursors)."""

    def __init__(self, cursor: Any, statements: list[tuple[str, Any]] | None = None) -> None:
        self.inner = cursor
        self.statements: list[tuple[str, Any]] = [] if statements is None else statements

    def execute(self, sql: str, params: Any = None) -> Any:
        self.statements.append((sql, params))
        self.inner.execute(sql, params)
        return self

    def cursor(self) -> RecordingCursor:
        return RecordingCursor(self.inner.cursor(), self.statements)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def _median_ms(call: Callable[[], Awaitable[Any]], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def _stats_body(spec: dict[str, Any]) -> dict[str, Any]:
    from datetime import datetime, timedelta

    metrics = {key: value for key, value in spec.items() if key != "days"}
    end = datetime.fromisoformat(END)
    start = end - timedelta(days=spec["days"])
    return {"project_id": "bench/emulator", "start": start.isoformat(), "end": end.isoformat(),
            **metrics}  # fmt: skip


def _run_raw(emulator: Any, path: str, body: dict[str, Any]) -> list[tuple[str, Any]]:
    """The SQL one answer runs, recorded by running its query function on a recording cursor."""
    from datetime import datetime, timezone

    from helicone_users.testing import _queries, _weave, _weave_sql

    def record(cursor: Any) -> list[tuple[str, Any]]:
        recording = RecordingCursor(cursor)
        context = emulator.state.context
        if path == "/calls/stats":
            query, _, _ = _weave.parse_request(body, frozenset(), now=datetime.now(timezone.utc),
                                               max_range_days=31)  # fmt: skip
            _weave_sql.stats_cells(recording, query)
        else:
            run = {"/v1/user/metrics/query": _queries.metrics,
                   "/v1/user/metrics-overview/query": _queries.overview,
                   "/v1/user/query": _queries.user_query}[path]  # fmt: skip
            run(recording, body, context)
        return recording.statements

    result: list[tuple[str, Any]] = emulator.state.store.execute(record)
    return result


async def load_and_query(requests: int, folder: Path, runs: int) -> dict[str, Any]:
    """Child 2: the Parquet file into a new database file, then every query."""
    import aiohttp

    from helicone_users.testing import Emulator

    base = peak_rss_bytes()  # Python, aiohttp, DuckDB and the package, before any data
    started = time.perf_counter()
    emulator = Emulator.from_parquet(folder / "requests.parquet", db_path=folder / "load.duckdb")
    await emulator.start()
    out: dict[str, Any] = {"load_s": time.perf_counter() - started, "base_rss": base}
    try:
        token = base64.b64encode(f"api:{emulator.api_key}".encode()).decode()
        weave = {"Authorization": f"Basic {token}"}
        bearer = {"Authorization": f"Bearer {emulator.api_key}"}
        async with aiohttp.ClientSession(base_url=emulator.base_url) as http:
            for label, path, body in QUERIES:
                stats = path == "/calls/stats"
                body = _stats_body(body) if stats else body
                out[label] = await _time_query(emulator, http, path, body, runs,
                                               headers=weave if stats else bearer)
    finally:
        await emulator.aclose()
    out["load_rss"] = peak_rss_bytes()
    return out


async def _time_query(emulator: Any, http: Any, path: str, body: dict[str, Any], runs: int,
                      **options: Any) -> dict[str, float]:  # fmt: skip
    async def post() -> None:
        async with http.post(path, json=body, **options) as response:
            response.raise_for_status()
            await response.read()

    statements = await asyncio.to_thread(_run_raw, emulator, path, body)

    async def raw() -> None:
        def run(cursor: Any) -> None:
            for sql, params in statements:
                cursor.execute(sql, params).fetchall()

        await emulator.state.store.run(run)

    await post()  # a first run warms DuckDB's buffers, as a serving emulator's would be
    return {"http_ms": await _median_ms(post, runs), "sql_ms": await _median_ms(raw, runs)}


async def reopen(folder: Path) -> dict[str, Any]:
    """Child 3: the loaded database file serves again at once."""
    import aiohttp

    from helicone_users.testing import Emulator

    started = time.perf_counter()
    emulator = Emulator.from_parquet(folder / "requests.parquet", db_path=folder / "load.duckdb")
    async with emulator, aiohttp.ClientSession() as http:
        async with http.post(
            emulator.base_url + "/v1/user/metrics/query",
            json={"filter": "all", "offset": 0, "limit": 10},
            headers={"Authorization": f"Bearer {emulator.api_key}"},
        ) as response:
            response.raise_for_status()
        seconds = time.perf_counter() - started
        stored = await emulator.count_requests()
    return {"reopen_s": seconds, "reopen_requests": stored}


# --- the parent ------------------------------------------------------------------------------


def child(phase: str, requests: int, folder: Path, runs: int) -> dict[str, Any]:
    """Run one phase in a fresh process; its last output line is a JSON object."""
    command = [sys.executable, __file__, "--child", phase, "--sizes", str(requests),
               "--folder", str(folder), "--runs", str(runs)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{phase} at {requests:,} requests failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(requests: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as name:
        folder = Path(name)
        row: dict[str, Any] = {"requests": requests}
        for phase in ("generate", "load", "reopen"):
            print(f"  {requests:,} requests: {phase} ...", file=sys.stderr, flush=True)
            row.update(child(phase, requests, folder, runs))
    return row


def _mb(value: float) -> str:
    return f"{value / 1e6:,.0f} MB"


def table(rows: list[dict[str, Any]]) -> str:
    labels = [label for label, _, _ in QUERIES]
    head = ["requests", "generate", "load (Parquet)", "us/row", "peak RSS", "bytes/row",
            *labels, "reopen"]  # fmt: skip
    head[1] = "generate (its peak RSS)"
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        n = row["requests"]
        cells = [f"{n:,}", f"{row['generate_s']:.1f} s ({_mb(row['generate_rss'])})",
                 f"{row['load_s']:.1f} s",
                 f"{row['load_s'] / n * 1e6:.1f}", _mb(row["load_rss"]),
                 f"{row['load_rss'] / n:,.0f}",
                 *(f"{row[label]['http_ms']:.0f} ms" for label in labels),
                 f"{row['reopen_s']:.2f} s"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(row: dict[str, Any]) -> list[str]:
    """The lines stating a target, for one size."""
    n = row["requests"]
    lines = []
    for label, _, _ in QUERIES:
        http, sql = row[label]["http_ms"], row[label]["sql_ms"]
        verdict = "met" if http < QUERY_TARGET_MS else "missed"
        lines.append(
            f"{n:,} requests, {label}: median {http:.1f} ms over HTTP, {sql:.1f} ms as raw SQL "
            f"(overhead x{http / sql:.2f}; target < {QUERY_TARGET_MS:g} ms: {verdict})"
        )
    per_row = row["load_rss"] / n
    stated = f"{n:,} requests: peak RSS {_mb(row['load_rss'])} = {per_row:,.0f} bytes per stored "
    if n < FULL_SIZE:  # a fixed ~0.5 GB of buffers dominates small sizes
        lines.append(f"{stated}request (the target, <= {BYTES_TARGET:g} at {FULL_SIZE:,}, is "
                     "checked with --full)")  # fmt: skip
    else:
        verdict = "met" if per_row <= BYTES_TARGET else "missed"
        lines.append(f"{stated}request (target <= {BYTES_TARGET:g}: {verdict})")
    return lines


def explain(rows: list[dict[str, Any]]) -> str:
    largest = rows[-1]
    n = largest["requests"]
    return (
        f"Peak RSS is the load-and-query process's own, at {n:,} requests: "
        f"{_mb(largest['base_rss'])} before any data (Python, aiohttp, DuckDB, the package), "
        f"DuckDB's buffer pool holding the compressed table blocks it has read (the database "
        f"file is {largest['file_bytes'] / n:,.0f} bytes per request), the load's row-group "
        "buffers and the largest query's working memory. Reopen: seconds from Emulator(...) to "
        "the first answer on the file the load left behind, with nothing loaded again."
    )


def parent(sizes: list[int], runs: int) -> None:
    print(f"machine load (uptime): {os.getloadavg()[0]:.2f}", file=sys.stderr)
    rows = [measure(n, runs) for n in sizes]
    print(table(rows))
    print()
    print(explain(rows))
    print()
    for line in report(rows[-1]):
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="add 10,000,000 requests")
    parser.add_argument("--sizes", type=int, nargs="+", help="request counts to run")
    parser.add_argument("--runs", type=int, default=5, help="runs per query (median)")
    parser.add_argument("--child", choices=("generate", "load", "reopen"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        phases = {
            "generate": lambda: generate(args.sizes[0], args.folder),
            "load": lambda: load_and_query(args.sizes[0], args.folder, args.runs),
            "reopen": lambda: reopen(args.folder),
        }
        result = asyncio.run(phases[args.child]())
        if args.child == "load":
            result["file_bytes"] = (args.folder / "load.duckdb").stat().st_size
        print(json.dumps(result))
        return
    sizes = args.sizes or [*DEFAULT_SIZES, *([FULL_SIZE] if args.full else [])]
    parent(sorted(sizes), args.runs)


if __name__ == "__main__":
    main()
