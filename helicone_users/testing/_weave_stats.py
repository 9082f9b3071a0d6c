"""The ``/calls/stats`` answer from aggregated cells: dense buckets, labels, fill values, costs.

Each stored request is one Weave call that started at ``request_created_at`` and ended at
``response_created_at``; its usage is keyed by its model. DuckDB aggregates the calls of each
bucket (and of each bucket and model, for usage) into ``Cell`` values (``_weave_sql``); this
module turns cells into the answer body and knows nothing of HTTP or DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone, tzinfo
from typing import Any, Final, NamedTuple

import attrs

from helicone_users._weave_models import COST_METRICS, TOKEN_METRICS, format_utc, metric_key
from helicone_users.testing._synthetic import MODEL_PRICES
from helicone_users.weave import Alignment, bucket_starts

__all__ = [
    "Cell",
    "MetricSpec",
    "ModelPrice",
    "StatsQuery",
    "Summary",
    "compute_stats",
    "default_prices",
    "token_specs",
]

Number = float | int | None

# The synthetic price table has prompt and completion prices only; cache tokens are priced
# like the common provider rates: reads at a tenth of the prompt price, writes at 1.25 times.
CACHE_READ_PRICE_FACTOR: Final = 0.1
CACHE_WRITE_PRICE_FACTOR: Final = 1.25
#: The token sums a cost needs, as ``Cell.totals`` keys.
COST_TOKENS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


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


class Summary(NamedTuple):
    """One metric's values in one cell, aggregated: how many, their sum, min and max, how many
    equal 1 and 0, and the requested percentiles (linear interpolation; None when empty)."""

    n: int = 0
    total: int = 0
    low: int | None = None
    high: int | None = None
    ones: int = 0
    zeros: int = 0
    percentiles: tuple[float | None, ...] = ()


class Cell(NamedTuple):
    """The calls of one bucket (``model`` None) or the usage of one model in one bucket."""

    bucket: int
    model: str | None
    calls: int
    summaries: tuple[Summary, ...]
    totals: Mapping[str, int] = {}


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


def _aggregate(aggregation: str, summary: Summary, as_float: bool) -> Number:
    # Empty cells: sums, counts and averages are 0 (COALESCE); min and max are null.
    if aggregation == "count":
        return summary.n
    if aggregation == "count_true":
        return summary.ones
    if aggregation == "count_false":
        return summary.zeros
    if aggregation == "avg":
        return summary.total / summary.n if summary.n else 0.0
    if aggregation == "sum":
        return float(summary.total) if as_float else summary.total
    extreme = summary.low if aggregation == "min" else summary.high
    if extreme is None or summary.n == 0:
        return None
    return float(extreme) if as_float else extreme


def metric_values(spec: MetricSpec, summary: Summary, as_float: bool) -> dict[str, Number]:
    """The answer's keys and values for one requested metric in one cell."""
    out: dict[str, Number] = {}
    for aggregation in spec.effective_aggregations():
        out[metric_key(spec.metric, aggregation)] = _aggregate(aggregation, summary, as_float)
    for index, percentile in enumerate(spec.percentiles):
        found = summary.percentiles[index] if index < len(summary.percentiles) else None
        out[metric_key(spec.metric, percentile=percentile)] = None if found is None else float(
            found)  # fmt: skip
    return out


# --- buckets -------------------------------------------------------------------------------------


def label(moment: datetime, zone_name: str, zone: tzinfo) -> str:
    """A bucket timestamp as the server writes it: naive for UTC, with the offset otherwise."""
    if zone_name == "UTC":
        return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat()
    return moment.astimezone(zone).isoformat()


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


def _costs(totals: Mapping[str, int], price: ModelPrice | None,
           wanted: Sequence[str]) -> dict[str, Number]:
    read = totals.get("cache_read_input_tokens", 0)
    creation = totals.get("cache_creation_input_tokens", 0)
    if price is None:
        input_cost = output_cost = total_cost = 0.0
    else:
        input_cost = (totals.get("input_tokens", 0) - read - creation) * price.prompt
        output_cost = totals.get("output_tokens", 0) * price.completion
        total_cost = (input_cost + output_cost + read * price.cache_read
                      + creation * price.cache_creation)
    values = {"input_cost": input_cost, "output_cost": output_cost, "total_cost": total_cost}
    return {f"sum_{name}": values[name] for name in wanted}


def _bucket_values(cell: Cell | None, specs: Sequence[MetricSpec],
                   as_float: bool) -> dict[str, Number]:
    out: dict[str, Number] = {}
    for index, spec in enumerate(specs):
        summary = cell.summaries[index] if cell is not None else Summary()
        out.update(metric_values(spec, summary, as_float))
    out["count"] = cell.calls if cell is not None else 0
    return out


def compute_stats(
    cells: Iterable[Cell], query: StatsQuery, prices: Mapping[str, ModelPrice],
    *, echo_start: str | None = None, echo_end: str | None = None,
) -> dict[str, Any]:
    """The ``/calls/stats`` answer body from the query's cells; dense buckets, documented fill
    values (a bucket or bucket x model without a cell is empty)."""
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
    calls: dict[int, Cell] = {}
    usage: dict[tuple[int, str], Cell] = {}
    for cell in cells:
        if cell.model is None:
            calls[cell.bucket] = cell
        else:
            usage[(cell.bucket, cell.model)] = cell
    if query.call_metrics:
        body["call_buckets"] = [
            {"timestamp": label(moment, query.timezone, query.zone),
             **_bucket_values(calls.get(index), query.call_metrics, as_float=False)}
            for index, moment in enumerate(starts)
        ]
    if query.usage_metrics:
        body["usage_buckets"] = _usage_rows(starts, usage, query, prices)
    return body


def _usage_rows(starts: Sequence[datetime], cells: Mapping[tuple[int, str], Cell],
                query: StatsQuery, prices: Mapping[str, ModelPrice]) -> list[dict[str, Any]]:
    # The grid: every model used anywhere in the range, in every bucket (zeros where unused).
    models = sorted({model for _, model in cells})
    tokens, costs = token_specs(query.usage_metrics)
    rows: list[dict[str, Any]] = []
    for index, moment in enumerate(starts):
        stamp = label(moment, query.timezone, query.zone)
        for model in models:
            cell = cells.get((index, model))
            rows.append({"timestamp": stamp, "model": model,
                         **_bucket_values(cell, tokens, as_float=True),
                         **_costs(cell.totals if cell else {}, prices.get(model), costs)})
    return rows
