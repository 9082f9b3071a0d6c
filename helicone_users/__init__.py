"""helicone_users: an async SDK for Helicone's user-metrics API and W&B Weave call stats."""

from __future__ import annotations

from typing import Any

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
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    UnprocessableEntityError,
)
from helicone_users._models import (
    HistogramRow,
    MetricsOverview,
    UserMetrics,
    UserMetricsPage,
    UserStats,
)
from helicone_users._pagination import UserMetricsPager
from helicone_users._retry import RetryPolicy
from helicone_users._sync import HeliconeUsers, WeaveStats
from helicone_users._types import NOT_GIVEN, NotGiven
from helicone_users.filters import ALL, F, Filter, U, all_of, any_of
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
    "MetricsOverview",
    "NotFoundError",
    "NotGiven",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseValidationError",
    "RetryPolicy",
    "U",
    "UnprocessableEntityError",
    "UsageBucket",
    "UsageMetric",
    "UserMetrics",
    "UserMetricsPage",
    "UserMetricsPager",
    "UserStats",
    "WeaveStats",
    "__version__",
    "all_of",
    "any_of",
]


def __getattr__(name: str) -> Any:
    # The version is read from the installed metadata only when asked for.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("helicone-users")
        except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
            return "0+unknown"
    raise AttributeError(f"module 'helicone_users' has no attribute {name!r}")
