"""The ``/calls/stats`` aggregation as DuckDB queries: calls per bucket, usage per bucket and model.

A stored request is a call that started at ``request_created_at``; it ended at
``response_created_at`` (or ``latency`` ms later when that is missing), and an end before the
start means an unfinished call without a latency. Its usage (when it names a model) is
``input_tokens`` = ``prompt_tokens``, ``output_tokens`` = ``completion_tokens``,
``total_tokens`` = their sum (or the stored ``total_tokens`` with ``raw_total_tokens``), and the
cache tokens. Only the calls in ``[start, end)`` that match the filter count. Each bucket is the
last bucket start at or before the call's start; the starts come from ``bucket_starts``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from helicone_users.testing._sql import Params
from helicone_users.testing._weave_stats import (
    COST_TOKENS,
    Cell,
    MetricSpec,
    StatsQuery,
    Summary,
    token_specs,
)
from helicone_users.weave import bucket_starts

__all__ = ["stats_cells"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MICROSECOND: Final = timedelta(microseconds=1)
_CALL_VALUES: Final[dict[str, str]] = {
    "latency_ms": "CASE WHEN ended >= started THEN (ended - started) // 1000 END",
    "error_count": "CASE WHEN coalesce(nullif(status, 0), 200) >= 400 THEN 1 ELSE 0 END",
    "call_count": "1",
}
_USAGE_VALUES: Final[dict[str, str]] = {
    "input_tokens": "prompt_tokens",
    "output_tokens": "completion_tokens",
    "total_tokens": "prompt_tokens + completion_tokens",
    "cache_read_input_tokens": "prompt_cache_read_tokens",
    "cache_creation_input_tokens": "prompt_cache_write_tokens",
}
# filter key -> the column it matches exactly (an empty list is no filter, as on the server)
_FILTER_COLUMNS: Final = {
    "op_names": "op_name",
    "trace_ids": "trace_id",
    "parent_ids": "parent_id",
    "thread_ids": "thread_id",
    "turn_ids": "turn_id",
    "wb_user_ids": "wb_user_id",
    "wb_run_ids": "wb_run_id",
    "call_ids": "request_id",
}
_CALLS: Final = """
SELECT {bucket} AS bucket, *,
  coalesce(epoch_us(response_created_at), started + latency * 1000) AS ended
