"""Fixtures for the emulator's tests: a small dataset, a raw poster, the spec's schemas."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import aiohttp
import jsonschema
import pytest
from aiohttp import web
from emulator_oracle import SpecSchemas

from helicone_users.testing import Emulator, _app

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


_SCHEMA_BREAKS: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _check_every_answer_against_the_spec(spec: SpecSchemas) -> Iterator[None]:
    """Every 200 answer of a quirk-free emulator started by these tests is checked against its
    endpoint's response schema in the shared spec (quirks copy the hosted server's deviations)."""
    original = _app.guard

    def checking_guard(state: Any, schema: Any, handler: Any) -> Any:
        guarded = original(state, schema, handler)

        async def checked(request: web.Request) -> web.StreamResponse:
            response = await guarded(request)
            body = getattr(response, "body", None)
            if response.status == 200 and not state.quirks and isinstance(body, bytes):
                try:
                    spec.check_response(request.path, json.loads(body))
                except jsonschema.ValidationError as exc:  # failed in the test that caused it
                    _SCHEMA_BREAKS.append(f"{request.path}: {_where(exc)}")
            return response

        return checked

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_app, "guard", checking_guard)
        yield


def _where(exc: jsonschema.ValidationError) -> str:
    # Under anyOf, the branch that got furthest into the body names the real culprit.
    deepest = max(exc.context, key=lambda e: len(e.absolute_path)) if exc.context else exc
    path = "/".join(str(part) for part in deepest.absolute_path)
    return f"{path or '(body)'}: {deepest.message[:200]}"


@pytest.fixture(autouse=True)
def _no_answer_broke_the_spec() -> Iterator[None]:
    yield
    breaks = list(_SCHEMA_BREAKS)
    _SCHEMA_BREAKS.clear()
    assert not breaks, f"emulator answers broke the spec's response schema: {breaks[:3]}"


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
