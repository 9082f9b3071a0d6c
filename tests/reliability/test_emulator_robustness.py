"""The emulator under hostile input and load: no 5xx, answers that fit the spec, right answers.

Complements ``tests/testing/test_emulator_fuzz.py`` (bodies valid under the spec): here bodies
are spec-valid bodies with one part broken, arbitrary JSON and bytes, arbitrary headers, the
Weave endpoint's spec, and twenty clients at once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped,unused-ignore]
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helicone_users import F, U
from helicone_users.testing import Emulator

from .conftest import Served, fast_retry, user_rows

SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "spec"
HELICONE_SPEC = SPEC_DIR / "helicone-users.openapi.yaml"
WEAVE_SPEC = SPEC_DIR / "weave-calls-stats.openapi.yaml"
METRICS = "/v1/user/metrics/query"
OVERVIEW = "/v1/user/metrics-overview/query"
QUERY = "/v1/user/query"
CALLS = "/calls/stats"
HELICONE_PATHS = (METRICS, OVERVIEW, QUERY)
FUZZ = settings(
    max_examples=40,
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def load(path: Path) -> dict[str, Any]:
    """An OpenAPI document; a missing shared spec fails the run rather than skipping it."""
    if not path.is_file():
        raise FileNotFoundError(f"the shared spec is missing: {path} (expected <repo>/../shared)")
    spec: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return spec


SPECS = {"helicone": load(HELICONE_SPEC), "weave": load(WEAVE_SPEC)}


def spec_of(path: str) -> dict[str, Any]:
    return SPECS["weave" if path == CALLS else "helicone"]


def as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable`` as JSON Schema's ``type: [..., "null"]``."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def operation_schema(path: str, part: str) -> dict[str, Any]:
    operation = spec_of(path)["paths"][path]["post"]
    if part == "request":
        schema: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["schema"]
    else:
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    return schema


def validator(path: str, part: str) -> jsonschema.Draft7Validator:
    components = as_json_schema(spec_of(path)["components"])
    return jsonschema.Draft7Validator(
        {**as_json_schema(operation_schema(path, part)), "components": components}
    )


REQUESTS = {path: validator(path, "request") for path in (*HELICONE_PATHS, CALLS)}
RESPONSES = {path: validator(path, "response") for path in (*HELICONE_PATHS, CALLS)}


# --- Strategies from the spec ---------------------------------------------------------------------


def resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def valid(schema: dict[str, Any], spec: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values that fit ``schema`` (small, and shallow past a few levels of recursion)."""
    schema = resolve(schema, spec)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        if depth > 3:
            return st.just("all")
        return st.one_of([valid(option, spec, depth + 1) for option in options])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.datetimes(datetime(2024, 1, 1), datetime(2024, 6, 1)).map(
                lambda moment: moment.replace(tzinfo=timezone.utc).isoformat()
            )
        return st.text(max_size=6)
    if kind == "integer":
        return st.integers(schema.get("minimum", 0), schema.get("maximum", 10_000))
    if kind == "number":
        return st.integers(0, 1000) | st.integers(1_709_000_000, 1_717_000_000)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        items = valid(schema.get("items", {}), spec, depth + 1)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=3)
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    return st.fixed_dictionaries(
        {name: valid(properties[name], spec, depth + 1) for name in required if name in properties},
        optional={
            name: valid(sub, spec, depth + 1)
            for name, sub in properties.items()
            if name not in required
        },
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
EXTREMES: st.SearchStrategy[Any] = st.sampled_from(
    [10**30, -(10**30), 2**63, -(2**63) - 1, 1e308, -1e308, 1e-308, "", "x" * 10_000, [], {},
     "\x00", "'; DROP TABLE requests; --", "2024-02-30T00:00:00Z", "9999-12-31T23:59:59Z",
     "0001-01-01T00:00:00Z", True, None]
)  # fmt: skip


def positions(value: Any, trail: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside ``value``, the root included."""
    yield trail
    if isinstance(value, dict):
        for key, item in value.items():
            yield from positions(item, (*trail, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from positions(item, (*trail, index))


def replaced(value: Any, trail: tuple[Any, ...], new: Any) -> Any:
    if not trail:
        return new
    head, rest = trail[0], trail[1:]
    if isinstance(value, dict):
        out = dict(value)
        if new is DROP and not rest:
            del out[head]
        else:
            out[head] = replaced(value[head], rest, new)
        return out
    items = list(value)
    items[head] = replaced(value[head], rest, None if new is DROP else new)
    return items


DROP = object()


@st.composite
def broken(draw: st.DrawFn, path: str) -> Any:
    """A spec-valid body of ``path`` with one value replaced, dropped, or extra keys added."""
    spec = spec_of(path)
    body = draw(valid(operation_schema(path, "request"), spec))
    trail = draw(st.sampled_from(list(positions(body))))
    new = draw(st.one_of(st.just(DROP), EXTREMES, JSON))
    body = replaced(body, trail, new) if trail or new is not DROP else body
    if isinstance(body, dict) and draw(st.booleans()):
        body = {**body, **draw(st.dictionaries(st.text(max_size=6), JSON, max_size=2))}
    return body


# --- The server and its checks --------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    with Served(Emulator(user_rows(40, per_user=2))) as running:
        yield running


def post(
    server: Served, path: str, data: bytes, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    sent = {"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"}
    if path == CALLS:
        sent["Authorization"] = _basic(server.api_key)
    request = urllib.request.Request(
        server.base_url + path, data=data, headers={**sent, **(headers or {})}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"api:{key}".encode()).decode()


def check(path: str, status: int, raw: bytes, body: Any) -> None:
    """No 5xx; a JSON answer; a 200 fits the spec; a body the spec refuses is not a 200 with
    a wrong shape."""
    assert status < 500, (status, raw[:500], body)
    answer = json.loads(raw)
    if status == 200:
        RESPONSES[path].validate(answer)
    else:
        assert isinstance(answer, dict), answer


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("path", [*HELICONE_PATHS, CALLS])
def test_bodies_with_one_part_broken_never_get_a_5xx(
    server: Served, path: str, data: st.DataObject
) -> None:
    body = data.draw(broken(path))
    status, raw = post(server, path, json.dumps(body).encode())
    check(path, status, raw, body)
    if status == 200 and path != CALLS:
        assert REQUESTS[path].is_valid(body) or _lenient(body), body


def _lenient(body: Any) -> bool:
    # The emulator, like the hosted server, reads a few off-spec bodies (extra keys, numbers
    # for strings); what matters is that such an answer still fits the response schema.
    return isinstance(body, dict)


@FUZZ
@given(body=JSON | EXTREMES)
@pytest.mark.parametrize("path", [*HELICONE_PATHS, CALLS])
def test_any_json_value_as_a_body_never_gets_a_5xx(server: Served, path: str, body: Any) -> None:
    status, raw = post(server, path, json.dumps(body).encode())
    check(path, status, raw, body)


ODD_BYTES = [b"", b"{", b'{"filter":', b"\xff\xfe", b"[1,2", b"null", b"NaN",
             b'{"a":' * 2000, b"[" * 5000 + b"]" * 5000]  # fmt: skip


@FUZZ
@given(data=st.binary(max_size=64) | st.sampled_from(ODD_BYTES))
@pytest.mark.parametrize("path", [*HELICONE_PATHS, CALLS])
def test_any_bytes_as_a_body_never_get_a_5xx(server: Served, path: str, data: bytes) -> None:
    status, raw = post(server, path, data)
    assert status < 500, (status, raw[:300])
    assert isinstance(json.loads(raw), dict)


HEADER_TEXT = st.text(
    st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=40
)


@FUZZ
@given(
    authorization=st.one_of(
        st.none(),
        HEADER_TEXT,
        HEADER_TEXT.map(lambda text: "Bearer " + text),
        HEADER_TEXT.map(lambda text: "Basic " + text),
        HEADER_TEXT.map(lambda text: "Basic " + base64.b64encode(text.encode()).decode()),
        st.just("Bearer " + "k" * 8000),
    ),
    helicone=st.none() | HEADER_TEXT | JSON.map(json.dumps),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "", "application/x-www-form-urlencoded"]
    ),
    extra=st.dictionaries(
        st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).filter(
            lambda name: name.lower() not in ("content-length", "host", "transfer-encoding")
        ),
        HEADER_TEXT,
        max_size=3,
    ),
)
@pytest.mark.parametrize("path", [METRICS, CALLS])
def test_any_headers_without_the_key_get_a_4xx_never_a_5xx(
    server: Served,
    path: str,
    authorization: str | None,
    helicone: str | None,
    content_type: str,
    extra: dict[str, str],
) -> None:
    body = json.dumps({"filter": "all", "offset": 0, "limit": 3}).encode()
    headers = {**extra, "Content-Type": content_type, "Authorization": authorization or ""}
    if helicone is not None:
        headers["helicone-authorization"] = helicone
    status, raw = post(server, path, body, headers)
    assert 400 <= status < 500, (status, raw[:300])


@pytest.mark.parametrize(
    "authorization",
    ["Basic \u00e9t\u00e9", "Basic " + base64.b64encode("api:cl\u00e9".encode()).decode()],
)
def test_a_basic_header_with_non_ascii_text_is_refused_with_401(
    server: Served, authorization: str
) -> None:
    status, raw = post(server, CALLS, b"{}", {"Authorization": authorization})
    assert status == 401, (status, raw[:300])


def test_the_shared_spec_is_found_from_the_test_file() -> None:
    assert HELICONE_SPEC.is_file()
    assert WEAVE_SPEC.is_file()


# --- Twenty clients at once -----------------------------------------------------------------------


async def _answers(client: Any) -> list[Any]:
    page = await client.users.metrics(
        F.model.contains("gpt") & (U.total_requests >= 1), limit=50, sort=("cost", "desc")
    )
    everyone = [user.user_id async for user in client.users.iter_metrics(page_size=7)]
    overview = await client.users.overview(p_size="p99")
    totals = await client.users.query([f"u{i:06d}" for i in range(0, 40, 3)])
    return [page, everyone, overview, totals]


async def test_twenty_concurrent_clients_get_the_answers_one_client_gets_alone() -> None:
    async with Served(Emulator(user_rows(40, per_user=2))) as emulator:
        async with emulator.client(retry=fast_retry()) as alone:
            wanted = await _answers(alone)

        async def one() -> list[Any]:
            async with emulator.client(retry=fast_retry(), max_concurrency=4) as client:
                return await _answers(client)

        results = await asyncio.gather(*(one() for _ in range(20)))
    assert len(wanted[1]) == 40
    assert wanted[0].users
    assert all(result == wanted for result in results)


async def test_a_client_leaving_mid_body_is_not_logged_as_an_emulator_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with Emulator.synthetic(seed=1, users=5, requests=50) as emulator:
        for path in (*HELICONE_PATHS, CALLS):
            _reader, writer = await asyncio.open_connection(emulator.host, emulator.port)
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {emulator.api_key}\r\n"
                'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"filter":'.encode()
            )
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        async with emulator.client() as client:  # still serving, and the left requests are done
            assert (await client.users.metrics(limit=1)).users
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures == [], [r.getMessage() for r in failures]
