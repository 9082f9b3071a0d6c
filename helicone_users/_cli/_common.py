"""What every subcommand shares: connection options, the API key, exit codes, error reporting."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import textwrap
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from helicone_users._config import API_KEY_ENV, BASE_URL_ENV, DEFAULT_REGION, REGION_BASE_URLS
from helicone_users._errors import HeliconeError, InvalidRequestError

if TYPE_CHECKING:
    from helicone_users._client import AsyncHeliconeUsers

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_MISSING_EXTRA = 3
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad arguments found after parsing; reported like argparse's own errors (exit 2)."""


class MissingExtraError(Exception):
    """An optional dependency the command needs is not installed (exit 3)."""


def require_extra(module: str, extra: str, what: str) -> Any:
    """Import ``module``, or raise MissingExtraError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"{what} needs the {extra} extra: pip install 'helicone-users[{extra}]' "
            f"(in a checkout: pip install -e '.[{extra}]')"
        ) from None


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 page``, ``2 pages``."""
    return f"{count:,} {word if count == 1 else (words or word + 's')}"


def add_command(
    subparsers: Any,
    name: str,
    *,
    help: str,
    description: str,
    examples: str,
    func: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """Add a subcommand whose ``--help`` ends with its examples."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=func)
    add_debug_option(parser)
    return parser


def add_debug_option(parser: argparse.ArgumentParser) -> None:
    """``--debug``: show tracebacks."""
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback when something fails"
    )


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """``--api-key``, ``--region``, ``--base-url``, ``--timeout``, ``--max-attempts``."""
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"Helicone API key (default: ${API_KEY_ENV}); never printed",
    )
    group.add_argument(
        "--region",
        choices=sorted(REGION_BASE_URLS),
        default=DEFAULT_REGION,
        help="Helicone region (default: %(default)s)",
    )
    group.add_argument(
        "--base-url",
        metavar="URL",
        help=f"API base URL, e.g. a self-hosted server or the emulator (default: ${BASE_URL_ENV})",
    )
    add_transport_options(group)


def add_transport_options(group: Any) -> None:
    """``--timeout`` and ``--max-attempts``, shared by the Helicone and Weave commands."""
    group.add_argument(
        "--timeout", type=positive_float, metavar="SECONDS", help="per-request timeout"
    )
    group.add_argument(
        "--max-attempts",
        type=positive_int,
        metavar="N",
        help="attempts per request, retries included (1 = no retries)",
    )


def positive_int(text: str) -> int:
    """An argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def resolve_api_key(
    args: argparse.Namespace, env: str = API_KEY_ENV, flag: str = "--api-key"
) -> str:
    """The key from the flag or the environment; a usage error naming both when neither is set."""
    key: str | None = getattr(args, "api_key", None) or os.environ.get(env)
    if not key:
        raise UsageError(f"no API key: pass {flag} or set {env}")
    return key


def client_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for ``AsyncHeliconeUsers`` from the connection options."""
    kwargs: dict[str, Any] = {"api_key": resolve_api_key(args), "region": args.region}
    base_url = args.base_url or os.environ.get(BASE_URL_ENV)
    if base_url:
        kwargs["base_url"] = base_url
    kwargs.update(transport_kwargs(args))
    return kwargs


def transport_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``timeout`` and ``retry`` keyword arguments, only for the options given."""
    kwargs: dict[str, Any] = {}
    if getattr(args, "timeout", None) is not None:
        kwargs["timeout"] = args.timeout
    attempts = getattr(args, "max_attempts", None)
    if attempts is not None:
        from helicone_users._retry import RetryPolicy

        kwargs["retry"] = RetryPolicy(max_attempts=attempts)
    return kwargs


def make_client(args: argparse.Namespace) -> AsyncHeliconeUsers:
    """The async client the options describe (create it inside the running loop)."""
    from helicone_users._client import AsyncHeliconeUsers

    return AsyncHeliconeUsers(**client_kwargs(args))


def run(args: argparse.Namespace, body: Callable[[], Awaitable[int]]) -> int:
    """Run a command's coroutine and turn what it raises into an exit code and one stderr line."""
    debug = bool(getattr(args, "debug", False))
    try:
        return asyncio.run(_as_coroutine(body))
    except (UsageError, argparse.ArgumentTypeError) as exc:
        return report(f"usage error: {exc}", EXIT_USAGE, debug)
    except MissingExtraError as exc:
        return report(f"error: {exc}", EXIT_MISSING_EXTRA, debug)
    except BrokenPipeError:
        raise  # stdout was closed (``| head``): main() ends quietly
    except InvalidRequestError as exc:
        # A FilterError message may span lines (the text, then a caret under the fault): keep them.
        return report(f"error: {exc}", EXIT_USAGE, debug)
    except (HeliconeError, OSError) as exc:
        # API and network errors, and files that cannot be written: one line, exit 1.
        return report(f"error: {one_line(str(exc))}", EXIT_API_ERROR, debug)
    except KeyboardInterrupt:
        return report("interrupted", EXIT_INTERRUPTED, debug)


async def _as_coroutine(body: Callable[[], Awaitable[int]]) -> int:
    return await body()


def one_line(text: str) -> str:
    """Collapse a message to one line."""
    return " ".join(text.split())


def report(message: str, code: int, debug: bool) -> int:
    """Print ``message`` on stderr (and the traceback with ``--debug``) and return ``code``."""
    if debug:
        traceback.print_exc()
    print(f"helicone-users: {message}", file=sys.stderr)
    return code


def fail(message: str, code: int = EXIT_USAGE) -> int:
    """Print a one-line error and return ``code``."""
    print(f"helicone-users: {message}", file=sys.stderr)
    return code
