"""HeliconeUsers and WeaveStats: the async clients, blocking, on a private loop thread."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import pytest

from helicone_users import (
    AuthenticationError,
    CallMetric,
    FilterError,
    HeliconeUsers,
    UserMetrics,
    WeaveStats,
)
from tests.conftest import ServedEmulator


def _facade_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("helicone-users-")]


def test_blocking_calls_return_the_async_clients_results(served: ServedEmulator) -> None:
    with HeliconeUsers(served.api_key, base_url=served.base_url) as client:
        page = client.users.metrics(sort=("cost", "desc"), limit=5)
        overview = client.users.overview(p_size="p95")
        stats = client.users.query(user_ids=[page.users[0].user_id])
    assert len(page.users) == 5
    assert [u.cost for u in page.users] == sorted((u.cost for u in page.users), reverse=True)
    assert overview.request_count
    assert stats[0].user_id == page.users[0].user_id
    assert stats[0].count == page.users[0].total_requests


def test_iter_metrics_is_a_plain_iterator_over_every_user_once(served: ServedEmulator) -> None:
    with HeliconeUsers(served.api_key, base_url=served.base_url) as client:
        users = list(client.users.iter_metrics(page_size=7))
        pages = list(client.users.iter_metrics(page_size=7).pages())
        first = client.users.iter_metrics(page_size=7).first_page()
    assert all(isinstance(u, UserMetrics) for u in users)
    assert len({u.user_id for u in users}) == len(users) == first.count
    assert [u.user_id for u in users] == sorted(u.user_id for u in users)
    assert [u for p in pages for u in p.users] == users


async def test_the_facade_works_inside_a_running_event_loop(served: ServedEmulator) -> None:
    assert asyncio.get_running_loop().is_running()
    with HeliconeUsers(served.api_key, base_url=served.base_url) as client:
        page = client.users.metrics(limit=3)
        first = next(iter(client.users.iter_metrics(page_size=3)))
    assert len(page.users) == 3
    assert isinstance(first, UserMetrics)


def test_close_closes_open_iterators_and_joins_the_thread(served: ServedEmulator) -> None:
    before = len(_facade_threads())
    client = HeliconeUsers(served.api_key, base_url=served.base_url)
    assert len(_facade_threads()) == before + 1
    users = client.users.iter_metrics(page_size=5)
    next(users)
    client.close()
    client.close()  # idempotent
    assert len(_facade_threads()) == before
    assert list(users) == []
    with pytest.raises(RuntimeError, match="closed"):
        client.users.metrics(limit=1)


def test_leaving_an_iterator_early_with_close_stops_it(served: ServedEmulator) -> None:
    with HeliconeUsers(served.api_key, base_url=served.base_url) as client:
        with client.users.iter_metrics(page_size=5) as users:
            taken = [next(users), next(users)]
        assert next(users, None) is None
        assert client.users.metrics(limit=1).count >= len(taken)


def test_errors_keep_their_types(served: ServedEmulator) -> None:
    with (
        HeliconeUsers(served.api_key, base_url=served.base_url) as client,
        pytest.raises(FilterError),
    ):
        client.users.metrics("model = ")
    with (
        HeliconeUsers("sk-wrong", base_url=served.base_url) as client,
        pytest.raises(AuthenticationError) as info,
    ):
        client.users.metrics()
    assert "sk-wrong" not in str(info.value)


def test_a_failing_constructor_leaves_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HELICONE_API_KEY", raising=False)
    before = len(_facade_threads())
    with pytest.raises(ValueError, match="HELICONE_API_KEY"):
        HeliconeUsers()
    assert len(_facade_threads()) == before


def test_weave_stats_blocking_returns_call_buckets(served: ServedEmulator) -> None:
    end = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    with WeaveStats(served.api_key, base_url=served.base_url) as weave:
        stats = weave.call_stats(
            "team/project",
            start=end - dt.timedelta(days=3),
            end=end,
            granularity=86400,
            call_metrics=[CallMetric("call_count")],
        )
    assert len(stats.call_buckets) == 3
    assert sum(b.count for b in stats.call_buckets) > 0
    assert [b.value("call_count") for b in stats.call_buckets] == [
        b.count for b in stats.call_buckets
    ]
