"""``helicone-users demo``: a tour of the SDK against a local emulator with synthetic data."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import textwrap
import time
from typing import IO, Any

from helicone_users._cli._common import (
    EXIT_MISSING_EXTRA,
    MissingExtraError,
    add_command,
    fail,
    positive_int,
    require_extra,
    run,
)
from helicone_users._cli._output import (
    bar_chart,
    is_tty,
    print_table,
    rich_available,
    sparkline,
    terminal_width,
)
from helicone_users._cli._views import (
    STATS_COLUMNS,
    USER_COLUMNS,
    histogram_items,
    records,
    usd_items,
)

EXAMPLES = """
helicone-users demo
helicone-users demo --users 500 --requests 20000 --seed 7
"""

# The demo's data ends now, so relative windows (the last 7 days) find it.
DEMO_DAYS = 14
DEMO_USERS = 200
DEMO_REQUESTS = 10_000
DEMO_SEED = 7
WEAVE_BUCKET_SECONDS = 6 * 3600


def add_parser(subparsers: Any) -> None:
    """Register ``demo``."""
    parser = add_command(
        subparsers,
        "demo",
        help="tour the SDK against a local emulator (no key, no network)",
        description=(
            "Start the emulator on 127.0.0.1 with synthetic data and tour the SDK: top users by\n"
            "cost, a filter and its wire JSON, the overview histograms, totals for a few users\n"
            "and Weave call stats. Needs the emulator extra (DuckDB):\n"
            "pip install 'helicone-users[emulator]' (the cli extra adds rich's colours)."
        ),
        examples=EXAMPLES,
        func=main,
    )
    parser.add_argument(
        "--users",
        type=positive_int,
        default=DEMO_USERS,
        help="synthetic users (default: %(default)s)",
    )
    parser.add_argument(
        "--requests",
        type=positive_int,
        default=DEMO_REQUESTS,
        help="synthetic requests (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEMO_SEED, help="data seed (default: %(default)s)"
    )


def main(args: argparse.Namespace) -> int:
    """Run ``demo``."""
    try:
        require_extra("duckdb", "emulator", "the demo (the emulator's DuckDB)")
    except MissingExtraError as exc:
        return fail(f"error: {exc}", EXIT_MISSING_EXTRA)
    return run(args, lambda: tour(args, sys.stdout))


class _Printer:
    """Section headings and code lines, bold on a terminal."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.width = min(terminal_width(stream), 100)
        self.console: Any = None
        if is_tty(stream) and rich_available():
            from rich.console import Console

            self.console = Console(file=stream, width=self.width, highlight=False)

    def heading(self, number: int, title: str) -> None:
        text = f"{number}. {title}"
        if self.console is not None:
            self.line()
            self.console.rule(f"[bold]{text}", align="left")
        else:
            self.line(f"\n== {text} " + "=" * max(self.width - len(text) - 7, 3))

    def code(self, text: str) -> None:
        for number, line in enumerate(text.strip("\n").splitlines()):
            prompt = "..." if number and line.startswith((" ", ")")) else ">>>"
            if self.console is not None:
                self.console.print(f"[cyan]{prompt} {line}[/cyan]", markup=True, soft_wrap=True)
            else:
                self.line(f"{prompt} {line}")

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")


async def tour(args: argparse.Namespace, stream: IO[str]) -> int:
    """Start the emulator, then show each part of the SDK in turn."""
    from helicone_users.testing import Emulator

    began = time.perf_counter()
    out = _Printer(stream)
    end = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    emulator = Emulator.synthetic(
        seed=args.seed, users=args.users, requests=args.requests, days=DEMO_DAYS, end=end
    )
    async with emulator:
        out.line(
            f"Emulator on {emulator.base_url}: {args.users} synthetic users, {args.requests}"
            f" requests over {DEMO_DAYS} days (local, no key, no network)."
        )
        async with emulator.client() as client:
            top = await _top_users(out, client)
            await _filters(out, client)
            await _overview(out, client)
            await _totals(out, client, [u.user_id for u in top[:3]])
        await _call_stats(out, emulator, end)
    out.line(f"\nDone in {time.perf_counter() - began:.1f} s. Next: helicone-users --help")
    return 0


