"""``helicone-users totals``: request, token and cost totals for given users."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from helicone_users._cli._common import (
    UsageError,
    add_command,
    add_connection_options,
    make_client,
    run,
)
from helicone_users._cli._output import FORMATS, write_records
from helicone_users._cli._timeparse import add_time_options, resolve_window
from helicone_users._cli._views import STATS_COLUMNS, records

EXAMPLES = """
helicone-users totals alice bob
helicone-users totals alice --since 30d --format json
"""


def add_parser(subparsers: Any) -> None:
    """Register ``totals``."""
    parser = add_command(
        subparsers,
        "totals",
        help="request, token and cost totals for the given users",
        description="Show request counts, token sums and cost for each USER_ID given.",
        examples=EXAMPLES,
        func=main,
    )
    parser.add_argument("user_ids", nargs="+", metavar="USER_ID", help="users to total")
    add_time_options(parser)
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: %(default)s)"
    )
    add_connection_options(parser)


def main(args: argparse.Namespace) -> int:
    """Run ``totals``."""

    async def body() -> int:
        try:
            window = resolve_window(args)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(str(exc)) from None
        kwargs: dict[str, Any] = {}
        if window is not None:
            kwargs["time_range"] = window
        async with make_client(args) as client:
            stats = await client.users.query(user_ids=args.user_ids, **kwargs)
        write_records(records(stats), args.format, sys.stdout, STATS_COLUMNS)
        found = {s.user_id for s in stats}
        missing = [u for u in dict.fromkeys(args.user_ids) if u not in found]
        if missing:
            print(f"helicone-users: no requests in range for: {', '.join(missing)}",
                  file=sys.stderr)
        return 0

    return run(args, body)
