"""The W&B Weave ``/calls/stats`` client: bucketed usage and call metrics for one project.

Usage::

    from datetime import datetime, timedelta, timezone
    from helicone_users import AsyncWeaveStats, CallMetric, CallsFilter, UsageMetric

    end = datetime.now(timezone.utc)
    async with AsyncWeaveStats() as weave:  # WANDB_API_KEY, WEAVE_BASE_URL
        stats = await weave.call_stats(
            "entity/project",
            start=end - timedelta(days=90),  # longer than 31 days: fetched in windows, merged
            end=end,
            usage_metrics=[UsageMetric("input_tokens", aggregations=("sum", "avg"))],
            call_metrics=[CallMetric("latency_ms", aggregations=("avg",), percentiles=(50, 99))],
            filter=CallsFilter(trace_roots_only=True),
        )
    for bucket in stats.call_buckets:
        print(bucket.timestamp, bucket.count, bucket.value("latency_ms", percentile=99))
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Final, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
import attrs

from helicone_users._client import api_key_from, positive_int, user_agent
from helicone_users._config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TIMEOUT,
    LOGGER_NAME,
    WEAVE_API_KEY_ENV,
    WEAVE_BASE_URL,
    WEAVE_BASE_URL_ENV,
    WEAVE_BASIC_USER,
    WEAVE_MAX_BUCKETS,
    WEAVE_MAX_RANGE_DAYS,
)
from helicone_users._errors import IgnoredFilterWarning, InvalidRequestError
from helicone_users._pagination import gather_bounded
from helicone_users._ratelimit import RateLimit
from helicone_users._retry import RetryPolicy
from helicone_users._session import Service, Session, SessionOwner
from helicone_users._weave_models import (
    CallBucket,
    CallMetric,
    CallsFilter,
    CallStats,
    UsageBucket,
    UsageMetric,
    Value,
    format_utc,
    parse_call_stats,
)

__all__ = [
    "AsyncWeaveStats",
    "CallBucket",
    "CallMetric",
    "CallStats",
    "CallsFilter",
    "UsageBucket",
    "UsageMetric",
    "auto_granularity",
    "bucket_starts",
    "floor_to_bucket",
    "resolve_granularity",
]

_T = TypeVar("_T")
_log = logging.getLogger(LOGGER_NAME)
_PATH: Final = "/calls/stats"

Alignment = Literal["timezone", "utc"]
_ALIGNMENTS: Final = ("timezone", "utc")

# (longest range in seconds, bucket size): the server's automatic choice, bounds inclusive.
_AUTO_GRANULARITY: Final = ((2 * 3600, 300), (12 * 3600, 3600), (3 * 86400, 21600),
                            (14 * 86400, 43200))
_WALL_EPOCH: Final = datetime(1970, 1, 1)
_UTC_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
WEAVE: Final = Service(
    key_env=WEAVE_API_KEY_ENV,
    base_url_env=WEAVE_BASE_URL_ENV,
    example_url=WEAVE_BASE_URL,
    auth_hint=f"check the W&B API key ({WEAVE_API_KEY_ENV}; see wandb.ai/authorize) and that "
    f"the server is {WEAVE_BASE_URL.removeprefix('https://')} or your dedicated W&B server "
    f"({WEAVE_BASE_URL_ENV})",
    forbidden_hint="the W&B API key may not read this project; check the entity/project name",
)
_ONE_SECOND: Final = timedelta(seconds=1)


# --- buckets: the server's granularity and alignment rules ---------------------------------------


def auto_granularity(range_seconds: float) -> int:
    """The bucket size the server picks when none is given."""
    for longest, size in _AUTO_GRANULARITY:
        if range_seconds <= longest:
            return size
    return 86400


def resolve_granularity(granularity: int | None, range_seconds: float) -> int:
    """The bucket size the server uses: the auto choice, then the 10,000-bucket clamp.

    The clamp only ever raises the size, so a size larger than the range is kept (one bucket).
    """
    size = auto_granularity(range_seconds) if granularity is None else granularity
    # Compared without dividing: a size past float's range is a valid (huge) int.
    if range_seconds > WEAVE_MAX_BUCKETS * size:
        size = max(size, int(range_seconds / WEAVE_MAX_BUCKETS) + 1)
    return size


def _shifted(moment: datetime, seconds: int) -> datetime:
    # OverflowError past years 1 and 9999 (or past timedelta's range for a huge granularity).
    return moment + timedelta(seconds=seconds)


def _wall_instant(wall: datetime, zone: tzinfo) -> datetime:
    # fold=0 maps a wall time skipped by a DST jump to the moment of the jump.
    return wall.replace(tzinfo=zone).astimezone(timezone.utc)


def _outside_calendar(moment: datetime, granularity: int, zone: tzinfo) -> InvalidRequestError:
    return InvalidRequestError(
        f"the bucket of {granularity:,} s in {zone} that holds {moment.isoformat()} starts "
        "outside the years 1-9999 that dates can hold; use a smaller granularity or a range "
        "further from the calendar's ends",
        field="granularity",
    )


def floor_to_bucket(
    moment: datetime, granularity: int, zone: tzinfo, alignment: Alignment = "timezone"
) -> datetime:
    """The start (in UTC) of the bucket holding ``moment``.

    ``"timezone"`` aligns on multiples of the bucket size in the zone's wall clock (local
    midnight for 86400); ``"utc"`` aligns on multiples since the Unix epoch, as the hosted
    server does whatever the zone. A start before year 1 raises InvalidRequestError.
    """
    try:
        if alignment == "utc":
            seconds = (moment - _UTC_EPOCH) // _ONE_SECOND
            return _shifted(_UTC_EPOCH, seconds - seconds % granularity)
        wall = moment.astimezone(zone).replace(tzinfo=None)
        seconds = (wall - _WALL_EPOCH) // _ONE_SECOND
        return _wall_instant(_shifted(_WALL_EPOCH, seconds - seconds % granularity), zone)
    except OverflowError:
        raise _outside_calendar(moment, granularity, zone) from None


def bucket_starts(
    start: datetime, end: datetime, granularity: int, zone: tzinfo,
    alignment: Alignment = "timezone",
) -> list[datetime]:
    """The starts (UTC) of every bucket of ``[start, end)``, the first one at or before start."""
    first = floor_to_bucket(start, granularity, zone, alignment)
    if alignment == "utc":
        return _steps(first, end, granularity, lambda moment: moment)
    # Steps are taken on the wall clock. A DST jump can map two wall labels to one moment;
    # buckets are moments, so each is kept once.
    wall = first.astimezone(zone).replace(tzinfo=None)
    return sorted(set(_steps(wall, end, granularity, lambda label: _wall_instant(label, zone))))


def _steps(
    first: datetime, end: datetime, granularity: int, instant: Callable[[datetime], datetime]
) -> list[datetime]:
    """``instant(first + i * granularity)`` for i = 0, 1, ... while before ``end``."""
    out: list[datetime] = []
    label = first
    try:
        while (moment := instant(label)) < end:
            out.append(moment)
            label = _shifted(label, granularity)
    except OverflowError:  # the next bucket would start after year 9999: there is none
        pass
    return out


def zone_for(name: str) -> tzinfo:
    """The zone for an IANA name, or InvalidRequestError naming ``timezone``."""
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(
            f"timezone must be an IANA zone name such as 'UTC' or 'America/New_York', not {name!r}",
            field="timezone",
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequestError(
            f"timezone {name!r} is not a known IANA zone; use a name such as 'UTC' or "
            "'America/New_York' (see zoneinfo.available_timezones())",
            field="timezone",
        ) from None


# --- request validation --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _Query:
    """A validated request; ``body(start, end, granularity)`` makes the wire JSON of one window."""

    project_id: str
    start: datetime
    end: datetime
    granularity: int | None
    usage_metrics: tuple[UsageMetric, ...]
    call_metrics: tuple[CallMetric, ...]
    filter: CallsFilter | None
    timezone: str
    zone: tzinfo

    def body(self, start: datetime, end: datetime, granularity: int | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "project_id": self.project_id,
            "start": format_utc(start),
            "end": format_utc(end),
            "timezone": self.timezone,
        }
        if granularity is not None:
            out["granularity"] = granularity
        if self.usage_metrics:
            out["usage_metrics"] = [metric.to_json() for metric in self.usage_metrics]
        if self.call_metrics:
            out["call_metrics"] = [metric.to_json() for metric in self.call_metrics]
        if self.filter is not None:
            out["filter"] = self.filter.to_json()
        return out


def _aware(value: Any, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidRequestError(
            f"{field} must be a datetime, not {type(value).__name__}", field=field
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequestError(
            f"{field} must be timezone-aware, e.g. datetime(2026, 3, 1, tzinfo=timezone.utc); "
            "the server misreads times without an offset",
            field=field,
        )
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise InvalidRequestError(
            f"{field} {value.isoformat()} falls outside the years 1-9999 in UTC, where it is "
            "sent; move it within the calendar",
            field=field,
        ) from None


def _project(value: Any) -> str:
    parts = value.split("/") if isinstance(value, str) else []
    if len(parts) != 2 or not all(part.strip() for part in parts):
        raise InvalidRequestError(
            f"project_id must be 'entity/project', not {value!r}", field="project_id"
        )
    return str(value)


def _granularity(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidRequestError(
            f"granularity must be a whole number of seconds >= 1 (e.g. 3600), or None to let "
            f"the server choose; got {value!r}",
            field="granularity",
        )
    return value


def _metrics(
    value: Iterable[Any] | None, kind: type[_T], make: Callable[[str], _T], field: str
) -> tuple[_T, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, kind)) or not isinstance(value, Iterable):
        raise InvalidRequestError(f"{field} must be a list, e.g. [{value!r}]", field=field)
    items: list[_T] = []
    for item in value:
        # A bare name is shorthand for the metric with its default aggregation (sum).
        metric = make(item) if isinstance(item, str) else item
        if not isinstance(metric, kind):
            raise InvalidRequestError(
                f"{field} holds {item!r}; use {kind.__name__}(...) or a metric name", field=field
            )
        items.append(metric)
    names = [getattr(metric, "metric", None) for metric in items]
    if len(set(names)) != len(names):
        raise InvalidRequestError(
            f"{field} names a metric twice: {names!r}; merge their aggregations into one",
            field=field,
        )
    return tuple(items)


def _filter(value: Any) -> CallsFilter | None:
    if value is None or isinstance(value, CallsFilter):
        return value
    if isinstance(value, Mapping):
        try:
            return CallsFilter(**value)
        except TypeError as exc:
            raise InvalidRequestError(f"filter: {exc}", field="filter") from None
    raise InvalidRequestError(
        f"filter must be a CallsFilter or a mapping, not {type(value).__name__}", field="filter"
    )


def _validate(
    project_id: Any, start: Any, end: Any, granularity: Any, usage_metrics: Any,
    call_metrics: Any, filter: Any, timezone_name: Any,
) -> _Query:
    begin = _aware(start, "start")
    finish = datetime.now(timezone.utc) if end is None else _aware(end, "end")
    if finish <= begin:
        raise InvalidRequestError(
            f"end ({format_utc(finish)}) must be after start ({format_utc(begin)})", field="end"
        )
    return _Query(
        project_id=_project(project_id),
        start=begin,
        end=finish,
        granularity=_granularity(granularity),
        usage_metrics=_metrics(usage_metrics, UsageMetric, UsageMetric, "usage_metrics"),
        call_metrics=_metrics(call_metrics, CallMetric, CallMetric, "call_metrics"),
        filter=_filter(filter),
        timezone=timezone_name,
        zone=zone_for(timezone_name),
    )


# --- windows and merging -------------------------------------------------------------------------


def plan_windows(
    start: datetime, end: datetime, granularity: int, zone: tzinfo, alignment: Alignment,
    max_range: timedelta,
) -> list[tuple[datetime, datetime]]:
    """Cut ``[start, end)`` into windows of at most ``max_range`` on bucket boundaries."""
    windows: list[tuple[datetime, datetime]] = []
    cuts = bucket_starts(start, end, granularity, zone, alignment)[1:]
    low = start
    index = 0
    while end - low > max_range:
        best = None
        while index < len(cuts) and cuts[index] - low <= max_range:
            best = cuts[index]
            index += 1
        if best is None:
            raise InvalidRequestError(
                f"granularity {granularity} s is too coarse to split a range longer than "
                f"{max_range.days} days on bucket boundaries; use a granularity of at most "
                f"{int(max_range.total_seconds())} s",
                field="granularity",
            )
        windows.append((low, best))
        low = best
    windows.append((low, end))
    return windows


def _is_empty_value(key: str) -> bool:
    # min/max/percentiles of nothing are null on the server; sums, counts and averages are 0.
    return key.startswith(("min_", "max_")) or (key[:1] == "p" and key[1:2].isdigit())


def _filler(keys: Iterable[str]) -> dict[str, Value]:
    return {key: None if _is_empty_value(key) else 0 for key in keys}


def _window_times(part: CallStats, window: tuple[datetime, datetime], zone: tzinfo,
                  alignment: Alignment) -> list[datetime]:
    if part.usage_buckets:
        return list(dict.fromkeys(bucket.timestamp for bucket in part.usage_buckets))
    if part.call_buckets:
        return [bucket.timestamp for bucket in part.call_buckets]
    starts = bucket_starts(window[0], window[1], part.granularity, zone, alignment)
    return [moment.astimezone(zone) for moment in starts]


def merge_windows(
    parts: Sequence[CallStats], windows: Sequence[tuple[datetime, datetime]], *,
    start: datetime, end: datetime, zone: tzinfo, alignment: Alignment,
) -> CallStats:
    """One result from consecutive windows, as if the server had answered the whole range.

    The usage grid is made dense across windows: a model seen in one window gets zero rows
    (null for min, max and percentiles) in every bucket of the others.
    """
    models = sorted({bucket.model for part in parts for bucket in part.usage_buckets})
    keys = next((b.values.keys() for p in parts for b in p.usage_buckets), ())
    usage: list[UsageBucket] = []
    for part, window in zip(parts, windows, strict=True):
        if not models:
            break
        have = {(b.timestamp, b.model): b for b in part.usage_buckets}
        for moment in _window_times(part, window, zone, alignment):
            for model in models:
                usage.append(have.get((moment, model)) or UsageBucket(
                    timestamp=moment, model=model, count=0, values=_filler(keys)))
    return CallStats(
        start=start,
        end=end,
        granularity=parts[0].granularity,
        timezone=parts[0].timezone,
        usage_buckets=tuple(usage),
        call_buckets=tuple(bucket for part in parts for bucket in part.call_buckets),
    )


# --- the client ----------------------------------------------------------------------------------


class AsyncWeaveStats(SessionOwner):
    """Async client of the Weave ``/calls/stats`` endpoint.

    The key comes from ``api_key`` or ``WANDB_API_KEY``, the server from ``base_url``,
    ``WEAVE_BASE_URL`` or https://trace.wandb.ai. Use it as ``async with AsyncWeaveStats() as w``.
    ``bucket_alignment`` says how the server aligns buckets when the range must be split:
    ``"timezone"`` (documented: on the zone's wall clock) or ``"utc"`` (the hosted server).
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        rate_limit: tuple[int, float] | RateLimit | None = None,
        session: aiohttp.ClientSession | None = None,
        bucket_alignment: Alignment = "timezone",
        max_range_days: int | None = WEAVE_MAX_RANGE_DAYS,
    ) -> None:
        key = api_key_from(api_key, env=WEAVE_API_KEY_ENV, service="W&B")
        if bucket_alignment not in _ALIGNMENTS:
            raise InvalidRequestError(
                f"bucket_alignment must be 'timezone' or 'utc', not {bucket_alignment!r}",
                field="bucket_alignment",
            )
        positive_int(max_concurrency, "max_concurrency")
        if max_range_days is not None and max_range_days < 1:
            raise InvalidRequestError(
                f"max_range_days must be >= 1 or None, got {max_range_days!r}",
                field="max_range_days",
            )
        url = base_url or os.environ.get(WEAVE_BASE_URL_ENV) or WEAVE_BASE_URL
        token = base64.b64encode(f"{WEAVE_BASIC_USER}:{key}".encode()).decode("ascii")
        self._session = Session(
            base_url=url,
            authorization=f"Basic {token}",
            user_agent=user_agent(),
            timeout=timeout,
            retry=retry if retry is not None else RetryPolicy(),
            rate_limit=rate_limit,
            session=session,
            max_connections_per_host=max(max_concurrency, 16),
            service=WEAVE,
        )
        self._max_concurrency = max_concurrency
        self._alignment: Alignment = bucket_alignment
        self._max_range = None if max_range_days is None else timedelta(days=max_range_days)

    async def call_stats(
        self,
        project_id: str,
        *,
        start: datetime,
        end: datetime | None = None,
        granularity: int | None = None,
        usage_metrics: Iterable[UsageMetric | str] | None = None,
        call_metrics: Iterable[CallMetric | str] | None = None,
        filter: CallsFilter | Mapping[str, Any] | None = None,
        timezone: str = "UTC",
    ) -> CallStats:
        """Bucketed statistics of ``project_id`` ("entity/project") over ``[start, end)``.

        A range longer than the server's 31 days is fetched in windows cut on bucket
        boundaries, concurrently, and merged into the result one unlimited query would give.
        """
        query = _validate(project_id, start, end, granularity, usage_metrics, call_metrics,
                          filter, timezone)
        for note in query.filter.ignored_parts() if query.filter else ():
            warnings.warn(note, IgnoredFilterWarning, stacklevel=2)
        if self._max_range is None or query.end - query.start <= self._max_range:
            return await self._post(query.body(query.start, query.end, query.granularity))
        return await self._split(query, self._max_range)

    async def call_stats_raw(self, body: Mapping[str, Any]) -> CallStats:
        """Send ``body`` as it is, without client-side checks, and decode the answer."""
        return await self._post(body)

    async def _post(self, body: Mapping[str, Any]) -> CallStats:
        return parse_call_stats(await self._session.post_json(_PATH, body), path=_PATH)

    async def _split(self, query: _Query, max_range: timedelta) -> CallStats:
        # One bucket size for every window: the one the server would pick for the whole range.
        size = resolve_granularity(query.granularity, (query.end - query.start).total_seconds())
        windows = plan_windows(query.start, query.end, size, query.zone, self._alignment,
                               max_range)
        _log.debug("POST %s: %d windows of at most %s, granularity %d s", _PATH, len(windows),
                   max_range, size)
        parts = await gather_bounded(
            [functools.partial(self._post, query.body(low, high, size)) for low, high in windows],
            self._max_concurrency,
        )
        return merge_windows(parts, windows, start=query.start, end=query.end, zone=query.zone,
                             alignment=self._alignment)


AsyncWeaveStats.__module__ = "helicone_users"
