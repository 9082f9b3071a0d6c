"""The pytest plugin: a user's own test file can use helicone_emulator and helicone_client."""

from __future__ import annotations

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


def test_pytester_runs_a_users_test_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_theirs=USER_TESTS)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
