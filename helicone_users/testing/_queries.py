"""The three Helicone user endpoints as DuckDB queries (run in a worker thread)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, NamedTuple

from helicone_users._config import MAX_PAGE_SIZE, MAX_USER_IDS_PER_QUERY
from helicone_users.testing._schema import PSIZES
from helicone_users.testing._sql import (
    RMT,
    USERS,
    Options,
    Params,
    compile_filter,
    has_cross_table_or,
    tables_of,
)

_EPOCH: Final = datetime(1970, 1, 1)
_MAX_TZ_MINUTES: Final = 10_000_000
_BIGINT_LIMIT: Final = 2**63 - 1
RATE_LIMIT_PROPERTY: Final = ("Helicone-Rate-Limit-Status", "rate_limited")
COUNT_CACHE_SECONDS: Final = 0.060
LIMIT_ERROR: Final = "Limit cannot be greater than 1000"
#: Beyond this many 64-day words, active days are counted with count(DISTINCT day).
MAX_DAY_WORDS: Final = 16


class QueryError(Exception):
    """A request the endpoint answers with its error envelope."""


class Context:
    """What a query needs from the emulator: quirks, compiler options, a salt, a count cache."""

    def __init__(self, quirks: frozenset[str], salt: int) -> None:
        self.quirks = quirks
        self.salt = salt
        self.options = Options(
            first_key_only="first_key_only" in quirks,
            int32_overflow="int32_filter_overflow" in quirks,
            second_precision="timestamp_second_precision" in quirks,
        )
        self.count_cache: tuple[float, int] | None = None
        self.clock: Callable[[], float] = time.monotonic

    def has(self, quirk: str) -> bool:
        """Whether ``quirk`` is on."""
        return quirk in self.quirks


class DaySpan(NamedTuple):
    """The UTC days the matching requests can fall on: from ``first``, ``words`` x 64 days."""

    first: date
    words: int


def day_span(cursor: Any, body: Mapping[str, Any], ctx: Context) -> DaySpan | None:
    """The days of the stored requests (within the time filter); None when there are none or
    they span more than ``MAX_DAY_WORDS`` x 64 days."""
    bounds = _time_bounds(body, ctx)
    sql = "SELECT min(day), max(day) FROM user_days"
    if bounds is None:
        cursor.execute(sql)
    else:  # the days the bounds touch
        cursor.execute(f"{sql} WHERE day BETWEEN ? AND ?", [bounds[0].date(), bounds[1].date()])
    first, last = cursor.fetchone()
    if first is None:
        return None
    words = (last - first).days // 64 + 1
    return DaySpan(first, words) if words <= MAX_DAY_WORDS else None


def _active_days(span: DaySpan | None, params: Params) -> str:
    """The number of distinct UTC days among a user's requests.

    Over a known span it is the popcount of a bitmap of the days (one 64-bit word per 64 days),
    which DuckDB aggregates much faster than ``count(DISTINCT day)``.
    """
    if span is None:
        return "count(DISTINCT CAST(r.request_created_at AS DATE))"
    day = f"(CAST(r.request_created_at AS DATE) - {params.add(span.first)}::DATE)"
    if span.words == 1:
        return f"bit_count(bit_or(1::UBIGINT << {day}::UBIGINT))"
    words = [
        f"bit_count(coalesce(bit_or(CASE WHEN {day} // 64 = {word} "
        f"THEN 1::UBIGINT << ({day} % 64)::UBIGINT END), 0))"
        for word in range(span.words)
    ]
    return "(" + " + ".join(words) + ")"


def _aggregates(shift: str, rate_limited: str, days: str) -> str:
    return f"""
  r.user_id AS user_id,
  {days} AS active_for,
  min(r.request_created_at) - {shift} AS first_active,
  max(r.request_created_at) - {shift} AS last_active,
  count(r.request_id) AS total_requests,
  count(r.request_id) / {days} AS average_requests_per_day_active,
  (sum(r.prompt_tokens) + sum(r.completion_tokens)) / count(r.request_id)
    AS average_tokens_per_request,
  sum(r.prompt_tokens) AS total_prompt_tokens,
  sum(r.completion_tokens) AS total_completion_tokens,
  sum(r.cost) / 1e9 AS cost,
  {rate_limited} AS rate_limited_count"""


def _rollup_aggregates(shift: str) -> str:
    return f"""
  r.user_id AS user_id,
  count(*) AS active_for,
  min(r.first_at) - {shift} AS first_active,
  max(r.last_at) - {shift} AS last_active,
  sum(r.n) AS total_requests,
  sum(r.n) / count(*) AS average_requests_per_day_active,
  (sum(r.prompt_tokens) + sum(r.completion_tokens)) / sum(r.n) AS average_tokens_per_request,
  sum(r.prompt_tokens) AS total_prompt_tokens,
  sum(r.completion_tokens) AS total_completion_tokens,
  sum(r.cost) / 1e9 AS cost,
  sum(r.rate_limited) AS rate_limited_count"""


_LEAN_ROLLUP: Final = """
  r.user_id AS user_id, sum(r.n) AS total_requests, sum(r.cost) / 1e9 AS cost"""
_LEAN_AGGREGATES: Final = """
  r.user_id AS user_id, count(r.request_id) AS total_requests, sum(r.cost) / 1e9 AS cost"""


def _rate_limited(body: Mapping[str, Any], ctx: Context, params: Params) -> str:
    # Reading the property map of every row is the costliest aggregate: only when it is used.
    sort = body.get("sort") or {}
    if not ctx.has("extra_rate_limited_count") and next(iter(sort), None) != "rate_limited_count":
        return "0"
    key, value = params.add(RATE_LIMIT_PROPERTY[0]), params.add(RATE_LIMIT_PROPERTY[1])
    return f"count(*) FILTER (WHERE map_extract_value(r.properties, {key}) = {value})"


def seconds_to_timestamp(seconds: float, field: str, *, whole: bool = False) -> datetime:
    """Unix seconds as a naive UTC datetime; ``whole`` cuts to whole seconds."""
    if whole:
        seconds = math.floor(seconds)
    try:
        return _EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        raise QueryError(f"{field} is out of the supported date range") from None


def _base_where(ctx: Context, params: Params, clauses: list[str]) -> str:
    if not ctx.has("empty_user_id_is_user"):
        clauses.append("r.user_id <> ''")
    return " AND ".join(clauses) if clauses else "TRUE"


def _time_bounds(body: Mapping[str, Any], ctx: Context) -> tuple[datetime, datetime] | None:
    time_filter = body.get("timeFilter")
    if not time_filter:
        return None
    whole = ctx.options.second_precision
    start = seconds_to_timestamp(time_filter["startTimeUnixSeconds"], "timeFilter", whole=whole)
    end = seconds_to_timestamp(time_filter["endTimeUnixSeconds"], "timeFilter", whole=whole)
    return start, end


def _metrics_time(body: Mapping[str, Any], ctx: Context, params: Params) -> list[str]:
    bounds = _time_bounds(body, ctx)
    if bounds is None:
        return []
    start, end = bounds
    return [
        f"r.request_created_at > {params.add(start)}",
        f"r.request_created_at < {params.add(end)}",
    ]


def _shift(body: Mapping[str, Any], ctx: Context, params: Params) -> str:
    tz = body.get("timeZoneDifferenceMinutes") or 0
    if abs(tz) > _MAX_TZ_MINUTES:
        raise QueryError("timeZoneDifferenceMinutes is out of range")
    minutes = abs(tz) if ctx.has("timezone_sign_bug") else tz
    return f"to_microseconds({params.add(round(minutes * 60_000_000))})"


def user_set_sql(
    body: Mapping[str, Any],
    ctx: Context,
    params: Params,
    *,
    users_pass: bool = True,
    lean: bool = False,
    span: DaySpan | None = None,
) -> str:
    """SQL yielding one aggregate row per matching user (the A.5 semantics).

    ``lean`` keeps only ``total_requests`` and ``cost`` when no users_view leaf needs the rest;
    ``span`` (from ``day_span``) lets the active days be counted from a bitmap.
    """
    tree = body.get("filter", "all")
    rows_pass = compile_filter(tree, params, rows="r", users=None, options=ctx.options)
    time_bounds = _metrics_time(body, ctx, params)
    lean = lean and (not users_pass or USERS not in tables_of(tree))
    if RMT not in tables_of(tree) and not time_bounds:
        # No request conditions and no time bounds: the per-user-day rollup answers it.
        source = "user_days"
        aggregates = _LEAN_ROLLUP if lean else _rollup_aggregates(_shift(body, ctx, params))
    else:
        source = "requests"
        aggregates = (
            _LEAN_AGGREGATES
            if lean
            else _aggregates(_shift(body, ctx, params), _rate_limited(body, ctx, params),
                             _active_days(span, params))
        )
    base = _base_where(ctx, params, time_bounds)
    first = f"SELECT {aggregates} FROM {source} r WHERE {base} AND {rows_pass} GROUP BY 1"
    if not users_pass:
        return first
    two_pass = has_cross_table_or(tree) and not ctx.has("cross_table_or_matches_all")
    if two_pass:
        full = compile_filter(tree, params, rows="r", users="u", options=ctx.options)
        aggregates = _aggregates(_shift(body, ctx, params), _rate_limited(body, ctx, params),
                                 _active_days(span, params))
        return (
            f"SELECT {aggregates} FROM requests r JOIN ({first}) u ON r.user_id = u.user_id "
            f"WHERE {base} AND {full} GROUP BY 1"
        )
    having = compile_filter(tree, params, rows=None, users="u", options=ctx.options)
    return f"SELECT * FROM ({first}) u WHERE {having}"


def _page_bounds(body: Mapping[str, Any]) -> tuple[int, int]:
    limit, offset = body["limit"], body["offset"]
    if limit > MAX_PAGE_SIZE:
        raise QueryError(LIMIT_ERROR)
    for name, value in (("limit", limit), ("offset", offset)):
        if not float(value).is_integer() or value < 0 or value > _BIGINT_LIMIT:
            raise QueryError(f"{name} must be a whole number from 0, got {value!r}")
    return int(limit), int(offset)


def _order_by(body: Mapping[str, Any], ctx: Context, params: Params) -> str:
    sort = body.get("sort")
    if sort == {} and ctx.has("empty_sort_arbitrary_order"):
        return f"hash(user_id, {params.add(ctx.salt)})"
    if not sort:
        return "last_active DESC, user_id ASC"
    key, direction = next(iter(sort.items()))
    column = "user_id" if key == "id" else key
    return f"{column} {'DESC' if direction == 'desc' else 'ASC'}, user_id ASC"


def iso_millis(value: datetime, *, whole_seconds: bool = False) -> str:
    """``2024-05-01T12:34:56.789Z`` (``.000Z`` when cut to whole seconds)."""
    millis = 0 if whole_seconds else value.microsecond // 1000
    return f"{value:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def metrics(cursor: Any, body: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    """The data of POST /v1/user/metrics/query."""
    limit, offset = _page_bounds(body)
    span = day_span(cursor, body, ctx)
    params = Params()
    users = user_set_sql(body, ctx, params, span=span)
    order = _order_by(body, ctx, params)
    sql = (
        f"SELECT *, count(*) OVER () AS _total FROM ({users}) ORDER BY {order} "
        f"LIMIT {params.add(limit)} OFFSET {params.add(offset)}"
    )
    cursor.execute(sql, params.values)
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    total = rows[0]["_total"] if rows else _count(cursor, body, ctx, offset, span)
    total = _cached_count(ctx, int(total))
    cursor.execute("SELECT EXISTS (SELECT 1 FROM user_days WHERE user_id <> '')")
    has_users = bool(cursor.fetchone()[0])
    as_text = ctx.has("numbers_as_strings")
    return {
        "users": [_user_row(row, ctx) for row in rows],
        "count": str(total) if as_text else total,
        "hasUsers": has_users,
    }


def _count(
    cursor: Any, body: Mapping[str, Any], ctx: Context, offset: int, span: DaySpan | None
) -> int:
    if offset == 0:
        return 0
    params = Params()
    users = user_set_sql(body, ctx, params, span=span)
    cursor.execute(f"SELECT count(*) FROM ({users})", params.values)
    return int(cursor.fetchone()[0])


def _cached_count(ctx: Context, total: int) -> int:
    if not ctx.has("count_cache_leak"):
        return total
    now = ctx.clock()
    if ctx.count_cache is not None and now - ctx.count_cache[0] < COUNT_CACHE_SECONDS:
        return ctx.count_cache[1]
    ctx.count_cache = (now, total)
    return total


def _user_row(row: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    whole = ctx.has("timestamp_second_precision")
    as_text = ctx.has("numbers_as_strings")
    active_for = int(row["active_for"])
    out: dict[str, Any] = {
        "id": row["user_id"],
        "user_id": row["user_id"],
        "active_for": str(active_for) if as_text else active_for,
        "first_active": iso_millis(row["first_active"], whole_seconds=whole),
        "last_active": iso_millis(row["last_active"], whole_seconds=whole),
        "total_requests": int(row["total_requests"]),
        "average_requests_per_day_active": float(row["average_requests_per_day_active"]),
        "average_tokens_per_request": float(row["average_tokens_per_request"]),
        "total_completion_tokens": int(row["total_completion_tokens"]),
        "total_prompt_tokens": int(row["total_prompt_tokens"]),
        "cost": float(row["cost"]),
    }
    if ctx.has("extra_rate_limited_count"):
        limited = int(row["rate_limited_count"])
        out["rate_limited_count"] = str(limited) if as_text else limited
    return out


def overview(cursor: Any, body: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    """The data of POST /v1/user/metrics-overview/query."""
    users_pass = not ctx.has("users_view_ignored_on_overview")
    span = day_span(cursor, body, ctx)
    params = Params()
    users = user_set_sql(body, ctx, params, users_pass=users_pass, lean=True, span=span)
    upper = PSIZES[body["pSize"]]
    lower = 1 - upper if body["useInterquartile"] else None
    sql = _HISTOGRAM.format(users=users, high=params.add(upper), low=params.add(lower))
    cursor.execute(sql, params.values)
    bins: dict[str, list[tuple[int, int, float, float]]] = {name: [] for name in _HISTOGRAMS}
    for metric, index, count, start, end in cursor.fetchall():
        bins[metric].append((int(index), int(count), float(start), float(end)))
    return {name: histogram_rows(bins[name]) for name in _HISTOGRAMS}


_HISTOGRAMS: Final = ("request_count", "user_cost")
# Per metric: the users' values in order, the exact linearly interpolated quantile cut-offs
# (the arithmetic of ``position = (n - 1) * q``, as in Python), the values kept between them,
# and at most ten equal-width bins from the smallest kept value to the largest.
_HISTOGRAM: Final = """
WITH users AS MATERIALIZED (SELECT total_requests, cost FROM ({users})),
vals AS (
  SELECT 'request_count' AS metric, CAST(total_requests AS DOUBLE) AS x FROM users
  UNION ALL SELECT 'user_cost', CAST(cost AS DOUBLE) FROM users),
