"""The emulator's Weave ``POST /calls/stats``: auth, the server's validation, then the stats.

Default mode follows the documented contract; each known difference of the hosted server is an
opt-in quirk named in ``WEAVE_QUIRK_DESCRIPTIONS``. With every quirk off it never answers 5xx.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from helicone_users._config import LOGGER_NAME, WEAVE_BASIC_USER
from helicone_users._errors import InvalidRequestError
from helicone_users._iso import parse_iso8601
from helicone_users._weave_models import AGGREGATIONS, CALL_METRICS, USAGE_METRICS
from helicone_users.testing._faults import with_faults
from helicone_users.testing._weave_sql import stats_cells
from helicone_users.testing._weave_stats import (
    Cell,
    MetricSpec,
    ModelPrice,
    StatsQuery,
    compute_stats,
    default_prices,
)
from helicone_users.weave import resolve_granularity

if TYPE_CHECKING:  # _app imports this module to register the route
    from helicone_users.testing._app import EmulatorState

__all__ = [
    "WEAVE_QUIRKS",
    "WEAVE_QUIRK_DESCRIPTIONS",
    "add_weave_routes",
    "max_range_days",
    "prices",
]

WEAVE_QUIRK_DESCRIPTIONS: Final[dict[str, str]] = {
    "utc_bucket_alignment": "Weave buckets align on the Unix epoch; timezone only relabels them",
    "fractional_percentile_error": "a fractional Weave percentile answers 502",
    "ignored_filters": "Weave input_refs, output_refs, thread_ids and turn_ids are ignored",
    "granularity_zero_crash": "Weave granularity 0 answers 500, a negative one 502",
    "non_utc_offset_misread": "Weave start/end offsets are dropped: the wall time is read as UTC",
    "naive_datetime_crash": "a naive Weave start/end mixed with an aware one answers 500",
    "invalid_timezone_502": "an unknown Weave timezone answers 502 instead of 422",
    "wb_ids_unconverted": "Weave wb_user_ids/wb_run_ids filters match nothing",
    "total_tokens_raw_only": "Weave total_tokens is the raw provider key, not input + output",
    "extra_fields_ignored": "unknown Weave request fields are ignored instead of a 422",
}
WEAVE_QUIRKS: Final[frozenset[str]] = frozenset(WEAVE_QUIRK_DESCRIPTIONS)

_PATH: Final = "/calls/stats"
# pydantic reads a number above this as milliseconds since the epoch, else as seconds.
_MILLISECONDS_ABOVE: Final = 2e10
_UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_TOP_FIELDS: Final = ("project_id", "start", "end", "granularity", "usage_metrics",
                      "call_metrics", "filter", "timezone")
_SPEC_FIELDS: Final = ("metric", "aggregations", "percentiles")
_LIST_FILTERS: Final = ("op_names", "input_refs", "output_refs", "parent_ids", "trace_ids",
                        "call_ids", "thread_ids", "turn_ids", "wb_user_ids", "wb_run_ids")
_IGNORED_FILTERS: Final = ("input_refs", "output_refs", "thread_ids", "turn_ids")
_log = logging.getLogger(f"{LOGGER_NAME}.emulator")
_BACKEND_ERROR: Final = {"reason": "Temporary backend error"}
_INTERNAL_ERROR: Final = {"reason": "Internal server error"}



def max_range_days(state: EmulatorState) -> int | None:
    """The range limit in force (None lifts it)."""
    return state.weave_max_range_days


def prices(state: EmulatorState) -> Mapping[str, ModelPrice]:
    """The price table in force: ``state.weave_prices``, else the synthetic models' prices."""
    return default_prices() if state.weave_prices is None else state.weave_prices


