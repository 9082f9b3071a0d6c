"""pytest plugin: ``helicone_emulator`` and ``helicone_client`` fixtures for your own tests.

Installed with the package (entry point ``pytest11``). Importing it is cheap: DuckDB, aiohttp
and the emulator are imported only when a fixture is used, so projects without the
``emulator`` extra can still run pytest. Override ``helicone_emulator_options`` to change the
dataset or switch on quirks::

    @pytest.fixture
    def helicone_emulator_options():
        return {"seed": 1, "users": 50, "requests": 2000, "quirks": {"hosted"}}

The fixtures are pytest-asyncio fixtures, so they work in its ``strict`` (default) and
``auto`` modes alike. The fixtures only work on asyncio, so a coroutine test that uses one is
marked ``asyncio`` here when it has no marker of its own (``asyncio``, ``anyio`` or ``trio``):
``async def test_x(helicone_client): ...`` runs as written, in strict mode too.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import AsyncIterator, Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from helicone_users._client import AsyncHeliconeUsers
    from helicone_users.testing._emulator import Emulator

F = TypeVar("F", bound=Callable[..., Any])
MISSING_EXTRA = (
    "the helicone_emulator fixture needs DuckDB, from the 'emulator' extra: "
    "pip install 'helicone-users[emulator]'"
)
DEFAULT_OPTIONS: dict[str, Any] = {"seed": 0, "users": 20, "requests": 500, "days": 14}
FIXTURES = frozenset({"helicone_emulator", "helicone_client"})
_ASYNC_MARKERS = ("asyncio", "anyio", "trio")


# trylast: our wrapper runs inside pytest-asyncio's, so the marker is there when it looks.
# (An old-style hookwrapper, which every pluggy release knows.)
@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Generator[None, Any, None]:
    """Mark coroutine tests that use these fixtures ``asyncio`` (strict mode needs a marker)."""
    outcome = yield
    if not inspect.iscoroutinefunction(obj) or not collector.config.pluginmanager.hasplugin(
        "asyncio"
    ):
        return
    try:
        result = outcome.get_result()
    except BaseException:  # collection failed: pytest reports it
        return
    for item in result if isinstance(result, list) else [result]:
        if (
            isinstance(item, pytest.Function)
            and FIXTURES & set(item.fixturenames)
            and not any(item.get_closest_marker(m) for m in _ASYNC_MARKERS)
        ):
            item.add_marker(pytest.mark.asyncio)


def _async_fixture(func: F) -> F:
    # pytest-asyncio's own decorator works in both its strict and auto modes.
    if importlib.util.find_spec("pytest_asyncio") is None:
        return cast(F, pytest.fixture(func))
    import pytest_asyncio

    return cast(F, pytest_asyncio.fixture(func))


@pytest.fixture
def helicone_emulator_options() -> dict[str, Any]:
    """Arguments of ``Emulator.synthetic`` for ``helicone_emulator``; override to change them."""
    return dict(DEFAULT_OPTIONS)


@_async_fixture
async def helicone_emulator(helicone_emulator_options: dict[str, Any]) -> AsyncIterator[Emulator]:
    """A running emulator with a small deterministic synthetic dataset."""
    if importlib.util.find_spec("duckdb") is None:
        pytest.skip(MISSING_EXTRA)
    from helicone_users.testing._emulator import Emulator

    async with Emulator.synthetic(**helicone_emulator_options) as emulator:
        yield emulator


@_async_fixture
async def helicone_client(helicone_emulator: Emulator) -> AsyncIterator[AsyncHeliconeUsers]:
    """An ``AsyncHeliconeUsers`` pointed at ``helicone_emulator``, retrying without sleeps."""
    from helicone_users._retry import RetryPolicy

    async with helicone_emulator.client(retry=RetryPolicy.testing()) as client:
        yield client
