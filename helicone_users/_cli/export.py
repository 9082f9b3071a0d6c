"""``helicone-users export``: every matching user to a CSV, JSON Lines or Parquet file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import IO, Any

from helicone_users._cli._atomic import atomic_path, atomic_write
from helicone_users._cli._common import (
    UsageError,
    add_command,
    add_connection_options,
    make_client,
    plural,
    positive_int,
    require_extra,
    run,
)
from helicone_users._cli._output import RecordWriter
from helicone_users._cli._progress import Progress
from helicone_users._cli._timeparse import add_time_options
from helicone_users._cli._views import records
from helicone_users._cli.users import add_filter_option, add_sort_option, metrics_kwargs
from helicone_users._config import DEFAULT_CONCURRENCY, MAX_PAGE_SIZE

EXPORT_FORMATS = ("csv", "jsonl", "parquet")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}

EXAMPLES = """
helicone-users export --out users.csv
helicone-users export --filter 'cost > 0.5' --since 30d --out big-spenders.jsonl
helicone-users export --filter 'provider = "openai"' --out users.parquet   # needs pyarrow
"""


def add_parser(subparsers: Any) -> None:
    """Register ``export``."""
    parser = add_command(
        subparsers,
        "export",
        help="write every matching user to a CSV, JSON Lines or Parquet file",
        description=(
            "Fetch every page of matching users concurrently and write them to a file.\n"
            "The file appears only once it is complete: an interrupted export leaves nothing."
        ),
        examples=EXAMPLES,
        func=main,
    )
    add_filter_option(parser)
    add_sort_option(parser, default="user_id:asc")
    add_time_options(parser)
    parser.add_argument(
        "--out", required=True, type=Path, metavar="PATH", help="the file to write"
    )
    parser.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        help="file format (default: from the --out suffix: .csv, .jsonl, .parquet)",
    )
    parser.add_argument(
        "--page-size",
        type=positive_int,
        default=MAX_PAGE_SIZE,
        metavar="N",
        help="users per request, at most %(default)s",
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help="pages fetched at once (default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_connection_options(parser)


def output_format(args: argparse.Namespace) -> str:
    """The format asked for, or the one the file suffix implies."""
    if args.format:
        return str(args.format)
    fmt = _SUFFIXES.get(args.out.suffix.lower())
    if fmt is None:
        raise UsageError(
            f"cannot tell the format of {str(args.out)!r}: name it .csv, .jsonl or .parquet,"
            " or pass --format"
        )
    return fmt


def require_pyarrow() -> Any:
    """The ``pyarrow.parquet`` module, or MissingExtraError naming the extra to install."""
    return require_extra("pyarrow.parquet", "parquet", "Parquet output (pyarrow)")


def main(args: argparse.Namespace) -> int:
    """Run ``export``."""
    return run(args, lambda: export(args))


async def export(args: argparse.Namespace) -> int:
    """Fetch the pages and write the file atomically; the summary goes to stderr."""
    fmt = output_format(args)
    if args.page_size > MAX_PAGE_SIZE:
        raise UsageError(f"--page-size is at most {MAX_PAGE_SIZE}")
    pq = require_pyarrow() if fmt == "parquet" else None
    kwargs = metrics_kwargs(args)
    if not args.out.parent.is_dir():
        raise UsageError(f"no such directory: {str(args.out.parent)!r}")
    progress = Progress(f"export {args.out.name}", enabled=not args.quiet)
    async with (
        make_client(args) as client,
        client.users.iter_metrics(
            **kwargs, page_size=args.page_size, concurrency=args.concurrency
        ) as pager,
    ):
        with progress:
            if pq is not None:
                count = await _write_parquet(pager, args.out, progress, pq)
            else:
                with atomic_write(args.out, newline="" if fmt == "csv" else None) as f:
                    count = await _write_text(pager, f, fmt, progress)
    pages = plural(progress.pages, "page")
    print(f"wrote {plural(count, 'user')} ({pages}) to {args.out}", file=sys.stderr)
    return 0


async def _write_text(pager: Any, f: IO[str], fmt: str, progress: Progress) -> int:
    writer = RecordWriter(f, fmt)
    async for page in pager.pages():
        _track(progress, page)
        writer.write_all(records(page.users))
        progress.advance(len(page.users))
    return writer.count


async def _write_parquet(pager: Any, out: Path, progress: Progress, pq: Any) -> int:
    import pyarrow as pa

    rows: list[dict[str, Any]] = []
    async for page in pager.pages():
        _track(progress, page)
        rows.extend(records(page.users, text_times=False))
        progress.advance(len(page.users))
    with atomic_path(out) as tmp:
        pq.write_table(pa.Table.from_pylist(rows), tmp)
    return len(rows)


def _track(progress: Progress, page: Any) -> None:
    total = getattr(page, "count", None)
    if progress.total is None and isinstance(total, int):
        progress.set_total(total)
