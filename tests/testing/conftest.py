"""Fixtures for the emulator's tests: a small dataset, a raw poster, the spec's schemas."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import aiohttp
import pytest
from emulator_oracle import SpecSchemas

from helicone_users.testing import Emulator

Post = Callable[..., Awaitable[tuple[int, Any, dict[str, str]]]]

EXTRA_ROWS: list[dict[str, Any]] = [
    {
        "request_id": "extra-1",
        "user_id": "o'brien; DROP TABLE requests; --",
        "request_created_at": "2024-12-20T10:00:00.250Z",
        "model": "gpt-4o",
        "provider": "openai",
        "latency": 1234,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "properties": {"it's a key": "50%_off", "environment": "production"},
        "scores": {"accuracy": 7, "helicone-score-feedback": 1},
        "cost": 0.25,
        "request_body": "Hello WORLD a_b",
    },
    {
        "request_id": "extra-2",
        "user_id": "o'brien; DROP TABLE requests; --",
        "request_created_at": "2024-12-21T23:59:59.999Z",
        "model": "GPT-4O",
        "latency": 10,
        "status": 429,
        "properties": {"Helicone-Rate-Limit-Status": "rate_limited"},
        "scores": {"helicone-score-feedback": 0},
        "country_code": "",
        "request_body": "axb",
    },
    {
        "request_id": "extra-3",
        "user_id": "",
        "request_created_at": "2024-12-22T00:00:00Z",
        "model": "gpt-4o-mini",
        "cost": 0.000001,
    },
]


def pytest_configure(config: pytest.Config) -> None:
    # The plugin tests use pytester; load it here rather than asking every run for -p pytester.
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


@pytest.fixture(scope="session")
def spec() -> SpecSchemas:
    return SpecSchemas()


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator.synthetic(seed=7, users=25, requests=600, days=10) as running:
        await running.add_requests(EXTRA_ROWS)
        yield running


@pytest.fixture
async def rows(emulator: Emulator) -> list[dict[str, Any]]:
    return await emulator.rows()


@pytest.fixture
async def post(emulator: Emulator) -> AsyncIterator[Post]:
    async with aiohttp.ClientSession() as session:

        async def send(
            path: str,
            body: Any,
            *,
            headers: dict[str, str] | None = None,
            target: Emulator | None = None,
        ) -> tuple[int, Any, dict[str, str]]:
            server = target or emulator
            sent = {"Authorization": f"Bearer {server.api_key}"} if headers is None else headers
            async with session.post(server.base_url + path, json=body, headers=sent) as response:
                return (
                    response.status,
                    await response.json(content_type=None),
                    dict(response.headers),
                )

        yield send


def at(text: str) -> datetime:
    """An aware UTC datetime from ISO text."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
