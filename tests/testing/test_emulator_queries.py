"""Query paths that small datasets do not reach: active days over long spans, histogram edges."""

from __future__ import annotations

import base64
import random
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from emulator_oracle import expected_users, linear_quantile

from helicone_users import F, U
from helicone_users.testing import Emulator

START = datetime(2023, 1, 1, tzinfo=timezone.utc)


def spread(days: int, count: int = 400) -> list[dict[str, Any]]:
    """Requests of a few users over ``days`` days, the last ones on the last day."""
    rng = random.Random(days)
    return [
        {
            "request_id": f"r{i}",
            "user_id": f"u{rng.randint(1, 6)}",
            "request_created_at": (
                START + timedelta(days=days - 1 if i < 5 else rng.uniform(0, days))
            ).isoformat(),
            "latency": rng.randint(1, 3000),
            "cost": rng.random() / 100,
        }
        for i in range(count)
    ]


@pytest.mark.parametrize("days", [3, 64, 65, 200, 2000])
async def test_active_days_are_exact_over_any_span(days: int) -> None:
    rows = spread(days)
    async with Emulator(rows) as emulator, emulator.client() as client:
        stored = await emulator.rows()
        for node in (F.latency > 500, (F.latency > 100) & (U.active_for >= 3)):
            page = await client.users.metrics(node, limit=100, sort=("user_id", "asc"),
                                              time_range=None)  # fmt: skip
            expected = expected_users(stored, node.to_json())
            assert {u.user_id: u.active_for for u in page.users} == {
                user: want["active_for"] for user, want in expected.items()
            }
            for user in page.users:
                want = expected[user.user_id]["average_requests_per_day_active"]
                assert user.average_requests_per_day_active == pytest.approx(want)
        end = START + timedelta(days=days * 0.6)
        page = await client.users.metrics(limit=100, sort=("user_id", "asc"),
                                          time_range=(START, end))  # fmt: skip
    expected = expected_users(stored, start=START.timestamp(), end=end.timestamp())
    assert {u.user_id: u.active_for for u in page.users} == {
        user: want["active_for"] for user, want in expected.items()
    }


async def test_overview_bins_match_the_quantile_cut_on_many_users() -> None:
    rng = random.Random(4)
    rows = [
        {"request_id": f"r{i}", "user_id": f"u{rng.randint(1, 1500)}",
         "request_created_at": (START + timedelta(minutes=i)).isoformat(),
         "cost": round(rng.random() ** 3, 6)}
        for i in range(6000)
    ]  # fmt: skip
    async with Emulator(rows) as emulator, emulator.client() as client:
        stored = await emulator.rows()
        answer = await client.users.overview(p_size="p99", use_interquartile=True)
    users = expected_users(stored)
    for bins, key in ((answer.request_count, "total_requests"), (answer.user_cost, "cost")):
        values = sorted(float(user[key]) for user in users.values())
        high, low = linear_quantile(values, 0.99), linear_quantile(values, 1 - 0.99)
        kept = [value for value in values if low <= value <= high]
        assert sum(row.value for row in bins) == len(kept)
        assert bins[0].range_start == pytest.approx(kept[0])
        assert bins[-1].range_end == pytest.approx(kept[-1])
        width = (kept[-1] - kept[0]) / 10
        for row in bins:
            inside = [v for v in kept if row.range_start <= v <= row.range_end]
            assert row.value <= len(inside)
            assert row.range_end - row.range_start == pytest.approx(width)


EDGES = [
    ("0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z", 3600, "UTC"),
    ("0001-01-01T12:00:00+05:00", "0001-01-20T00:00:00Z", None, "Asia/Kolkata"),
    ("9999-12-30T00:00:00Z", "9999-12-31T23:59:59Z", 60, "Pacific/Kiritimati"),
    ("9999-12-01T00:00:00Z", "9999-12-31T00:00:00Z", 10**12, "America/New_York"),
    ("2024-03-09T00:00:00Z", "2024-03-12T00:00:00Z", 1800, "America/New_York"),
]


@pytest.mark.parametrize(("start", "end", "granularity", "zone"), EDGES)
async def test_calls_stats_in_sql_answers_ranges_at_the_ends_of_the_calendar(
    start: str, end: str, granularity: int | None, zone: str
) -> None:
    rows = [{"request_id": "a", "user_id": "u", "request_created_at": "2024-03-10T06:30:00Z",
             "model": "gpt-4o", "latency": 1200, "prompt_tokens": 3}]  # fmt: skip
    body: dict[str, Any] = {
        "project_id": "e/p", "start": start, "end": end, "timezone": zone,
        "call_metrics": [{"metric": "latency_ms", "aggregations": ["avg", "max"],
                          "percentiles": [50]}, {"metric": "error_count", "percentiles": [90]}],
        "usage_metrics": [{"metric": "input_tokens", "percentiles": [95]},
                          {"metric": "total_cost"}],
    }  # fmt: skip
    if granularity is not None:
        body["granularity"] = granularity
    async with Emulator(rows, weave_max_range_days=None) as emulator:
        token = base64.b64encode(f"api:{emulator.api_key}".encode()).decode()
        async with aiohttp.ClientSession() as http, http.post(
            emulator.base_url + "/calls/stats", json=body,
            headers={"Authorization": f"Basic {token}"},
        ) as response:  # fmt: skip
            answer = await response.json()
    assert response.status in (200, 400), answer
    if response.status == 400:
        assert "years 1-9999" in answer["reason"]
    elif start.startswith("2024"):
        calls = [bucket for bucket in answer["call_buckets"] if bucket["count"]]
        assert calls == [{**calls[0], "count": 1, "avg_latency_ms": 1200.0,
                          "max_latency_ms": 1200, "p50_latency_ms": 1200.0,
                          "sum_error_count": 0, "p90_error_count": 0.0}]  # fmt: skip