FROM (SELECT *, epoch_us(request_created_at) AS started FROM requests WHERE {where})
"""


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _ONE_MICROSECOND


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def bucket_sql(starts: Sequence[int], step: int) -> str:
    """SQL for the bucket index of ``started`` (epoch microseconds): the last start at or before
    it. Runs of equally spaced starts are one division each (a DST change starts a new run)."""
    if len(starts) == 1:
        return "0"  # one bucket, whatever its size
    runs: list[list[int]] = []  # [first index, first start, length]
    for index, start in enumerate(starts):
        if runs and start - starts[index - 1] == step:
            runs[-1][2] += 1
        else:
            runs.append([index, start, 1])
    parts = [f"({first} + least((started - {at}) // {step}, {length - 1}))"
             for first, at, length in runs]  # fmt: skip
    sql = parts[-1]
    for run, part in zip(reversed(runs[1:]), reversed(parts[:-1]), strict=True):
        sql = f"CASE WHEN started < {run[1]} THEN {part} ELSE {sql} END"
    return sql


def _where(query: StatsQuery, params: Params) -> str:
    clauses = [
        f"request_created_at >= {params.add(_naive_utc(query.start))}",
        f"request_created_at < {params.add(_naive_utc(query.end))}",
    ]
    for key, column in _FILTER_COLUMNS.items():
        wanted = query.filter.get(key)
        if wanted:
            clauses.append(f"list_contains({params.add(sorted(wanted))}::VARCHAR[], {column})")
    if query.filter.get("trace_roots_only"):
        clauses.append("parent_id IS NULL")
    if query.filter.get("input_refs") or query.filter.get("output_refs"):
        clauses.append("FALSE")  # stored requests carry no refs
    return " AND ".join(clauses)


def _aggregates(name: str, value: str, spec: MetricSpec, params: Params,
                percentiles: str = "values") -> list[str]:  # fmt: skip
    """The aggregates of ``value`` one requested metric needs, named ``<name>_<part>``.

    ``percentiles``: ``"values"`` computes them (``quantile_cont``), ``"binary"`` counts the 0s
    and 1s they follow from (for 0/1 values), ``"none"`` leaves them to another query.
    """
    wanted = set(spec.effective_aggregations())
    if spec.percentiles and percentiles == "binary":
        wanted |= {"count_true", "count_false"}
    out = [f"count({value}) AS {name}_n"]
    if wanted & {"sum", "avg"}:
        out.append(f"sum({value}) AS {name}_sum")
    if "min" in wanted:
        out.append(f"min({value}) AS {name}_min")
    if "max" in wanted:
        out.append(f"max({value}) AS {name}_max")
    if "count_true" in wanted:
        out.append(f"count(*) FILTER (WHERE {value} = 1) AS {name}_ones")
    if "count_false" in wanted:
        out.append(f"count(*) FILTER (WHERE {value} = 0) AS {name}_zeros")
    if spec.percentiles and percentiles == "values":
        fractions = params.add([percentile / 100 for percentile in spec.percentiles])
        out.append(f"quantile_cont({value}, {fractions}::DOUBLE[]) AS {name}_p")
    return out


def _summary(row: Mapping[str, Any], name: str) -> Summary:
    found = row.get(f"{name}_p")
    return Summary(
        n=int(row[f"{name}_n"]),
        total=int(row.get(f"{name}_sum") or 0),
        low=row.get(f"{name}_min"),
        high=row.get(f"{name}_max"),
        ones=int(row.get(f"{name}_ones") or 0),
        zeros=int(row.get(f"{name}_zeros") or 0),
        percentiles=tuple(found) if found is not None else (),
    )


def _merged(parts: Sequence[Summary]) -> Summary:
    """The summary of the union of the parts' values (percentiles excepted)."""
    lows = [part.low for part in parts if part.low is not None]
    highs = [part.high for part in parts if part.high is not None]
    return Summary(
        n=sum(part.n for part in parts),
        total=sum(part.total for part in parts),
        low=min(lows) if lows else None,
        high=max(highs) if highs else None,
        ones=sum(part.ones for part in parts),
        zeros=sum(part.zeros for part in parts),
    )


def binary_quantile(zeros: int, ones: int, q: float) -> float | None:
    """The linearly interpolated quantile of ``zeros`` 0s and ``ones`` 1s, without the values."""
    count = zeros + ones
    if not count:
        return None
    position = q * (count - 1)
    low = math.floor(position)
    high = min(low + 1, count - 1)
    below, above = int(low >= zeros), int(high >= zeros)
    return float(below + (above - below) * (position - low))


def _fetch(cursor: Any, sql: str, params: Params) -> list[dict[str, Any]]:
    cursor.execute(sql, params.values)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def _fetch_apart(cursor: Any, sql: str, params: Params) -> list[dict[str, Any]]:
    """``_fetch`` on a new connection to the same database (safe in another thread)."""
    other = cursor.cursor()
    try:
        return _fetch(other, sql, params)
    finally:
        other.close()


