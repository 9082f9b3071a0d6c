"""Requests and results of Weave ``/calls/stats``: frozen values, validated when built."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from helicone_users._errors import InvalidRequestError, ResponseValidationError
from helicone_users._iso import parse_iso8601

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

__all__ = [
    "AGGREGATIONS",
    "CALL_METRICS",
    "COST_METRICS",
    "TOKEN_METRICS",
    "USAGE_METRICS",
    "CallBucket",
    "CallMetric",
    "CallStats",
    "CallsFilter",
    "UsageBucket",
    "UsageMetric",
    "format_utc",
    "metric_key",
    "parse_call_stats",
    "parse_timestamp",
]

TOKEN_METRICS: Final = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
COST_METRICS: Final = ("input_cost", "output_cost", "total_cost")
USAGE_METRICS: Final = TOKEN_METRICS + COST_METRICS
CALL_METRICS: Final = ("latency_ms", "call_count", "error_count")
AGGREGATIONS: Final = ("sum", "avg", "min", "max", "count", "count_true", "count_false")

Value = float | int | None


def metric_key(
    metric: str, aggregation: str | None = None, *, percentile: float | None = None
) -> str:
    """The flat key the server uses for one value: ``sum_input_tokens``, ``p95_latency_ms``."""
    if percentile is not None:
        whole = float(percentile).is_integer()
        return f"p{int(percentile) if whole else float(percentile)}_{metric}"
    return f"{aggregation or 'sum'}_{metric}"


def format_utc(moment: datetime) -> str:
    """An aware datetime as ISO 8601 in UTC with ``Z``, the form the server reads correctly."""
    text = moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat()
    return text + "Z"


# --- request pieces ------------------------------------------------------------------------------


def _is_text(value: object) -> bool:
    # Strings are iterable, but a lone string is never a list of names or numbers.
    return isinstance(value, (str, bytes))


def _names(value: Iterable[str], *, field: str, allowed: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidRequestError(
            f"{field} must be a list of names, not {value!r}; write ({value!r},)", field=field
        )
    names = tuple(value)
    for name in names:
        if name not in allowed:
            raise InvalidRequestError(
                f"{field}: unknown name {name!r}; use one of {', '.join(allowed)}", field=field
            )
    if len(set(names)) != len(names):
        raise InvalidRequestError(f"{field} lists a name twice: {names!r}", field=field)
    return names


def _aggregations(value: Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ("sum",)
    return _names(value, field="aggregations", allowed=AGGREGATIONS)


def _percentiles(value: Iterable[float] | None) -> tuple[int, ...]:
    if value is None:
        return ()
    if _is_text(value) or not isinstance(value, Iterable):
        raise InvalidRequestError(
            f"percentiles must be a list of numbers, not {value!r}; write ({value!r},)",
            field="percentiles",
        )
    result: list[int] = []
    for item in value:
        # Booleans are ints to Python but never a meaningful percentile.
        ok_type = isinstance(item, (int, float)) and not isinstance(item, bool)
        if not ok_type or not math.isfinite(item) or not float(item).is_integer():
            raise InvalidRequestError(
                f"percentiles: {item!r} is not a whole number; the server builds a broken "
                "query for fractional percentiles, so use whole numbers such as 95 or 99",
                field="percentiles",
            )
        if not 0 <= item <= 100:
            raise InvalidRequestError(
                f"percentiles: {item!r} is outside 0..100", field="percentiles"
            )
        result.append(int(item))
    if len(set(result)) != len(result):
        raise InvalidRequestError(
            f"percentiles lists a value twice: {result!r}", field="percentiles"
        )
    return tuple(result)


def _check_usage_metric(instance: UsageMetric, attribute: Any, value: str) -> None:
    _names((value,), field="usage_metrics.metric", allowed=USAGE_METRICS)


def _check_call_metric(instance: CallMetric, attribute: Any, value: str) -> None:
    _names((value,), field="call_metrics.metric", allowed=CALL_METRICS)


@attrs.frozen
class UsageMetric:
    """One usage metric to compute per bucket and model, e.g. ``UsageMetric("input_tokens")``.

    Cost metrics (``input_cost``, ``output_cost``, ``total_cost``) only come back as sums.
    """

    metric: str = attrs.field(validator=_check_usage_metric)
    aggregations: tuple[str, ...] = attrs.field(
        default=("sum",), converter=_aggregations, kw_only=True
    )
    percentiles: tuple[int, ...] = attrs.field(default=(), converter=_percentiles, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.metric in COST_METRICS and (
            self.percentiles or self.aggregations not in {(), ("sum",)}
        ):
            raise InvalidRequestError(
                f"{self.metric} is only computed as a sum; the server ignores other aggregations "
                f"and percentiles: write UsageMetric({self.metric!r})",
                field="usage_metrics.aggregations",
            )

    def to_json(self) -> dict[str, Any]:
        """The wire form of this metric."""
        return _metric_json(self.metric, self.aggregations, self.percentiles)


@attrs.frozen
class CallMetric:
    """One per-call metric to compute per bucket, e.g. ``CallMetric("latency_ms")``."""

    metric: str = attrs.field(validator=_check_call_metric)
    aggregations: tuple[str, ...] = attrs.field(
        default=("sum",), converter=_aggregations, kw_only=True
    )
    percentiles: tuple[int, ...] = attrs.field(default=(), converter=_percentiles, kw_only=True)

    def to_json(self) -> dict[str, Any]:
        """The wire form of this metric."""
        return _metric_json(self.metric, self.aggregations, self.percentiles)


def _metric_json(
    metric: str, aggregations: Sequence[str], percentiles: Sequence[int]
) -> dict[str, Any]:
    return {"metric": metric, "aggregations": list(aggregations), "percentiles": list(percentiles)}


def _id_list(value: Iterable[str] | None) -> tuple[str, ...] | None:
    """Any iterable of ids as a tuple (a bare string is left for ``_check_ids`` to refuse)."""
    if value is None or isinstance(value, str):
        return value  # type: ignore[return-value]  # _check_ids always refuses a string
    return tuple(value)


def _check_ids(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    field = attribute.name
    if value is None:
        return
    if isinstance(value, str):
        raise InvalidRequestError(
            f"filter {field} must be a list of strings, not the string {value!r}; "
            f"write {field}=[{value!r}]",
            field=f"filter.{field}",
        )
    if not value:
        raise InvalidRequestError(
            f"filter {field} is empty; the server ignores an empty list and matches every "
            f"call, so pass None to mean no {field} filter",
            field=f"filter.{field}",
        )
    for item in value:
        if not isinstance(item, str) or not item:
            raise InvalidRequestError(
                f"filter {field} holds {item!r}; every entry must be a non-empty string",
                field=f"filter.{field}",
            )


def _check_roots(instance: CallsFilter, attribute: Any, value: bool | None) -> None:
    if value is not None and not isinstance(value, bool):
        raise InvalidRequestError(
            f"filter trace_roots_only must be True, False or None, not {value!r}",
            field="filter.trace_roots_only",
        )


IGNORED_FILTERS: Final = ("input_refs", "output_refs", "thread_ids", "turn_ids")


@attrs.frozen(kw_only=True)
class CallsFilter:
    """Which calls count; every list is an exact-match ``IN``, and all given parts are ANDed.

    ``trace_roots_only=True`` keeps root calls only, which avoids double counting the usage
    that SDK traces roll up into their parents.
    """

    op_names: tuple[str, ...] | None = attrs.field(
        default=None, converter=_id_list, validator=_check_ids
    )
    input_refs: tuple[str, ...] | None = attrs.field(
        default=None, converter=_id_list, validator=_check_ids
    )
    output_refs: tuple[str, ...] | None = attrs.field(
        default=None, converter=_id_list, validator=_check_ids
    )
    parent_ids: tuple[str, ...] | None = attrs.field(
        default=None, converter=_id_list, validator=_check_ids
    )
    trace_ids: tuple[str, ...] | None = attrs.field(
        default=None, converter=_id_list, validator=_check_ids
    )
    call_ids: tuple[str, ...] | None = attrs.field(
        default=None, converter=_id_list, validator=_check_ids
    )
    thread_ids: tuple[str, ...] | None = attrs.field(
        default=None, converter=_id_list, validator=_check_ids
    )
    turn_ids: tuple[str, ...] | None = attrs.field(
        default=None, converter=_id_list, validator=_check_ids
    )
    trace_roots_only: bool | None = attrs.field(default=None, validator=_check_roots)
    wb_user_ids: tuple[str, ...] | None = attrs.field(
        default=None, converter=_id_list, validator=_check_ids
    )
    wb_run_ids: tuple[str, ...] | None = attrs.field(
        default=None, converter=_id_list, validator=_check_ids
    )

    def to_json(self) -> dict[str, Any]:
        """The wire form: only the parts that were given."""
        out: dict[str, Any] = {}
        for field in attrs.fields(CallsFilter):
            value = getattr(self, field.name)
            if value is not None:
                out[field.name] = list(value) if isinstance(value, tuple) else value
        return out

    def ignored_parts(self) -> list[str]:
        """Human-readable notes on the parts the hosted server accepts but does not apply."""
        notes = [
            f"filter {name} is ignored by the server: it does not narrow the result"
            for name in IGNORED_FILTERS
            if getattr(self, name) is not None
        ]
        wildcards = [name for name in self.op_names or () if name.endswith("*")]
        if wildcards:
            notes.append(
                f"filter op_names {wildcards!r}: the stats endpoint matches op names exactly, so "
                "a wildcard matches nothing; pass full op refs such as "
                "'weave:///entity/project/op/name:digest'"
            )
        return notes


# --- results -------------------------------------------------------------------------------------


def _lookup(
    values: Mapping[str, Value], metric: str, aggregation: str | None, percentile: float | None
) -> Value:
    if aggregation is not None and percentile is not None:
        raise InvalidRequestError(
            "value() takes an aggregation or a percentile, not both", field="percentile"
        )
    key = metric_key(metric, aggregation, percentile=percentile)
    try:
        return values[key]
    except KeyError:
        known = ", ".join(sorted(values)) or "none"
        raise KeyError(
            f"{key!r} is not in this bucket (was it requested?); keys: {known}"
        ) from None


@attrs.frozen(kw_only=True)
class CallBucket:
    """Per-call metrics of one time bucket; ``count`` is the number of calls that started in it."""

    timestamp: datetime
    count: int
    values: Mapping[str, Value] = attrs.field(hash=False)

    def value(
        self, metric: str, aggregation: str | None = None, *, percentile: float | None = None
    ) -> Value:
        """One value: ``value("latency_ms", "avg")``, ``value("latency_ms", percentile=99)``."""
        return _lookup(self.values, metric, aggregation, percentile)


@attrs.frozen(kw_only=True)
class UsageBucket:
    """Usage of one model in one time bucket; ``count`` is the number of calls with usage."""

    timestamp: datetime
    model: str
    count: int
    values: Mapping[str, Value] = attrs.field(hash=False)

    def value(
        self, metric: str, aggregation: str | None = None, *, percentile: float | None = None
    ) -> Value:
        """One value: ``value("input_tokens", "sum")``, ``value("total_cost")`` (a sum)."""
        return _lookup(self.values, metric, aggregation, percentile)


@attrs.frozen(kw_only=True)
class CallStats:
    """The answer of ``/calls/stats``: bucketed usage per model and per-call metrics."""

    start: datetime
    end: datetime
    granularity: int
    timezone: str
    usage_buckets: tuple[UsageBucket, ...] = ()
    call_buckets: tuple[CallBucket, ...] = ()

    def to_rows(self, kind: Literal["all", "usage", "call"] = "all") -> list[dict[str, Any]]:
        """Flat dicts for tables: ``kind``, ``timestamp``, ``model`` (usage), ``count``, values."""
        rows: list[dict[str, Any]] = []
        if kind in ("all", "usage"):
            for usage in self.usage_buckets:
                rows.append(
                    {"kind": "usage", "timestamp": usage.timestamp, "model": usage.model,
                     "count": usage.count, **usage.values}
                )
        if kind in ("all", "call"):
            for call in self.call_buckets:
                rows.append(
                    {"kind": "call", "timestamp": call.timestamp, "model": None,
                     "count": call.count, **call.values}
                )
        return rows

    def to_arrow(self, kind: Literal["usage", "call"] = "usage") -> pa.Table:
        """The buckets as a ``pyarrow.Table``; needs the ``arrow`` extra.

        ``"usage"``: one row per bucket and model: ``timestamp`` (timestamp[ms, UTC]),
        ``model`` string, ``count`` int64, then one column per value (``sum_input_tokens``,
        ``total_cost``...). ``"call"``: one row per bucket: ``timestamp``, ``count``, then the
        call values (``avg_latency_ms``, ``p99_latency_ms``...). Value columns are float64,
        except the ``count``, ``count_true`` and ``count_false`` aggregations (int64); a value
        a bucket lacks is null.
        """
        from helicone_users._tables import usage_or_call_table

        return usage_or_call_table(self, kind)

    def to_polars(self, kind: Literal["usage", "call"] = "usage") -> pl.DataFrame:
        """The buckets as a polars DataFrame (the columns of ``to_arrow(kind)``)."""
        from helicone_users._tables import require_frames, to_polars

        require_frames("polars")
        return to_polars(self.to_arrow(kind))

    def to_pandas(self, kind: Literal["usage", "call"] = "usage") -> pd.DataFrame:
        """The buckets as a pandas DataFrame (the columns of ``to_arrow(kind)``)."""
        from helicone_users._tables import require_frames, to_pandas

        require_frames("pandas")
        return to_pandas(self.to_arrow(kind))


# --- decoding ------------------------------------------------------------------------------------


class _Bad(Exception):
    """A decoding failure at ``where``; turned into ResponseValidationError at the top."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where


