"""``helicone-users calls-stats``: W&B Weave call and usage statistics over time."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from typing import IO, Any

from helicone_users._cli._common import (
    UsageError,
    add_command,
    add_transport_options,
    plural,
    positive_int,
    resolve_api_key,
    run,
    transport_kwargs,
)
from helicone_users._cli._output import (
    FORMATS,
    Column,
    column_decimals,
    format_fixed,
    format_time,
    print_table,
    sparkline,
    write_records,
)
from helicone_users._cli._timeparse import add_time_options, resolve_window
from helicone_users._config import WEAVE_API_KEY_ENV, WEAVE_BASE_URL_ENV

DEFAULT_SINCE = dt.timedelta(days=7)

EXAMPLES = """
export WANDB_API_KEY=...
helicone-users calls-stats --project my-team/my-project --since 24h
helicone-users calls-stats --project my-team/my-project --since 7d --granularity 3600 \\
    --metric latency_ms:avg,max,p95 --metric error_count --metric total_cost
helicone-users calls-stats --project my-team/my-project --start 2026-01-01 --until 2026-01-08 \\
    --op-name openai.chat.completions.create --format csv
"""


def add_parser(subparsers: Any) -> None:
    """Register ``calls-stats``."""
    parser = add_command(
        subparsers,
        "calls-stats",
        help="W&B Weave call and usage statistics per time bucket",
        description=(
            "Bucketed call metrics (latency_ms, call_count, error_count) and usage metrics per\n"
            "model (tokens, cost) of one Weave project, with a sparkline per call metric.\n"
            "--metric NAME[:AGG,...] where AGG is sum, avg, min, max, count, count_true,\n"
            "count_false or a percentile such as p95 (default: sum). Without --since or --start\n"
            "the range is the last 7 days."
        ),
        examples=EXAMPLES,
        func=main,
    )
    parser.add_argument(
        "--project", required=True, metavar="ENTITY/PROJECT", help="the Weave project"
    )
    add_time_options(parser, what="calls")
    parser.add_argument(
        "--granularity",
        type=positive_int,
        metavar="SECONDS",
        help="bucket size (default: chosen by the server from the range)",
    )
    parser.add_argument(
        "--metric",
        action="append",
        dest="metrics",
        metavar="NAME[:AGG,...]",
        help="a metric to compute; repeat for more (default: call_count and latency_ms:avg)",
    )
    parser.add_argument(
        "--op-name", action="append", dest="op_names", metavar="NAME", help="only these ops"
    )
    parser.add_argument(
        "--roots-only", action="store_true", help="only trace roots (calls without a parent)"
    )
    parser.add_argument("--timezone", default="UTC", help="IANA zone for bucket alignment")
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: %(default)s)"
    )
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--api-key", metavar="KEY", help=f"W&B API key (default: ${WEAVE_API_KEY_ENV})"
    )
    group.add_argument(
        "--base-url",
        metavar="URL",
        help=f"Weave server (default: ${WEAVE_BASE_URL_ENV} or https://trace.wandb.ai)",
    )
    add_transport_options(group)


def parse_metric(text: str) -> Any:
    """``latency_ms:avg,p95`` → ``CallMetric("latency_ms", aggregations=("avg",),
    percentiles=(95,))``; usage metrics likewise."""
    from helicone_users._weave_models import CALL_METRICS, USAGE_METRICS, CallMetric, UsageMetric

    name, _, spec = text.partition(":")
    name = name.strip()
    aggregations: list[str] = []
    percentiles: list[float] = []
    for part in filter(None, (p.strip().lower() for p in spec.split(","))):
        if part.startswith("p") and part[1:].replace(".", "", 1).isdigit():
            percentiles.append(float(part[1:]))
        else:
            aggregations.append(part)
    if not aggregations and not percentiles:
        aggregations = ["sum"]
    if name in CALL_METRICS:
        return CallMetric(name, aggregations=aggregations, percentiles=percentiles)
    if name in USAGE_METRICS:
        return UsageMetric(name, aggregations=aggregations, percentiles=percentiles)
    known = ", ".join((*CALL_METRICS, *USAGE_METRICS))
    raise UsageError(f"unknown metric {name!r}; choose from {known}")


def main(args: argparse.Namespace) -> int:
    """Run ``calls-stats``."""
    return run(args, lambda: calls_stats(args))


def _window(args: argparse.Namespace) -> tuple[dt.datetime, dt.datetime]:
    if args.since is None and args.start is None:
        args.since = DEFAULT_SINCE
    try:
        window = resolve_window(args)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(str(exc)) from None
    assert window is not None  # --since was defaulted above
    return window


async def calls_stats(args: argparse.Namespace) -> int:
    """Fetch the statistics and print them."""
    from helicone_users._weave_models import CallMetric, CallsFilter
    from helicone_users.weave import AsyncWeaveStats

    start, end = _window(args)
    metrics = [parse_metric(m) for m in args.metrics or ("call_count", "latency_ms:avg")]
    calls = [m for m in metrics if isinstance(m, CallMetric)]
    usage = [m for m in metrics if not isinstance(m, CallMetric)]
    filter_ = None
    if args.op_names or args.roots_only:
        filter_ = CallsFilter(op_names=args.op_names, trace_roots_only=args.roots_only or None)
    key = resolve_api_key(args, env=WEAVE_API_KEY_ENV)
    base_url = args.base_url or os.environ.get(WEAVE_BASE_URL_ENV)
    async with AsyncWeaveStats(key, base_url=base_url, **transport_kwargs(args)) as weave:
        stats = await weave.call_stats(
            args.project,
            start=start,
            end=end,
            granularity=args.granularity,
            usage_metrics=usage or None,
            call_metrics=calls or None,
            filter=filter_,
            timezone=args.timezone,
        )
    if args.format == "table":
        print_stats(stats, calls, sys.stdout)
    else:
        write_records(stats.to_rows(), args.format, sys.stdout)
    return 0


def value_keys(metrics: Sequence[Any]) -> list[str]:
    """The bucket keys the metrics produce, in the order asked."""
    from helicone_users._weave_models import metric_key

    keys = []
    for m in metrics:
        keys += [metric_key(m.metric, a) for a in m.aggregations]
        keys += [metric_key(m.metric, percentile=p) for p in m.percentiles]
    return keys


def print_stats(stats: Any, call_metrics: Sequence[Any], stream: IO[str]) -> None:
    """The range, a sparkline per call metric, then the bucket tables."""
    buckets = len(stats.call_buckets) or len({b.timestamp for b in stats.usage_buckets})
    stream.write(
        f"{stats.start:%Y-%m-%d %H:%M} → {stats.end:%Y-%m-%d %H:%M} {stats.timezone}, "
        f"{plural(buckets, 'bucket')} of {stats.granularity:,} s\n"
    )
    for key in value_keys(call_metrics):
        values = [_number(b.values.get(key)) for b in stats.call_buckets]
        stream.write(f"{key:>24} {sparkline(values)}\n")
    for kind, extra in (("call", ()), ("usage", (Column(key="model", header="model"),))):
        # Buckets without calls are padding: keep them on the call timeline, not per model.
        rows = [r for r in stats.to_rows(kind) if kind == "call" or r["count"]]
        if not rows:
            continue
        keys = [k for k in rows[0] if k not in ("kind", "timestamp", "model", "count")]
        # One format per column: the same decimals in every row, thousands separated.
        columns = [
            Column(key="timestamp", header="bucket", fmt=format_time),
            *extra,
            Column(key="count", header="calls", fmt=format_fixed(0), numeric=True),
            *(
                Column(key=k, header=k, numeric=True,
                       fmt=format_fixed(column_decimals(r[k] for r in rows)))
                for k in keys
            ),
        ]
        stream.write("\n")
        print_table(rows, columns, stream, title=f"{kind} buckets")


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
