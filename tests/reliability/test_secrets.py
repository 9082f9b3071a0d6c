"""The API key never shows: not in logs at debug level, reprs, exceptions or CLI output."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web

from helicone_users import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AsyncHeliconeUsers,
    AsyncWeaveStats,
    AuthenticationError,
    InternalServerError,
    RateLimitError,
)
from helicone_users.testing import FaultPlan

from .conftest import START, Served, fast_retry, served, user_rows

CANARY = "sk-helicone-canary-7f3a9c1e5b"
OTHER = "sk-helicone-not-the-canary-0000"
WEAVE_CANARY = "wandb-canary-4d2b8e6f0a"
LOGGERS = ("", "helicone_users", "aiohttp", "aiohttp.client", "aiohttp.internal",
           "aiohttp.server", "aiohttp.web", "aiohttp.access", "asyncio")  # fmt: skip


def secrets_of(key: str) -> list[str]:
    """The key in every form a request carries it: raw, Bearer, and Basic for Weave."""
    basic = base64.b64encode(f"api:{key}".encode()).decode()
    return [key, basic, basic.rstrip("=")]


def assert_hidden(text: str, *keys: str) -> None:
    for key in keys:
        for secret in secrets_of(key):
            assert secret not in text, f"{secret!r} leaked in: {text[:2000]}"


def exception_texts(error: BaseException) -> Iterator[str]:
    """str, repr and args of an exception, its attributes, and of every cause and context."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        yield repr(vars(current)) if hasattr(current, "__dict__") else ""
        pending.extend([current.__cause__, current.__context__])


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    parts = [caplog.text]
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            parts.extend(exception_texts(record.exc_info[1]))
    return "\n".join(parts)


async def failure(call: Any) -> APIError:
    try:
        await call
    except APIError as error:
        return error
    raise AssertionError("the call did not fail")


def everything(client: AsyncHeliconeUsers) -> list[str]:
    session = client._session
    return [repr(client), repr(client.users), repr(session), repr(client.retry),
            repr(session.rate_limiter)]  # fmt: skip


# --- The client -----------------------------------------------------------------------------------