class _Reject(Exception):
    """An error answer: ``status`` and JSON ``body``."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


# --- pydantic-like field validation --------------------------------------------------------------


def _error(kind: str, loc: Sequence[str | int], msg: str, value: Any,
           ctx: Mapping[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "loc": ["body", *loc], "msg": msg, "input": value}
    if ctx:
        error["ctx"] = dict(ctx)
    return error


def _expected(names: Sequence[str]) -> str:
    quoted = [f"'{name}'" for name in names]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


def _parse_datetime(value: Any) -> datetime | str:
    """The datetime pydantic reads from ``value`` (years 1 to 9999, ISO 8601 text or a Unix
    timestamp, in milliseconds beyond 2e10), or why it is not one."""
    if isinstance(value, str):
        try:
            return parse_iso8601(value)
        except ValueError as exc:
            if str(exc).startswith("not an ISO-8601"):
                return "Input should be a valid datetime or date in ISO 8601 form, e.g. " \
                    "2026-03-01T00:00:00Z"
            return f"Input should be a valid datetime, {exc}"  # year 0, month 13, ...
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "Input should be a valid datetime"
    if not math.isfinite(value):
        return "Input should be a finite number"
    seconds = value / 1000 if abs(value) > _MILLISECONDS_ABOVE else value
    try:
        return _UNIX_EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        side = "after 9999" if value > 0 else "before 0001"
        return f"Input should be a valid datetime, dates {side} are not supported as unix " \
            "timestamps"


def _whole_number(value: int | float | str) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
        try:
            value = float(value)
        except ValueError:
            return None
    return int(value) if math.isfinite(value) and value.is_integer() else None


class _Fields:
    """Collects pydantic-style errors while reading the body."""

    def __init__(self, body: Mapping[str, Any], quirks: frozenset[str]) -> None:
        self.body = body
        self.quirks = quirks
        self.errors: list[dict[str, Any]] = []

    def extra(
        self, obj: Mapping[str, Any], allowed: Sequence[str], loc: Sequence[str | int]
    ) -> None:
        if "extra_fields_ignored" in self.quirks:
            return
        for key, value in obj.items():
            if key not in allowed:
                self.errors.append(_error("extra_forbidden", [*loc, key],
                                          "Extra inputs are not permitted", value))

    def datetime(self, name: str, *, required: bool) -> datetime | None:
        if name not in self.body or self.body[name] is None:
            if required:
                self.errors.append(_error("missing", [name], "Field required", dict(self.body)))
            return None
        parsed = _parse_datetime(self.body[name])
        if isinstance(parsed, str):
            self.errors.append(_error("datetime_parsing", [name], parsed, self.body[name]))
            return None
        return parsed

    def string(self, name: str, default: str | None = None) -> str | None:
        value = self.body.get(name, default)
        if value is None and default is None:
            self.errors.append(_error("missing", [name], "Field required", dict(self.body)))
            return None
        if not isinstance(value, str):
            self.errors.append(_error("string_type", [name], "Input should be a valid string",
                                      value))
            return None
        return value

    def granularity(self) -> int | None:
        value = self.body.get("granularity")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            self.errors.append(_error("int_type", ["granularity"],
                                      "Input should be a valid integer", value))
            return None
        size = _whole_number(value)  # any size: pydantic's int has no upper bound
        if size is None:
            self.errors.append(_error("int_parsing", ["granularity"],
                                      "Input should be a valid integer", value))
            return None
        if size < 1 and "granularity_zero_crash" not in self.quirks:
            self.errors.append(_error("greater_than_equal", ["granularity"],
                                      "Input should be greater than or equal to 1", value,
                                      {"ge": 1}))
        return size

    def specs(self, name: str, metrics: Sequence[str]) -> tuple[MetricSpec, ...]:
        value = self.body.get(name)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.errors.append(_error("list_type", [name], "Input should be a valid list", value))
            return ()
        specs = [self._spec(item, [name, index], metrics) for index, item in enumerate(value)]
        return tuple(spec for spec in specs if spec is not None)

    def _spec(self, item: Any, loc: list[str | int], metrics: Sequence[str]) -> MetricSpec | None:
        if not isinstance(item, Mapping):
            self.errors.append(_error("model_type", loc, "Input should be a valid dictionary",
                                      item))
            return None
        before = len(self.errors)
        self.extra(item, _SPEC_FIELDS, loc)
        metric = item.get("metric")
        if "metric" not in item:
            self.errors.append(_error("missing", [*loc, "metric"], "Field required", dict(item)))
        elif metric not in metrics:
            expected = _expected(metrics)
            self.errors.append(_error("literal_error", [*loc, "metric"],
                                      f"Input should be {expected}", metric,
                                      {"expected": expected}))
        aggregations = self._list(item, "aggregations", loc, ["sum"], self._aggregation)
        percentiles = self._list(item, "percentiles", loc, [], self._percentile)
        if len(self.errors) > before:
            return None
        return MetricSpec(str(metric), tuple(aggregations), tuple(percentiles))

    def _list(self, item: Mapping[str, Any], key: str, loc: list[str | int], default: list[Any],
              check: Callable[[Any, list[str | int]], Any]) -> list[Any]:
        value = item.get(key, default)
        if not isinstance(value, list):
            self.errors.append(_error("list_type", [*loc, key], "Input should be a valid list",
                                      value))
            return []
        return [check(entry, [*loc, key, index]) for index, entry in enumerate(value)]

    def _aggregation(self, value: Any, loc: list[str | int]) -> str:
        if value not in AGGREGATIONS:
            self.errors.append(_error("enum", loc, f"Input should be {_expected(AGGREGATIONS)}",
                                      value, {"expected": _expected(AGGREGATIONS)}))
        return str(value)

    def _percentile(self, value: Any, loc: list[str | int]) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.errors.append(_error("float_type", loc, "Input should be a valid number", value))
            return 0.0
        return float(value)

    def filter(self) -> dict[str, Any]:
        value = self.body.get("filter")
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.errors.append(_error("model_type", ["filter"],
                                      "Input should be a valid dictionary", value))
            return {}
        self.extra(value, (*_LIST_FILTERS, "trace_roots_only"), ["filter"])
        out: dict[str, Any] = {}
        for key in _LIST_FILTERS:
            items = value.get(key)
            if items is None:
                continue
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                self.errors.append(_error("list_type", ["filter", key],
                                          "Input should be a valid list of strings", items))
                continue
            out[key] = frozenset(items)
        roots = value.get("trace_roots_only")
        if roots is not None and not isinstance(roots, bool):
            self.errors.append(_error("bool_type", ["filter", "trace_roots_only"],
                                      "Input should be a valid boolean", roots))
        out["trace_roots_only"] = bool(roots)
        return out

    def zone(self, name: str | None) -> Any:
        if name is None:
            return None
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            if "invalid_timezone_502" in self.quirks:
                return None
            self.errors.append(_error("value_error", ["timezone"],
                                      f"Value error, Unknown time zone {name!r}", name))
            return None


# --- the request as the server resolves it -------------------------------------------------------


def _validation_error(message: str, body: Mapping[str, Any]) -> _Reject:
    return _Reject(422, {"detail": [_error("value_error", [], f"Value error, {message}",
                                           dict(body))]})


def _resolve_range(
    start: datetime, end: datetime | None, quirks: frozenset[str], now: datetime,
    body: Mapping[str, Any], max_days: int | None,
) -> tuple[datetime, datetime]:
    """The validator's checks on start/end, then the moments the query really uses."""
    resolved_end = now if end is None else end
    naive = [moment.tzinfo is None for moment in (start, resolved_end)]
    if "naive_datetime_crash" in quirks and any(naive) and not all(naive):
        raise _Reject(500, dict(_INTERNAL_ERROR))
    # The validator compares the values as given; only the query builders misread offsets.
    try:
        given_start, given_end = (_as_utc(moment, frozenset()) for moment in (start, resolved_end))
        return _checked_range(given_start, given_end, start, resolved_end, quirks, body,
                              max_days)
    except OverflowError:
        raise _validation_error("CallStatsReq start and end must fall within the years 1-9999 "
                                "in UTC", body) from None


