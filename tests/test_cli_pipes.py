"""A reader that closes the CLI's output early (``| head -1``) ends the command quietly, exit 0."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServedEmulator

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes and bash")


@pytest.fixture(scope="module")
def many_users() -> Iterator[ServedEmulator]:
    """Enough users that `users --all` prints far more than a pipe buffer (64 KiB) holds."""
    from helicone_users.testing import Emulator

    server = ServedEmulator(lambda: Emulator.synthetic(seed=5, users=1200, requests=6000, days=5))
    yield server
    server.close()


def _piped(command: str, reader: str, server: ServedEmulator, where: Path) -> tuple[int, str]:
    """Run ``python -m helicone_users COMMAND | READER`` in bash; the CLI's exit code and its
    stderr."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HELICONE_", "WANDB_"))},
        "HELICONE_API_KEY": server.api_key,
        "HELICONE_BASE_URL": server.base_url,
        "WANDB_API_KEY": server.api_key,
        "WEAVE_BASE_URL": server.base_url,
    }
    cli = f"{shlex.quote(sys.executable)} -m helicone_users {command}"
    script = f"{cli} 2>cli.err | {reader} >/dev/null; echo ${{PIPESTATUS[0]}}; cat cli.err"
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120, check=True,
        cwd=where,
    )  # fmt: skip
    code, _, err = done.stdout.partition("\n")
    return int(code), err


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "table"])
def test_users_all_into_head_ends_quietly(
    many_users: ServedEmulator, fmt: str, tmp_path: Path
) -> None:
    code, err = _piped(f"users --all --format {fmt}", "head -1", many_users, tmp_path)
    assert (code, err) == (0, "")


@pytest.mark.parametrize(
    "command",
    [
        "overview",
        "overview --format json",
        "totals user_000001 user_000002 --format csv",
        "calls-stats --project team/project --since 3d",
        "calls-stats --project team/project --since 3d --format jsonl",
        "users --limit 3",
        "demo --users 20 --requests 400",
        "--help",
        "users --help",
    ],
)
def test_every_command_into_a_closed_pipe_ends_quietly(
    many_users: ServedEmulator, command: str, tmp_path: Path
) -> None:
    # `true` exits without reading, so the very first write meets a closed pipe (with `head`,
    # output this short would fit in the pipe's buffer and never meet it).
    code, err = _piped(command, "true", many_users, tmp_path)
    assert (code, err) == (0, "")

