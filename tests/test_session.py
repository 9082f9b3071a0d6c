"""Session: status classes, Retry-After, malformed bodies, transport errors, ownership."""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import aiohttp.client_exceptions
import pytest
from _mock_http import mock_http
from aiohttp.client_reqrep import ConnectionKey
from aioresponses import aioresponses

from helicone_users._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    UnprocessableEntityError,
)
from helicone_users._retry import RetryPolicy
from helicone_users._session import Session, translate_exception

BASE = "https://api.example.test"
URL = BASE + "/v1/user/query"
PATH = "/v1/user/query"
KEY = "sk-helicone-canary-0000"


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with mock_http() as m:
        yield m


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    async with Session(
        base_url=BASE,
        authorization=f"Bearer {KEY}",
        user_agent="helicone-users/test",
        retry=RetryPolicy.testing(),
    ) as s:
        yield s


async def test_a_2xx_answer_returns_the_decoded_json(
    mocked: aioresponses, session: Session
) -> None:
    mocked.post(URL, payload={"data": [1, 2], "error": None})
    assert await session.post_json(PATH, {"a": 1}) == {"data": [1, 2], "error": None}


async def test_requests_carry_auth_user_agent_and_the_json_body(
    mocked: aioresponses, session: Session
) -> None:
    mocked.post(URL, payload={})
    await session.post_json(PATH, {"userIds": ["a"]})
    ((_, calls),) = mocked.requests.items()
    headers = calls[0].kwargs["headers"]
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["User-Agent"] == "helicone-users/test"
    assert headers["Content-Type"] == "application/json"
    assert calls[0].kwargs["data"] == b'{"userIds":["a"]}'


@pytest.mark.parametrize(
    ("status", "cls", "hint"),
    [
        (400, BadRequestError, "check the arguments"),
        (401, AuthenticationError, "HELICONE_API_KEY"),
        (403, PermissionDeniedError, "may not"),
        (404, NotFoundError, "base_url"),
        (418, APIStatusError, ""),
        (500, InternalServerError, "server failed"),
        (503, InternalServerError, "server failed"),
    ],
)
async def test_each_status_becomes_its_typed_error_with_what_where_and_hint(
    mocked: aioresponses, session: Session, status: int, cls: type[APIStatusError], hint: str
) -> None:
    mocked.post(
        URL,
        status=status,
        payload={"error": "the server's own words", "data": None},
        headers={"x-request-id": "req-42"},
        repeat=True,
    )
    with pytest.raises(cls) as info:
        await session.post_json(PATH, {})
    error = info.value
    assert type(error) is cls
    assert error.status == status
    assert (error.method, error.path) == ("POST", PATH)
    assert error.request_id == "req-42"
    assert error.body == {"error": "the server's own words", "data": None}
    message = str(error)
    assert f"POST {PATH}" in message
    assert str(status) in message
    assert "the server's own words" in message
    assert hint in message


async def test_401_with_null_error_still_explains_itself(
    mocked: aioresponses, session: Session
) -> None:
    mocked.post(URL, status=401, payload={"error": None, "trace": "isAuthenticated.error"})
    with pytest.raises(AuthenticationError) as info:
        await session.post_json(PATH, {})
    assert "HELICONE_API_KEY" in str(info.value)
    assert "region" in str(info.value)


async def test_422_carries_the_validation_details(mocked: aioresponses, session: Session) -> None:
    details = {"requestBody.limit": {"message": "invalid float number", "value": "x"}}
    mocked.post(URL, status=422, payload={"message": "Validation Failed", "details": details})
    with pytest.raises(UnprocessableEntityError) as info:
        await session.post_json(PATH, {})
    assert info.value.details == details
    assert "Validation Failed" in str(info.value)


async def test_a_plain_text_error_body_is_quoted_in_the_message(
    mocked: aioresponses, session: Session
) -> None:
    mocked.post(URL, status=400, body="Invalid token.", content_type="text/plain")
    with pytest.raises(BadRequestError) as info:
        await session.post_json(PATH, {})
    assert "Invalid token." in str(info.value)
    assert info.value.body == "Invalid token."


