"""``helicone-users emulator``: options, the printed URL and key, serving until stopped."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from helicone_users._cli import build_parser, main
from helicone_users._cli.emulator import build_emulator, export_lines, serve
from helicone_users.testing import Emulator


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["emulator", *argv])


def test_defaults_bind_loopback_on_8585_with_synthetic_data() -> None:
    args = parse()
    assert (args.host, args.port, args.load, args.rate_limit) == ("127.0.0.1", 8585, None, False)
    emulator = build_emulator(args)
    assert emulator.host == "127.0.0.1"
    assert emulator.rate_limit is None


def test_options_reach_the_emulator(tmp_path: Path) -> None:
    args = parse(
        "--port",
        "0",
        "--quirks",
        "raw_key_auth,first_key_only",
        "--rate-limit",
        "--faults",
        "0.25",
        "--api-key",
        "sk-local",
        "--db",
        str(tmp_path / "x.duckdb"),
    )
    emulator = build_emulator(args)
    assert emulator.quirks == {"raw_key_auth", "first_key_only"}
    assert emulator.rate_limit == (200, 60.0)
    assert emulator.faults is not None
    assert emulator.faults.rate == 0.25
    assert emulator.api_key == "sk-local"
    assert emulator.rate_limit_window == "fixed"


def test_the_rate_limit_can_count_in_a_sliding_window() -> None:
    emulator = build_emulator(parse("--rate-limit", "--rate-limit-window", "sliding"))
    assert emulator.rate_limit == (200, 60.0)
    assert emulator.rate_limit_window == "sliding"


async def test_serve_prints_the_url_and_key_and_answers_until_stopped() -> None:
    args = parse("--port", "0", "--synthetic-users", "5", "--requests", "50", "--days", "2")
    out = io.StringIO()
    stop = asyncio.Event()
    answers: list[int] = []

    def ready(emulator: Emulator) -> None:
        async def call() -> None:
            headers = {"Authorization": f"Bearer {emulator.api_key}"}
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    emulator.base_url + "/v1/user/query", json={}, headers=headers
                ) as response,
            ):
                answers.append(response.status)
            stop.set()

        asyncio.get_running_loop().create_task(call())

    assert await serve(args, out=out, stop=stop, ready=ready) == 0
    text = out.getvalue()
    assert "listening on http://127.0.0.1:" in text
    assert answers == [200]
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in text.splitlines()
        if line.startswith("export ")
    )
    assert list(exports) == [
        "HELICONE_BASE_URL", "HELICONE_API_KEY", "WEAVE_BASE_URL", "WANDB_API_KEY",
    ]  # fmt: skip
    assert exports["HELICONE_BASE_URL"] == exports["WEAVE_BASE_URL"]
    assert exports["HELICONE_API_KEY"] == exports["WANDB_API_KEY"]
    assert exports["HELICONE_API_KEY"].startswith("sk-helicone-emulator-")


async def test_a_key_given_with_api_key_is_never_printed() -> None:
    args = parse("--port", "0", "--synthetic-users", "5", "--requests", "50",
                 "--api-key", "sk-my-own-secret")  # fmt: skip
    out = io.StringIO()
    stop = asyncio.Event()
    assert await serve(args, out=out, stop=stop, ready=lambda _: stop.set()) == 0
    text = out.getvalue()
    assert "sk-my-own-secret" not in text
    assert "export HELICONE_BASE_URL=http://127.0.0.1:" in text
    assert "export WEAVE_BASE_URL=http://127.0.0.1:" in text
    assert "HELICONE_API_KEY" in text
    assert "export HELICONE_API_KEY" not in text


def test_export_lines_are_quoted_for_the_shell() -> None:
    lines = export_lines("http://[::1]:8585", "k", own_key=True)
    assert lines[0] == "export HELICONE_BASE_URL='http://[::1]:8585'"


async def test_load_serves_the_rows_of_a_jsonl_file(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    row = {"request_id": "a", "user_id": "u", "request_created_at": "2024-01-01T00:00:00Z"}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    async with build_emulator(parse("--port", "0", "--load", str(path))) as emulator:
        assert [r["request_id"] for r in await emulator.rows()] == ["a"]


def test_a_bad_jsonl_line_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"request_id": "a"}\n', encoding="utf-8")
    assert main(["emulator", "--port", "0", "--load", str(path)]) == 2
    assert "line 1" in capsys.readouterr().err


def test_an_unknown_quirk_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--port", "0", "--quirks", "hosted,raw_key"]) == 2
    assert "did you mean 'raw_key_auth'" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_emulator_cleanly_and_keeps_its_database(
    tmp_path: Path, signum: int
) -> None:
    db = tmp_path / "emulator.duckdb"
    command = [sys.executable, "-m", "helicone_users", "emulator", "--port", "0", "--db", str(db),
               "--synthetic-users", "5", "--requests", "40"]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # Background jobs of a non-interactive shell start with SIGINT ignored; a terminal's not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        assert process.stdout is not None
        printed = ""
        while "Press Ctrl-C to stop." not in printed:
            line = process.stdout.readline()
            assert line, f"the emulator ended early: {process.communicate()}"
            printed += line
        process.send_signal(signum)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "emulator stopped" in err
    assert "Traceback" not in err

    async def stored() -> int:
        async with Emulator(db_path=db) as reopened:
            return len(await reopened.rows())

    assert asyncio.run(stored()) == 40
