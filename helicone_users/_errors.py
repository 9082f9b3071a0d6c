"""The exception tree.

::

    HeliconeError
    ├── InvalidRequestError (ValueError)       bad input, refused before anything is sent
    │   └── FilterError                        a filter the API cannot express
    │       └── UnknownFieldError (AttributeError) ``F.latncy``: no such field or operator
    ├── MissingDependencyError (ImportError)   an optional library is missing; names the extra
    └── APIError                               something went wrong talking to a server
        ├── APIStatusError                     the server answered with an error status
        │   ├── BadRequestError                400
        │   ├── AuthenticationError            401
        │   ├── PermissionDeniedError          403
        │   ├── NotFoundError                  404
        │   ├── UnprocessableEntityError       422, with the validation ``details``
        │   ├── RateLimitError                 429, with ``retry_after``
        │   └── InternalServerError            5xx
        ├── HeliconeAPIError                   HTTP 200 carrying ``{"data": null, "error": "..."}``
        ├── APIConnectionError                 no answer: DNS, refused, reset, truncated body
        │   └── APITimeoutError (TimeoutError) no answer in time
        └── ResponseValidationError            an answer that does not fit the expected shape

    HeliconeWarning (UserWarning)
    ├── CountChangedWarning                    the total changed while paging
    └── IgnoredFilterWarning                   a filter the server is known to ignore

No message ever contains the API key: messages are built from the method, the path (never the
full URL with its query), the status, the server's own text and a hint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CountChangedWarning",
    "FilterError",
    "HeliconeAPIError",
    "HeliconeError",
    "HeliconeWarning",
    "IgnoredFilterWarning",
    "InternalServerError",
    "InvalidRequestError",
    "MissingDependencyError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseValidationError",
    "UnknownFieldError",
    "UnprocessableEntityError",
]

_SNIPPET_CHARS = 300


def snippet(text: str | bytes | None, limit: int = _SNIPPET_CHARS) -> str:
    """A short, printable excerpt of a body for error messages."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "…"


class HeliconeError(Exception):
    """Base of every error this SDK raises."""


class InvalidRequestError(HeliconeError, ValueError):
    """Bad input, refused before anything is sent; ``field`` names what to fix."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class FilterError(InvalidRequestError):
    """A filter the API cannot express or would silently mis-evaluate."""


class UnknownFieldError(FilterError, AttributeError):
    """A field or operator the filter DSL does not have (``F.latncy``), with a did-you-mean.

    Also an ``AttributeError``, so ``hasattr(F, name)``, ``getattr(F, name, default)``, ``copy``
    and mocks treat it as the missing attribute it is.
    """


class APIError(HeliconeError):
    """Something went wrong talking to a server; ``method`` and ``path`` say which call."""

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path


class APIStatusError(APIError):
    """The server answered with an error status."""

    status: int

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str = "",
        path: str = "",
        body: Any = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.status = status
        self.body = body
        self.request_id = request_id
        self.headers: Mapping[str, str] = dict(headers or {})


class BadRequestError(APIStatusError):
    """400: the server refused the request."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, unknown or lacks read permission."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class NotFoundError(APIStatusError):
    """404: no such endpoint (check the base URL)."""


class UnprocessableEntityError(APIStatusError):
    """422: the body failed the server's schema validation; ``details`` says where."""

    @property
    def details(self) -> Any:
        if isinstance(self.body, Mapping):
            for key in ("details", "detail"):
                if key in self.body:
                    return self.body[key]
        return None


class RateLimitError(APIStatusError):
    """429: too many requests; ``retry_after`` is the server's wait in seconds, if it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx: the server failed."""


class HeliconeAPIError(APIError):
    """HTTP 200 whose envelope carries ``error``: the server's own way to report a failure."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        error: str = "",
        status: int = 200,
        body: Any = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.error = error
        self.status = status
        self.body = body
        self.request_id = request_id


class APIConnectionError(APIError):
    """No usable answer: the connection failed, was reset, or the body was cut short."""


class APITimeoutError(APIConnectionError, TimeoutError):
    """No answer within the timeout."""


class ResponseValidationError(APIError):
    """An answer that does not fit the expected shape; ``field_path`` says where."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        field_path: str = "",
        body_snippet: str = "",
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.field_path = field_path
        self.body_snippet = body_snippet


class MissingDependencyError(HeliconeError, ImportError):
    """An optional library a feature needs is not installed; ``extra`` is what to install."""

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class HeliconeWarning(UserWarning):
    """Base of this SDK's warnings."""


class CountChangedWarning(HeliconeWarning):
    """The server's total changed between pages of one iteration."""


class IgnoredFilterWarning(HeliconeWarning):
    """A filter, or part of one, that the server is known to ignore."""


for _name in __all__:
    globals()[_name].__module__ = "helicone_users"
del _name