async def test_429_is_retried_after_retry_after_then_succeeds(
    mocked: aioresponses, session: Session
) -> None:
    mocked.post(URL, status=429, headers={"Retry-After": "2"}, payload={"error": "Too many"})
    mocked.post(URL, payload={"ok": True})
    assert await session.post_json(PATH, {}) == {"ok": True}


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "120"},
        {"retry-after-ms": "120000"},
        {"RateLimit-Reset": "120"},
        {"Retry-After": email.utils.formatdate(time.time() + 300, usegmt=True)},
    ],
)
async def test_429_with_a_wait_beyond_the_cap_raises_rate_limit_error_at_once(
    mocked: aioresponses, headers: dict[str, str]
) -> None:
    mocked.post(URL, status=429, headers=headers, payload={"error": "Too many requests"})
    mocked.post(URL, payload={"unreachable": True})
    retry = RetryPolicy(retry_after_cap=30).without_sleep()
    async with Session(base_url=BASE, authorization="Bearer k", retry=retry) as s:
        with pytest.raises(RateLimitError) as info:
            await s.post_json(PATH, {})
    assert info.value.retry_after is not None
    assert info.value.retry_after > 30
    assert len(next(iter(mocked.requests.values()))) == 1


async def test_429_that_persists_raises_rate_limit_error_after_all_attempts(
    mocked: aioresponses, session: Session
) -> None:
    mocked.post(URL, status=429, headers={"Retry-After": "1"}, payload={"error": "x"}, repeat=True)
    with pytest.raises(RateLimitError) as info:
        await session.post_json(PATH, {})
    assert info.value.retry_after == 1.0
    assert len(next(iter(mocked.requests.values()))) == 4


async def test_400_is_never_retried(mocked: aioresponses, session: Session) -> None:
    mocked.post(URL, status=400, payload={"error": "Limit cannot be greater than 1000"})
    mocked.post(URL, payload={})
    with pytest.raises(BadRequestError, match="Limit cannot be greater than 1000"):
        await session.post_json(PATH, {})
    assert len(next(iter(mocked.requests.values()))) == 1


async def test_a_2xx_body_that_is_not_json_raises_response_validation_error(
    mocked: aioresponses, session: Session
) -> None:
    mocked.post(URL, status=200, body="<html>gateway</html>", content_type="text/html")
    with pytest.raises(ResponseValidationError) as info:
        await session.post_json(PATH, {})
    assert "<html>gateway</html>" in info.value.body_snippet
    assert "not JSON" in str(info.value)


async def test_a_truncated_json_body_raises_response_validation_error(
    mocked: aioresponses, session: Session
) -> None:
    mocked.post(URL, status=200, body='{"data": [1, 2', content_type="application/json")
    with pytest.raises(ResponseValidationError):
        await session.post_json(PATH, {})


@pytest.mark.parametrize(
    ("exception", "expected"),
    [
        (aiohttp.ServerDisconnectedError(), APIConnectionError),
        (aiohttp.ClientConnectionError("refused"), APIConnectionError),
        (aiohttp.ClientPayloadError("Response payload is not completed"), APIConnectionError),
        (asyncio.TimeoutError(), APITimeoutError),
        (aiohttp.ServerTimeoutError("read"), APITimeoutError),
    ],
)
async def test_transport_failures_are_retried_then_raised_typed(
    mocked: aioresponses,
    session: Session,
    exception: BaseException,
    expected: type[APIError],
) -> None:
    mocked.post(URL, exception=exception, repeat=True)
    with pytest.raises(expected) as info:
        await session.post_json(PATH, {})
    assert info.value.__cause__ is exception
    assert f"POST {PATH}" in str(info.value)
    assert len(next(iter(mocked.requests.values()))) == 4


async def test_a_timeout_is_a_builtin_timeout_error_too(
    mocked: aioresponses, session: Session
) -> None:
    mocked.post(URL, exception=asyncio.TimeoutError(), repeat=True)
    with pytest.raises(TimeoutError):
        await session.post_json(PATH, {})


async def test_a_transient_connection_error_is_retried_to_success(
    mocked: aioresponses, session: Session
) -> None:
    mocked.post(URL, exception=aiohttp.ServerDisconnectedError())
    mocked.post(URL, payload={"data": 1})
    assert await session.post_json(PATH, {}) == {"data": 1}


def _instance(cls: type[BaseException]) -> BaseException:
    key = ConnectionKey._make([None] * len(ConnectionKey._fields))._replace(host="h", port=1)
    if issubclass(cls, aiohttp.ClientResponseError):
        return cls(None, (), status=407, message="proxy says no")  # type: ignore[arg-type]
    if cls.__name__ == "UnixClientConnectorError":
        return cls("/tmp/s", key, OSError(2, "gone"))
    if issubclass(cls, aiohttp.ClientConnectorError):
        return cls(key, OSError(111, "refused"))
    if issubclass(cls, aiohttp.ServerFingerprintMismatch):
        return cls(b"a", b"b", "h", 1)
    if issubclass(cls, aiohttp.InvalidURL):
        return cls("htp:/bad")
    return cls("failure")


