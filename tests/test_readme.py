"""A newcomer's check: every ```python block of the README runs, as written, against the emulator.

Each block runs in a fresh interpreter (``tests/readme_blocks.py``) with ``HELICONE_BASE_URL``,
``HELICONE_API_KEY``, ``WEAVE_BASE_URL`` and ``WANDB_API_KEY`` pointing at one emulator holding
the demo's synthetic data (the dataset of ``helicone-users demo``). The blocks run side by side;
a failure names the block's README line and shows its error. A block that cannot run here is
preceded by ``<!-- no-run: the reason -->``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from readme_blocks import Block, python_blocks

from helicone_users._cli.demo import DEMO_DAYS, DEMO_REQUESTS, DEMO_SEED, DEMO_USERS
from tests.conftest import ROOT, ServedEmulator

README = ROOT / "README.md"
RUNNER = Path(__file__).resolve().parent / "readme_blocks.py"
BLOCKS = python_blocks(README.read_text(encoding="utf-8"))
RUNNABLE = [block for block in BLOCKS if block.no_run is None]
TIMEOUT = 90
# Marks of trouble a block's own exit code does not show (raised in __del__, at shutdown).
NOISE = ("Exception ignored", "Unclosed", "Traceback")


@pytest.fixture(scope="module")
def demo_data() -> Iterator[ServedEmulator]:
    from helicone_users.testing import Emulator

    end = datetime.now(timezone.utc).replace(microsecond=0)
    server = ServedEmulator(
        lambda: Emulator.synthetic(
            seed=DEMO_SEED, users=DEMO_USERS, requests=DEMO_REQUESTS, days=DEMO_DAYS, end=end
        )
    )
    yield server
    server.close()


@pytest.fixture(scope="module")
def started(demo_data: ServedEmulator) -> Iterator[dict[int, subprocess.Popen[str]]]:
    """Every runnable block, started at once; each test waits for its own."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HELICONE_", "WANDB_"))},
        "HELICONE_BASE_URL": demo_data.base_url,
        "HELICONE_API_KEY": demo_data.api_key,
        "WEAVE_BASE_URL": demo_data.base_url,
        "WANDB_API_KEY": demo_data.api_key,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    processes = {
        block.line: subprocess.Popen(
            [sys.executable, str(RUNNER), str(README), str(block.line)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for block in RUNNABLE
    }
    yield processes
    for process in processes.values():
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_the_readme_has_runnable_blocks_and_every_skip_says_why() -> None:
    assert len(RUNNABLE) >= 5
    for block in BLOCKS:
        assert block.no_run is None or len(block.no_run) > 10, f"README.md line {block.line}"


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"line-{b.line}" for b in RUNNABLE])
def test_the_readme_block_runs_against_the_demo_data(
    block: Block, started: dict[int, subprocess.Popen[str]]
) -> None:
    process = started[block.line]
    try:
        _, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"README.md line {block.line}: the block did not finish in {TIMEOUT} s")
    problem = process.returncode != 0 or any(mark in stderr for mark in NOISE)
    assert not problem, f"README.md line {block.line}: the block failed:\n{stderr.strip()}"


def test_a_failing_block_is_reported_with_its_readme_line(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\ntext\n\n```python\nimport math\n\nmath.nope()\n```\n")
    [block] = python_blocks(readme.read_text())
    done = subprocess.run(
        [sys.executable, str(RUNNER), str(readme), str(block.line)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert f'File "{readme}", line 8' in done.stderr
    assert "AttributeError" in done.stderr


def test_skipped_blocks_and_top_level_await_are_understood() -> None:
    text = (
        "<!-- no-run: it needs a second host -->\n```python\nimport nowhere\n```\n\n"
        "```python\nimport asyncio\nawait asyncio.sleep(0)\n```\n"
    )
    skipped, runnable = python_blocks(text)
    assert (skipped.line, skipped.no_run) == (2, "it needs a second host")
    assert (runnable.line, runnable.no_run) == (6, None)
    assert runnable.code.splitlines()[7] == "await asyncio.sleep(0)"  # README line 8