async def test_a_successful_session_at_debug_level_never_shows_the_key(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    async with served(user_rows(30), api_key=CANARY) as emulator:
        client = emulator.client(retry=fast_retry(), rate_limit=(100, 1.0))
        async with client:
            page = await client.users.metrics(limit=5)
            await client.users.overview()
            await client.users.query([user.user_id for user in page.users])
            async with client.users.iter_metrics(page_size=7, concurrency=3) as pager:
                ids = [user.user_id async for user in pager]
                texts = [*everything(client), repr(pager)]
    assert len(ids) == 30
    assert_hidden("\n".join([*texts, log_text(debug_logs)]), CANARY)


@pytest.mark.parametrize(
    ("faults", "key", "error"),
    [
        (None, OTHER, AuthenticationError),
        (FaultPlan(rate=1.0, kinds=("429",)), CANARY, RateLimitError),
        (FaultPlan(rate=1.0, kinds=("500",)), CANARY, InternalServerError),
        (FaultPlan(rate=1.0, kinds=("slow",), delay=0.3), CANARY, APITimeoutError),
        (FaultPlan(rate=1.0, kinds=("reset",)), CANARY, APIConnectionError),
        (FaultPlan(rate=1.0, kinds=("truncate",)), CANARY, APIConnectionError),
    ],
)
async def test_failures_at_debug_level_never_show_the_key(
    debug_logs: pytest.LogCaptureFixture,
    faults: FaultPlan | None,
    key: str,
    error: type[APIError],
) -> None:
    # The server holds the canary; a client sending another key is refused with 401.
    async with served(user_rows(5), api_key=CANARY, faults=faults) as emulator:
        client = emulator.client(api_key=key, retry=fast_retry(2), timeout=0.1)
        async with client:
            raised = await failure(client.users.metrics(limit=5))
            texts = everything(client)
    assert isinstance(raised, error)
    assert_hidden("\n".join([*texts, *exception_texts(raised), log_text(debug_logs)]), key, CANARY)


async def test_connection_refused_never_shows_the_key(
    debug_logs: pytest.LogCaptureFixture, unused_port: int
) -> None:
    client = AsyncHeliconeUsers(
        CANARY, base_url=f"http://127.0.0.1:{unused_port}", retry=fast_retry(2)
    )
    async with client:
        raised = await failure(client.users.metrics(limit=5))
    assert isinstance(raised, APIConnectionError)
    assert_hidden("\n".join([*exception_texts(raised), log_text(debug_logs)]), CANARY)


@pytest.fixture
async def redirect_loop() -> AsyncIterator[str]:
    """A server that answers every request with a redirect to itself."""

    async def again(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(location=str(request.rel_url))

    app = web.Application()
    app.router.add_post("/{tail:.*}", again)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_a_redirect_loop_error_never_carries_the_key(
    debug_logs: pytest.LogCaptureFixture, redirect_loop: str
) -> None:
    client = AsyncHeliconeUsers(CANARY, base_url=redirect_loop, retry=fast_retry(2))
    async with client:
        raised = await failure(client.users.metrics(limit=5))
    assert isinstance(raised, APIConnectionError)
    assert_hidden("\n".join([*exception_texts(raised), log_text(debug_logs)]), CANARY)


# --- Weave, Basic auth ----------------------------------------------------------------------------


async def _weave_answers(emulator: Served, key: str, **kwargs: Any) -> tuple[list[str], Any]:
    weave = AsyncWeaveStats(key, base_url=emulator.base_url, retry=fast_retry(2), **kwargs)
    async with weave:
        try:
            result: Any = await weave.call_stats(
                "entity/project", start=START, end=START + timedelta(days=2)
            )
        except APIError as error:
            result = error
        return [repr(weave), repr(weave._session), repr(weave.retry)], result


@pytest.mark.parametrize(
    ("faults", "key", "error"),
    [
        (None, WEAVE_CANARY, None),
        (None, OTHER, AuthenticationError),
        (FaultPlan(rate=1.0, kinds=("503",)), WEAVE_CANARY, InternalServerError),
        (FaultPlan(rate=1.0, kinds=("slow",), delay=0.3), WEAVE_CANARY, APITimeoutError),
    ],
)
async def test_the_weave_client_never_shows_the_key_or_its_basic_token(
    debug_logs: pytest.LogCaptureFixture,
    faults: FaultPlan | None,
    key: str,
    error: type[APIError] | None,
) -> None:
    async with served(user_rows(5), api_key=WEAVE_CANARY, faults=faults) as emulator:
        texts, result = await _weave_answers(emulator, key, timeout=0.1)
    if error is None:
        assert not isinstance(result, BaseException)
    else:
        assert isinstance(result, error)
        texts.extend(exception_texts(result))
    assert_hidden("\n".join([*texts, log_text(debug_logs)]), key)


# --- The command line -----------------------------------------------------------------------------


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """``python -m helicone_users ARGS`` with ``env`` on a clean environment; (code, output)."""
    prefixes = ("HELICONE_", "WANDB_", "WEAVE_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "helicone_users", *args,
        env={**base, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


Run = tuple[tuple[str, ...], dict[str, str], int]


def cli_runs(base_url: str, unreachable: str) -> tuple[list[Run], list[Run]]:
    """(arguments, environment, expected exit code) of each Helicone run and each Weave run."""
    env = {"HELICONE_API_KEY": CANARY}
    weave_env = {"WANDB_API_KEY": WEAVE_CANARY}
    users = ("users", "--limit", "3", "--max-attempts", "2", "--timeout", "5")
    weave = ("calls-stats", "--project", "e/p", "--start", "2024-03-01T00:00:00Z",
             "--until", "2024-03-02T00:00:00Z", "--max-attempts", "2")  # fmt: skip
    # Each key source (flag, environment) and each outcome, with and without --debug.
    debug = ("--debug",)
    helicone = [
        ((*users, "--api-key", CANARY, "--base-url", base_url), env, 0),
        ((*users, *debug, "--base-url", base_url), env, 0),
        ((*users, *debug, "--api-key", CANARY, "--base-url", unreachable), env, 1),
        ((*users, "--base-url", unreachable), env, 1),
    ]
    weave_runs = [
        ((*weave, *debug, "--api-key", WEAVE_CANARY, "--base-url", base_url), weave_env, 0),
        ((*weave, *debug, "--base-url", unreachable), weave_env, 1),
    ]
    return helicone, weave_runs


async def test_the_cli_never_prints_the_key(unused_port: int) -> None:
    async with served(user_rows(10), api_key=CANARY) as emulator:
        helicone, weave = cli_runs(emulator.base_url, f"http://127.0.0.1:{unused_port}")
        results = await asyncio.gather(*(run_cli(*args, env=env) for args, env, _ in helicone))
        # Both route groups check the one key the emulator holds: switch it for Weave.
        emulator.state.api_key = WEAVE_CANARY
        results += await asyncio.gather(*(run_cli(*args, env=env) for args, env, _ in weave))
    for (args, _, expected), (code, output) in zip([*helicone, *weave], results, strict=True):
        assert code == expected, (args, output)
        assert_hidden(output, CANARY, WEAVE_CANARY)
    assert sum("u0000" in output for _, output in results) == 2


async def test_the_cli_with_a_rejected_key_never_prints_it() -> None:
    async with served(user_rows(3), api_key=OTHER) as emulator:
        code, output = await run_cli(
            "users", "--debug", "--api-key", CANARY, "--base-url", emulator.base_url,
            env={"HELICONE_API_KEY": CANARY},
        )  # fmt: skip
    assert code == 1
    assert "401" in output
    assert_hidden(output, CANARY)
