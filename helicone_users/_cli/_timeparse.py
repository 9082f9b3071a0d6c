"""Time options: ``--since 7d``, ``--start``/``--until`` ISO 8601."""

from __future__ import annotations

import argparse
import datetime as dt
import re

from helicone_users._iso import parse_iso8601

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> dt.timedelta:
    """``30m``, ``12h``, ``7d``, ``2w`` (also ``90s``) as a timedelta."""
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use a number and a unit s, m, h, d or w"
            " (e.g. 7d, 12h, 30m)"
        )
    amount, unit = float(match.group(1)), match.group(2).lower()
    if amount <= 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: it must be positive")
    return dt.timedelta(seconds=amount * _UNIT_SECONDS[unit])


def parse_instant(text: str) -> dt.datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime (no offset means UTC)."""
    try:
        value = parse_iso8601(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: use ISO 8601, e.g. 2026-01-31 or 2026-01-31T12:00:00Z"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def add_time_options(parser: argparse.ArgumentParser, *, what: str = "requests") -> None:
    """Add ``--since`` | ``--start`` and ``--until`` to ``parser``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--since",
        type=parse_duration,
        metavar="AGE",
        help=f"only {what} from the last AGE: 30m, 12h, 7d, 2w",
    )
    group.add_argument(
        "--start", type=parse_instant, metavar="ISO", help=f"only {what} from this time (UTC)"
    )
    parser.add_argument(
        "--until", type=parse_instant, metavar="ISO", help=f"only {what} before this time"
    )


def resolve_window(
    args: argparse.Namespace, *, now: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime] | None:
    """The ``(start, end)`` the time options select, or None when none was given."""
    since: dt.timedelta | None = getattr(args, "since", None)
    start: dt.datetime | None = getattr(args, "start", None)
    until: dt.datetime | None = getattr(args, "until", None)
    if since is None and start is None and until is None:
        return None
    current = now or dt.datetime.now(dt.timezone.utc)
    end = until or current
    if since is not None:
        start = end - since
    if start is None:
        start = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    if start >= end:
        raise argparse.ArgumentTypeError(
            f"empty time range: start {start.isoformat()} is not before end {end.isoformat()}"
        )
    return start, end
