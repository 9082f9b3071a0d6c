"""AsyncHeliconeUsers: the object users construct; one method per endpoint."""

from __future__ import annotations

import os
import platform
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal, TypeVar

import aiohttp
import cattrs

from helicone_users import filters
from helicone_users._config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_CONCURRENCY,
    DEFAULT_CONNECTION_LIMIT,
    DEFAULT_CONNECTION_LIMIT_PER_HOST,
    DEFAULT_LIMIT,
    DEFAULT_P_SIZE,
    DEFAULT_PAGE_SIZE,
    DEFAULT_REGION,
    DEFAULT_TIMEOUT,
    MAX_PAGE_SIZE,
    MAX_USER_IDS_PER_QUERY,
    P_SIZES,
    REGION_BASE_URLS,
    SORT_FIELDS,
)
from helicone_users._converter import fast_metrics_page, make_converter, structure_or_raise
from helicone_users._errors import (
    HeliconeAPIError,
    HeliconeWarning,
    IgnoredFilterWarning,
    InvalidRequestError,
    ResponseValidationError,
    snippet,
)
from helicone_users._models import (
    MetricsOverview,
    MetricsQuery,
    OverviewQuery,
    TimeFilter,
    UserMetricsPage,
    UsersQuery,
    UserStats,
    UserStatsList,
)
from helicone_users._pagination import UserMetricsPager, gather_bounded
from helicone_users._ratelimit import RateLimit
from helicone_users._retry import RetryPolicy
from helicone_users._session import Session, SessionOwner, decode_json
from helicone_users._types import NOT_GIVEN, NotGiven

__all__ = ["AsyncHeliconeUsers", "Users"]

_T = TypeVar("_T")
TimeRange = tuple[datetime, datetime]
SortDirection = Literal["asc", "desc"]
PSize = Literal["p50", "p75", "p95", "p99", "p99.9"]
TimeUnit = Literal["s", "ms"]

