"""Type-checked, never run: the public client API as users write it (``mypy --strict``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import aiohttp

from helicone_users import (
    ALL,
    NOT_GIVEN,
    AsyncHeliconeUsers,
    F,
    HistogramRow,
    LocalRateLimit,
    MetricsOverview,
    RateLimit,
    RedisRateLimit,
    RetryPolicy,
    U,
    UserMetrics,
    UserMetricsPage,
    UserMetricsPager,
    UserStats,
)

END = datetime.now(timezone.utc)
START = END - timedelta(days=30)


async def construct() -> None:
    async with AsyncHeliconeUsers(
        api_key="sk-helicone-…",
        region="eu",
        base_url=None,
        timeout=30.0,
        retry=RetryPolicy(max_attempts=6, max_delay=20.0),
        max_concurrency=8,
        rate_limit=(200, 60.0),
    ) as client:
        base: str = client.base_url
        del base
    async with aiohttp.ClientSession() as session:
        shared = AsyncHeliconeUsers(session=session, timeout=aiohttp.ClientTimeout(total=10))
        await shared.aclose()
    budget: RateLimit = LocalRateLimit(200, 60, burst=5, margin=0.1)
    async with (
        RedisRateLimit("redis://localhost:6379/0", 200, 60, name="acme") as shared_budget,
        AsyncHeliconeUsers(rate_limit=shared_budget) as limited,
    ):
        pager: UserMetricsPager = limited.users.iter_metrics(concurrency=16, buffer=64)
        ahead: int = pager.buffer
        del pager, ahead
    await budget.aclose()
    testing: RetryPolicy = RetryPolicy.testing()
    none: RetryPolicy = RetryPolicy.disabled().without_sleep()
    RetryPolicy.set_testing(True)
    del testing, none


async def endpoints(client: AsyncHeliconeUsers) -> None:
    page: UserMetricsPage = await client.users.metrics(
        filter=F.model.contains("gpt") & (U.cost > 1),
        offset=0,
        limit=100,
        time_range=(START, END),
        sort=("cost", "desc"),
        timezone_difference_minutes=-120,
    )
    users: tuple[UserMetrics, ...] = page.users
    count: int = page.count
    await client.users.metrics({"request_response_rmt": {"model": {"equals": "gpt-4o"}}})
    await client.users.metrics("all")
    overview: MetricsOverview = await client.users.overview(
        filter=ALL, p_size="p99.9", use_interquartile=True
    )
    rows: tuple[HistogramRow, ...] = overview.user_cost
    start: float = rows[0].range_start
    totals: list[UserStats] = await client.users.query(
        user_ids=["alice", "bob"], time_range=(START, END), time_unit="ms", concurrency=NOT_GIVEN
    )
    cost: float = totals[0].cost
    del users, count, start, cost


async def pager(client: AsyncHeliconeUsers) -> None:
    it: UserMetricsPager = client.users.iter_metrics(
        filter=F.model.contains("gpt"), page_size=1000, concurrency=8, time_range=None
    )
    first: UserMetricsPage = await it
    async with it:
        async for user in it:
            name: str = user.user_id
            when: datetime = user.last_active
            del name, when
    async for one_page in client.users.iter_metrics(eager=True).pages():
        size: int = len(one_page.users)
        del size
    del first


async def weave_stats() -> None:
    from helicone_users import (
        AsyncWeaveStats,
        CallBucket,
        CallMetric,
        CallsFilter,
        CallStats,
        UsageBucket,
        UsageMetric,
    )

    async with AsyncWeaveStats(api_key="wandb-…", base_url="https://trace.wandb.ai") as weave:
        stats: CallStats = await weave.call_stats(
            "entity/project",
            start=START,
            end=END,
            usage_metrics=[UsageMetric("input_tokens", aggregations=("sum", "avg"))],
            call_metrics=[CallMetric("latency_ms", percentiles=(50, 99))],
            filter=CallsFilter(op_names=["chat"], trace_roots_only=True),
            timezone="Europe/Paris",
        )
    call: CallBucket = stats.call_buckets[0]
    p99: float | int | None = call.value("latency_ms", percentile=99)
    usage: UsageBucket = stats.usage_buckets[0]
    model: str = usage.model
    rows: list[dict[str, object]] = stats.to_rows("usage")
    print(p99, model, rows)


def blocking() -> None:
    from helicone_users import HeliconeUsers

    with HeliconeUsers(api_key="sk-helicone-…") as client:
        page: UserMetricsPage = client.users.metrics(filter=F.cost > 1, limit=10)
        for user in client.users.iter_metrics(U.total_requests >= 5, page_size=500):
            row: UserMetrics = user
            print(row.user_id, page.count)
        totals: list[UserStats] = client.users.query(user_ids=["alice"])
        print(totals)


def filters_from_anywhere() -> None:
    from helicone_users import Filter, FilterError, UnknownFieldError, coerce

    node: Filter = coerce('model contains "gpt"') & coerce({"users_view": {}})
    missing: object = getattr(F, "latncy", None)  # UnknownFieldError is an AttributeError
    unknown = UnknownFieldError("F has no field 'x'", field="x")
    as_filter_error: FilterError = unknown
    as_attribute_error: AttributeError = unknown
    print(node, missing, as_filter_error, as_attribute_error)


async def tables(client: AsyncHeliconeUsers) -> None:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    from helicone_users import MissingDependencyError, UserStatsList

    it = client.users.iter_metrics(U.cost > 1, offset=2000)
    table: pa.Table = await it.to_arrow()
    frame: pl.DataFrame = await client.users.iter_metrics().to_polars()
    pandas_frame: pd.DataFrame = await client.users.iter_metrics().to_pandas()
    async for batch in client.users.iter_metrics().record_batches():
        rows: int = batch.num_rows
        del rows
    page = await client.users.metrics(limit=10)
    page_frame: pl.DataFrame = page.to_polars()
    stats: UserStatsList = await client.users.query(["alice"])
    as_list: list[UserStats] = stats
    stats_table: pa.Table = stats.to_arrow()
    histograms: pd.DataFrame = (await client.users.overview()).to_pandas()
    try:
        stats.to_polars()
    except MissingDependencyError as exc:
        extra: str = exc.extra
        del extra
    del table, frame, pandas_frame, page_frame, as_list, stats_table, histograms


def blocking_tables() -> None:
    import polars as pl
    import pyarrow as pa

    from helicone_users import HeliconeUsers, WeaveStats

    with HeliconeUsers() as client:
        frame: pl.DataFrame = client.users.iter_metrics().to_polars()
        for batch in client.users.iter_metrics(page_size=500).record_batches():
            print(batch.num_rows)
        table: pa.Table = client.users.iter_metrics().to_arrow()
        print(frame, table)
    with WeaveStats() as weave:
        stats = weave.call_stats("entity/project", start=START, usage_metrics=["input_tokens"])
        usage: pl.DataFrame = stats.to_polars("usage")
        calls: pa.Table = stats.to_arrow(kind="call")
        print(usage, calls)