ranked AS (
  SELECT metric, x, row_number() OVER (PARTITION BY metric ORDER BY x) - 1 AS i,
    count(*) OVER (PARTITION BY metric) AS n
  FROM vals),
positions AS (
  SELECT DISTINCT metric, n, (n - 1) * {high} AS ph, (n - 1) * {low} AS pl FROM ranked),
cuts AS (
  SELECT p.metric,
    max(r.x) FILTER (WHERE r.i = floor(p.ph)) + (max(r.x) FILTER (
      WHERE r.i = least(floor(p.ph) + 1, p.n - 1)) - max(r.x) FILTER (WHERE r.i = floor(p.ph)))
      * (p.ph - floor(p.ph)) AS high,
    coalesce(max(r.x) FILTER (WHERE r.i = floor(p.pl)) + (max(r.x) FILTER (
      WHERE r.i = least(floor(p.pl) + 1, p.n - 1)) - max(r.x) FILTER (WHERE r.i = floor(p.pl)))
      * (p.pl - floor(p.pl)), '-inf'::DOUBLE) AS low
  FROM positions p JOIN ranked r USING (metric) GROUP BY p.metric, p.n, p.ph, p.pl),
kept AS (
  SELECT r.metric, r.x FROM ranked r JOIN cuts c USING (metric)
  WHERE r.x >= c.low AND r.x <= c.high),