class _Plan:
    """One pass per (bucket, model) for every sum-like aggregate and the usage percentiles, and
    one per bucket for latency percentiles (the only call percentiles that need the values)."""

    def __init__(self, query: StatsQuery, raw_total_tokens: bool) -> None:
        self.query = query
        self.usage = dict(_USAGE_VALUES, total_tokens="total_tokens") if raw_total_tokens else (
            _USAGE_VALUES)  # fmt: skip
        self.tokens, self.costs = token_specs(query.usage_metrics)

    def grouped_sql(self, bucket: str) -> tuple[str, Params]:
        params = Params()
        source = _CALLS.format(bucket=bucket, where=_where(self.query, params))
        columns = ["count(*) AS calls"]
        for index, spec in enumerate(self.query.call_metrics):
            value = _CALL_VALUES[spec.metric]
            kind = "none" if spec.metric == "latency_ms" else "binary"
            columns += _aggregates(f"c{index}", value, spec, params, percentiles=kind)
        for index, spec in enumerate(self.tokens):
            value = f"CASE WHEN model <> '' THEN {self.usage[spec.metric]} END"
            columns += _aggregates(f"u{index}", value, spec, params)
        if self.costs:
            columns += [f"sum({self.usage[name]}) AS total_{name}" for name in COST_TOKENS]
        sql = f"SELECT bucket, model, {', '.join(columns)} FROM ({source}) GROUP BY 1, 2"
        return sql, params

    def latency_sql(self, bucket: str) -> tuple[str, Params] | None:
        specs = [(index, spec) for index, spec in enumerate(self.query.call_metrics)
                 if spec.metric == "latency_ms" and spec.percentiles]  # fmt: skip
        if not specs:
            return None
        params = Params()
        source = _CALLS.format(bucket=bucket, where=_where(self.query, params))
        columns = [
            agg
            for index, spec in specs
            for agg in _aggregates(f"c{index}", _CALL_VALUES["latency_ms"], spec, params)
            if agg.endswith("_p")
        ]
        return f"SELECT bucket, {', '.join(columns)} FROM ({source}) GROUP BY 1", params


def _call_cells(plan: _Plan, rows: Sequence[Mapping[str, Any]],
                latency: Mapping[int, Mapping[str, Any]]) -> list[Cell]:  # fmt: skip
    specs = plan.query.call_metrics
    by_bucket: dict[int, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_bucket.setdefault(int(row["bucket"]), []).append(row)
    cells: list[Cell] = []
    for bucket, parts in by_bucket.items():
        summaries = []
        for index, spec in enumerate(specs):
            merged = _merged([_summary(part, f"c{index}") for part in parts])
            if spec.metric == "latency_ms":
                found = latency.get(bucket, {}).get(f"c{index}_p")
                ranks = tuple(found) if found is not None else ()
            else:
                ranks = tuple(binary_quantile(merged.zeros, merged.ones, p / 100)
                              for p in spec.percentiles)  # fmt: skip
            summaries.append(merged._replace(percentiles=ranks))
        cells.append(Cell(bucket, None, sum(int(p["calls"]) for p in parts), tuple(summaries)))
    return cells


def _usage_cells(plan: _Plan, rows: Sequence[Mapping[str, Any]]) -> list[Cell]:
    return [
        Cell(int(row["bucket"]), str(row["model"]), int(row["calls"]),
             tuple(_summary(row, f"u{index}") for index in range(len(plan.tokens))),
             {name: int(row[f"total_{name}"]) for name in COST_TOKENS} if plan.costs else {})
        for row in rows
        if row["model"]
    ]  # fmt: skip


def stats_cells(cursor: Any, query: StatsQuery, *, raw_total_tokens: bool = False) -> list[Cell]:
    """The cells of ``query``: one per bucket with calls, one per bucket and model with usage."""
    if not query.granularity or not (query.call_metrics or query.usage_metrics):
        return []
    starts = bucket_starts(query.start, query.end, query.granularity, query.zone, query.alignment)
    if not starts:
        return []
    bucket = bucket_sql([_micros(moment) for moment in starts], query.granularity * 1_000_000)
    plan = _Plan(query, raw_total_tokens)
    latency_sql = plan.latency_sql(bucket)
    # The latency percentiles run on a second connection meanwhile: each pass spends much of
    # its time in one thread gathering the values a percentile needs.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None if latency_sql is None else pool.submit(_fetch_apart, cursor, *latency_sql)
        rows = _fetch(cursor, *plan.grouped_sql(bucket))
        latency = {} if pending is None else {int(row["bucket"]): row for row in pending.result()}
    cells: list[Cell] = []
    if query.call_metrics:
        cells += _call_cells(plan, rows, latency)
    if query.usage_metrics:
        cells += _usage_cells(plan, rows)
    return cells