def _checked_range(
    given_start: datetime, given_end: datetime, start: datetime, end: datetime,
    quirks: frozenset[str], body: Mapping[str, Any], max_days: int | None,
) -> tuple[datetime, datetime]:
    if given_end < given_start:
        raise _validation_error("CallStatsReq end must be after start", body)
    if max_days is not None and given_end - given_start > timedelta(days=max_days):
        raise _validation_error(f"CallStatsReq date range cannot exceed {max_days} days", body)
    return _as_utc(start, quirks), _as_utc(end, quirks)


def _as_utc(moment: datetime, quirks: frozenset[str]) -> datetime:
    if moment.tzinfo is None or "non_utc_offset_misread" in quirks:
        # The hosted builders relabel the wall time as UTC instead of converting it.
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _echo(moment: datetime, resolved: datetime, quirks: frozenset[str]) -> str:
    if "non_utc_offset_misread" in quirks and moment.tzinfo is not None:
        return moment.isoformat()
    return resolved.replace(tzinfo=None).isoformat() + "Z"


def _server_checks(query: StatsQuery, raw_granularity: int | None, quirks: frozenset[str],
                   zone_ok: bool) -> None:
    """The checks the hosted server makes after validation, with its status codes."""
    for spec in (*query.usage_metrics, *query.call_metrics):
        for percentile in spec.percentiles:
            if not 0 <= percentile <= 100:
                raise _Reject(400, {"reason": "Percentile must be between 0 and 100, got "
                                              f"{percentile!r}"})
    if raw_granularity is not None and raw_granularity == 0:
        raise _Reject(500, dict(_INTERNAL_ERROR))  # only reachable with granularity_zero_crash
    if raw_granularity is not None and raw_granularity < 0:
        raise _Reject(502, dict(_BACKEND_ERROR))
    if not zone_ok:
        raise _Reject(502, dict(_BACKEND_ERROR))
    if "fractional_percentile_error" in quirks and any(
        not p.is_integer() for s in (*query.usage_metrics, *query.call_metrics)
        for p in s.percentiles
    ):
        raise _Reject(502, dict(_BACKEND_ERROR))


