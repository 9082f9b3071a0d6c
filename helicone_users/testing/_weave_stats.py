"""The ``/calls/stats`` computation over plain call rows: buckets, aggregates, percentiles, cost.

Each stored request is one Weave call that started at ``request_created_at`` and ended at
``response_created_at``; its usage is keyed by its model. This module knows nothing of HTTP or
DuckDB, so it can be read (and tested) as the definition of the emulator's answers.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Final, NamedTuple

import attrs

from helicone_users._weave_models import COST_METRICS, TOKEN_METRICS, format_utc, metric_key
from helicone_users.testing._synthetic import MODEL_PRICES
from helicone_users.weave import Alignment, bucket_starts

__all__ = [
    "Call",
    "MetricSpec",
    "ModelPrice",
    "StatsQuery",
    "call_from_row",
    "compute_stats",
    "default_prices",
    "quantile",
]

Number = float | int | None

# The synthetic price table has prompt and completion prices only; cache tokens are priced
# like the common provider rates: reads at a tenth of the prompt price, writes at 1.25 times.
CACHE_READ_PRICE_FACTOR: Final = 0.1
CACHE_WRITE_PRICE_FACTOR: Final = 1.25


@attrs.frozen
class ModelPrice:
    """USD per token for one model."""

    prompt: float
    completion: float
    cache_read: float
    cache_creation: float


def default_prices() -> dict[str, ModelPrice]:
    """The emulator's price table: the synthetic models' latest prices."""
    return {
        model: ModelPrice(
            prompt=prompt,
            completion=completion,
            cache_read=prompt * CACHE_READ_PRICE_FACTOR,
            cache_creation=prompt * CACHE_WRITE_PRICE_FACTOR,
        )
        for _provider, model, prompt, completion, _weight in MODEL_PRICES
    }


class Call(NamedTuple):
    """One call as the stats see it; times are microseconds since the Unix epoch (UTC)."""

    # A tuple, not an attrs class: the emulator builds one per stored request per query.
    call_id: str
    started_us: int
    latency_ms: int | None
    error: int
    model: str | None
    usage: Mapping[str, int]
    fields: Mapping[str, str | None]


_FILTER_FIELDS: Final = ("op_name", "trace_id", "parent_id", "thread_id", "turn_id",
                         "wb_user_id", "wb_run_id")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US: Final = timedelta(microseconds=1)


def epoch_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    return (moment - _EPOCH) // _ONE_US


def call_from_row(row: Mapping[str, Any], *, raw_total_tokens: bool = False) -> Call:
    """A stored request as a Weave call.

    ``row`` has the JSONL columns, with ``started_us`` / ``ended_us`` (epoch microseconds of
    ``request_created_at`` / ``response_created_at``) in place of the timestamps.
    """
    started = int(row["started_us"])
    ended = row.get("ended_us")
    if ended is None and row.get("latency") is not None:
        ended = started + int(row["latency"]) * 1000
    # An end before the start is the unfinished-call sentinel: no latency, like the server.
    latency = None if ended is None or ended < started else (int(ended) - started) // 1000
    model = row.get("model") or None
    usage: dict[str, int] = {}
    if model is not None and ended is not None:
        prompt = int(row.get("prompt_tokens") or 0)
        completion = int(row.get("completion_tokens") or 0)
        usage = {
            "input_tokens": prompt,
            "output_tokens": completion,
            "total_tokens": int(row.get("total_tokens") or 0) if raw_total_tokens
            else prompt + completion,
            "cache_read_input_tokens": int(row.get("prompt_cache_read_tokens") or 0),
            "cache_creation_input_tokens": int(row.get("prompt_cache_write_tokens") or 0),
        }
    return Call(
        call_id=str(row["request_id"]),
        started_us=started,
        latency_ms=latency,
        error=1 if int(row.get("status") or 200) >= 400 else 0,
        model=model,
        usage=usage,
        fields={name: row.get(name) for name in _FILTER_FIELDS},
    )


@attrs.frozen
class MetricSpec:
    """One requested metric, as the server sees it after validation."""

    metric: str
    aggregations: tuple[str, ...] = ("sum",)
    percentiles: tuple[float, ...] = ()

    def effective_aggregations(self) -> tuple[str, ...]:
        # Nothing asked at all means a sum, like the server's builders.
        return self.aggregations or (() if self.percentiles else ("sum",))


@attrs.frozen(kw_only=True)
class StatsQuery:
    """A validated request, with the range already resolved to the moments the query uses."""

    start: datetime
    end: datetime
    granularity: int
    zone: tzinfo
    timezone: str
    alignment: Alignment
    usage_metrics: tuple[MetricSpec, ...]
    call_metrics: tuple[MetricSpec, ...]
    filter: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


# --- aggregation ---------------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (ClickHouse ``quantile``); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def _aggregate(aggregation: str, values: Sequence[float], as_float: bool) -> Number:
    # Empty cells: sums, counts and averages are 0 (COALESCE); min and max are null.
    if aggregation == "count":
        return len(values)
    if aggregation == "count_true":
        return sum(1 for value in values if value == 1)
    if aggregation == "count_false":
        return sum(1 for value in values if value == 0)
    if aggregation == "avg":
        return sum(values) / len(values) if values else 0.0
    if aggregation == "sum":
        total = sum(values)
        return float(total) if as_float else total
    if not values:
        return None
    extreme = min(values) if aggregation == "min" else max(values)
    return float(extreme) if as_float else extreme


def _metric_values(spec: MetricSpec, values: Sequence[float], as_float: bool) -> dict[str, Number]:
    out: dict[str, Number] = {}
    for aggregation in spec.effective_aggregations():
        out[metric_key(spec.metric, aggregation)] = _aggregate(aggregation, values, as_float)
    for percentile in spec.percentiles:
        out[metric_key(spec.metric, percentile=percentile)] = quantile(values, percentile / 100)
    return out


# --- filters -------------------------------------------------------------------------------------

# filter key -> the call field it matches exactly
_FILTER_COLUMNS: Final = {
    "op_names": "op_name",
    "trace_ids": "trace_id",
    "parent_ids": "parent_id",
    "thread_ids": "thread_id",
    "turn_ids": "turn_id",
    "wb_user_ids": "wb_user_id",
    "wb_run_ids": "wb_run_id",
}


def _matches(call: Call, spec: Mapping[str, Any]) -> bool:
    # An empty list is no filter at all, as on the server.
    for key, column in _FILTER_COLUMNS.items():
        wanted = spec.get(key)
        if wanted and call.fields.get(column) not in wanted:
            return False
    if spec.get("call_ids") and call.call_id not in spec["call_ids"]:
        return False
    if spec.get("trace_roots_only") and call.fields.get("parent_id") is not None:
        return False
    # Stored requests carry no refs, so a ref filter matches nothing.
    return not (spec.get("input_refs") or spec.get("output_refs"))


def select_calls(calls: Iterable[Call], query: StatsQuery) -> list[Call]:
    """The calls the query counts: started in ``[start, end)`` and matching the filter."""
    low, high = epoch_us(query.start), epoch_us(query.end)
    in_range = [call for call in calls if low <= call.started_us < high]
    if not any(query.filter.values()):
        return in_range
    return [call for call in in_range if _matches(call, query.filter)]


# --- buckets -------------------------------------------------------------------------------------


def label(moment: datetime, zone_name: str, zone: tzinfo) -> str:
    """A bucket timestamp as the server writes it: naive for UTC, with the offset otherwise."""
    if zone_name == "UTC":
        return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat()
    return moment.astimezone(zone).isoformat()


def _by_bucket(calls: Iterable[Call], starts: Sequence[datetime]) -> list[list[Call]]:
    # Buckets are consecutive intervals, so a call belongs to the last one starting before it.
    bounds = [epoch_us(moment) for moment in starts]
    groups: list[list[Call]] = [[] for _ in starts]
    for call in calls:
        groups[bisect.bisect_right(bounds, call.started_us) - 1].append(call)
    return groups


def _call_bucket(calls: Sequence[Call], specs: Sequence[MetricSpec]) -> dict[str, Number]:
    out: dict[str, Number] = {}
    for spec in specs:
        if spec.metric == "latency_ms":
            values: list[float] = [c.latency_ms for c in calls if c.latency_ms is not None]
        elif spec.metric == "error_count":
            values = [c.error for c in calls]
        else:
            values = [1 for _ in calls]
        out.update(_metric_values(spec, values, as_float=False))
    out["count"] = len(calls)
    return out


def token_specs(specs: Sequence[MetricSpec]) -> tuple[list[MetricSpec], list[str]]:
    """Token metrics to aggregate (plus the sums cost needs) and the cost metrics requested."""
    tokens = [spec for spec in specs if spec.metric in TOKEN_METRICS]
    costs = [name for name in COST_METRICS if any(spec.metric == name for spec in specs)]
    needs = {"input_tokens": ("input_cost", "total_cost"),
             "output_tokens": ("output_cost", "total_cost")}
    for metric, users in needs.items():
        has_sum = any(s.metric == metric and "sum" in s.effective_aggregations() for s in tokens)
        if not has_sum and any(cost in costs for cost in users):
            tokens.append(MetricSpec(metric, ("sum",)))
    return tokens, costs


def _costs(usages: Sequence[Mapping[str, int]], price: ModelPrice | None,
           wanted: Sequence[str]) -> dict[str, Number]:
    def total(key: str) -> int:
        return sum(usage[key] for usage in usages)

    read, creation = total("cache_read_input_tokens"), total("cache_creation_input_tokens")
    if price is None:
        input_cost = output_cost = total_cost = 0.0
    else:
        input_cost = (total("input_tokens") - read - creation) * price.prompt
        output_cost = total("output_tokens") * price.completion
        total_cost = (input_cost + output_cost + read * price.cache_read
                      + creation * price.cache_creation)
    values = {"input_cost": input_cost, "output_cost": output_cost, "total_cost": total_cost}
    return {f"sum_{name}": values[name] for name in wanted}


def _usage_bucket(usages: Sequence[Mapping[str, int]], tokens: Sequence[MetricSpec],
                  costs: Sequence[str], price: ModelPrice | None) -> dict[str, Number]:
    out: dict[str, Number] = {}
    for spec in tokens:
        out.update(_metric_values(spec, [usage[spec.metric] for usage in usages], as_float=True))
    out["count"] = len(usages)
    out.update(_costs(usages, price, costs))
    return out


def compute_stats(
    calls: Iterable[Call], query: StatsQuery, prices: Mapping[str, ModelPrice],
    *, echo_start: str | None = None, echo_end: str | None = None,
) -> dict[str, Any]:
    """The ``/calls/stats`` answer body for ``calls``; dense buckets, documented fill values."""
    selected = select_calls(calls, query)
    body: dict[str, Any] = {
        "start": echo_start or format_utc(query.start),
        "end": echo_end or format_utc(query.end),
        "granularity": query.granularity,
        "timezone": query.timezone,
        "usage_buckets": [],
        "call_buckets": [],
    }
    if not query.usage_metrics and not query.call_metrics:
        body["granularity"] = 0
        return body
    starts = bucket_starts(query.start, query.end, query.granularity, query.zone, query.alignment)
    groups = _by_bucket(selected, starts)
    if query.call_metrics:
        body["call_buckets"] = [
            {"timestamp": label(moment, query.timezone, query.zone),
             **_call_bucket(group, query.call_metrics)}
            for moment, group in zip(starts, groups, strict=True)
        ]
    if query.usage_metrics:
        body["usage_buckets"] = _usage_rows(starts, groups, query, prices)
    return body


def _usage_rows(starts: Sequence[datetime], groups: Sequence[Sequence[Call]],
                query: StatsQuery, prices: Mapping[str, ModelPrice]) -> list[dict[str, Any]]:
    # The grid: every model used anywhere in the range, in every bucket (zeros where unused).
    cells: dict[tuple[int, str], list[Mapping[str, int]]] = {}
    for index, group in enumerate(groups):
        for call in group:
            if call.usage and call.model:
                cells.setdefault((index, call.model), []).append(call.usage)
    models = sorted({model for _, model in cells})
    tokens, costs = token_specs(query.usage_metrics)
    rows: list[dict[str, Any]] = []
    for index, moment in enumerate(starts):
        stamp = label(moment, query.timezone, query.zone)
        for model in models:
            usages = cells.get((index, model), [])
            rows.append({"timestamp": stamp, "model": model,
                         **_usage_bucket(usages, tokens, costs, prices.get(model))})
    return rows
