"""Frozen result models, in snake_case; wire names live only in the converter."""

from __future__ import annotations

from datetime import datetime
from typing import Any, get_type_hints

import attrs

__all__ = [
    "HistogramRow",
    "MetricsOverview",
    "MetricsQuery",
    "OverviewQuery",
    "TimeFilter",
    "UserMetrics",
    "UserMetricsPage",
    "UserStats",
    "UsersQuery",
]


class _Result:
    """The base of the result models: it holds their weak-reference slot, so that the
    converter can build them as plain slotted objects and then give them their class."""

    __slots__ = ("__weakref__",)


@attrs.frozen(kw_only=True, slots=True)
class UserMetrics(_Result):
    """One user's aggregates from ``/v1/user/metrics/query``; datetimes are aware UTC, cost USD."""

    id: str
    user_id: str
    active_for: int
    first_active: datetime
    last_active: datetime
    total_requests: int
    average_requests_per_day_active: float
    average_tokens_per_request: float
    total_completion_tokens: int
    total_prompt_tokens: int
    cost: float
    rate_limited_count: int | None = None


@attrs.frozen(kw_only=True, slots=True)
class UserMetricsPage(_Result):
    """One page of users; ``count`` is the total that match, ``has_users`` is org-wide."""

    users: tuple[UserMetrics, ...]
    count: int
    has_users: bool
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        """The offset of the next page, or ``None`` when this one is the last."""
        following = self.offset + self.limit
        if len(self.users) < self.limit or following >= self.count:
            return None
        return following


@attrs.frozen(kw_only=True, slots=True)
class HistogramRow(_Result):
    """One histogram bin: ``value`` users (may be fractional) in ``[range_start, range_end]``."""

    range_start: float
    range_end: float
    value: float


@attrs.frozen(kw_only=True, slots=True)
class MetricsOverview(_Result):
    """Histograms of requests per user and cost per user (USD), from metrics-overview."""

    request_count: tuple[HistogramRow, ...]
    user_cost: tuple[HistogramRow, ...]


@attrs.frozen(kw_only=True, slots=True)
class UserStats(_Result):
    """One user's totals from ``/v1/user/query``; ``cost`` in USD."""

    user_id: str
    count: int
    prompt_tokens: int
    completion_tokens: int
    cost: float


# --- Request bodies (built by the client, unstructured by the converter into wire names) ---------


@attrs.frozen(kw_only=True, slots=True)
class TimeFilter:
    """A request window; the numbers are Unix seconds (or milliseconds, see ``time_unit``)."""

    start_time_unix_seconds: float
    end_time_unix_seconds: float


@attrs.frozen(kw_only=True, slots=True)
class MetricsQuery:
    """The body of ``/v1/user/metrics/query``."""

    filter: Any
    offset: int
    limit: int
    time_filter: TimeFilter | None = None
    time_zone_difference_minutes: int | None = None
    sort: dict[str, str] | None = None


@attrs.frozen(kw_only=True, slots=True)
class OverviewQuery:
    """The body of ``/v1/user/metrics-overview/query``."""

    filter: Any
    p_size: str
    use_interquartile: bool


@attrs.frozen(kw_only=True, slots=True)
class UsersQuery:
    """The body of ``/v1/user/query``."""

    user_ids: list[str] | None = None
    time_filter: TimeFilter | None = None


# Resolve the string annotations here, once, so that tools reading them (cattrs, msgspec,
# typing) need not look them up in the public module the public classes name as their own.
_PUBLIC: tuple[type[Any], ...] = (
    HistogramRow,
    MetricsOverview,
    UserMetrics,
    UserMetricsPage,
    UserStats,
)
for _cls in (TimeFilter, MetricsQuery, OverviewQuery, UsersQuery, *_PUBLIC):
    attrs.resolve_types(_cls)
    _cls.__annotations__.update(get_type_hints(_cls))
for _cls in _PUBLIC:
    _cls.__module__ = "helicone_users"
del _cls
