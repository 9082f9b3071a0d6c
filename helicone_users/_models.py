"""Frozen result models, in snake_case; wire names live only in the converter."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, get_type_hints

import attrs

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

__all__ = [
    "HistogramRow",
    "MetricsOverview",
    "MetricsQuery",
    "OverviewQuery",
    "TimeFilter",
    "UserMetrics",
    "UserMetricsPage",
    "UserStats",
    "UserStatsList",
    "UsersQuery",
]


class _Result:
    """The base of the result models: it holds their weak-reference slot, so that the
    converter can build them as plain slotted objects and then give them their class."""

    __slots__ = ("__weakref__",)


class Tabular:
    """``to_polars()`` and ``to_pandas()`` for a result that has ``to_arrow()``."""

    __slots__ = ()

    def to_arrow(self) -> pa.Table:
        """This result as a ``pyarrow.Table``."""
        raise NotImplementedError

    def to_polars(self) -> pl.DataFrame:
        """This result as a polars DataFrame, with the columns of ``to_arrow()``; needs the
        ``polars`` extra."""
        from helicone_users._tables import require_frames, to_polars

        require_frames("polars")
        return to_polars(self.to_arrow())

    def to_pandas(self) -> pd.DataFrame:
        """This result as a pandas DataFrame, with the columns of ``to_arrow()``; needs the
        ``pandas`` extra."""
        from helicone_users._tables import require_frames, to_pandas

        require_frames("pandas")
        return to_pandas(self.to_arrow())


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
class UserMetricsPage(_Result, Tabular):
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

    def to_arrow(self) -> pa.Table:
        """This page's users as a ``pyarrow.Table`` with the users schema (see the pager's
        ``to_arrow``); needs the ``arrow`` extra."""
        from helicone_users._tables import USER_COLUMNS, table_of

        return table_of(self.users, USER_COLUMNS)


@attrs.frozen(kw_only=True, slots=True)
class HistogramRow(_Result):
    """One histogram bin: ``value`` users (may be fractional) in ``[range_start, range_end]``."""

    range_start: float
    range_end: float
    value: float


@attrs.frozen(kw_only=True, slots=True)
class MetricsOverview(_Result, Tabular):
    """Histograms of requests per user and cost per user (USD), from metrics-overview."""

    request_count: tuple[HistogramRow, ...]
    user_cost: tuple[HistogramRow, ...]

    def to_arrow(self) -> pa.Table:
        """Both histograms as one ``pyarrow.Table``: ``histogram`` (``"request_count"`` or
        ``"user_cost"``) string, ``range_start``, ``range_end``, ``value`` float64."""
        from helicone_users._tables import overview_table

        return overview_table(self)


@attrs.frozen(kw_only=True, slots=True)
class UserStats(_Result):
    """One user's totals from ``/v1/user/query``; ``cost`` in USD."""

    user_id: str
    count: int
    prompt_tokens: int
    completion_tokens: int
    cost: float


class UserStatsList(list[UserStats], Tabular):
    """The list ``users.query()`` returns: a plain list of UserStats (equal to one) that also
    converts to a table: ``user_id`` string, ``count``, ``prompt_tokens``,
    ``completion_tokens`` int64, ``cost`` float64 (USD)."""

    __slots__ = ()

    def to_arrow(self) -> pa.Table:
        """The totals as a ``pyarrow.Table``, one row per user; needs the ``arrow`` extra."""
        from helicone_users._tables import STATS_COLUMNS, table_of

        return table_of(self, STATS_COLUMNS)


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
UserStatsList.__module__ = "helicone_users"