async def _top_users(out: _Printer, client: Any) -> list[Any]:
    out.heading(1, "Top users by cost")
    out.code('page = await client.users.metrics(sort=("cost", "desc"), limit=5)')
    page = await client.users.metrics(sort=("cost", "desc"), limit=5)
    out.line(f"{page.count} users in all; the five who cost the most:")
    print_table(records(page.users), USER_COLUMNS[:5], out.stream)
    return list(page.users)


async def _filters(out: _Printer, client: Any) -> None:
    from helicone_users.filters import F, U, parse

    out.heading(2, "A filter: typed fields, & | ~, compiled to the wire's JSON")
    out.code(
        'f = F.model.contains("claude") & (F.latency > 1000) & (U.cost > 0.05)\n'
        "page = await client.users.metrics(f, limit=1)"
    )
    f = F.model.contains("claude") & (F.latency > 1000) & (U.cost > 0.05)
    page = await client.users.metrics(f, limit=1)
    out.line(f"str(f)             {f}")
    out.line(f"parse(str(f)) == f {parse(str(f)) == f}")
    out.line("f.to_json()")
    for line in textwrap.wrap(json.dumps(f.to_json()), out.width - 2):
        out.line("  " + line)
    out.line(f"{page.count} users spent over $0.05 on their slow (> 1 s) Claude requests.")


async def _overview(out: _Printer, client: Any) -> None:
    out.heading(3, "The overview histograms")
    out.code('overview = await client.users.overview(p_size="p95")')
    overview = await client.users.overview(p_size="p95")
    out.line("Requests per user (bar length = users in the range):")
    for line in bar_chart(histogram_items(overview.request_count), width=out.width):
        out.line(line)
    out.line("Cost per user in USD:")
    for line in bar_chart(usd_items(overview.user_cost), width=out.width):
        out.line(line)


async def _totals(out: _Printer, client: Any, user_ids: list[str]) -> None:
    out.heading(4, "Totals for a few users")
    out.code(f"stats = await client.users.query(user_ids={user_ids!r})")
    stats = await client.users.query(user_ids=user_ids)
    print_table(records(stats), STATS_COLUMNS, out.stream)


async def _call_stats(out: _Printer, emulator: Any, end: dt.datetime) -> None:
    from helicone_users.weave import AsyncWeaveStats, CallMetric

    out.heading(5, "Weave call stats, as sparklines")
    out.code(
        'metrics = [CallMetric("call_count"),\n'
        '           CallMetric("latency_ms", aggregations=("avg", "max"))]\n'
        "stats = await weave.call_stats(\n"
        '    "demo/project", start=end - timedelta(days=14), end=end,\n'
        "    granularity=6 * 3600, call_metrics=metrics,\n"
        ")"
    )
    metrics = [CallMetric("call_count"), CallMetric("latency_ms", aggregations=("avg", "max"))]
    async with AsyncWeaveStats(emulator.api_key, base_url=emulator.base_url) as weave:
        stats = await weave.call_stats(
            "demo/project",
            start=end - dt.timedelta(days=DEMO_DAYS),
            end=end,
            granularity=WEAVE_BUCKET_SECONDS,
            call_metrics=metrics,
        )
    buckets = stats.call_buckets
    out.line(f"{len(buckets)} buckets of {stats.granularity // 3600} h, oldest first:")
    for label, metric, aggregation in (
        ("calls", "call_count", "sum"),
        ("avg latency ms", "latency_ms", "avg"),
        ("max latency ms", "latency_ms", "max"),
    ):
        values = [_number(b.value(metric, aggregation)) for b in buckets]
        present = [v for v in values if v is not None]
        peak = f"  (peak {max(present):,.0f})" if present else ""
        out.line(f"{label:>15} {sparkline(values)}{peak}")


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
