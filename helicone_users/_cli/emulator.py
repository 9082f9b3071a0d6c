"""``helicone-users emulator``: serve the local Helicone emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import signal
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from helicone_users._cli._common import (
    EXIT_MISSING_EXTRA,
    EXIT_OK,
    EXIT_USAGE,
    MissingExtraError,
    add_command,
    fail,
    require_extra,
)
from helicone_users._config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    HOSTED_RATE_LIMIT,
    WEAVE_API_KEY_ENV,
    WEAVE_BASE_URL_ENV,
)
from helicone_users._errors import HeliconeError

if TYPE_CHECKING:
    from helicone_users.testing import Emulator

EXAMPLES = """
helicone-users emulator
helicone-users emulator --port 9000 --synthetic-users 500 --requests 100000 --days 60
helicone-users emulator --load requests.jsonl --db emulator.duckdb
helicone-users emulator --load requests.parquet
helicone-users emulator --quirks hosted --rate-limit --faults 0.1
"""
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_parser(subparsers: Any) -> None:
    """Register ``emulator``."""
    parser = add_command(
        subparsers,
        "emulator",
        help="run the local Helicone emulator (aiohttp + DuckDB) until Ctrl-C",
        description=(
            "Serve Helicone's user-metrics endpoints and Weave's /calls/stats locally over\n"
            "DuckDB, with synthetic data or requests loaded from a JSONL file. Prints the\n"
            "export lines that point the SDK and the CLI at it (base URLs and the emulator's\n"
            "own key; a key given with --api-key is never printed).\n"
            "Needs the emulator extra: pip install 'helicone-users[emulator]'."
        ),
        examples=EXAMPLES,
        func=main,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=8585, help="port (default: %(default)s)")
    parser.add_argument(
        "--synthetic-users",
        type=int,
        default=100,
        metavar="N",
        help="users in the synthetic dataset (default: %(default)s)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=5000,
        metavar="N",
        help="synthetic requests (default: %(default)s)",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=30,
        metavar="N",
        help="days of synthetic traffic, ending now (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed (default: 0)")
    parser.add_argument(
        "--load",
        type=Path,
        metavar="FILE",
        help="load requests from a JSONL file, or a Parquet file (.parquet), instead",
    )
    parser.add_argument(
        "--db",
        type=Path,
        metavar="FILE",
        help="keep the data in this DuckDB file: a second start serves it at once without "
        "reloading (a temporary file otherwise)",
    )
    parser.add_argument("--api-key", help="the key clients must send (default: a random one)")
    parser.add_argument(
        "--faults",
        type=float,
        default=0.0,
        metavar="RATE",
        help="inject faults (429, 5xx, resets, slow, truncated) into this share of requests",
    )
    parser.add_argument(
        "--quirks",
        default="",
        metavar="A,B",
        help="hosted-server quirks to switch on, comma-separated, or 'hosted' for all",
    )
    parser.add_argument(
        "--rate-limit",
        action="store_true",
        help=f"limit to {HOSTED_RATE_LIMIT[0]} requests per {HOSTED_RATE_LIMIT[1]:g} s, "
        "like the hosted server",
    )
    parser.add_argument(
        "--rate-limit-window",
        choices=("fixed", "sliding"),
        default="fixed",
        help="with --rate-limit: count it in a fixed 60 s window, as the hosted server does "
        "(default), or a sliding one, as some gateways in front of an API do",
    )


def build_emulator(args: argparse.Namespace) -> Emulator:
    """The ``Emulator`` the options describe (not started)."""
    from helicone_users.testing import Emulator, FaultPlan

    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "db_path": args.db,
        "api_key": args.api_key,
        "quirks": args.quirks,
        "faults": FaultPlan(rate=args.faults, seed=args.seed) if args.faults else None,
        "rate_limit": HOSTED_RATE_LIMIT if args.rate_limit else None,
        "rate_limit_window": args.rate_limit_window,
        "seed": args.seed,
    }
    if args.load is not None:
        parquet = args.load.suffix.lower() in (".parquet", ".pq")
        load = Emulator.from_parquet if parquet else Emulator.from_jsonl
        return load(args.load, **options)
    if (args.db is not None and args.db.exists()) or args.synthetic_users <= 0:
        return Emulator(**options)
    return Emulator.synthetic(
        users=args.synthetic_users,
        requests=args.requests,
        days=args.days,
        end=datetime.now(timezone.utc),
        **options,
    )


async def serve(
    args: argparse.Namespace,
    *,
    out: IO[str],
    stop: asyncio.Event | None = None,
    ready: Callable[[Emulator], None] | None = None,
) -> int:
    """Start the emulator, print where it is, and serve until ``stop`` is set, Ctrl-C or
    SIGTERM; the database is closed on the way out (it matters with ``--db FILE``)."""
    if stop is None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
    emulator = build_emulator(args)
    async with emulator:
        stored = await emulator.count_requests() if args.db else None
        print(f"Helicone emulator listening on {emulator.base_url}", file=out)
        for line in export_lines(emulator.base_url, emulator.api_key, own_key=not args.api_key):
            print(line, file=out)
        if stored is not None:
            print(f"{stored} requests in {args.db}", file=out)
        if emulator.quirks:
            print(f"quirks: {', '.join(sorted(emulator.quirks))}", file=out)
        print("Press Ctrl-C to stop.", file=out, flush=True)
        if ready is not None:
            ready(emulator)
        await stop.wait()
    print("emulator stopped", file=sys.stderr)
    return EXIT_OK


def export_lines(base_url: str, api_key: str, *, own_key: bool) -> list[str]:
    """The shell lines a user pastes to point the SDK and the CLI at the emulator.

    The emulator's own random key is no secret of the user's and is printed; a key the user
    chose (``--api-key``) is not.
    """
    url, key = shlex.quote(base_url), shlex.quote(api_key)
    lines = [f"export {BASE_URL_ENV}={url}", f"export {API_KEY_ENV}={key}",
             f"export {WEAVE_BASE_URL_ENV}={url}", f"export {WEAVE_API_KEY_ENV}={key}"]
    if not own_key:
        lines = [line for line in lines if "_KEY=" not in line]
        lines.append(f"# {API_KEY_ENV}, {WEAVE_API_KEY_ENV}: the key given with --api-key")
    return lines


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not on Windows' loops: there Ctrl-C still ends the run as KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)


def main(args: argparse.Namespace) -> int:
    """Run ``emulator``."""
    try:
        require_extra("duckdb", "emulator", "the emulator (DuckDB)")
    except MissingExtraError as exc:
        return fail(f"error: {exc}", EXIT_MISSING_EXTRA)
    if args.host not in LOOPBACK:
        print(
            f"warning: binding {args.host}: the emulator is reachable from other machines",
            file=sys.stderr,
        )
    try:
        return asyncio.run(serve(args, out=sys.stdout))
    except KeyboardInterrupt:
        print("emulator stopped", file=sys.stderr)
        return EXIT_OK
    except BrokenPipeError:
        raise  # stdout was closed: main() ends quietly
    except (HeliconeError, OSError) as exc:
        return fail(f"emulator: {exc}", EXIT_USAGE)