def parse_request(
    body: Any, quirks: frozenset[str], *, now: datetime, max_range_days: int | None,
) -> tuple[StatsQuery, str, str]:
    """The validated query and the echoed start and end, or ``_Reject`` with the answer."""
    if not isinstance(body, Mapping):
        raise _Reject(422, {"detail": [_error("model_attributes_type", [],
                                              "Input should be a valid dictionary", body)]})
    fields = _Fields(body, quirks)
    fields.extra(body, _TOP_FIELDS, [])
    fields.string("project_id")
    start = fields.datetime("start", required=True)
    end = fields.datetime("end", required=False)
    granularity = fields.granularity()
    usage = fields.specs("usage_metrics", USAGE_METRICS)
    calls = fields.specs("call_metrics", CALL_METRICS)
    call_filter = fields.filter()
    zone_name = fields.string("timezone", "UTC")
    zone = fields.zone(zone_name)
    if fields.errors or start is None or zone_name is None:
        raise _Reject(422, {"detail": fields.errors})
    begin, finish = _resolve_range(start, end, quirks, now, body, max_range_days)
    query = StatsQuery(
        start=begin, end=finish,
        granularity=_granularity(granularity, begin, finish, usage or calls),
        zone=zone or timezone.utc, timezone=zone_name,
        alignment="utc" if "utc_bucket_alignment" in quirks else "timezone",
        usage_metrics=usage, call_metrics=calls, filter=_effective_filter(call_filter, quirks),
    )
    if usage or calls:
        _server_checks(query, granularity, quirks, zone is not None)
    resolved_end = now if end is None else end
    return query, _echo(start, begin, quirks), _echo(resolved_end, finish, quirks)


def _granularity(size: int | None, begin: datetime, finish: datetime, metrics: Any) -> int:
    if not metrics or (size is not None and size < 1):
        return 0
    return resolve_granularity(size, (finish - begin).total_seconds())


def _effective_filter(spec: dict[str, Any], quirks: frozenset[str]) -> dict[str, Any]:
    out = dict(spec)
    if "ignored_filters" in quirks:
        for key in _IGNORED_FILTERS:
            out.pop(key, None)
    if "wb_ids_unconverted" in quirks:
        # External ids never equal the internal ones the hosted server compares against.
        for key in ("wb_user_ids", "wb_run_ids"):
            if out.get(key):
                out[key] = frozenset({"\0never"})
    return out


