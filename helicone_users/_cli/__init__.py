"""The ``helicone-users`` command: parse, call the public client, print.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``; the parser it adds
sets ``func``, a callable taking the parsed namespace and returning the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommand modules, in the order ``--help`` lists them.
_COMMANDS: tuple[str, ...] = ()

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    from helicone_users import __version__

    parser = argparse.ArgumentParser(
        prog="helicone-users",
        description="Query Helicone user metrics and W&B Weave call stats, or run the emulator.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _COMMANDS:
        module = importlib.import_module(f"helicone_users._cli.{module_name}")
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (0 ok, 1 API or network error, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    code: int = func(args)
    return code