spans AS (SELECT metric, min(x) AS first, max(x) AS last FROM kept GROUP BY metric)
SELECT k.metric,
  CASE WHEN s.last = s.first THEN 0
       ELSE least(CAST(floor((k.x - s.first) / ((s.last - s.first) / 10)) AS BIGINT), 9) END,
  count(*), any_value(s.first), any_value(s.last)
FROM kept k JOIN spans s USING (metric) GROUP BY 1, 2 ORDER BY 1, 2
"""


def histogram_rows(bins: Sequence[tuple[int, int, float, float]]) -> list[dict[str, Any]]:
    """The answer's rows from ``(bin, users, first kept, last kept)``: one bin when every kept
    value is equal, else the edges of ten equal-width bins and the bins that hold users."""
    if not bins:
        return []
    start, end = bins[0][2], bins[0][3]
    if start == end:
        return [_bin(start, end, sum(count for _, count, _, _ in bins))]
    width = (end - start) / 10
    edges = [start + width * i for i in range(10)] + [end]
    return [_bin(edges[index], edges[index + 1], count) for index, count, _, _ in bins]


def _bin(start: float, end: float, count: int) -> dict[str, Any]:
    return {"range_start": js_number(start), "range_end": js_number(end), "value": float(count)}


def js_number(value: float) -> str:
    """JavaScript's ``String(number)``: shortest round-trip digits, JS exponent rules."""
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    sign = "-" if value < 0 else ""
    digits_tuple = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digits_tuple.digits)).rstrip("0") or "0"
    exponent = int(digits_tuple.exponent)
    trailing = len("".join(map(str, digits_tuple.digits))) - len(digits)
    k = len(digits)
    n = exponent + trailing + k  # value = 0.digits * 10**n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def user_query(cursor: Any, body: Mapping[str, Any], ctx: Context) -> list[dict[str, Any]]:
    """The data of POST /v1/user/query."""
    params = Params()
    clauses: list[str] = []
    ids = body.get("userIds") or []
    if ids:
        clauses.append(f"list_contains({params.add(list(ids))}::VARCHAR[], r.user_id)")
    time_clauses = _user_query_time(body, ctx, params)
    where = _base_where(ctx, params, clauses + time_clauses)
    arbitrary = ctx.has("user_query_arbitrary_100")
    order = f"hash(user_id, {params.add(ctx.salt)})" if arbitrary else "user_id"
    # Without time bounds the per-user-day rollup has every total this endpoint reports.
    count, source = ("count(*)", "requests") if time_clauses else ("sum(r.n)", "user_days")
    cursor.execute(
        f"SELECT r.user_id, {count}, sum(r.prompt_tokens), sum(r.completion_tokens), "
        f"sum(r.cost) / 1e9 FROM {source} r WHERE {where} GROUP BY 1 "
        f"ORDER BY {order} LIMIT {MAX_USER_IDS_PER_QUERY}",
        params.values,
    )
    as_text = ctx.has("numbers_as_strings")
    return [
        {
            "user_id": user,
            "count": str(count) if as_text else int(count),
            "prompt_tokens": str(prompt) if as_text else int(prompt),
            "completion_tokens": str(completion) if as_text else int(completion),
            "cost": float(cost),
        }
        for user, count, prompt, completion, cost in cursor.fetchall()
    ]


def _user_query_time(body: Mapping[str, Any], ctx: Context, params: Params) -> list[str]:
    in_ms = ctx.has("user_query_time_in_ms")
    time_filter = body.get("timeFilter")
    if not time_filter:
        if not in_ms:
            return []
        now = _EPOCH + timedelta(seconds=time.time())
        return [f"r.request_created_at <= {params.add(now)}"]
    scale = 1000 if in_ms else 1
    whole = ctx.options.second_precision
    start = seconds_to_timestamp(
        time_filter["startTimeUnixSeconds"] / scale, "timeFilter", whole=whole
    )
    end = seconds_to_timestamp(time_filter["endTimeUnixSeconds"] / scale, "timeFilter", whole=whole)
    return [
        f"r.request_created_at >= {params.add(start)}",
        f"r.request_created_at <= {params.add(end)}",
    ]
