"""A reader that closes the CLI's output early (``| head -1``) ends the command quietly, exit 0."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator

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


USERS_ALL = [f"users --all --format {fmt}" for fmt in ("csv", "jsonl", "json", "table")]
# Output this short fits in a pipe's buffer and would never meet a closed `head`; `true` exits
# without reading, so the very first write meets the closed pipe.
SHORT = [
    "overview",
    "overview --format json",
    "totals user_000001 user_000002 --format csv",
    "calls-stats --project team/project --since 3d",
    "calls-stats --project team/project --since 3d --format jsonl",
    "users --limit 3",
    "demo --users 20 --requests 400",
    "--help",
    "users --help",
]
PIPELINES = [(command, "head -1") for command in USERS_ALL] + [(c, "true") for c in SHORT]


@pytest.fixture(scope="module")
def started(
    many_users: ServedEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Every pipeline, started at once in bash; each prints the CLI's exit code, then its
    stderr."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HELICONE_", "WANDB_"))},
        "HELICONE_API_KEY": many_users.api_key,
        "HELICONE_BASE_URL": many_users.base_url,
        "WANDB_API_KEY": many_users.api_key,
        "WEAVE_BASE_URL": many_users.base_url,
    }
    where = tmp_path_factory.mktemp("pipes")
    processes = {}
    for index, (command, reader) in enumerate(PIPELINES):
        cli = f"{shlex.quote(sys.executable)} -m helicone_users {command}"
        err = f"{index}.err"
        script = f"{cli} 2>{err} | {reader} >/dev/null; echo ${{PIPESTATUS[0]}}; cat {err}"
        processes[f"{command} | {reader}"] = subprocess.Popen(
            ["bash", "-c", script], env=env, cwd=where, stdout=subprocess.PIPE, text=True
        )
    yield processes
    for process in processes.values():
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.mark.parametrize("pipeline", [f"{c} | {r}" for c, r in PIPELINES])
def test_a_closed_pipe_ends_the_command_quietly_with_0(
    started: dict[str, subprocess.Popen[str]], pipeline: str
) -> None:
    out, _ = started[pipeline].communicate(timeout=120)
    code, _, err = out.partition("\n")
    assert (int(code), err) == (0, ""), f"helicone-users {pipeline}"
