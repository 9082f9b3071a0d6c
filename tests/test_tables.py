"""Arrow tables and DataFrames of results: fixed schemas, sync = async, missing extras named."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from _mock_http import mock_http

from helicone_users import (
    AsyncHeliconeUsers,
    AsyncWeaveStats,
    CallBucket,
    CallMetric,
    CallStats,
    HeliconeError,
    HeliconeUsers,
    MissingDependencyError,
    ResponseValidationError,
    UsageBucket,
    UsageMetric,
    UserMetrics,
    UserStats,
    UserStatsList,
    WeaveStats,
)
from tests.conftest import ServedEmulator

UTC = timezone.utc
TS = pa.timestamp("ms", tz="UTC")
USERS_SCHEMA = [
    ("user_id", pa.string()),
    ("active_for", pa.int64()),
    ("first_active", TS),
    ("last_active", TS),
    ("total_requests", pa.int64()),
    ("average_requests_per_day_active", pa.float64()),
    ("average_tokens_per_request", pa.float64()),
    ("total_completion_tokens", pa.int64()),
    ("total_prompt_tokens", pa.int64()),
    ("cost", pa.float64()),
    ("rate_limited_count", pa.int64()),
]


def _client(served: ServedEmulator) -> AsyncHeliconeUsers:
    return AsyncHeliconeUsers(served.api_key, base_url=served.base_url)


def _ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _user_row(user: UserMetrics) -> dict[str, Any]:
    row = {name: getattr(user, name) for name, _ in USERS_SCHEMA}
    row["first_active"], row["last_active"] = _ms(user.first_active), _ms(user.last_active)
    return row


async def test_the_pagers_table_holds_every_user_served_with_the_documented_schema(
    served: ServedEmulator,
) -> None:
    async with _client(served) as client:
        users = [user async for user in client.users.iter_metrics(page_size=7)]
        table = await client.users.iter_metrics(page_size=7).to_arrow()
    assert [(field.name, field.type) for field in table.schema] == USERS_SCHEMA
    assert len(users) > 7
    assert table.to_pylist() == [_user_row(user) for user in users]


async def test_record_batches_arrive_one_per_page_and_add_up_to_the_table(
    served: ServedEmulator,
) -> None:
    async with _client(served) as client:
        pager = client.users.iter_metrics(page_size=7)
        batches = [batch async for batch in pager.record_batches()]
        table = await client.users.iter_metrics(page_size=7).to_arrow()
    assert len(batches) == -(-table.num_rows // 7)
    assert all(batch.num_rows <= 7 for batch in batches)
    assert pa.Table.from_batches(batches).equals(table)


async def test_frames_from_the_sync_and_async_apis_are_equal(served: ServedEmulator) -> None:
    async with _client(served) as client:
        async_polars = await client.users.iter_metrics(page_size=9).to_polars()
        async_pandas = await client.users.iter_metrics(page_size=9).to_pandas()
    with HeliconeUsers(served.api_key, base_url=served.base_url) as client:
        sync_polars = client.users.iter_metrics(page_size=9).to_polars()
        sync_pandas = client.users.iter_metrics(page_size=9).to_pandas()
        sync_batches = list(client.users.iter_metrics(page_size=9).record_batches())
    assert sync_polars.equals(async_polars)
    pd.testing.assert_frame_equal(sync_pandas, async_pandas)
    assert pa.Table.from_batches(sync_batches).to_pandas().equals(async_pandas)
    assert sync_polars.schema["last_active"] == pl.Datetime("ms", "UTC")
    assert sync_polars.schema["cost"] == pl.Float64
    assert str(sync_pandas["first_active"].dtype) == "datetime64[ms, UTC]"
    assert sync_polars.height == len(sync_pandas) > 9


async def test_an_empty_listing_is_an_empty_table_with_the_schema(served: ServedEmulator) -> None:
    async with _client(served) as client:
        table = await client.users.iter_metrics('user_id = "nobody"').to_arrow()
    assert table.num_rows == 0
    assert [(field.name, field.type) for field in table.schema] == USERS_SCHEMA


async def test_one_page_converts_on_its_own(served: ServedEmulator) -> None:
    async with _client(served) as client:
        page = await client.users.metrics(sort=("cost", "desc"), limit=5)
    frame = page.to_polars()
    assert frame["user_id"].to_list() == [user.user_id for user in page.users]
    assert page.to_arrow().to_pylist() == [_user_row(user) for user in page.users]
    assert list(page.to_pandas()["cost"]) == [user.cost for user in page.users]


async def test_query_returns_a_plain_list_that_also_converts_to_tables(
    served: ServedEmulator,
) -> None:
    async with _client(served) as client:
        page = await client.users.metrics(limit=3)
        stats = await client.users.query([user.user_id for user in page.users])
    assert isinstance(stats, UserStatsList)
    assert stats == list(stats)
    assert all(isinstance(row, UserStats) for row in stats)
    table = stats.to_arrow()
    assert [(f.name, f.type) for f in table.schema] == [
        ("user_id", pa.string()), ("count", pa.int64()), ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()), ("cost", pa.float64()),
    ]  # fmt: skip
    assert table.column("count").to_pylist() == [row.count for row in stats]
    assert stats.to_polars()["user_id"].to_list() == [row.user_id for row in stats]
    assert list(stats.to_pandas()["cost"]) == [row.cost for row in stats]


def test_query_through_the_sync_facade_keeps_the_table_methods(served: ServedEmulator) -> None:
    with HeliconeUsers(served.api_key, base_url=served.base_url) as client:
        ids = [user.user_id for user in client.users.metrics(limit=4).users]
        stats = client.users.query(ids)
    assert stats.to_arrow().num_rows == 4


async def test_the_overview_is_one_long_table_of_both_histograms(served: ServedEmulator) -> None:
    async with _client(served) as client:
        overview = await client.users.overview(p_size="p99")
    table = overview.to_arrow()
    assert [(f.name, f.type) for f in table.schema] == [
        ("histogram", pa.string()), ("range_start", pa.float64()),
        ("range_end", pa.float64()), ("value", pa.float64()),
    ]  # fmt: skip
    rows = table.to_pylist()
    assert [r["value"] for r in rows if r["histogram"] == "request_count"] == [
        row.value for row in overview.request_count
    ]
    assert [r["range_end"] for r in rows if r["histogram"] == "user_cost"] == [
        row.range_end for row in overview.user_cost
    ]
    assert overview.to_polars().height == len(rows) == overview.to_pandas().shape[0]


START = datetime(2026, 3, 1, tzinfo=UTC)
STATS = CallStats(
    start=START,
    end=START + timedelta(hours=2),
    granularity=3600,
    timezone="UTC",
    usage_buckets=(
        UsageBucket(timestamp=START, model="a", count=2,
                    values={"sum_input_tokens": 10, "avg_input_tokens": 5.0, "total_cost": 0.5}),
        UsageBucket(timestamp=START, model="b", count=0,
                    values={"sum_input_tokens": 0, "avg_input_tokens": 0, "total_cost": 0}),
        UsageBucket(timestamp=START + timedelta(hours=1), model="a", count=1,
                    values={"sum_input_tokens": 3, "avg_input_tokens": 3.0, "total_cost": 0.1}),
    ),
    call_buckets=(
        CallBucket(timestamp=START, count=2,
                   values={"count_latency_ms": 2, "p99_latency_ms": 812.5, "min_latency_ms": None}),
        CallBucket(timestamp=START + timedelta(hours=1), count=1,
                   values={"count_latency_ms": 1.0, "p99_latency_ms": 40, "min_latency_ms": 40}),
    ),
)  # fmt: skip


def test_usage_buckets_become_one_row_per_bucket_and_model() -> None:
    table = STATS.to_arrow("usage")
    assert [(f.name, f.type) for f in table.schema] == [
        ("timestamp", TS), ("model", pa.string()), ("count", pa.int64()),
        ("sum_input_tokens", pa.float64()), ("avg_input_tokens", pa.float64()),
        ("total_cost", pa.float64()),
    ]  # fmt: skip
    assert table.to_pylist()[2] == {
        "timestamp": START + timedelta(hours=1), "model": "a", "count": 1,
        "sum_input_tokens": 3.0, "avg_input_tokens": 3.0, "total_cost": 0.1,
    }  # fmt: skip
    assert STATS.to_arrow().equals(table)  # usage is the default


def test_call_buckets_become_one_row_per_bucket_with_counts_as_int64() -> None:
    table = STATS.to_arrow("call")
    assert [(f.name, f.type) for f in table.schema] == [
        ("timestamp", TS), ("count", pa.int64()), ("count_latency_ms", pa.int64()),
        ("p99_latency_ms", pa.float64()), ("min_latency_ms", pa.float64()),
    ]  # fmt: skip
    assert table.column("count_latency_ms").to_pylist() == [2, 1]
    assert table.column("min_latency_ms").to_pylist() == [None, 40.0]
    assert STATS.to_polars("call").shape == STATS.to_pandas("call").shape == (2, 5)


def test_a_fractional_count_is_refused_rather_than_truncated() -> None:
    bucket = CallBucket(timestamp=START, count=1, values={"count_latency_ms": 2.5})
    stats = CallStats(start=START, end=START, granularity=60, timezone="UTC",
                      call_buckets=(bucket,))  # fmt: skip
    with pytest.raises(ResponseValidationError, match=r"count_latency_ms holds 2\.5"):
        stats.to_arrow("call")


def test_an_unknown_bucket_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="'usage' or 'call'"):
        STATS.to_arrow("calls")  # type: ignore[arg-type]


async def test_weave_tables_from_the_sync_and_async_clients_are_equal(
    served: ServedEmulator,
) -> None:
    end = datetime(2025, 1, 1, tzinfo=UTC)
    query: dict[str, Any] = {
        "start": end - timedelta(days=3), "end": end, "granularity": 86400,
        "usage_metrics": [UsageMetric("input_tokens", aggregations=("sum", "avg"))],
        "call_metrics": [CallMetric("latency_ms", aggregations=("avg",), percentiles=(99,))],
    }  # fmt: skip
    async with AsyncWeaveStats(served.api_key, base_url=served.base_url) as weave:
        async_stats = await weave.call_stats("team/project", **query)
    with WeaveStats(served.api_key, base_url=served.base_url) as weave_sync:
        sync_stats = weave_sync.call_stats("team/project", **query)
    for kind in ("usage", "call"):
        assert sync_stats.to_polars(kind).equals(async_stats.to_polars(kind))
    usage = async_stats.to_arrow("usage")
    assert usage.num_rows == len(async_stats.usage_buckets) > 0
    assert {"sum_input_tokens", "avg_input_tokens"} <= set(usage.column_names)


# --- Optional libraries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "call", "extra"),
    [
        ("pyarrow", lambda pager: pager.to_arrow(), "arrow"),
        ("pyarrow", lambda pager: pager.to_polars(), "polars"),
        ("polars", lambda pager: pager.to_polars(), "polars"),
        ("pandas", lambda pager: pager.to_pandas(), "pandas"),
    ],
)
async def test_a_missing_library_names_its_extra_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch, missing: str, call: Any, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)
    with mock_http() as mocked:
        async with AsyncHeliconeUsers("key", base_url="http://helicone.test") as client:
            with pytest.raises(MissingDependencyError) as caught:
                await call(client.users.iter_metrics())
        assert not mocked.requests
    error = caught.value
    assert isinstance(error, ImportError)
    assert isinstance(error, HeliconeError)
    assert error.extra == extra
    assert f"pip install 'helicone-users[{extra}]'" in str(error)


def test_record_batches_without_pyarrow_is_refused_when_asked_for(
    monkeypatch: pytest.MonkeyPatch, served: ServedEmulator
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with (
        HeliconeUsers(served.api_key, base_url=served.base_url) as client,
        pytest.raises(MissingDependencyError, match=r"helicone-users\[arrow\]"),
    ):
        client.users.iter_metrics().record_batches()
    with pytest.raises(MissingDependencyError, match=r"helicone-users\[arrow\]"):
        UserStatsList().to_arrow()


def test_importing_the_package_loads_no_table_library() -> None:
    code = (
        "import sys, helicone_users\n"
        "print(sorted(m for m in ('pyarrow', 'polars', 'pandas') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "values",
    [
        [datetime(2024, 5, 1, 12, 34, 56, 789999, tzinfo=UTC),
         datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
         datetime(2099, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)],
        [datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC),
         datetime(2024, 1, 1, tzinfo=UTC)],
        [datetime(2024, 1, 1, tzinfo=UTC), None],
        [datetime(2024, 1, 1, 5, 6, 7, 8000)],
        [],
    ],
)  # fmt: skip
def test_timestamps_convert_alike_with_and_without_msgspec(
    monkeypatch: pytest.MonkeyPatch, values: list[Any]
) -> None:
    from helicone_users import _tables

    fast = _tables.timestamp_array(pa, values)
    monkeypatch.setattr(_tables, "optional_msgspec", lambda: None)
    plain = _tables.timestamp_array(pa, values)
    assert fast.type == plain.type == TS
    assert fast.equals(plain)
    assert fast.equals(pa.array(values, type=TS))
