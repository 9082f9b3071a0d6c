"""Shared fixtures: an emulator served from a background thread, and the CLI run as a subprocess.

The emulator runs on its own event loop in a thread, so blocking code (the sync facade, a CLI
subprocess) can talk to it from the test's thread without deadlocking the test's loop.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from helicone_users._sync import _LoopThread

ROOT = Path(__file__).resolve().parent.parent

# Property tests judge behaviour, not speed: no per-example deadline, no "too slow" health check,
# so a busy machine cannot fail them. CI replays the same examples every run (derandomized);
# local runs keep exploring new ones.
settings.register_profile(
    "helicone-users", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", parent=settings.get_profile("helicone-users"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "helicone-users")


class ServedEmulator:
    """An emulator running on a private loop thread; ``base_url`` and ``api_key`` as usual."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._loop = _LoopThread("emulator-fixture")
        try:
            self.emulator = self._loop.run(self._start(factory))
        except BaseException:
            self._loop.stop()
            raise
        self.base_url: str = self.emulator.base_url
        self.api_key: str = self.emulator.api_key

    @staticmethod
    async def _start(factory: Callable[[], Any]) -> Any:
        emulator = factory()
        await emulator.start()
        return emulator

    def close(self) -> None:
        """Stop the server and its loop thread."""
        try:
            self._loop.run(self.emulator.aclose())
        finally:
            self._loop.stop()


@pytest.fixture(scope="session")
def served() -> Iterator[ServedEmulator]:
    """A small synthetic dataset (40 users), shared by every test that only reads it."""
    from helicone_users.testing import Emulator

    server = ServedEmulator(lambda: Emulator.synthetic(seed=3, users=40, requests=1500, days=10))
    yield server
    server.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., ServedEmulator]]:
    """Start extra emulators (e.g. with faults) for one test: ``serve(faults=FaultPlan(...))``."""
    from helicone_users.testing import Emulator

    started: list[ServedEmulator] = []

    def start(**kwargs: Any) -> ServedEmulator:
        kwargs = {"seed": 3, "users": 40, "requests": 1500, "days": 10, **kwargs}
        server = ServedEmulator(lambda: Emulator.synthetic(**kwargs))
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m helicone_users ARGS`` in a subprocess with ``env`` added to a clean
    environment (no inherited Helicone or W&B settings)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HELICONE_", "WANDB_", "WEAVE_", "COLUMNS"))
    }
    return subprocess.run(
        [sys.executable, "-m", "helicone_users", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def served_env(server: ServedEmulator) -> dict[str, str]:
    """The environment pointing the CLI at ``server``."""
    return {"HELICONE_API_KEY": server.api_key, "HELICONE_BASE_URL": server.base_url}


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module."""
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"examples_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
