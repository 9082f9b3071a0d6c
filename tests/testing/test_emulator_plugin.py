"""The pytest plugin: a user's own test file can use helicone_emulator and helicone_client."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

USER_TESTS = '''
import pytest

from helicone_users.testing import Emulator


@pytest.fixture
def helicone_emulator_options():
    return {"seed": 2, "users": 5, "requests": 60, "days": 3}


@pytest.mark.asyncio
async def test_the_emulator_is_running(helicone_emulator):
    assert isinstance(helicone_emulator, Emulator)
    assert helicone_emulator.base_url.startswith("http://127.0.0.1:")
    assert len(await helicone_emulator.rows()) == 60


@pytest.mark.asyncio
async def test_the_client_talks_to_it(helicone_client):
    page = await helicone_client.users.metrics(limit=100, sort=("user_id", "asc"))
    assert 1 <= page.count <= 5
    assert [user.user_id for user in page.users] == sorted(u.user_id for u in page.users)
'''


def test_the_plugin_imports_no_database(tmp_path: Path) -> None:
    code = (
        "import sys, helicone_users.testing.pytest_plugin as p; "
        "assert 'duckdb' not in sys.modules; print(sorted(n for n in dir(p) if 'helicone' in n))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "helicone_client" in result.stdout
    assert "helicone_emulator" in result.stdout


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    from importlib.metadata import entry_points

    names = {entry.value for entry in entry_points(group="pytest11")}
    assert "helicone_users.testing.pytest_plugin" in names


async def test_the_fixtures_work_in_this_suite_too(helicone_client: Any) -> None:
    page = await helicone_client.users.metrics(limit=5, sort=("cost", "desc"))
    assert page.has_users
    assert len(page.users) == 5


README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_plugin_snippet() -> str:
    """The ```python block under the README's pytest-plugin heading, as a user copies it."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### In your own tests (pytest plugin)", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_snippet_passes_in_strict_mode_in_a_fresh_project(tmp_path: Path) -> None:
    # A new project: the README's block as a test file, pytest-asyncio in its default strict
    # mode (made explicit), nothing of this repository's configuration. (This suite itself runs
    # in auto mode.) Beside it, tests that show which coroutines the plugin marks.
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    (tmp_path / "test_readme_snippet.py").write_text(_readme_plugin_snippet())
    (tmp_path / "test_marks.py").write_text(
        "import pytest\n"
        "@pytest.mark.asyncio\n"
        "async def test_marked_by_its_author():\n"
        "    pass\n"
        "async def test_plain_coroutine_is_left_to_the_user():\n"
        "    pass\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-W", "error"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    passed = set(re.findall(r"^PASSED (\S+)", result.stdout, re.MULTILINE))
    assert passed == {
        "test_readme_snippet.py::test_top_spender",
        "test_readme_snippet.py::test_with_raw_http",
        "test_marks.py::test_marked_by_its_author",
    }, result.stdout + result.stderr
    # pytest-asyncio's strict mode, untouched: an unmarked coroutine without our fixtures fails.
    assert "FAILED test_marks.py::test_plain_coroutine_is_left_to_the_user" in result.stdout


def test_pytester_runs_a_users_test_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_theirs=USER_TESTS)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
