"""The SDK against the emulator: every endpoint, every operator of every field kind.

Each answer is compared with an independent plain-Python computation over the same rows:
the per-row filter is ``helicone_users.testing._evaluate.matches`` and the per-user
aggregation is ``emulator_oracle.aggregates``.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import pytest_asyncio
from conftest import EXTRA_ROWS
from emulator_oracle import (
    expected_order,
    expected_users,
    linear_quantile,
    sort_fields,
    user_stats,
)

from helicone_users import (
    AsyncHeliconeUsers,
    AuthenticationError,
    F,
    IgnoredFilterWarning,
    RetryPolicy,
    U,
    UnprocessableEntityError,
)
from helicone_users.testing import Emulator, FaultPlan

RMT = "request_response_rmt"
USERS = "users_view"

# One emulator serves the whole module (read-only tests), on one module-wide event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")


def rmt(column: str, op: str, value: Any) -> dict[str, Any]:
    return {RMT: {column: {op: value}}}


def users(column: str, op: str, value: Any) -> dict[str, Any]:
    return {USERS: {column: {op: value}}}


T0 = "2024-12-26T00:00:00Z"
LEAVES: list[Any] = [
    # text, every operator, and the specials
    rmt("model", "equals", "gpt-4o"),
    rmt("model", "not-equals", "gpt-4o"),
    rmt("model", "like", "gpt-4o%"),
    rmt("model", "like", "GPT%"),
    rmt("model", "ilike", "GPT%"),
    rmt("model", "contains", "CLAUDE"),
    rmt("model", "not-contains", "mini"),
    rmt("request_body", "contains", "a_b"),
    rmt("request_body", "contains", "world"),
    rmt("provider", "equals", "anthropic"),
    rmt("user_id", "equals", "o'brien; DROP TABLE requests; --"),
    rmt("country_code", "equals", "null"),
    rmt("country_code", "not-equals", "null"),
    rmt("country_code", "equals", "__empty__"),
    rmt("prompt_id", "like", "prompt-%"),
    rmt("target_url", "contains", "anthropic.com"),
    rmt("request_id", "equals", "extra-1"),
    # numbers, every operator
    rmt("latency", "equals", 1234),
    rmt("latency", "not-equals", 1234),
    rmt("latency", "gte", 900),
    rmt("latency", "gt", 900),
    rmt("latency", "lte", 300),
    rmt("latency", "lt", 300),
    rmt("status", "equals", 429),
    rmt("cost", "gte", 0.25),
    rmt("cost", "lt", 0.0001),
    rmt("time_to_first_token", "gt", 200),
    rmt("prompt_tokens", "gt", 500),
    rmt("completion_tokens", "lte", 50),
    rmt("total_tokens", "gte", 1000),
    rmt("prompt_cache_read_tokens", "gt", 0),
    # timestamps, every operator
    rmt("request_created_at", "gte", T0),
    rmt("request_created_at", "gt", T0),
    rmt("request_created_at", "lt", T0),
    rmt("request_created_at", "lte", T0),
    rmt("request_created_at", "equals", "2024-12-20T10:00:00.250Z"),
    rmt("response_created_at", "gt", "2024-12-28T00:00:00Z"),
    # booleans
    rmt("cached", "equals", True),
    rmt("cached", "equals", False),
    rmt("threat", "equals", False),
    rmt("cache_enabled", "equals", True),
    rmt("is_passthrough_billing", "equals", False),
    rmt("helicone-score-feedback", "equals", True),
    rmt("helicone-score-feedback", "equals", False),
    # maps
    {RMT: {"properties": {"environment": {"equals": "staging"}}}},
    {RMT: {"properties": {"feature": {"not-equals": "chat"}}}},
    {RMT: {"properties": {"it's a key": {"contains": "50%"}}}},
    {RMT: {"properties": {"nope": {"equals": ""}}}},
    {RMT: {"scores": {"accuracy": {"equals": "7"}}}},
    {RMT: {"scores": {"accuracy": {"not-equals": "7"}}}},
    # users_view, every kind
    users("user_user_id", "equals", "user_000003"),
    users("user_user_id", "contains", "BRIEN"),
    users("user_user_id", "not-contains", "0000"),
    users("user_total_requests", "gt", 20),
    users("user_total_requests", "lte", 3),
    users("user_cost", "gte", 0.1),
    users("user_cost", "lt", 0.05),
    users("user_active_for", "gte", 5),
    users("user_first_active", "gte", T0),
    users("user_last_active", "lt", T0),
    users("user_average_requests_per_day_active", "gt", 3),
    users("user_average_tokens_per_request", "lt", 500),
    users("user_total_prompt_tokens", "gt", 10000),
    users("user_total_completion_tokens", "lt", 2000),
    # branches and several columns in one leaf
    {
        "left": rmt("model", "equals", "gpt-4o"),
        "operator": "or",
        "right": rmt("status", "equals", 500),
    },
    {
        "left": rmt("model", "contains", "gpt"),
        "operator": "and",
        "right": users("user_total_requests", "gte", 10),
    },
    {RMT: {"model": {"equals": "gpt-4o"}, "latency": {"gt": 300, "lt": 2000}}},
    {RMT: {"model": {"contains": "o"}}, USERS: {"user_cost": {"lt": 0.5}}},
    "all",
    {},
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator.synthetic(seed=7, users=25, requests=600, days=10) as running:
        await running.add_requests(EXTRA_ROWS)
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rows(emulator: Emulator) -> list[dict[str, Any]]:
    return await emulator.rows()


@pytest_asyncio.fixture(loop_scope="module")
async def client(emulator: Emulator) -> AsyncIterator[AsyncHeliconeUsers]:
    async with emulator.client(retry=RetryPolicy.disabled()) as sdk:
        yield sdk


def _label(leaf: Any) -> str:
    return str(leaf)[:80]


@pytest.mark.parametrize("leaf", LEAVES, ids=_label)
async def test_every_operator_of_every_field_kind_matches_the_oracle(
    client: AsyncHeliconeUsers, rows: list[dict[str, Any]], leaf: Any
) -> None:
    page = await client.users.metrics(leaf, limit=1000, sort=("user_id", "asc"))
    expected = expected_users(rows, leaf)
    assert [u.user_id for u in page.users] == sorted(expected)
    assert page.count == len(expected)
    for user in page.users:
        want = expected[user.user_id]
        assert user.total_requests == want["total_requests"]
        assert user.active_for == want["active_for"]
        assert user.cost == pytest.approx(want["cost"])
        assert user.first_active == want["first_active"]


async def test_dsl_filters_travel_and_match_the_oracle(
    client: AsyncHeliconeUsers, rows: list[dict[str, Any]]
) -> None:
    node = (F.model == "gpt-4o") & (F.latency > 500) & (U.total_requests >= 5)
    page = await client.users.metrics(node, limit=1000, sort=("cost", "desc"))
    expected = expected_users(rows, node.to_json())
    assert [u.user_id for u in page.users] == expected_order(expected, "cost", "desc")


@pytest.mark.parametrize("field", sort_fields())
async def test_sorting_on_every_sortable_field_through_the_sdk(
    client: AsyncHeliconeUsers, rows: list[dict[str, Any]], field: str
) -> None:
    expected = expected_users(rows)
    for direction in ("asc", "desc"):
        page = await client.users.metrics(limit=1000, sort=(field, direction))
        assert [u.user_id for u in page.users] == expected_order(expected, field, direction)


async def test_iter_metrics_pages_across_the_whole_user_list(
    client: AsyncHeliconeUsers, rows: list[dict[str, Any]]
) -> None:
    seen = [user.user_id async for user in client.users.iter_metrics(page_size=4, time_range=None)]
    assert seen == sorted(expected_users(rows))


async def test_time_range_and_timezone_travel_through_the_sdk(
    client: AsyncHeliconeUsers, rows: list[dict[str, Any]]
) -> None:
    start = datetime(2024, 12, 24, tzinfo=timezone.utc)
    end = datetime(2024, 12, 28, 12, tzinfo=timezone.utc)
    page = await client.users.metrics(
        limit=1000,
        time_range=(start, end),
        sort=("user_id", "asc"),
        timezone_difference_minutes=-60,
    )
    expected = expected_users(rows, start=start.timestamp(), end=end.timestamp(), tz_minutes=-60)
    assert [u.user_id for u in page.users] == sorted(expected)
    for user in page.users:
        assert user.last_active == expected[user.user_id]["last_active"]


@pytest.mark.parametrize("p_size", ["p50", "p75", "p95", "p99", "p99.9"])
@pytest.mark.parametrize("interquartile", [False, True])
async def test_overview_bins_hold_the_users_kept_by_the_quantile_cut(
    client: AsyncHeliconeUsers, rows: list[dict[str, Any]], p_size: str, interquartile: bool
) -> None:
    leaf = rmt("status", "equals", 200)
    answer = await client.users.overview(
        leaf,
        p_size=p_size,  # type: ignore[arg-type]  # parametrized over the PSize literals
        use_interquartile=interquartile,
    )
    upper = {"p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99, "p99.9": 0.999}[p_size]
    expected = expected_users(rows, leaf)
    for bins, key in ((answer.request_count, "total_requests"), (answer.user_cost, "cost")):
        values = sorted(float(u[key]) for u in expected.values())
        high = linear_quantile(values, upper)
        low = linear_quantile(values, 1 - upper) if interquartile else float("-inf")
        kept = [v for v in values if low <= v <= high]
        assert len(bins) <= 10
        assert sum(row.value for row in bins) == len(kept)
        for row in bins:
            assert row.range_start <= row.range_end
        starts = [row.range_start for row in bins]
        assert starts == sorted(starts)
        if kept:
            assert bins[0].range_start == pytest.approx(kept[0])
            assert bins[-1].range_end == pytest.approx(kept[-1])


async def test_overview_applies_users_view_by_default(
    client: AsyncHeliconeUsers, rows: list[dict[str, Any]]
) -> None:
    with pytest.warns(IgnoredFilterWarning):
        answer = await client.users.overview(U.total_requests >= 20, p_size="p99.9")
    expected = expected_users(rows, users("user_total_requests", "gte", 20))
    kept = sorted(u["total_requests"] for u in expected.values())
    assert sum(row.value for row in answer.request_count) == len(
        [v for v in kept if v <= linear_quantile(kept, 0.999)]
    )


async def test_user_query_through_the_sdk_matches_the_oracle(
    client: AsyncHeliconeUsers, rows: list[dict[str, Any]]
) -> None:
    wanted = ["user_000001", "user_000004", "o'brien; DROP TABLE requests; --", "ghost"]
    start = datetime(2024, 12, 23, tzinfo=timezone.utc)
    end = start + timedelta(days=5)
    stats = await client.users.query(wanted, time_range=(start, end))
    expected = {
        s["user_id"]: s for s in user_stats(rows, wanted, start.timestamp(), end.timestamp())
    }
    assert {s.user_id for s in stats} == set(expected)
    for item in stats:
        assert item.count == expected[item.user_id]["count"]
        assert item.prompt_tokens == expected[item.user_id]["prompt_tokens"]
        assert item.completion_tokens == expected[item.user_id]["completion_tokens"]
        assert item.cost == pytest.approx(expected[item.user_id]["cost"])


async def test_user_query_chunks_more_than_100_ids(
    client: AsyncHeliconeUsers, rows: list[dict[str, Any]]
) -> None:
    wanted = [f"user_{i:06d}" for i in range(1, 251)]
    stats = await client.users.query(wanted)
    assert {s.user_id for s in stats} == {
        s["user_id"] for s in user_stats(rows, wanted, None, None)
    }


async def test_wrong_key_is_an_authentication_error(emulator: Emulator) -> None:
    async with emulator.client(api_key="sk-wrong", retry=RetryPolicy.disabled()) as sdk:
        with pytest.raises(AuthenticationError):
            await sdk.users.metrics(limit=1)


async def test_the_server_422_reaches_the_sdk_as_unprocessable(
    client: AsyncHeliconeUsers,
) -> None:
    with pytest.raises(UnprocessableEntityError) as caught:
        await client._post("/v1/user/metrics/query", {"filter": "all"}, dict)
    assert "requestBody.offset" in caught.value.details


async def test_the_sdk_recovers_from_injected_faults(rows: list[dict[str, Any]]) -> None:
    plan = FaultPlan(rate=0.4, seed=3, kinds=("429", "500", "502", "503", "reset", "truncate"))
    async with (
        Emulator(rows, faults=plan) as faulty,
        faulty.client(retry=RetryPolicy.testing(max_attempts=12)) as sdk,
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seen = [u.user_id async for u in sdk.users.iter_metrics(page_size=5, time_range=None)]
        assert faulty.state.faults.injected
    assert seen == sorted(expected_users(rows))
