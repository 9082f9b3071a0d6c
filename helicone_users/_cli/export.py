"""``helicone-users export``: every matching user to a CSV, JSON Lines or Parquet file."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs

from helicone_users._cli._atomic import atomic_path
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
from helicone_users._cli._incremental import (
    State,
    adopt_pending,
    next_window,
    partition_path,
    utc_text,
)
from helicone_users._cli._progress import Progress
from helicone_users._cli._resume import Resumable
from helicone_users._cli._sinks import (
    AppendSink,
    Sink,
    encoder_for,
    open_sink,
    stream_to_parquet,
)
from helicone_users._cli._timeparse import add_time_options, parse_duration, resolve_window
from helicone_users._cli.users import add_filter_option, add_sort_option, parse_filter
from helicone_users._config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_EXPORT_LAG,
    DEFAULT_ROW_GROUP_SIZE,
    EXPORT_BUFFER_PER_REQUEST,
    MAX_PAGE_SIZE,
)

EXPORT_FORMATS = ("csv", "jsonl", "parquet")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

EXAMPLES = """
helicone-users export --out users.csv
helicone-users export --filter 'cost > 0.5' --since 30d --out big-spenders.jsonl
helicone-users export --filter 'provider = "openai"' --out users.parquet   # needs pyarrow
helicone-users export --out users.csv --resume          # run again after a failure to continue
helicone-users export --out users.parquet --since-last users.state   # only users active since
"""


def add_parser(subparsers: Any) -> None:
    """Register ``export``."""
    parser = add_command(
        subparsers,
        "export",
        help="write every matching user to a CSV, JSON Lines or Parquet file",
        description=(
            "Fetch every page of matching users concurrently and write them to a file as they\n"
            "arrive. The file appears only once it is complete: an interrupted export leaves\n"
            "nothing, unless --resume keeps its progress for the next run."
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
    _add_tuning_options(parser)
    _add_resume_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_connection_options(parser)


def _add_tuning_options(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument(
        "--row-group-size",
        type=positive_int,
        default=DEFAULT_ROW_GROUP_SIZE,
        metavar="N",
        help="Parquet rows per row group (default: %(default)s)",
    )


def _add_resume_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("resuming and incremental exports")
    group.add_argument(
        "--resume",
        action="store_true",
        help="keep the progress of a run that stops (in hidden files beside --out) and, "
        "run again with the same arguments, continue from it",
    )
    group.add_argument(
        "--since-last",
        type=Path,
        metavar="STATE",
        help="export only the users active since the run that wrote STATE (the first run "
        "exports everyone) into a new file named after --out and the window's end, "
        "e.g. users-20260131T120000Z.parquet; STATE is updated once that file is complete",
    )
    group.add_argument(
        "--lag",
        type=parse_lag,
        metavar="AGE",
        help="with --since-last: end the window this long before now, for requests that "
        f"reach Helicone late (default: {DEFAULT_EXPORT_LAG}; 0 for none)",
    )


def parse_lag(text: str) -> timedelta:
    """``--lag``: a duration such as ``5m``, or ``0``."""
    return timedelta(0) if text.strip() in ("0", "0s") else parse_duration(text)


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


@attrs.frozen(kw_only=True)
class Job:
    """One export: what to fetch, where to write it, and what identifies it across runs."""

    fmt: str
    target: Path
    filter: Any
    sort: tuple[str, str]
    time_range: tuple[datetime, datetime]
    page_size: int
    concurrency: int
    row_group_size: int
    identity: dict[str, Any]

    def query(self, offset: int = 0) -> dict[str, Any]:
        """Keyword arguments of ``users.iter_metrics``."""
        return {
            "filter": self.filter,
            "sort": self.sort,
            "time_range": self.time_range,
            "page_size": self.page_size,
            "concurrency": self.concurrency,
            # Writing is slower than fetching: pages read further ahead would only wait in memory.
            "buffer": EXPORT_BUFFER_PER_REQUEST * self.concurrency,
            "offset": offset,
        }


def main(args: argparse.Namespace) -> int:
    """Run ``export``."""
    return run(args, lambda: export(args))


async def export(args: argparse.Namespace) -> int:
    """Fetch the pages and write the file; the summary goes to stderr."""
    fmt = output_format(args)
    _check(args, fmt)
    if args.since_last is not None:
        return await _export_since_last(args, fmt)
    job = _job(args, fmt, target=args.out, time_range=_window(args))
    count, progress = await _run(args, job)
    _summary(count, progress, job.target)
    return 0


def _check(args: argparse.Namespace, fmt: str) -> None:
    if args.page_size > MAX_PAGE_SIZE:
        raise UsageError(f"--page-size is at most {MAX_PAGE_SIZE}")
    if not args.out.parent.is_dir():
        raise UsageError(f"no such directory: {str(args.out.parent)!r}")
    if fmt == "parquet":
        _require_parquet()
    if args.since_last is None:
        if args.lag is not None:
            raise UsageError("--lag only applies with --since-last")
    elif args.since is not None or args.start is not None:
        raise UsageError(
            "--since-last starts where the last run ended: drop --since/--start "
            "(--until still ends the window)"
        )


def _require_parquet() -> None:
    require_extra("pyarrow.parquet", "arrow", "Parquet output (pyarrow)")


def _window(args: argparse.Namespace) -> tuple[datetime, datetime]:
    # Pinned here, not at each request: pages must agree, and --resume must find them again.
    try:
        window = resolve_window(args)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(str(exc)) from None
    return window or (_EPOCH, datetime.now(timezone.utc))


def _job(
    args: argparse.Namespace,
    fmt: str,
    *,
    target: Path,
    time_range: tuple[datetime, datetime],
    filter: Any = None,
    identity: dict[str, Any] | None = None,
) -> Job:
    user_filter = parse_filter(args.filter)
    return Job(
        fmt=fmt,
        target=target,
        filter=user_filter if filter is None else filter,
        sort=args.sort,
        time_range=time_range,
        page_size=args.page_size,
        concurrency=args.concurrency,
        row_group_size=args.row_group_size,
        identity=identity if identity is not None else _identity(args, fmt, user_filter),
    )


def _identity(args: argparse.Namespace, fmt: str, user_filter: Any) -> dict[str, Any]:
    """What must match for a run to continue an earlier one."""
    times = {name: getattr(args, name) for name in ("since", "start", "until")}
    return {
        "filter": user_filter.to_json(),
        "sort": list(args.sort),
        "format": fmt,
        "page_size": args.page_size,
        "time": {name: None if value is None else str(value) for name, value in times.items()},
    }


async def _run(args: argparse.Namespace, job: Job) -> tuple[int, Progress]:
    progress = Progress(f"export {job.target.name}", enabled=not args.quiet)
    async with make_client(args) as client:
        with progress:
            if args.resume:
                count = await _resumable(client, job, progress)
            else:
                with atomic_path(job.target) as tmp:
                    with open_sink(job.fmt, tmp, row_group_size=job.row_group_size) as sink:
                        await _pump(client, job, sink, progress)
                    count = sink.users
    return count, progress


async def _pump(
    client: Any, job: Job, sink: Sink, progress: Progress, *, offset: int = 0, on_page: Any = None
) -> None:
    """Fetch every page and write it as it arrives."""
    async with client.users.iter_metrics(**job.query(offset)) as pager:
        async for page in pager.pages():
            if progress.total is None:
                progress.set_total(page.count)
            sink.write(page.users)
            progress.advance(len(page.users))
            if on_page is not None:
                on_page(page)


async def _resumable(client: Any, job: Job, progress: Progress) -> int:
    resumable = Resumable(job.target, job.identity, job.time_range)
    state = resumable.start()
    if state.users:
        print(f"resuming {job.target.name} after {state.users} users", file=sys.stderr)
        progress.resume_from(state.users, state.pages)
    job = attrs.evolve(job, time_range=state.window)
    sink = AppendSink(resumable.partial, encoder_for(job.fmt))

    def page_done(page: Any) -> None:
        size = sink.flush()
        resumable.page_done(page.offset + page.limit, size, progress.items, progress.pages)

    try:
        with sink:
            await _pump(client, job, sink, progress, offset=state.offset, on_page=page_done)
    except BaseException:
        resumable.stopped()
        print(f"stopped; run the same command again to continue from user {progress.items}",
              file=sys.stderr)  # fmt: skip
        raise
    if job.fmt == "parquet":
        resumable.finish(lambda stream, out: stream_to_parquet(stream, out, job.row_group_size))
    else:
        resumable.finish()
    return progress.items


async def _export_since_last(args: argparse.Namespace, fmt: str) -> int:
    user_filter = parse_filter(args.filter)
    # What the users exported depend on; page size and order may change between runs.
    identity = {"filter": user_filter.to_json(), "format": fmt, "out": args.out.name}
    state = adopt_pending(State.load(args.since_last, identity), args.out)
    lag = args.lag if args.lag is not None else parse_duration(DEFAULT_EXPORT_LAG)
    window = next_window(state, until=args.until, lag=lag, now=datetime.now(timezone.utc))
    if window is None:
        state.save(args.since_last)
        done = "now" if state.exported_until is None else utc_text(state.exported_until)
        print(f"nothing to export: {args.since_last} is up to {done}", file=sys.stderr)
        return 0
    since, until = window
    job_identity = {**_identity(args, fmt, user_filter), "time": None,
                    "window": [since and utc_text(since), utc_text(until)]}  # fmt: skip
    job = _job(
        args, fmt, target=partition_path(args.out, until), time_range=(_EPOCH, until),
        filter=_active_since(user_filter, since), identity=job_identity,
    )  # fmt: skip
    state.begin(until).save(args.since_last)
    count, progress = await _run(args, job)
    state.done(until, job.target, count).save(args.since_last)
    _summary(count, progress, job.target)
    return 0


def _active_since(user_filter: Any, since: datetime | None) -> Any:
    from helicone_users.filters import U

    return user_filter if since is None else user_filter & U.last_active.gte(since)


def _summary(count: int, progress: Progress, target: Path) -> None:
    pages = plural(progress.pages, "page")
    print(f"wrote {plural(count, 'user')} ({pages}) to {target}", file=sys.stderr)
