"""helicone_users: an async SDK for Helicone's user-metrics API and W&B Weave call stats."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from helicone_users._client import AsyncHeliconeUsers
from helicone_users._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CountChangedWarning,
    FilterError,
    HeliconeAPIError,
    HeliconeError,
    HeliconeWarning,
    IgnoredFilterWarning,
    InternalServerError,
    InvalidRequestError,
    MissingDependencyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    UnknownFieldError,
    UnprocessableEntityError,
)
from helicone_users._models import (
    HistogramRow,
    MetricsOverview,
    UserMetrics,
    UserMetricsPage,
    UserStats,
    UserStatsList,
)
from helicone_users._pagination import UserMetricsPager
from helicone_users._ratelimit import LocalRateLimit, RateLimit, RedisRateLimit
from helicone_users._retry import RetryPolicy
from helicone_users._types import NOT_GIVEN, NotGiven
from helicone_users.filters import ALL, F, Filter, U, all_of, any_of, coerce

if TYPE_CHECKING:  # loaded on first use, through __getattr__ below
    from helicone_users._sync import HeliconeUsers, WeaveStats
    from helicone_users.weave import (
        AsyncWeaveStats,
        CallBucket,
        CallMetric,
        CallsFilter,
        CallStats,
        UsageBucket,
        UsageMetric,
    )

__all__ = [
    "ALL",
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncHeliconeUsers",
    "AsyncWeaveStats",
    "AuthenticationError",
    "BadRequestError",
    "CallBucket",
    "CallMetric",
    "CallStats",
    "CallsFilter",
    "CountChangedWarning",
    "F",
    "Filter",
    "FilterError",
    "HeliconeAPIError",
    "HeliconeError",
    "HeliconeUsers",
    "HeliconeWarning",
    "HistogramRow",
    "IgnoredFilterWarning",
    "InternalServerError",
    "InvalidRequestError",
    "LocalRateLimit",
    "MetricsOverview",
    "MissingDependencyError",
    "NotFoundError",
    "NotGiven",
    "PermissionDeniedError",
    "RateLimit",
    "RateLimitError",
    "RedisRateLimit",
    "ResponseValidationError",
    "RetryPolicy",
    "U",
    "UnknownFieldError",
    "UnprocessableEntityError",
    "UsageBucket",
    "UsageMetric",
    "UserMetrics",
    "UserMetricsPage",
    "UserMetricsPager",
    "UserStats",
    "UserStatsList",
    "WeaveStats",
    "__version__",
    "all_of",
    "any_of",
    "coerce",
]

# Public names whose modules load on first use, so `import helicone_users` stays cheap for code
# that never touches them: name -> the module that defines it. Add a name here, to the
# TYPE_CHECKING imports above (for type checkers) and to __all__.
_LAZY: Final[dict[str, str]] = {
    "AsyncWeaveStats": "helicone_users.weave",
    "CallBucket": "helicone_users.weave",
    "CallMetric": "helicone_users.weave",
    "CallStats": "helicone_users.weave",
    "CallsFilter": "helicone_users.weave",
    "UsageBucket": "helicone_users.weave",
    "UsageMetric": "helicone_users.weave",
    "HeliconeUsers": "helicone_users._sync",
    "WeaveStats": "helicone_users._sync",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups skip this function
        return value
    # The version is read from the installed metadata only when asked for.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("helicone-users")
        except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
            return "0+unknown"
    raise AttributeError(f"module 'helicone_users' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