def parse_timestamp(value: Any, where: str = "timestamp") -> datetime:
    """An ISO 8601 timestamp; one without an offset is UTC, one with an offset keeps it."""
    if not isinstance(value, str):
        raise _Bad(where, f"expected an ISO 8601 string, got {value!r}")
    try:
        moment = parse_iso8601(value)
    except ValueError:
        raise _Bad(where, f"not an ISO 8601 timestamp: {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _number(value: Any, where: str) -> Value:
    if isinstance(value, str):
        # Lenient: some gateways send numbers as strings.
        value = _number_from_text(value)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise _Bad(where, f"expected a finite number or null, got {value!r}")


def _number_from_text(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:  # also digit strings past Python's int conversion limit
            continue
    return text


def _count(value: Any, where: str) -> int:
    number = _number(value, where)
    if isinstance(number, float) and number.is_integer():
        return int(number)
    if isinstance(number, int):
        return number
    raise _Bad(where, f"expected a whole count, got {value!r}")


def _values(row: Mapping[str, Any], skip: frozenset[str], where: str) -> dict[str, Value]:
    return {k: _number(v, f"{where}.{k}") for k, v in row.items() if k not in skip}


def _call_bucket(row: Any, where: str) -> CallBucket:
    if not isinstance(row, Mapping):
        raise _Bad(where, f"expected an object, got {type(row).__name__}")
    return CallBucket(
        timestamp=parse_timestamp(row.get("timestamp"), f"{where}.timestamp"),
        count=_count(row.get("count", 0), f"{where}.count"),
        values=_values(row, frozenset({"timestamp", "count"}), where),
    )


def _usage_bucket(row: Any, where: str) -> UsageBucket:
    if not isinstance(row, Mapping):
        raise _Bad(where, f"expected an object, got {type(row).__name__}")
    model = row.get("model")
    if not isinstance(model, str):
        raise _Bad(f"{where}.model", f"expected a model name, got {model!r}")
    return UsageBucket(
        timestamp=parse_timestamp(row.get("timestamp"), f"{where}.timestamp"),
        model=model,
        count=_count(row.get("count", 0), f"{where}.count"),
        values=_values(row, frozenset({"timestamp", "model", "count"}), where),
    )


def _buckets(body: Mapping[str, Any], key: str) -> list[Any]:
    rows = body.get(key)
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise _Bad(key, f"expected a list, got {type(rows).__name__}")
    return rows


def _decode(body: Any) -> CallStats:
    if not isinstance(body, Mapping):
        raise _Bad("", f"expected a JSON object, got {type(body).__name__}")
    tz = body.get("timezone", "UTC")
    if not isinstance(tz, str):
        raise _Bad("timezone", f"expected a zone name, got {tz!r}")
    return CallStats(
        start=parse_timestamp(body.get("start"), "start"),
        end=parse_timestamp(body.get("end"), "end"),
        granularity=_count(body.get("granularity"), "granularity"),
        timezone=tz,
        usage_buckets=tuple(
            _usage_bucket(row, f"usage_buckets[{i}]")
            for i, row in enumerate(_buckets(body, "usage_buckets"))
        ),
        call_buckets=tuple(
            _call_bucket(row, f"call_buckets[{i}]")
            for i, row in enumerate(_buckets(body, "call_buckets"))
        ),
    )


def parse_call_stats(body: Any, *, path: str = "/calls/stats") -> CallStats:
    """Decode a ``/calls/stats`` answer; a body that does not fit raises ResponseValidationError."""
    try:
        return _decode(body)
    except _Bad as exc:
        raise ResponseValidationError(
            f"POST {path}: unexpected answer at {exc.where or 'the top level'}: {exc}",
            method="POST",
            path=path,
            field_path=exc.where,
            body_snippet=repr(body)[:300],
        ) from None


for _cls in (CallBucket, CallMetric, CallStats, CallsFilter, UsageBucket, UsageMetric):
    _cls.__module__ = "helicone_users"
del _cls