_METRICS_PATH = "/v1/user/metrics/query"
_OVERVIEW_PATH = "/v1/user/metrics-overview/query"
_QUERY_PATH = "/v1/user/query"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class AsyncHeliconeUsers(SessionOwner):
    """Async client for Helicone's user-metrics endpoints.

    ::

        async with AsyncHeliconeUsers(region="eu") as client:   # key from HELICONE_API_KEY
            page = await client.users.metrics(filter=F.model.contains("gpt"), limit=100)
            async for user in client.users.iter_metrics(sort=("cost", "desc")):
                ...

    The endpoints are the methods of ``client.users`` (``help(helicone_users._client.Users)``):

    - ``await client.users.metrics(filter, offset=, limit=, time_range=, sort=)``: one page of
      users with their requests, tokens and cost (a ``UserMetricsPage``);
    - ``client.users.iter_metrics(filter, page_size=, concurrency=, time_range=, sort=)``: every
      matching user, pages fetched concurrently (``await`` it for the first page, ``async for``
      for the users);
    - ``await client.users.overview(filter, p_size="p95", use_interquartile=False)``: histograms
      of requests and cost per user (a ``MetricsOverview``);
    - ``await client.users.query(user_ids, time_range=, time_unit="s")``: totals per user (a
      list of ``UserStats``).

    ``base_url`` defaults to ``HELICONE_BASE_URL``, else the region's URL. Pass your own
    ``aiohttp.ClientSession`` as ``session`` to share a pool; it is then never closed here.
    ``max_concurrency`` is the default fan-out of ``iter_metrics`` and ``query``;
    ``rate_limit=(200, 60)`` spaces every request of this client to 200 per 60 s, and a
    ``RedisRateLimit`` shares one budget with other processes. A 429 or
    ``RateLimit-Remaining: 0`` from the server pauses every request until the budget resets.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        region: Literal["us", "eu"] = DEFAULT_REGION,
        base_url: str | None = None,
        timeout: float | aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        rate_limit: tuple[int, float] | RateLimit | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        key = api_key_from(api_key, env=API_KEY_ENV, service="Helicone")
        self.max_concurrency = positive_int(max_concurrency, "max_concurrency")
        self._session = Session(
            base_url=_base_url(region, base_url),
            authorization=f"Bearer {key}",
            user_agent=user_agent(),
            timeout=timeout,
            retry=retry if retry is not None else RetryPolicy(),
            rate_limit=rate_limit,
            session=session,
            max_connections=max(DEFAULT_CONNECTION_LIMIT, 2 * self.max_concurrency),
            max_connections_per_host=max(DEFAULT_CONNECTION_LIMIT_PER_HOST, self.max_concurrency),
        )
        self._converter = make_converter()
        self.users = Users(self)

    async def _post(self, path: str, body: Any, result: type[_T]) -> _T:
        """POST a request model, unwrap the ``{data, error}`` envelope, structure ``data``."""
        answer = await self._session.post_json(path, self._converter.unstructure(body))
        data = unwrap_envelope(answer, method="POST", path=path)
        return structure_or_raise(self._converter, data, result, method="POST", path=path)

    @property
    def converter(self) -> cattrs.Converter:
        """The converter between wire JSON and the models."""
        return self._converter


class Users:
    """The ``/v1/user/*`` endpoints, as ``client.users``."""

    def __init__(self, client: AsyncHeliconeUsers) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"Users(base_url={self._client.base_url!r})"

    async def metrics(
        self,
        filter: filters.FilterLike = filters.ALL,
        *,
        offset: int = 0,
        limit: int = DEFAULT_LIMIT,
        time_range: TimeRange | None = None,
        sort: tuple[str, SortDirection] | None = None,
        timezone_difference_minutes: int | None = None,
    ) -> UserMetricsPage:
        """One page of per-user aggregates (``/v1/user/metrics/query``).

        ``time_range`` is ``(start, end)`` as aware datetimes (both bounds exclusive on the
        server); ``sort`` is ``(field, "asc" | "desc")``; without one the server orders by
        ``last_active desc`` with no tie-breaker, so use ``iter_metrics`` to list everyone.
        """
        query = _metrics_query(
            filter, offset, limit, _time_filter(time_range), sort, timezone_difference_minutes
        )
        return await self._fetch_page(query)

    def iter_metrics(
        self,
        filter: filters.FilterLike = filters.ALL,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        concurrency: int | NotGiven = NOT_GIVEN,
        time_range: TimeRange | NotGiven | None = NOT_GIVEN,
        sort: tuple[str, SortDirection] | None = None,
        timezone_difference_minutes: int | None = None,
        eager: bool = False,
        buffer: int | None = None,
        offset: int = 0,
    ) -> UserMetricsPager:
        """Every matching user, as a pager (``await`` = first page, ``async for`` = users).

        Stable by default: without ``sort`` users come by ``user_id`` ascending; without
        ``time_range`` the window ends at this call, so users arriving during a long export do
        not shift pages (pass ``time_range=None`` for no window at all). ``concurrency``
        requests are in flight at most; ``buffer`` pages (default ``8 * concurrency``) may be
        fetched ahead of the one being delivered, which bounds memory. ``eager=True`` starts
        the first ``concurrency`` pages together, before the first page reveals the total: one
        round trip fewer, but up to ``concurrency - 1`` requests wasted on a short listing.
        ``offset`` skips that many users (to resume a listing whose ``time_range`` is pinned).
        """
        size = _page_size(page_size)
        fan_out = self._client.max_concurrency if isinstance(concurrency, NotGiven) else concurrency
        fan_out = positive_int(fan_out, "concurrency")
        if isinstance(time_range, NotGiven):
            time_range = (_EPOCH, datetime.now().astimezone())
        order = sort if sort is not None else ("user_id", "asc")
        template = _metrics_query(
            filter, offset, size, _time_filter(time_range), order, timezone_difference_minutes
        )

        async def fetch(offset: int, limit: int) -> UserMetricsPage:
            return await self._fetch_page(_with_page(template, offset, limit))

        return UserMetricsPager(
            fetch,
            page_size=size,
            concurrency=fan_out,
            ascending_user_id=order[0] in ("user_id", "id") and order[1] == "asc",
            eager=bool(eager),
            buffer=buffer,
            offset=offset,
        )

    async def overview(
        self,
        filter: filters.FilterLike = filters.ALL,
        *,
        p_size: PSize = DEFAULT_P_SIZE,
        use_interquartile: bool = False,
    ) -> MetricsOverview:
        """Histograms of requests and cost per user (``/v1/user/metrics-overview/query``).

        Values above the ``p_size`` quantile are trimmed (and below ``1 - p_size`` with
        ``use_interquartile``). The hosted server ignores ``users_view`` (``U.…``) filters here,
        which raises IgnoredFilterWarning.
        """
        node = _filter(filter)
        if p_size not in P_SIZES:
            raise InvalidRequestError(
                f"p_size must be one of {', '.join(P_SIZES)}, got {p_size!r}", field="p_size"
            )
        if not isinstance(use_interquartile, bool):
            raise InvalidRequestError(
                f"use_interquartile must be True or False, got {use_interquartile!r}",
                field="use_interquartile",
            )
        if "users_view" in node.tables():
            warnings.warn(
                IgnoredFilterWarning(
                    "the hosted server ignores users_view (U.…) conditions on the overview; "
                    "only per-request (F.…) conditions narrow these histograms"
                ),
                stacklevel=2,
            )
        query = OverviewQuery(
            filter=node.to_json(), p_size=p_size, use_interquartile=use_interquartile
        )
        return await self._client._post(_OVERVIEW_PATH, query, MetricsOverview)

    async def query(
        self,
        user_ids: Iterable[str] | None = None,
        *,
        time_range: TimeRange | None = None,
        time_unit: TimeUnit = "s",
        concurrency: int | NotGiven = NOT_GIVEN,
    ) -> UserStatsList:
        """Totals per user (``/v1/user/query``): requests, tokens and cost in USD.

        ``user_ids`` are de-duplicated and sent in chunks of 100, fetched concurrently and
        merged in the order given; an empty list returns ``[]`` without a request. Without ids
        the server returns at most 100 arbitrary users (HeliconeWarning); list everyone with
        ``iter_metrics``. ``time_unit="ms"`` sends the window in milliseconds, which the hosted
        server reads (its ``…UnixSeconds`` fields are parsed as milliseconds). The list also
        has ``to_arrow()``, ``to_polars()`` and ``to_pandas()``.
        """
        if time_unit not in ("s", "ms"):
            raise InvalidRequestError(
                f"time_unit must be 's' or 'ms', got {time_unit!r}", field="time_unit"
            )
        window = _time_filter(time_range, time_unit)
        fan_out = self._client.max_concurrency if isinstance(concurrency, NotGiven) else concurrency
        fan_out = positive_int(fan_out, "concurrency")
        if user_ids is None:
            warnings.warn(
                HeliconeWarning(
                    "query() without user_ids returns at most 100 arbitrary users; pass "
                    "user_ids, or list every user with iter_metrics()"
                ),
                stacklevel=2,
            )
            return UserStatsList(await self._query_chunk(UsersQuery(time_filter=window)))
        ids = _user_ids(user_ids)
        chunks = [
            ids[i : i + MAX_USER_IDS_PER_QUERY] for i in range(0, len(ids), MAX_USER_IDS_PER_QUERY)
        ]
        results = await gather_bounded(
            [self._chunk_call(UsersQuery(user_ids=chunk, time_filter=window)) for chunk in chunks],
            fan_out,
        )
        return UserStatsList(_merge_stats(ids, results))

    def _chunk_call(self, query: UsersQuery) -> Any:
        return lambda: self._query_chunk(query)

    async def _query_chunk(self, query: UsersQuery) -> list[UserStats]:
        return await self._client._post(_QUERY_PATH, query, _STATS_LIST)

    async def _fetch_page(self, query: MetricsQuery) -> UserMetricsPage:
        client = self._client
        raw = await client._session.post_bytes(_METRICS_PATH, client._converter.unstructure(query))
        page = fast_metrics_page(raw, offset=query.offset, limit=query.limit)
        if page is not None:
            return page
        answer = decode_json(raw, method="POST", path=_METRICS_PATH)
        data = unwrap_envelope(answer, method="POST", path=_METRICS_PATH)
        if isinstance(data, dict):
            data = {**data, "offset": query.offset, "limit": query.limit}
        return structure_or_raise(
            client._converter, data, UserMetricsPage, method="POST", path=_METRICS_PATH
        )


_STATS_LIST: Any = list[UserStats]


# --- Envelope -----------------------------------------------------------------------------------


def unwrap_envelope(answer: Any, *, method: str, path: str) -> Any:
    """``data`` of a ``{data, error}`` answer; a non-null ``error`` raises whatever the status."""
    if not isinstance(answer, Mapping) or "data" not in answer:
        raise ResponseValidationError(
            f"{method} {path} answered without the {{data, error}} envelope: "
            f"{snippet(repr(answer))}",
            method=method,
            path=path,
            field_path="data",
            body_snippet=snippet(repr(answer)),
        )
    error = answer.get("error")
    if error is not None:
        text = error if isinstance(error, str) else repr(error)
        raise HeliconeAPIError(
            f"{method} {path} reported an error: {snippet(text)} (hint: the query failed on the "
            "server; check the filter and time range)",
            method=method,
            path=path,
            error=text,
            body=answer,
        )
    return answer["data"]


# --- Arguments, checked before anything is sent --------------------------------------------------


def api_key_from(api_key: str | None, *, env: str, service: str) -> str:
    """``api_key``, else the environment variable ``env``; refused, naming both, when empty."""
    key = api_key if api_key is not None else os.environ.get(env, "")
    if not isinstance(key, str) or not key.strip():
        raise InvalidRequestError(
            f"no {service} API key: pass api_key=... or set {env}", field="api_key"
        )
    return key.strip()


def _base_url(region: str, base_url: str | None) -> str:
    if region not in REGION_BASE_URLS:
        raise InvalidRequestError(
            f"region must be one of {', '.join(sorted(REGION_BASE_URLS))}, got {region!r}",
            field="region",
        )
    return base_url or os.environ.get(BASE_URL_ENV) or REGION_BASE_URLS[region]


def user_agent() -> str:
    """``helicone-users/<version> python/<version> aiohttp/<version>``."""
    from helicone_users import __version__

    return (
        f"helicone-users/{__version__} python/{platform.python_version()} "
        f"aiohttp/{aiohttp.__version__}"
    )


def positive_int(value: Any, name: str) -> int:
    """``value`` when it is a whole number >= 1 (not a bool), else InvalidRequestError."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidRequestError(f"{name} must be an integer >= 1, got {value!r}", field=name)
    return value


def _page_size(value: Any) -> int:
    size = positive_int(value, "page_size")
    if size > MAX_PAGE_SIZE:
        raise InvalidRequestError(
            f"page_size must be at most {MAX_PAGE_SIZE} (the server's limit), got {size}",
            field="page_size",
        )
    return size


def _filter(value: Any) -> filters.Filter:
    return filters.coerce(value)


def _metrics_query(
    filter: Any,
    offset: Any,
    limit: Any,
    window: TimeFilter | None,
    sort: Any,
    timezone_difference_minutes: Any,
) -> MetricsQuery:
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidRequestError(f"offset must be an integer >= 0, got {offset!r}", field="offset")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidRequestError(
            f"limit must be an integer from 1 to {MAX_PAGE_SIZE}, got {limit!r}", field="limit"
        )
    return MetricsQuery(
        filter=_filter(filter).to_json(),
        offset=offset,
        limit=limit,
        time_filter=window,
        time_zone_difference_minutes=_timezone(timezone_difference_minutes),
        sort=_sort(sort),
    )


def _with_page(query: MetricsQuery, offset: int, limit: int) -> MetricsQuery:
    return MetricsQuery(
        filter=query.filter,
        offset=offset,
        limit=limit,
        time_filter=query.time_filter,
        time_zone_difference_minutes=query.time_zone_difference_minutes,
        sort=query.sort,
    )


def _sort(sort: Any) -> dict[str, str] | None:
    if sort is None:
        return None
    if not isinstance(sort, tuple) or len(sort) != 2:
        raise InvalidRequestError(
            f"sort must be (field, 'asc' | 'desc'), e.g. ('cost', 'desc'), got {sort!r}",
            field="sort",
        )
    field, direction = sort
    if field not in SORT_FIELDS:
        raise InvalidRequestError(
            f"cannot sort by {field!r}; choose one of {', '.join(SORT_FIELDS)}", field="sort"
        )
    if direction not in ("asc", "desc"):
        raise InvalidRequestError(
            f"sort direction must be 'asc' or 'desc', got {direction!r}", field="sort"
        )
    return {field: direction}


def _timezone(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) > 24 * 60:
        raise InvalidRequestError(
            "timezone_difference_minutes must be whole minutes within ±1440, as JavaScript's "
            f"getTimezoneOffset() (positive west of UTC), got {value!r}",
            field="timezone_difference_minutes",
        )
    return value


def _time_filter(time_range: Any, unit: str = "s") -> TimeFilter | None:
    if time_range is None:
        return None
    if not isinstance(time_range, tuple) or len(time_range) != 2:
        raise InvalidRequestError(
            f"time_range must be (start, end) datetimes, got {time_range!r}", field="time_range"
        )
    start, end = _aware(time_range[0], "start"), _aware(time_range[1], "end")
    if start > end:
        raise InvalidRequestError(
            f"time_range start {start.isoformat()} is after end {end.isoformat()}",
            field="time_range",
        )
    scale = 1000 if unit == "ms" else 1
    return TimeFilter(
        start_time_unix_seconds=_number(start.timestamp() * scale),
        end_time_unix_seconds=_number(end.timestamp() * scale),
    )


def _aware(value: Any, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidRequestError(
            f"time_range {name} must be a datetime, got {type(value).__name__}", field="time_range"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequestError(
            f"time_range {name} {value.isoformat()} has no time zone; pass an aware datetime, "
            "e.g. datetime(2024, 5, 1, tzinfo=timezone.utc) or .astimezone()",
            field="time_range",
        )
    return value


def _number(value: float) -> float:
    # Whole seconds go out as integers: "1714521600", not "1714521600.0".
    return int(value) if value.is_integer() and abs(value) <= 2**53 else value


def _user_ids(user_ids: Any) -> list[str]:
    if isinstance(user_ids, (str, bytes)):
        raise InvalidRequestError(
            f"user_ids must be a list of ids, not one string: use [{user_ids!r}]",
            field="user_ids",
        )
    ids = list(dict.fromkeys(user_ids))
    bad = [value for value in ids if not isinstance(value, str)]
    if bad:
        raise InvalidRequestError(f"user_ids must be strings, got {bad[0]!r}", field="user_ids")
    return ids


def _merge_stats(ids: list[str], chunks: list[list[UserStats]]) -> list[UserStats]:
    by_id: dict[str, UserStats] = {}
    for chunk in chunks:
        for stats in chunk:
            seen = by_id.get(stats.user_id)
            by_id[stats.user_id] = stats if seen is None else _add(seen, stats)
    order = {user_id: index for index, user_id in enumerate(ids)}
    return sorted(by_id.values(), key=lambda stats: order.get(stats.user_id, len(order)))


def _add(a: UserStats, b: UserStats) -> UserStats:
    return UserStats(
        user_id=a.user_id,
        count=a.count + b.count,
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        cost=a.cost + b.cost,
    )


AsyncHeliconeUsers.__module__ = "helicone_users"
