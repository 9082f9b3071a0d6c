"""The three Helicone user endpoints as DuckDB queries (run in a worker thread)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

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


def _aggregates(shift: str, rate_limited: str) -> str:
    return f"""
  r.user_id AS user_id,
  count(DISTINCT CAST(r.request_created_at AS DATE)) AS active_for,
  min(r.request_created_at) - {shift} AS first_active,
  max(r.request_created_at) - {shift} AS last_active,
  count(r.request_id) AS total_requests,
  count(r.request_id) / count(DISTINCT CAST(r.request_created_at AS DATE))
    AS average_requests_per_day_active,
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


def _metrics_time(body: Mapping[str, Any], ctx: Context, params: Params) -> list[str]:
    time_filter = body.get("timeFilter")
    if not time_filter:
        return []
    whole = ctx.options.second_precision
    start = seconds_to_timestamp(time_filter["startTimeUnixSeconds"], "timeFilter", whole=whole)
    end = seconds_to_timestamp(time_filter["endTimeUnixSeconds"], "timeFilter", whole=whole)
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
) -> str:
    """SQL yielding one aggregate row per matching user (the A.5 semantics).

    ``lean`` keeps only ``total_requests`` and ``cost`` when no users_view leaf needs the rest.
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
            else _aggregates(_shift(body, ctx, params), _rate_limited(body, ctx, params))
        )
    base = _base_where(ctx, params, time_bounds)
    first = f"SELECT {aggregates} FROM {source} r WHERE {base} AND {rows_pass} GROUP BY 1"
    if not users_pass:
        return first
    two_pass = has_cross_table_or(tree) and not ctx.has("cross_table_or_matches_all")
    if two_pass:
        full = compile_filter(tree, params, rows="r", users="u", options=ctx.options)
        aggregates = _aggregates(_shift(body, ctx, params), _rate_limited(body, ctx, params))
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
    params = Params()
    users = user_set_sql(body, ctx, params)
    order = _order_by(body, ctx, params)
    sql = (
        f"SELECT *, count(*) OVER () AS _total FROM ({users}) ORDER BY {order} "
        f"LIMIT {params.add(limit)} OFFSET {params.add(offset)}"
    )
    cursor.execute(sql, params.values)
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    total = rows[0]["_total"] if rows else _count(cursor, body, ctx, offset)
    total = _cached_count(ctx, int(total))
    cursor.execute("SELECT EXISTS (SELECT 1 FROM requests WHERE user_id <> '')")
    has_users = bool(cursor.fetchone()[0])
    as_text = ctx.has("numbers_as_strings")
    return {
        "users": [_user_row(row, ctx) for row in rows],
        "count": str(total) if as_text else total,
        "hasUsers": has_users,
    }


def _count(cursor: Any, body: Mapping[str, Any], ctx: Context, offset: int) -> int:
    if offset == 0:
        return 0
    params = Params()
    cursor.execute(f"SELECT count(*) FROM ({user_set_sql(body, ctx, params)})", params.values)
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
    params = Params()
    users_pass = not ctx.has("users_view_ignored_on_overview")
    users = user_set_sql(body, ctx, params, users_pass=users_pass, lean=True)
    cursor.execute(f"SELECT total_requests, cost FROM ({users})", params.values)
    rows = cursor.fetchall()
    upper = PSIZES[body["pSize"]]
    lower = 1 - upper if body["useInterquartile"] else None
    return {
        "request_count": histogram([float(r[0]) for r in rows], upper, lower),
        "user_cost": histogram([float(r[1]) for r in rows], upper, lower),
    }


def quantile(ordered: Sequence[float], q: float) -> float:
    """The exact, linearly interpolated quantile of sorted values."""
    position = (len(ordered) - 1) * q
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def histogram(values: list[float], upper: float, lower: float | None) -> list[dict[str, Any]]:
    """At most ten equal-width bins over the values kept by the quantile cut-offs."""
    if not values:
        return []
    ordered = sorted(values)
    high = quantile(ordered, upper)
    low = quantile(ordered, lower) if lower is not None else -math.inf
    kept = [v for v in ordered if low <= v <= high]
    if not kept:
        return []
    start, end = kept[0], kept[-1]
    if start == end:
        return [_bin(start, end, len(kept))]
    width = (end - start) / 10
    counts = [0] * 10
    for value in kept:
        counts[min(int((value - start) / width), 9)] += 1
    edges = [start + width * i for i in range(10)] + [end]
    return [_bin(edges[i], edges[i + 1], n) for i, n in enumerate(counts) if n]


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
