"""The ``helicone-users`` command: parse, call the public client, print.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``; the parser it adds
sets ``func``, a callable taking the parsed namespace and returning the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import os
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

from helicone_users._cli._common import (
    EXIT_API_ERROR,
    EXIT_INTERRUPTED,
    EXIT_MISSING_EXTRA,
    EXIT_OK,
    EXIT_USAGE,
)

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_MISSING_EXTRA",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "console_main",
    "main",
    "refuse_pandas",
    "set_up_command_process",
]

# Subcommand modules, in the order ``--help`` lists them.
_COMMANDS: tuple[str, ...] = (
    "demo", "users", "export", "overview", "totals", "calls_stats", "emulator",
)

EPILOG = """\
examples:
  helicone-users demo                                  # a tour against a local emulator
  export HELICONE_API_KEY=sk-helicone-...
  helicone-users users --sort cost:desc --limit 10
  helicone-users users --filter 'model = "gpt-4o"' --since 7d --format csv
  helicone-users export --filter 'cost > 1' --out users.parquet
  helicone-users <command> --help                      # options and examples of one command

exit codes: 0 ok (also when the reader of the output stops early, as `| head` does),
  1 API or network error, 2 usage error (bad arguments or filter), 3 a missing extra,
  130 interrupted
"""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    from helicone_users import __version__

    parser = argparse.ArgumentParser(
        prog="helicone-users",
        description="Query Helicone user metrics and W&B Weave call stats, or run the emulator.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _COMMANDS:
        module = importlib.import_module(f"helicone_users._cli.{module_name}")
        module.add_parser(subparsers)
    return parser


class _RefusePandas(importlib.abc.MetaPathFinder):
    """Makes ``import pandas`` fail. pyarrow imports pandas, when it is installed, on its first
    array conversion (about 50 MB of memory and a second of start-up); no command uses it."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def console_main(argv: Sequence[str] | None = None) -> int:
    """The ``helicone-users`` command and ``python -m helicone_users``: ``main()`` in a process
    of its own, set up by ``set_up_command_process``."""
    set_up_command_process()
    return main(argv)


def set_up_command_process() -> None:
    """What the command does to its own process before it runs: pandas is refused, and Arrow
    allocates through the system allocator unless ``ARROW_DEFAULT_MEMORY_POOL`` names another
    (pyarrow's default, mimalloc, keeps about 15 MB of a Parquet export's freed buffers).
    With the default row groups, a million-user Parquet export stays under 150 MB
    (``benchmarks/bench_export.py``). The allocator is read when pyarrow loads, so this runs
    first."""
    refuse_pandas()
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def refuse_pandas() -> None:
    """From now on, ``import pandas`` fails in this process (done once)."""
    if not any(isinstance(finder, _RefusePandas) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RefusePandas())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (0 ok, 1 API or network error, 2 usage error,
    3 a missing extra, 130 interrupted).

    A reader that closes the output early (``| head -1``) ends the command quietly with 0, as
    it ends other Unix tools: no error line, no traceback, no noise when Python exits.
    """
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # here, where a closed pipe can still be handled
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_OK


def _discard_stdout() -> None:
    # What is left in the buffer goes to /dev/null, so the interpreter's own flush at exit
    # does not print "Exception ignored ... BrokenPipeError".
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
        pass
    finally:
        os.close(devnull)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            code: int = func(args)
    except KeyboardInterrupt:
        print("helicone-users: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    # SDK warnings are advice for the user of the command: one line, no source location.
    print(f"helicone-users: warning: {message}", file=file or sys.stderr)
