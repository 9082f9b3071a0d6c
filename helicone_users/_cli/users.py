"""``helicone-users users``: list users with their metrics."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from helicone_users._cli._common import (
    UsageError,
    add_command,
    add_connection_options,
    make_client,
    positive_int,
    run,
)
from helicone_users._cli._output import FORMATS, write_records
from helicone_users._cli._timeparse import add_time_options, resolve_window
from helicone_users._cli._views import USER_COLUMNS, records
from helicone_users._config import MAX_PAGE_SIZE, SORT_FIELDS

DEFAULT_LIMIT = 20


EXAMPLES = """
helicone-users users --sort cost:desc --limit 10
helicone-users users --filter 'model = "gpt-4o" and cost > 0.01' --since 7d
helicone-users users --filter 'user.total_requests >= 100' --all --format csv > users.csv
helicone-users users --start 2026-01-01 --until 2026-02-01 --format jsonl
"""


def add_parser(subparsers: Any) -> None:
    """Register ``users``."""
    parser = add_command(
        subparsers,
        "users",
        help="list users with their request counts, tokens and cost",
        description="List users with their metrics, sorted and filtered.",
        examples=EXAMPLES,
        func=main,
    )
    add_filter_option(parser)
    add_sort_option(parser)
    add_time_options(parser)
    count = parser.add_mutually_exclusive_group()
    count.add_argument(
        "--limit",
        type=positive_int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help="show the first N users (default: %(default)s)",
    )
    count.add_argument("--all", action="store_true", help="show every matching user")
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: %(default)s)"
    )
    add_connection_options(parser)


def add_filter_option(parser: argparse.ArgumentParser) -> None:
    """``--filter TEXT`` in the filter language."""
    parser.add_argument(
        "--filter",
        metavar="TEXT",
        help="""a filter, e.g. 'model = "gpt-4o" and latency > 1000' (see the README)""",
    )


def add_sort_option(parser: argparse.ArgumentParser, default: str = "cost:desc") -> None:
    """``--sort FIELD[:asc|desc]``."""
    parser.add_argument(
        "--sort",
        type=parse_sort,
        default=parse_sort(default),
        metavar="FIELD[:DIR]",
        help=f"sort key and direction (default: {default}); fields: {', '.join(SORT_FIELDS)}",
    )


def parse_sort(text: str) -> tuple[str, str]:
    """``cost:desc`` → ``("cost", "desc")``; the direction defaults to ``asc``."""
    field, _, direction = text.partition(":")
    field, direction = field.strip(), (direction.strip().lower() or "asc")
    if field not in SORT_FIELDS:
        raise argparse.ArgumentTypeError(
            f"unknown sort field {field!r}; choose from {', '.join(SORT_FIELDS)}"
        )
    if direction not in ("asc", "desc"):
        raise argparse.ArgumentTypeError(f"sort direction must be asc or desc, not {direction!r}")
    return field, direction


def parse_filter(text: str | None) -> Any:
    """The filter for ``--filter`` (``ALL`` when absent); FilterError if malformed."""
    from helicone_users.filters import ALL, parse

    return ALL if text is None or not text.strip() else parse(text)


def metrics_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for ``users.iter_metrics`` from the options."""
    kwargs: dict[str, Any] = {"filter": parse_filter(args.filter), "sort": args.sort}
    try:
        window = resolve_window(args)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(str(exc)) from None
    if window is not None:
        kwargs["time_range"] = window
    return kwargs


def main(args: argparse.Namespace) -> int:
    """Run ``users``."""

    async def body() -> int:
        kwargs = metrics_kwargs(args)
        limit = None if args.all else args.limit
        page_size = MAX_PAGE_SIZE if limit is None else min(limit, MAX_PAGE_SIZE)
        users = []
        async with (
            make_client(args) as client,
            client.users.iter_metrics(**kwargs, page_size=page_size) as pager,
        ):
            async for user in pager:
                users.append(user)
                if limit is not None and len(users) >= limit:
                    break
        write_records(records(users), args.format, sys.stdout, USER_COLUMNS)
        if not users:
            print("helicone-users: no user matches", file=sys.stderr)
        return 0

    return run(args, body)