# --- HTTP ----------------------------------------------------------------------------------------


def _authorized(header: str | None, api_key: str) -> bool:
    if not header or not header.startswith("Basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 inside
        return False
    user, _, password = decoded.partition(":")
    # Compare bytes: compare_digest refuses str with non-ASCII characters.
    return user == WEAVE_BASIC_USER and hmac.compare_digest(password.encode(), api_key.encode())


def _quirks(state: EmulatorState) -> frozenset[str]:
    return state.quirks & WEAVE_QUIRKS


def make_handler(state: EmulatorState) -> Callable[[web.Request], Any]:
    """The aiohttp handler of ``POST /calls/stats`` over the emulator's state, with its faults."""

    async def handle(request: web.Request) -> web.StreamResponse:
        state.seen_requests += 1
        return await with_faults(request, state.faults, lambda: _safe_answer(state, request))

    return handle


async def _safe_answer(state: EmulatorState, request: web.Request) -> web.Response:
    try:
        return await answer(state, request)
    except Exception as exc:  # the emulator never answers 500 by accident
        _log.exception("emulator failed on %s", request.path)
        return web.json_response(
            {"reason": f"emulator could not answer: {type(exc).__name__}"}, status=400
        )


async def answer(state: EmulatorState, request: web.Request) -> web.Response:
    """Auth, rate limit, validation, then the stats of the stored calls."""
    if not _authorized(request.headers.get("Authorization"), str(state.api_key)):
        return web.json_response({"detail": "Not authenticated"}, status=401,
                                 headers={"WWW-Authenticate": "Basic"})
    if state.limiter is not None:
        allowed, headers = state.limiter.hit()
        if not allowed:
            return web.json_response({"reason": "Too many requests"}, status=429,
                                     headers=headers)
    quirks = _quirks(state)
    try:
        body = json.loads(await request.read() or b"null")
    except (ValueError, RecursionError):
        return web.json_response({"detail": [_error("json_invalid", [], "JSON decode error",
                                                    None)]}, status=422)
    try:
        query, start, end = parse_request(body, quirks, now=datetime.now(timezone.utc),
                                          max_range_days=max_range_days(state))
    except _Reject as reject:
        return web.json_response(reject.body, status=reject.status)
    raw = "total_tokens_raw_only" in quirks
    try:
        cells = await state.store.run(
            lambda cursor: stats_cells(cursor, query, raw_total_tokens=raw)
        )
    except (InvalidRequestError, OverflowError) as exc:
        status, result = _unwritable_buckets(exc, query)
    else:
        status, result = stats_answer(cells, query, prices(state), echo_start=start,
                                      echo_end=end)  # fmt: skip
    return web.json_response(result, status=status)


def stats_answer(
    cells: Iterable[Cell], query: StatsQuery, price_table: Mapping[str, ModelPrice], *,
    echo_start: str, echo_end: str,
) -> tuple[int, dict[str, Any]]:
    """The status and body for a validated query and its cells: the stats, or a 400 when its
    buckets cannot be written as dates (years 1 to 9999)."""
    try:
        return 200, compute_stats(cells, query, price_table, echo_start=echo_start,
                                  echo_end=echo_end)
    except (InvalidRequestError, OverflowError) as exc:
        return _unwritable_buckets(exc, query)


def _unwritable_buckets(exc: Exception, query: StatsQuery) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, InvalidRequestError):  # a bucket that would start before year 1
        return 400, {"reason": str(exc)}
    # a bucket label past the calendar's ends in the zone
    return 400, {"reason": "the buckets of this range cannot be written as dates in "
                           f"{query.timezone}: they fall outside the years 1-9999"}


def add_weave_routes(app: web.Application, state: EmulatorState) -> None:
    """Register ``POST /calls/stats`` over the emulator's ``state``.

    ``state.weave_max_range_days`` (None lifts the limit) and ``state.weave_prices``
    (model -> ModelPrice) are read on every request, so tests may change them while serving.
    """
    app.router.add_post(_PATH, make_handler(state))
