"""Session: the one owner of one aiohttp.ClientSession, and the one seam for its errors."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final, TypeVar

import aiohttp
import attrs
from aiohttp.client_reqrep import RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy

from helicone_users._config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_CONNECTION_LIMIT,
    DEFAULT_CONNECTION_LIMIT_PER_HOST,
    DEFAULT_REGION,
    DEFAULT_TIMEOUT,
    LOGGER_NAME,
    REGION_BASE_URLS,
)
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
    snippet,
)
from helicone_users._ratelimit import RateLimit, ServerBudget, rate_limit_from
from helicone_users._retry import RetryPolicy, parse_retry_after
from helicone_users._types import NOT_GIVEN, NotGiven

__all__ = [
    "HELICONE",
    "NOT_GIVEN",
    "Service",
    "Session",
    "SessionOwner",
    "decode_json",
    "status_error",
    "translate_exception",
]

_log = logging.getLogger(LOGGER_NAME)
_Owner = TypeVar("_Owner", bound="SessionOwner")

_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


@attrs.frozen(kw_only=True)
class Service:
    """Who a Session talks to: the names its error hints give for the key, the URL and auth."""

    key_env: str
    base_url_env: str
    example_url: str
    auth_hint: str
    forbidden_hint: str
    rate_limit_example: str = "(requests, seconds)"

    def status_hint(self, status: int) -> str:
        """What to do next about an error status ("" when there is no advice)."""
        hints = {
            400: "the server refused the request; check the arguments named in its message",
            401: self.auth_hint,
            403: self.forbidden_hint,
            404: f"no such endpoint; check base_url / {self.base_url_env}",
            422: "the server's schema validation refused the body; see .details",
            429: f"rate limited; slow down, pass rate_limit={self.rate_limit_example}, or raise "
            "RetryPolicy attempts",
        }
        if status in hints:
            return hints[status]
        if status >= 500:
            return "the server failed; the request was retried if the policy allows"
        return ""


HELICONE: Final = Service(
    key_env=API_KEY_ENV,
    base_url_env=BASE_URL_ENV,
    example_url=REGION_BASE_URLS[DEFAULT_REGION],
    auth_hint=f"check the API key ({API_KEY_ENV}) and that it matches the region "
    "(us: api.helicone.ai, eu: eu.api.helicone.ai) and has read permission",
    forbidden_hint="the API key may not read this organization's data",
    rate_limit_example="(200, 60)",
)
_SERVER_TEXT_KEYS = ("error", "message", "reason", "detail")
_BAD_BODY = (aiohttp.ContentTypeError, aiohttp.WSMessageTypeError, json.JSONDecodeError)
_REQUEST_ID_HEADERS = ("x-request-id", "helicone-id", "x-amzn-requestid", "cf-ray")


# --- Errors: the one seam between aiohttp/asyncio and the exception tree ------------------------


def translate_exception(
    exc: BaseException, *, method: str, path: str, service: Service = HELICONE
) -> APIError:
    """The APIError a transport exception becomes (the original goes in ``__cause__``)."""
    where = f"{method} {path}"
    name = type(exc).__name__
    error: APIError
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError, TimeoutError)):
        error = APITimeoutError(
            f"{where} timed out ({name}); raise timeout= or check the network",
            method=method,
            path=path,
        )
    elif isinstance(exc, _BAD_BODY):
        error = ResponseValidationError(
            f"{where} answered with a body that is not the expected JSON ({name})",
            method=method,
            path=path,
        )
    elif isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        error = APIConnectionError(
            f"{where}: invalid URL ({name}); check base_url / {service.base_url_env}",
            method=method,
            path=path,
        )
    elif isinstance(exc, (aiohttp.TooManyRedirects, aiohttp.RedirectClientError)):
        error = APIConnectionError(
            f"{where}: too many or bad redirects ({name}); check base_url", method=method, path=path
        )
    elif isinstance(exc, aiohttp.ClientResponseError):
        error = _client_response_error(exc, method=method, path=path)
    elif isinstance(exc, aiohttp.ClientPayloadError):
        error = APIConnectionError(
            f"{where}: the response body was cut short ({name}); the request can be retried",
            method=method,
            path=path,
        )
    else:  # ClientConnectionError, ClientOSError, ServerDisconnectedError, any other ClientError
        error = APIConnectionError(
            f"{where}: connection failed ({name}: {_safe_text(exc)}); check the network and "
            "base_url",
            method=method,
            path=path,
        )
    _redact(exc)
    error.__cause__ = exc
    return error


_SECRET_HEADERS = ("authorization", "proxy-authorization", "helicone-authorization", "cookie")


def _redact(exc: BaseException) -> None:
    """Blank the credentials in the request headers an aiohttp error carries (its repr shows
    them), so that the chained original never leaks the key."""
    if not isinstance(exc, aiohttp.ClientResponseError):
        return
    info = exc.request_info
    headers = getattr(info, "headers", None)
    if headers is None:
        return
    clean: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        clean.add(name, "<redacted>" if name.lower() in _SECRET_HEADERS else value)
    safe = RequestInfo(info.url, info.method, CIMultiDictProxy(clean), info.real_url)
    exc.request_info = safe
    exc.args = (safe, *exc.args[1:]) if exc.args else exc.args


def _client_response_error(
    exc: aiohttp.ClientResponseError, *, method: str, path: str
) -> APIStatusError:
    status = exc.status or 0
    cls = _status_class(status)
    return cls(
        f"{method} {path} failed with status {status} ({type(exc).__name__}: {exc.message})",
        status=status,
        method=method,
        path=path,
        headers=dict(exc.headers or {}),
    )


def _safe_text(exc: BaseException) -> str:
    # aiohttp messages hold host and port, never headers; still keep them short.
    return snippet(str(exc), 160)


def _status_class(status: int) -> type[APIStatusError]:
    if status in _STATUS_CLASSES:
        return _STATUS_CLASSES[status]
    return InternalServerError if 500 <= status < 600 else APIStatusError


def status_error(
    status: int,
    *,
    method: str,
    path: str,
    body: Any,
    text: str,
    headers: Mapping[str, str],
    service: Service = HELICONE,
) -> APIStatusError:
    """The typed error for a non-2xx answer, its message saying what, where, why and what next."""
    server_text = _server_text(body) or snippet(text) or "(empty body)"
    hint = service.status_hint(status)
    message = f"{method} {path} failed with status {status}: {server_text}"
    if hint:
        message += f" (hint: {hint})"
    cls = _status_class(status)
    kwargs: dict[str, Any] = {
        "status": status,
        "method": method,
        "path": path,
        "body": body if body is not None else text,
        "request_id": _request_id(headers),
        "headers": headers,
    }
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=parse_retry_after(headers), **kwargs)
    return cls(message, **kwargs)


def _server_text(body: Any) -> str:
    if not isinstance(body, Mapping):
        return ""
    for key in _SERVER_TEXT_KEYS:
        value = body.get(key)
        if isinstance(value, str) and value:
            return snippet(value)
    return ""


def _request_id(headers: Mapping[str, str]) -> str | None:
    lowered = {key.lower(): value for key, value in headers.items()}
    for name in _REQUEST_ID_HEADERS:
        if name in lowered:
            return lowered[name]
    return None


# --- The session ---------------------------------------------------------------------------------


class Session:
    """POSTs JSON to one base URL with auth, timeouts, retries and typed errors.

    The aiohttp.ClientSession is created inside the running loop on first use (or in
    ``__aenter__``) and closed by ``aclose()``; a session passed in is used but never closed.
    """

    def __init__(
        self,
        *,
        base_url: str,
        authorization: str,
        user_agent: str | None = None,
        timeout: float | aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        rate_limit: tuple[int, float] | RateLimit | None = None,
        session: aiohttp.ClientSession | None = None,
        max_connections: int = DEFAULT_CONNECTION_LIMIT,
        max_connections_per_host: int = DEFAULT_CONNECTION_LIMIT_PER_HOST,
        service: Service = HELICONE,
    ) -> None:
        self.service = service
        self.base_url = _check_base_url(base_url, service)
        self.__authorization = authorization
        self.user_agent = user_agent
        self.timeout = _client_timeout(timeout)
        self.retry = retry if retry is not None else RetryPolicy()
        self.rate_limiter = rate_limit_from(rate_limit)
        # Until when every request waits: the server said the budget is spent (monotonic time).
        self._paused_until = 0.0
        self._session = session
        self._owns_session = session is None
        self._max_connections = max_connections
        self._max_connections_per_host = max_connections_per_host
        self._closed = False
        self._static_headers: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"Session(base_url={self.base_url!r})"

    async def __aenter__(self) -> Session:
        self._client_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` has run."""
        return self._closed

    async def aclose(self) -> None:
        """Close the aiohttp session if this object created it; idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()

    async def post_json(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        timeout: float | aiohttp.ClientTimeout | NotGiven = NOT_GIVEN,
    ) -> Any:
        """POST ``body`` as JSON and return the decoded JSON of the 2xx answer, after retries."""
        raw = await self.post_bytes(path, body, timeout=timeout)
        return decode_json(raw, method="POST", path=path)

    async def post_bytes(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        timeout: float | aiohttp.ClientTimeout | NotGiven = NOT_GIVEN,
    ) -> bytes:
        """POST ``body`` as JSON and return the raw body of the 2xx answer, after retries."""
        data = json.dumps(body, separators=(",", ":")).encode()
        request_timeout = None if isinstance(timeout, NotGiven) else _client_timeout(timeout)
        return await self.retry.call(
            lambda: self._attempt("POST", path, data, request_timeout), what=f"POST {path}"
        )

    async def _attempt(
        self, method: str, path: str, data: bytes, timeout: aiohttp.ClientTimeout | None
    ) -> bytes:
        if self.rate_limiter is not None:
            await self.rate_limiter.acquire()
        if self._paused_until:
            await self._wait_out_pause()
        started = time.perf_counter()
        try:
            status, headers, raw = await self._send(method, path, data, timeout)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            _log.debug("%s %s failed: %s", method, path, type(exc).__name__)
            raise translate_exception(
                exc, method=method, path=path, service=self.service
            ) from exc
        _log.debug(
            "%s %s -> %d (%d bytes, %.1f ms)",
            method,
            path,
            status,
            len(raw),
            (time.perf_counter() - started) * 1000,
        )
        if status == 429 or "RateLimit-Remaining" in headers:
            await self._read_budget(status, headers, f"{method} {path}")
        if 200 <= status < 300:
            return raw
        raise _error_for(
            status, dict(headers), raw, method=method, path=path, service=self.service
        )

    async def _wait_out_pause(self) -> None:
        while self.retry.sleeps:
            delay = self._paused_until - time.monotonic()
            if delay <= 0:
                self._paused_until = 0.0
                return
            await asyncio.sleep(delay)  # a later 429 may move the end on: look again

    async def _read_budget(self, status: int, headers: Mapping[str, str], what: str) -> None:
        """Adopt a stricter budget the server announces; pause every request when it is spent.

        A 429 without any ``RateLimit-*`` header (a gateway's, an injected fault) concerns that
        request alone: its retry waits, the others go on.
        """
        budget = ServerBudget.from_headers(headers)
        if budget is None:
            return
        if self.rate_limiter is not None and budget.limit and budget.window:
            self.rate_limiter.adopt(budget.limit, budget.window)
        seconds = budget.pause_after(status, headers)
        if seconds:
            await self._pause(seconds, f"{what} answered {status} with the rate limit spent")

    async def _pause(self, seconds: float, why: str) -> None:
        """Every request of this client (and of the limiter's other users) waits ``seconds``;
        logged once per pause, not per request."""
        now = time.monotonic()
        until = now + seconds
        if until <= self._paused_until:
            return
        if self._paused_until <= now:
            action = "every request waits" if self.retry.sleeps else "test mode: not waiting"
            _log.warning("%s; %s %.2f s", why, action, seconds)
        self._paused_until = until
        if self.rate_limiter is not None and self.retry.sleeps:
            await self.rate_limiter.pause(seconds)

    async def _send(
        self, method: str, path: str, data: bytes, timeout: aiohttp.ClientTimeout | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        session = self._client_session()
        kwargs: dict[str, Any] = {"data": data, "headers": self._headers()}
        # Our own session already carries our timeout; a caller's needs it on every request.
        if timeout is not None or not self._owns_session:
            kwargs["timeout"] = timeout or self.timeout
        async with session.request(method, self.base_url + path, **kwargs) as response:
            raw = await response.read()
            return response.status, response.headers, raw

    def _headers(self) -> dict[str, str]:
        headers = self._static_headers
        if headers is None:
            headers = {"Authorization": self.__authorization, "Content-Type": "application/json"}
            if self.user_agent:
                headers["User-Agent"] = self.user_agent
            self._static_headers = headers
        return headers

    def _client_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise APIConnectionError(
                f"{self!r} is closed; create a new client (or use it inside 'async with')"
            )
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, limit_per_host=self._max_connections_per_host
            )
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout)
        return self._session


class SessionOwner:
    """The shell every API client shares: one Session, ``async with``, ``aclose()``, a repr
    that shows the base URL and never the key."""

    _session: Session

    @property
    def base_url(self) -> str:
        """The API root every path is joined to."""
        return self._session.base_url

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of every request."""
        return self._session.retry

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    async def __aenter__(self: _Owner) -> _Owner:
        await self._session.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (unless it was passed in); idempotent."""
        await self._session.aclose()


def decode_json(raw: bytes, *, method: str, path: str) -> Any:
    """The JSON in a body; a body that is not JSON raises ResponseValidationError."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        text = snippet(raw)
        raise ResponseValidationError(
            f"{method} {path} answered with a body that is not JSON: {text!r}",
            method=method,
            path=path,
            body_snippet=text,
        ) from None


def _error_for(
    status: int,
    headers: Mapping[str, str],
    raw: bytes,
    *,
    method: str,
    path: str,
    service: Service,
) -> APIStatusError:
    text = raw.decode("utf-8", errors="replace")
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = None
    return status_error(
        status, method=method, path=path, body=body, text=text, headers=headers, service=service
    )


def _check_base_url(base_url: str, service: Service) -> str:
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise InvalidRequestError(
            f"base_url must be an http(s) URL such as {service.example_url!r}, got {base_url!r}",
            field="base_url",
        )
    return base_url.rstrip("/")


def _client_timeout(timeout: float | aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    if isinstance(timeout, aiohttp.ClientTimeout):
        return timeout
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise InvalidRequestError(
            f"timeout must be seconds > 0 or an aiohttp.ClientTimeout, got {timeout!r}",
            field="timeout",
        )
    total = float(timeout)
    return aiohttp.ClientTimeout(total=total, connect=min(DEFAULT_CONNECT_TIMEOUT, total))