def _aiohttp_client_exceptions() -> list[type[BaseException]]:
    module = aiohttp.client_exceptions
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == module.__name__
    ]


def test_every_aiohttp_client_exception_is_translated_to_an_api_error() -> None:
    classes = _aiohttp_client_exceptions()
    assert len(classes) >= 25
    for cls in classes:
        original = _instance(cls)
        translated = translate_exception(original, method="POST", path=PATH)
        assert isinstance(translated, APIError), cls
        assert translated.__cause__ is original
        assert f"POST {PATH}" in str(translated), cls


def test_timeouts_map_to_api_timeout_error_and_bad_bodies_to_validation_errors() -> None:
    for cls in (aiohttp.ServerTimeoutError, aiohttp.ConnectionTimeoutError):
        error = translate_exception(cls("t"), method="POST", path=PATH)
        assert isinstance(error, APITimeoutError)
    bad_json = _instance(aiohttp.ContentTypeError)
    assert isinstance(
        translate_exception(bad_json, method="POST", path=PATH), ResponseValidationError
    )
    proxy = translate_exception(_instance(aiohttp.ClientHttpProxyError), method="POST", path=PATH)
    assert isinstance(proxy, APIStatusError)
    assert proxy.status == 407


async def test_an_invalid_base_url_is_refused_before_sending() -> None:
    with pytest.raises(InvalidRequestError) as info:
        Session(base_url="api.helicone.ai", authorization="Bearer k", retry=RetryPolicy())
    assert info.value.field == "base_url"


async def test_repr_shows_the_base_url_and_never_the_key() -> None:
    s = Session(base_url=BASE + "/", authorization=f"Bearer {KEY}", retry=RetryPolicy())
    assert repr(s) == f"Session(base_url='{BASE}')"
    assert KEY not in repr(s)
    await s.aclose()


async def test_the_aiohttp_session_is_created_lazily_and_closed_by_aclose(
    mocked: aioresponses,
) -> None:
    s = Session(base_url=BASE, authorization="Bearer k", retry=RetryPolicy.testing())
    assert _inner(s) is None
    mocked.post(URL, payload={})
    await s.post_json(PATH, {})
    inner = _inner(s)
    assert inner is not None
    assert inner.timeout.total == 60.0
    assert inner.timeout.connect == 10.0
    assert isinstance(inner.connector, aiohttp.TCPConnector)
    assert inner.connector.limit == 32
    await s.aclose()
    assert inner.closed
    await s.aclose()  # idempotent


def _inner(s: Session) -> aiohttp.ClientSession | None:
    return s._session


async def test_a_closed_session_refuses_new_requests() -> None:
    s = Session(base_url=BASE, authorization="Bearer k", retry=RetryPolicy.testing())
    await s.aclose()
    with pytest.raises(APIConnectionError, match="closed"):
        await s.post_json(PATH, {})


async def test_a_caller_supplied_session_is_used_and_never_closed(mocked: aioresponses) -> None:
    mocked.post(URL, payload={"mine": True})
    async with aiohttp.ClientSession() as own:
        async with Session(
            base_url=BASE, authorization="Bearer k", retry=RetryPolicy.testing(), session=own
        ) as s:
            assert await s.post_json(PATH, {}) == {"mine": True}
        assert not own.closed


async def test_a_numeric_timeout_becomes_total_with_a_short_connect_timeout() -> None:
    s = Session(base_url=BASE, authorization="Bearer k", timeout=5)
    assert s.timeout.total == 5.0
    assert s.timeout.connect == 5.0
    with pytest.raises(InvalidRequestError):
        Session(base_url=BASE, authorization="Bearer k", timeout=0)
    await s.aclose()


def test_credentials_in_an_aiohttp_error_are_redacted_before_chaining() -> None:
    from aiohttp.client_reqrep import RequestInfo
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL as YarlURL

    headers = CIMultiDictProxy(CIMultiDict({"Authorization": f"Bearer {KEY}", "Accept": "*/*"}))
    info = RequestInfo(YarlURL(URL), "POST", headers, YarlURL(URL))
    original = aiohttp.TooManyRedirects(info, (), status=307, message="loop")
    error = translate_exception(original, method="POST", path=PATH)
    cause = error.__cause__
    assert isinstance(cause, aiohttp.ClientResponseError)
    texts = [str(error), repr(error), repr(cause), repr(cause.args), str(cause)]
    assert all(KEY not in text for text in texts)
    assert "<redacted>" in repr(cause)
    assert cause.request_info.headers["Accept"] == "*/*"
