"""The emulator's /calls/stats against the SDK, checked by a plain-Python oracle."""

from __future__ import annotations

import base64
import bisect
import contextlib
import random
import statistics
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from helicone_users import (
    AsyncWeaveStats,
    CallMetric,
    CallsFilter,
    CallStats,
    IgnoredFilterWarning,
    UsageMetric,
)
from helicone_users._retry import RetryPolicy
from helicone_users.testing import MODEL_PRICES, Emulator

UTC = timezone.utc
START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
DAYS = 6
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-haiku-20241022", "in-house-llm", "")
OPS = ("chat", "search", "weave:///e/p/op/agent:abc")
ALL_AGGREGATIONS = ("sum", "avg", "min", "max", "count", "count_true", "count_false")
TOKEN_METRICS = ("input_tokens", "output_tokens", "total_tokens", "cache_read_input_tokens",
                 "cache_creation_input_tokens")


# --- data and the oracle -------------------------------------------------------------------------


def make_rows(seed: int, start: datetime, days: float, count: int,
              models: Sequence[str] = MODELS, prefix: str = "r") -> list[dict[str, Any]]:
    """Requests spread over ``days``, with every field the stats look at varied."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        created = start + timedelta(seconds=rng.uniform(0, days * 86400))
        created = created.replace(microsecond=created.microsecond // 1000 * 1000)
        prompt = rng.randint(0, 4000)
        row: dict[str, Any] = {
            "request_id": f"{prefix}{seed}-{index}",
            "user_id": f"user-{rng.randint(1, 5)}",
            "request_created_at": created.isoformat(),
            "latency": rng.choice((1, 1000, 3000, rng.randint(5, 20000))),
            "model": rng.choice(models),
            "provider": "openai",
            "status": rng.choice((200, 200, 200, 200, 429, 500)),
            "prompt_tokens": prompt,
            "completion_tokens": rng.randint(0, 1500),
            "prompt_cache_read_tokens": rng.choice((0, 0, prompt // 2)),
            "prompt_cache_write_tokens": rng.choice((0, 0, 1)),
            "op_name": rng.choice(OPS),
            "trace_id": f"t{rng.randint(1, 8)}",
            "parent_id": rng.choice((None, None, "p1", "p2")),
            "thread_id": rng.choice((None, "th1", "th2")),
            "turn_id": rng.choice((None, "tu1")),
            "wb_user_id": rng.choice((None, "u1", "u2")),
            "wb_run_id": rng.choice((None, "run1")),
        }
        if rng.random() < 0.2:
            row["total_tokens"] = rng.randint(0, 9000)  # a provider's own, different total
        if rng.random() < 0.2:
            row["response_created_at"] = (created + timedelta(milliseconds=rng.randint(0, 999)))
        rows.append(row)
    return rows


def oracle_call(row: dict[str, Any], *, raw_total: bool = False) -> dict[str, Any]:
    started = datetime.fromisoformat(row["request_created_at"])
    ended = row.get("response_created_at") or started + timedelta(milliseconds=row["latency"])
    prompt, completion = row["prompt_tokens"], row["completion_tokens"]
    usage = None
    if row["model"]:
        usage = {
            "input_tokens": prompt,
            "output_tokens": completion,
            "total_tokens": row.get("total_tokens", prompt + completion) if raw_total
            else prompt + completion,
            "cache_read_input_tokens": row["prompt_cache_read_tokens"],
            "cache_creation_input_tokens": row["prompt_cache_write_tokens"],
        }
    return {
        "id": row["request_id"], "started": started,
        "latency_ms": int((ended - started).total_seconds() * 1000 + 1e-6),
        "error_count": 1 if row["status"] >= 400 else 0, "call_count": 1,
        "model": row["model"], "usage": usage, **{k: row[k] for k in (
            "op_name", "trace_id", "parent_id", "thread_id", "turn_id", "wb_user_id",
            "wb_run_id")},
    }


def oracle_starts(start: datetime, end: datetime, size: int, zone: tzinfo,
                  utc_aligned: bool = False) -> list[datetime]:
    """Bucket starts for a size dividing a day, in a range without a DST change."""
    if utc_aligned:
        first = int(start.timestamp()) // size * size
        count = int((end.timestamp() - first) // size) + 1
        moments = [datetime.fromtimestamp(first + k * size, UTC) for k in range(count)]
        return [m for m in moments if m < end]
    local = start.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    into = (local.replace(tzinfo=None) - midnight).total_seconds()
    wall = midnight + timedelta(seconds=into // size * size)
    moments = []
    while (moment := wall.replace(tzinfo=zone).astimezone(UTC)) < end:
        moments.append(moment)
        wall += timedelta(seconds=size)
    return moments


def pct(values: Sequence[float], p: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    if p in (0, 100) or len(ordered) == 1:
        return float(ordered[0] if p == 0 else ordered[-1])
    return statistics.quantiles(ordered, n=100, method="inclusive")[p - 1]


def agg(name: str, values: Sequence[float]) -> float | int | None:
    if name == "sum":
        return sum(values)
    if name == "avg":
        return statistics.fmean(values) if values else 0
    if name == "count":
        return len(values)
    if name == "count_true":
        return len([v for v in values if v == 1])
    if name == "count_false":
        return len([v for v in values if v == 0])
    if not values:
        return None
    return min(values) if name == "min" else max(values)


def keep(call: dict[str, Any], flt: dict[str, Any]) -> bool:
    fields = {"op_names": "op_name", "trace_ids": "trace_id", "parent_ids": "parent_id",
              "thread_ids": "thread_id", "turn_ids": "turn_id", "wb_user_ids": "wb_user_id",
              "wb_run_ids": "wb_run_id", "call_ids": "id"}
    for key, column in fields.items():
        if key in flt and call[column] not in flt[key]:
            return False
    return not (flt.get("trace_roots_only") and call["parent_id"] is not None)


def price_of(model: str) -> tuple[float, float, float, float]:
    for _provider, name, prompt, completion, _weight in MODEL_PRICES:
        if name == model:
            return prompt, completion, prompt * 0.1, prompt * 1.25
    return 0.0, 0.0, 0.0, 0.0


def oracle(rows: Iterable[dict[str, Any]], *, start: datetime, end: datetime, size: int,
           zone: tzinfo, call_specs: Sequence[tuple[str, Sequence[str], Sequence[int]]] = (),
           usage_specs: Sequence[tuple[str, Sequence[str], Sequence[int]]] = (),
           costs: Sequence[str] = (), flt: dict[str, Any] | None = None,
           utc_aligned: bool = False, raw_total: bool = False) -> dict[str, Any]:
    """The expected buckets, computed directly from the input rows."""
    calls = [oracle_call(r, raw_total=raw_total) for r in rows]
    calls = [c for c in calls if start <= c["started"] < end and keep(c, flt or {})]
    starts = oracle_starts(start, end, size, zone, utc_aligned)
    groups: list[list[dict[str, Any]]] = [[] for _ in starts]
    for call in calls:
        groups[bisect.bisect_right(starts, call["started"]) - 1].append(call)
    call_buckets = []
    for moment, group in zip(starts, groups, strict=True):
        bucket: dict[str, Any] = {"timestamp": moment, "count": len(group)}
        for metric, aggs, pcts in call_specs:
            values = [c[metric] for c in group]
            bucket.update({f"{a}_{metric}": agg(a, values) for a in aggs})
            bucket.update({f"p{p}_{metric}": pct(values, p) for p in pcts})
        if call_specs:
            call_buckets.append(bucket)
    models = sorted({c["model"] for c in calls if c["usage"]}) if usage_specs or costs else []
    usage_buckets = []
    for moment, group in zip(starts, groups, strict=True):
        for model in models:
            usages = [c["usage"] for c in group if c["model"] == model]
            bucket = {"timestamp": moment, "model": model, "count": len(usages)}
            for metric, aggs, pcts in usage_specs:
                values = [u[metric] for u in usages]
                bucket.update({f"{a}_{metric}": agg(a, values) for a in aggs})
                bucket.update({f"p{p}_{metric}": pct(values, p) for p in pcts})
            bucket.update(oracle_costs(usages, model, costs))
            usage_buckets.append(bucket)
    return {"call_buckets": call_buckets, "usage_buckets": usage_buckets}


def oracle_costs(usages: Sequence[dict[str, int]], model: str,
                 costs: Sequence[str]) -> dict[str, float]:
    prompt, completion, read_price, write_price = price_of(model)
    tokens = {k: sum(u[k] for u in usages) for k in TOKEN_METRICS}
    read, write = tokens["cache_read_input_tokens"], tokens["cache_creation_input_tokens"]
    input_cost = (tokens["input_tokens"] - read - write) * prompt
    output_cost = tokens["output_tokens"] * completion
    total = input_cost + output_cost + read * read_price + write * write_price
    out = {"input_cost": input_cost, "output_cost": output_cost, "total_cost": total}
    return {f"sum_{name}": out[name] for name in costs}


def assert_matches(stats: CallStats, expected: dict[str, Any]) -> None:
    got_calls = [{"timestamp": b.timestamp, "count": b.count, **b.values}
                 for b in stats.call_buckets]
    got_usage = [{"timestamp": b.timestamp, "model": b.model, "count": b.count, **b.values}
                 for b in stats.usage_buckets]
    for got, want in ((got_calls, expected["call_buckets"]),
                      (got_usage, expected["usage_buckets"])):
        assert len(got) == len(want)
        for got_row, want_row in zip(got, want, strict=True):
            assert got_row == {k: pytest.approx(v, rel=1e-9, abs=1e-12)
                               if isinstance(v, float) else v for k, v in want_row.items()}


# --- fixtures ------------------------------------------------------------------------------------

ROWS = make_rows(1, START, DAYS, 400)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(ROWS, api_key="weave-test-key") as running:
        yield running


@pytest.fixture
async def weave(emulator: Emulator) -> AsyncIterator[AsyncWeaveStats]:
    async with AsyncWeaveStats(emulator.api_key, base_url=emulator.base_url,
                               retry=RetryPolicy.testing()) as client:
        yield client


async def post(emulator: Emulator, body: Any, *, key: str | None = None) -> tuple[int, Any]:
    """A raw POST /calls/stats, for the status codes and bodies."""
    password = key if key is not None else emulator.api_key
    token = base64.b64encode(f"api:{password}".encode()).decode()
    async with aiohttp.ClientSession() as session, session.post(
        f"{emulator.base_url}/calls/stats", json=body, headers={"Authorization": f"Basic {token}"}
    ) as response:
        return response.status, await response.json(content_type=None)


# --- values equal the oracle ---------------------------------------------------------------------

CASES = [
    ("UTC", START + timedelta(hours=7, minutes=13), timedelta(hours=1, minutes=50), None, 300),
    ("UTC", START, timedelta(days=2), 3600, 3600),
    ("America/New_York", START + timedelta(hours=3), timedelta(days=4), 86400, 86400),
    ("Asia/Kolkata", START + timedelta(minutes=20), timedelta(days=2), 3600, 3600),
    ("Asia/Kolkata", START, timedelta(days=5), None, 43200),
    ("Australia/Eucla", START + timedelta(hours=1), timedelta(days=3), 1800, 1800),
    ("Europe/Berlin", START, timedelta(hours=12), None, 3600),
]


@pytest.mark.parametrize(("zone_name", "start", "span", "granularity", "size"), CASES)
async def test_call_buckets_equal_a_plain_python_computation(
    weave: AsyncWeaveStats, zone_name: str, start: datetime, span: timedelta,
    granularity: int | None, size: int,
) -> None:
    specs = [("latency_ms", ALL_AGGREGATIONS, (0, 50, 95, 99, 100)),
             ("call_count", ALL_AGGREGATIONS, (50,)),
             ("error_count", ALL_AGGREGATIONS, (50,))]
    stats = await weave.call_stats(
        "e/p", start=start, end=start + span, granularity=granularity, timezone=zone_name,
        call_metrics=[CallMetric(m, aggregations=a, percentiles=p) for m, a, p in specs],
    )
    assert stats.granularity == size
    assert stats.usage_buckets == ()
    expected = oracle(ROWS, start=start, end=start + span, size=size, zone=ZoneInfo(zone_name),
                      call_specs=specs)
    assert sum(b["count"] for b in expected["call_buckets"]) > 0
    assert_matches(stats, expected)


@pytest.mark.parametrize(("zone_name", "start", "span", "granularity", "size"), CASES)
async def test_usage_buckets_equal_a_plain_python_computation(
    weave: AsyncWeaveStats, zone_name: str, start: datetime, span: timedelta,
    granularity: int | None, size: int,
) -> None:
    specs = [(metric, ALL_AGGREGATIONS, (25, 95)) for metric in TOKEN_METRICS]
    costs = ("input_cost", "output_cost", "total_cost")
    stats = await weave.call_stats(
        "e/p", start=start, end=start + span, granularity=granularity, timezone=zone_name,
        usage_metrics=[*(UsageMetric(m, aggregations=a, percentiles=p) for m, a, p in specs),
                       *(UsageMetric(c) for c in costs)],
    )
    expected = oracle(ROWS, start=start, end=start + span, size=size, zone=ZoneInfo(zone_name),
                      usage_specs=specs, costs=costs)
    assert expected["usage_buckets"]
    assert_matches(stats, expected)


async def test_cost_alone_brings_the_token_sums_it_needs(weave: AsyncWeaveStats) -> None:
    end = START + timedelta(days=1)
    stats = await weave.call_stats("e/p", start=START, end=end, granularity=21600,
                                   usage_metrics=[UsageMetric("total_cost")])
    expected = oracle(ROWS, start=START, end=end, size=21600, zone=UTC, costs=("total_cost",),
                      usage_specs=[("input_tokens", ("sum",), ()),
                                   ("output_tokens", ("sum",), ())])
    assert list(stats.usage_buckets[0].values) == [
        "sum_input_tokens", "sum_output_tokens", "sum_total_cost"]
    assert_matches(stats, expected)


@pytest.mark.parametrize(
    "flt",
    [
        {"op_names": ["chat"]},
        {"op_names": ["weave:///e/p/op/agent:abc", "search"], "trace_roots_only": True},
        {"trace_roots_only": True},
        {"trace_ids": ["t1", "t2"]},
        {"call_ids": ["r1-3", "r1-7", "r1-11"]},
        {"parent_ids": ["p1"]},
        {"thread_ids": ["th1"]},
        {"turn_ids": ["tu1"]},
        {"wb_user_ids": ["u2"], "wb_run_ids": ["run1"]},
    ],
)
async def test_filters_keep_exactly_the_matching_calls(
    weave: AsyncWeaveStats, flt: dict[str, Any]
) -> None:
    end = START + timedelta(days=DAYS)
    metrics = [("call_count", ("sum",), ()), ("latency_ms", ("max",), (50,))]
    ignored = {"thread_ids", "turn_ids"} & set(flt)
    with pytest.warns(IgnoredFilterWarning) if ignored else contextlib.nullcontext():
        stats = await weave.call_stats(
            "e/p", start=START, end=end, filter=CallsFilter(**flt),
            call_metrics=[CallMetric(m, aggregations=a, percentiles=p) for m, a, p in metrics],
            usage_metrics=[UsageMetric("output_tokens", aggregations=("sum", "max"))],
        )
    expected = oracle(ROWS, start=START, end=end, size=43200, zone=UTC, call_specs=metrics,
                      usage_specs=[("output_tokens", ("sum", "max"), ())], flt=flt)
    assert 0 < sum(b.count for b in stats.call_buckets) < len(ROWS)
    assert_matches(stats, expected)


async def test_an_empty_range_has_dense_zero_buckets_and_no_usage(weave: AsyncWeaveStats) -> None:
    start = datetime(2025, 6, 1, tzinfo=UTC)
    stats = await weave.call_stats(
        "e/p", start=start, end=start + timedelta(hours=3), granularity=3600,
        call_metrics=[CallMetric("latency_ms", aggregations=ALL_AGGREGATIONS, percentiles=(99,))],
        usage_metrics=[UsageMetric("input_tokens", aggregations=("sum", "min"))],
    )
    assert stats.usage_buckets == ()
    assert [b.timestamp for b in stats.call_buckets] == [start + timedelta(hours=h)
                                                         for h in range(3)]
    assert {b.count for b in stats.call_buckets} == {0}
    assert stats.call_buckets[0].values == {
        "sum_latency_ms": 0, "avg_latency_ms": 0, "min_latency_ms": None,
        "max_latency_ms": None, "count_latency_ms": 0, "count_true_latency_ms": 0,
        "count_false_latency_ms": 0, "p99_latency_ms": None,
    }


async def test_a_model_without_use_in_a_bucket_gets_a_zero_row() -> None:
    rows = make_rows(9, START, 0.01, 1, models=("gpt-4o",), prefix="only")
    async with Emulator(rows, api_key="k") as emulator, AsyncWeaveStats(
        "k", base_url=emulator.base_url
    ) as client:
        stats = await client.call_stats(
            "e/p", start=START, end=START + timedelta(hours=2), granularity=3600,
            usage_metrics=[UsageMetric("input_tokens", aggregations=("sum", "avg", "max"))],
        )
    empty = stats.usage_buckets[1]
    assert (empty.model, empty.count) == ("gpt-4o", 0)
    assert empty.values == {"sum_input_tokens": 0, "avg_input_tokens": 0, "max_input_tokens": None}


# --- the 31-day limit and the client's windows ---------------------------------------------------

LONG_START = datetime(2025, 11, 3, 9, 30, tzinfo=UTC)
DST_START = datetime(2026, 2, 1, 17, 45, tzinfo=UTC)  # spans the March DST changes


def long_rows(start: datetime) -> list[dict[str, Any]]:
    return [
        *make_rows(2, start, 90, 300, models=("gpt-4o", "gpt-4o-mini", ""), prefix="a"),
        # A model used in the last month only: the other windows need zero rows for it.
        *make_rows(3, start + timedelta(days=70), 5, 20, models=("o3-mini",), prefix="b"),
    ]


@pytest.mark.parametrize(
    ("start", "zone_name", "granularity", "quirks", "alignment"),
    [
        (LONG_START, "UTC", None, (), "timezone"),
        (LONG_START, "Asia/Kolkata", None, (), "timezone"),
        (LONG_START, "America/New_York", 21600, (), "timezone"),
        (LONG_START, "Asia/Kolkata", 3600, ("utc_bucket_alignment",), "utc"),
        (LONG_START, "UTC", 60, (), "timezone"),
        (DST_START, "Europe/Berlin", None, (), "timezone"),
        (DST_START, "America/New_York", 3600, (), "timezone"),
        (DST_START, "America/New_York", 7200, (), "timezone"),
        (DST_START, "Europe/Berlin", 86400, ("utc_bucket_alignment",), "utc"),
    ],
)
async def test_ninety_days_split_by_the_client_equal_one_unlimited_query(
    start: datetime, zone_name: str, granularity: int | None, quirks: tuple[str, ...],
    alignment: Any,
) -> None:
    rows = long_rows(start)
    end = start + timedelta(days=90)
    query: dict[str, Any] = {
        "start": start, "end": end, "granularity": granularity, "timezone": zone_name,
        "usage_metrics": [UsageMetric("input_tokens", aggregations=("sum", "avg", "min"),
                                      percentiles=(90,)), UsageMetric("total_cost")],
        "call_metrics": [CallMetric("latency_ms", aggregations=("avg", "max"),
                                    percentiles=(50,)), CallMetric("error_count")],
    }
    async with Emulator(rows, api_key="k", quirks=quirks) as emulator:
        async with AsyncWeaveStats("k", base_url=emulator.base_url,
                                   bucket_alignment=alignment) as split:
            windows = await split.call_stats("e/p", **query)
        emulator.state.weave_max_range_days = None
        async with AsyncWeaveStats("k", base_url=emulator.base_url,
                                   max_range_days=None) as unlimited:
            whole = await unlimited.call_stats("e/p", **query)
    assert windows == whole
    assert len({b.model for b in whole.usage_buckets}) == 3
    assert sum(b.count for b in whole.call_buckets) == len(rows)


async def test_the_emulator_refuses_more_than_31_days_by_default(emulator: Emulator) -> None:
    status, body = await post(emulator, {
        "project_id": "e/p", "start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:01Z",
        "call_metrics": [{"metric": "call_count"}]})
    assert status == 422
    assert body["detail"][0]["msg"] == "Value error, CallStatsReq date range cannot exceed 31 days"


async def test_the_server_message_reaches_the_caller_as_a_typed_error(
    weave: AsyncWeaveStats,
) -> None:
    from helicone_users import BadRequestError, UnprocessableEntityError

    with pytest.raises(UnprocessableEntityError, match="end must be after start"):
        await weave.call_stats_raw({"project_id": "e/p", "start": "2026-01-02T00:00:00Z",
                                    "end": "2026-01-01T00:00:00Z"})
    with pytest.raises(BadRequestError, match=r"Percentile must be between 0 and 100, got 120\.0"):
        await weave.call_stats_raw({"project_id": "e/p", "start": "2026-01-01T00:00:00Z",
                                    "end": "2026-01-02T00:00:00Z", "call_metrics": [
                                        {"metric": "latency_ms", "percentiles": [120]}]})
