"""``helicone-users overview``: the distribution of requests and cost per user."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from helicone_users._cli._common import add_command, add_connection_options, make_client, run
from helicone_users._cli._output import bar_chart, dumps, terminal_width
from helicone_users._cli._views import histogram_items, usd_items
from helicone_users._cli.users import add_filter_option, parse_filter
from helicone_users._config import DEFAULT_P_SIZE, P_SIZES

EXAMPLES = """
helicone-users overview
helicone-users overview --filter 'model = "gpt-4o"' --p-size p95
helicone-users overview --p-size p99 --interquartile --format json
"""


def add_parser(subparsers: Any) -> None:
    """Register ``overview``."""
    parser = add_command(
        subparsers,
        "overview",
        help="histograms of requests per user and cost per user",
        description=(
            "Show how requests and cost are spread over users, as two histograms.\n"
            "Values above the --p-size percentile are trimmed (and below 100 - p with\n"
            "--interquartile) before binning."
        ),
        examples=EXAMPLES,
        func=main,
    )
    add_filter_option(parser)
    parser.add_argument(
        "--p-size",
        choices=P_SIZES,
        default=DEFAULT_P_SIZE,
        help="trim percentile (default: %(default)s, as the SDK's overview())",
    )
    parser.add_argument(
        "--interquartile", action="store_true", help="trim the low tail as well as the high one"
    )
    parser.add_argument(
        "--format", choices=("chart", "json"), default="chart", help="output (default: chart)"
    )
    add_connection_options(parser)


def main(args: argparse.Namespace) -> int:
    """Run ``overview``."""

    async def body() -> int:
        filter_ = parse_filter(args.filter)
        async with make_client(args) as client:
            result = await client.users.overview(
                filter_, p_size=args.p_size, use_interquartile=args.interquartile
            )
        if args.format == "json":
            sys.stdout.write(dumps(result, indent=2) + "\n")
        else:
            print_overview(result, sys.stdout)
        return 0

    return run(args, body)


def print_overview(result: Any, stream: Any) -> None:
    """Both histograms as bar charts."""
    width = min(terminal_width(stream), 100)
    stream.write("Requests per user (bar = number of users)\n")
    for line in bar_chart(histogram_items(result.request_count), width=width):
        stream.write(line + "\n")
    stream.write("\nCost per user in USD (bar = number of users)\n")
    for line in bar_chart(usd_items(result.user_cost), width=width):
        stream.write(line + "\n")
