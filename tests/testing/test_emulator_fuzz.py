"""Fuzzing the emulator with bodies drawn from the shared spec's request schemas.

Strategies are built from the spec itself (``$ref``, ``anyOf``, objects, enums, date-times,
numbers), so every generated body is valid: the emulator must answer it without a 5xx, with a
body that fits the spec, and with the right answer for SQL-injection-shaped values and keys.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from emulator_oracle import SpecSchemas, expected_users
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helicone_users.testing import Emulator

METRICS = "/v1/user/metrics/query"
OVERVIEW = "/v1/user/metrics-overview/query"
QUERY = "/v1/user/query"
INJECTIONS = [
    "'; DROP TABLE requests; --",
    '" OR 1=1 --',
    "%' OR '1'='1",
    "a_b%",
    "\\",
    "properties['x']",
    "$1",
    "?",
    "it's",
]
WEIRD_ROWS: list[dict[str, Any]] = [
    {
        "request_id": f"w{i}",
        "user_id": user,
        "request_created_at": f"2024-03-0{1 + i % 5}T10:00:00Z",
        "properties": {key: value},
        "model": value,
        "latency": 100 * i,
        "cost": 0.001 * i,
    }
    for i, (user, key, value) in enumerate(
        [(INJECTIONS[i % 9], INJECTIONS[(i + 3) % 9], INJECTIONS[(i + 5) % 9]) for i in range(18)]
    )
]
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class Server:
    """An emulator running on its own event loop in a thread, for synchronous fuzz tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.emulator = Emulator(WEIRD_ROWS)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.emulator.start(), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.emulator.aclose(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def rows(self) -> list[dict[str, Any]]:
        return asyncio.run_coroutine_threadsafe(self.emulator.rows(), self.loop).result(30)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.emulator.base_url + path,
            data=json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.emulator.api_key}",
                "Content-Type": "application/json",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with Server() as running:
        yield running


@pytest.fixture(scope="module")
def schemas() -> SpecSchemas:
    return SpecSchemas()


def _strategy(
    schema: dict[str, Any], spec: dict[str, Any], depth: int = 0
) -> st.SearchStrategy[Any]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name == "UserFilterNode" and depth > 3:
            return st.just("all")
        return _strategy(spec["components"]["schemas"][name], spec, depth + 1)
    if "anyOf" in schema:
        return st.one_of([_strategy(option, spec, depth + 1) for option in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)).map(
                lambda moment: moment.replace(tzinfo=timezone.utc).isoformat()
            )
        return st.sampled_from(INJECTIONS) | st.text(max_size=8)
    if kind == "number":
        # Small whole numbers first, so many bodies page and filter rather than being refused.
        return (
            st.integers(0, 1000)
            | st.integers(1_700_000_000, 1_800_000_000)
            | st.integers(-(2**70), 2**70)
            | st.floats(allow_nan=False, allow_infinity=False)
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(_strategy(schema["items"], spec, depth), max_size=schema.get("maxItems", 5))
    return _object(schema, spec, depth)


def _object(schema: dict[str, Any], spec: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    strategy = st.fixed_dictionaries(
        {name: _strategy(properties[name], spec, depth) for name in required},
        optional={
            name: _strategy(sub, spec, depth)
            for name, sub in properties.items()
            if name not in required
        },
    )
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        keys = st.sampled_from(INJECTIONS) | st.text(max_size=6)
        mapping = st.dictionaries(keys, _strategy(extra, spec, depth), max_size=2)
        return st.tuples(strategy, mapping).map(lambda pair: {**pair[0], **pair[1]})
    return strategy


SPEC = SpecSchemas()
BODIES = {
    path: _strategy(SPEC.request_schema(path), SPEC.spec) for path in (METRICS, OVERVIEW, QUERY)
}


def _check(server: Server, schemas: SpecSchemas, path: str, body: Any) -> None:
    status, answer = server.post(path, body)
    assert status < 500, (status, answer)
    if status == 200:
        schemas.check_response(path, answer)
    elif status == 422:
        assert answer["message"] == "Validation Failed"
        raise AssertionError(f"a body valid under the spec was refused: {answer}")
    else:
        assert answer["data"] is None
        assert isinstance(answer["error"], str)


@FUZZ
@given(body=BODIES[METRICS])
def test_fuzzed_metrics_bodies_never_fail_or_break_the_schema(
    server: Server, schemas: SpecSchemas, body: Any
) -> None:
    _check(server, schemas, METRICS, body)


@FUZZ
@given(body=BODIES[OVERVIEW])
def test_fuzzed_overview_bodies_never_fail_or_break_the_schema(
    server: Server, schemas: SpecSchemas, body: Any
) -> None:
    _check(server, schemas, OVERVIEW, body)


@FUZZ
@given(body=BODIES[QUERY])
def test_fuzzed_user_query_bodies_never_fail_or_break_the_schema(
    server: Server, schemas: SpecSchemas, body: Any
) -> None:
    _check(server, schemas, QUERY, body)


@FUZZ
@given(body=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4))
def test_arbitrary_bodies_get_4xx_never_5xx(server: Server, body: dict[str, Any]) -> None:
    for path in (METRICS, OVERVIEW, QUERY):
        status, _ = server.post(path, body)
        assert status < 500


@FUZZ
@given(
    key=st.sampled_from(INJECTIONS) | st.text(alphabet="'\";%_\\ab$?", max_size=5),
    value=st.sampled_from(INJECTIONS) | st.text(alphabet="'\";%_\\ab$?", max_size=5),
    op=st.sampled_from(["equals", "not-equals", "contains", "not-contains", "like", "ilike"]),
)
def test_injection_shaped_keys_and_values_give_correct_answers(
    server: Server, key: str, value: str, op: str
) -> None:
    rows = server.rows()
    tree = {
        "left": {"request_response_rmt": {"properties": {key: {op: value}}}},
        "operator": "or",
        "right": {"request_response_rmt": {"model": {op: value}}},
    }
    status, answer = server.post(METRICS, {"filter": tree, "offset": 0, "limit": 1000})
    assert status == 200
    got = {user["user_id"]: user["total_requests"] for user in answer["data"]["users"]}
    want = {uid: user["total_requests"] for uid, user in expected_users(rows, tree).items()}
    assert got == want


def test_the_table_survives_the_fuzzing(server: Server) -> None:
    assert len(server.rows()) == len(WEIRD_ROWS)
