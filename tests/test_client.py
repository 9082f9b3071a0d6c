"""AsyncHeliconeUsers: construction, request bodies, the envelope, validation, fan-out, secrecy."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from typing import Any

import aiohttp
import pytest
from _mock_http import mock_http
from aioresponses import aioresponses

import helicone_users
from helicone_users import (
    ALL,
    AsyncHeliconeUsers,
    AuthenticationError,
    F,
    HeliconeAPIError,
    HeliconeWarning,
    IgnoredFilterWarning,
    InvalidRequestError,
    MetricsOverview,
    ResponseValidationError,
    RetryPolicy,
    U,
    UserMetricsPage,
    UserStats,
)

BASE = "https://api.example.test"
METRICS = BASE + "/v1/user/metrics/query"
OVERVIEW = BASE + "/v1/user/metrics-overview/query"
QUERY = BASE + "/v1/user/query"
CANARY = "sk-helicone-canary-7f3a9c"
UTC = timezone.utc
START = datetime(2024, 5, 1, tzinfo=UTC)
END = datetime(2024, 5, 31, tzinfo=UTC)


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with mock_http() as m:
        yield m


@pytest.fixture
async def client() -> AsyncIterator[AsyncHeliconeUsers]:
    async with AsyncHeliconeUsers(CANARY, base_url=BASE, retry=RetryPolicy.testing()) as c:
        yield c


def _bodies(mocked: aioresponses, url: str) -> list[Any]:
    calls = [c for (method, u), cs in mocked.requests.items() if str(u) == url for c in cs]
    return [json.loads(call.kwargs["data"]) for call in calls]


def _user(i: int) -> dict[str, Any]:
    return {
        "id": f"u{i}",
        "user_id": f"u{i}",
        "active_for": "1",
        "first_active": "2024-05-01T00:00:00.000Z",
        "last_active": "2024-05-02T00:00:00.000Z",
        "total_requests": 2,
        "average_requests_per_day_active": 2,
        "average_tokens_per_request": 10,
        "total_completion_tokens": 5,
        "total_prompt_tokens": 15,
        "cost": 0.5,
        "rate_limited_count": 0,
    }


def _ok(data: Any) -> dict[str, Any]:
    return {"data": data, "error": None}


# --- Construction --------------------------------------------------------------------------------


def test_a_missing_key_fails_at_construction_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HELICONE_API_KEY", raising=False)
    with pytest.raises(InvalidRequestError, match="HELICONE_API_KEY") as info:
        AsyncHeliconeUsers()
    assert info.value.field == "api_key"


async def test_the_key_and_base_url_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, mocked: aioresponses
) -> None:
    monkeypatch.setenv("HELICONE_API_KEY", CANARY)
    monkeypatch.setenv("HELICONE_BASE_URL", BASE + "/")
    mocked.post(QUERY, payload=_ok([]))
    async with AsyncHeliconeUsers() as c:
        assert c.base_url == BASE
        await c.users.query(["a"])
    ((_, calls),) = mocked.requests.items()
    assert calls[0].kwargs["headers"]["Authorization"] == f"Bearer {CANARY}"


def test_regions_pick_their_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HELICONE_BASE_URL", raising=False)
    assert AsyncHeliconeUsers("k").base_url == "https://api.helicone.ai"
    assert AsyncHeliconeUsers("k", region="eu").base_url == "https://eu.api.helicone.ai"
    assert AsyncHeliconeUsers("k", region="eu", base_url=BASE).base_url == BASE
    with pytest.raises(InvalidRequestError) as info:
        AsyncHeliconeUsers("k", region="mars")  # type: ignore[arg-type]
    assert info.value.field == "region"


def test_repr_shows_the_base_url_and_hides_the_key() -> None:
    client = AsyncHeliconeUsers(CANARY, base_url=BASE)
    assert repr(client) == f"AsyncHeliconeUsers(base_url='{BASE}')"
    assert CANARY not in repr(client)
    assert CANARY not in repr(client.users)


def test_max_concurrency_must_be_positive() -> None:
    with pytest.raises(InvalidRequestError) as info:
        AsyncHeliconeUsers("k", max_concurrency=0)
    assert info.value.field == "max_concurrency"


async def test_the_user_agent_names_sdk_python_and_aiohttp(
    mocked: aioresponses, client: AsyncHeliconeUsers
) -> None:
    mocked.post(QUERY, payload=_ok([]))
    await client.users.query(["a"])
    ((_, calls),) = mocked.requests.items()
    agent = calls[0].kwargs["headers"]["User-Agent"]
    version = helicone_users.__version__
    assert re.fullmatch(
        rf"helicone-users/{re.escape(version)} python/\d+\.\d+\.\d+\S* aiohttp/\S+", agent
    )


async def test_a_caller_session_is_used_and_left_open(mocked: aioresponses) -> None:
    mocked.post(QUERY, payload=_ok([]))
    async with aiohttp.ClientSession() as own:
        async with AsyncHeliconeUsers("k", base_url=BASE, session=own) as c:
            assert await c.users.query(["a"]) == []
        assert not own.closed


# --- metrics -------------------------------------------------------------------------------------


async def test_metrics_sends_filter_window_sort_and_page(
    mocked: aioresponses, client: AsyncHeliconeUsers
) -> None:
    mocked.post(METRICS, payload=_ok({"users": [_user(1)], "count": "41", "hasUsers": True}))
    page = await client.users.metrics(
        filter=F.model.contains("gpt"),
        offset=20,
        limit=10,
        time_range=(START, END),
        sort=("cost", "desc"),
        timezone_difference_minutes=-120,
    )
    assert isinstance(page, UserMetricsPage)
    assert (page.count, page.offset, page.limit, page.has_users) == (41, 20, 10, True)
    assert page.users[0].active_for == 1
    (body,) = _bodies(mocked, METRICS)
    assert body == {
        "filter": F.model.contains("gpt").to_json(),
        "offset": 20,
        "limit": 10,
        "timeFilter": {"startTimeUnixSeconds": 1714521600, "endTimeUnixSeconds": 1717113600},
        "timeZoneDifferenceMinutes": -120,
        "sort": {"cost": "desc"},
    }


async def test_the_default_filter_is_all_and_text_or_wire_json_filters_work(
    mocked: aioresponses, client: AsyncHeliconeUsers
) -> None:
    data = _ok({"users": [], "count": 0, "hasUsers": False})
    mocked.post(METRICS, payload=data, repeat=True)
    await client.users.metrics()
    await client.users.metrics(filter=F.model.contains("gpt").to_json())
    await client.users.metrics(filter="all")
    first, second, third = _bodies(mocked, METRICS)
    assert first["filter"] == "all"
    assert second["filter"] == F.model.contains("gpt").to_json()
    assert third["filter"] == ALL.to_json()
    assert "sort" not in first
    assert "timeFilter" not in first


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 1001}, "limit"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 1.5}, "offset"),
        ({"sort": ("colour", "asc")}, "sort"),
        ({"sort": ("cost", "up")}, "sort"),
        ({"sort": "cost"}, "sort"),
        ({"time_range": (datetime(2024, 5, 1), END)}, "time_range"),
        ({"time_range": (END, START)}, "time_range"),
        ({"time_range": ("2024-05-01", END)}, "time_range"),
        ({"timezone_difference_minutes": 5000}, "timezone_difference_minutes"),
    ],
)
async def test_bad_arguments_are_refused_before_sending(
    mocked: aioresponses, client: AsyncHeliconeUsers, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await client.users.metrics(**kwargs)
    assert info.value.field == field
    assert not mocked.requests


async def test_a_naive_datetime_is_refused_with_a_hint(client: AsyncHeliconeUsers) -> None:
    with pytest.raises(InvalidRequestError, match=r"tzinfo=timezone\.utc"):
        await client.users.metrics(time_range=(datetime(2024, 5, 1), END))


async def test_a_filter_that_is_not_one_is_refused(client: AsyncHeliconeUsers) -> None:
    with pytest.raises(InvalidRequestError):
        await client.users.metrics(filter=42)  # type: ignore[arg-type]


async def test_an_error_in_a_200_envelope_raises_helicone_api_error(
    mocked: aioresponses, client: AsyncHeliconeUsers
) -> None:
    mocked.post(OVERVIEW, payload={"data": None, "error": "No request count found"})
    with pytest.raises(HeliconeAPIError) as info:
        await client.users.overview()
    assert info.value.error == "No request count found"
    assert info.value.status == 200
    assert "No request count found" in str(info.value)
    assert "/v1/user/metrics-overview/query" in str(info.value)


async def test_an_answer_without_the_envelope_is_a_validation_error(
    mocked: aioresponses, client: AsyncHeliconeUsers
) -> None:
    mocked.post(METRICS, payload=[{"users": []}])
    with pytest.raises(ResponseValidationError, match="envelope"):
        await client.users.metrics()


async def test_a_malformed_user_names_its_path(
    mocked: aioresponses, client: AsyncHeliconeUsers
) -> None:
    users = [_user(0), _user(1), {**_user(2), "cost": {"usd": 1}}]
    mocked.post(METRICS, payload=_ok({"users": users, "count": 3, "hasUsers": True}))
    with pytest.raises(ResponseValidationError) as info:
        await client.users.metrics()
    assert info.value.field_path == "data.users[2].cost"
    assert info.value.path == "/v1/user/metrics/query"


# --- overview ------------------------------------------------------------------------------------


async def test_overview_sends_its_fields_and_decodes_histograms(
    mocked: aioresponses, client: AsyncHeliconeUsers
) -> None:
    data = {
        "request_count": [{"range_start": "1", "range_end": "4.5", "value": 3}],
        "user_cost": [{"range_start": "1e-7", "range_end": "0.002", "value": 2.5}],
    }
    mocked.post(OVERVIEW, payload=_ok(data))
    overview = await client.users.overview(
        F.model.contains("gpt"), p_size="p99.9", use_interquartile=True
    )
    assert isinstance(overview, MetricsOverview)
    assert overview.user_cost[0].range_start == 1e-7
    assert _bodies(mocked, OVERVIEW) == [
        {"filter": F.model.contains("gpt").to_json(), "pSize": "p99.9", "useInterquartile": True}
    ]


async def test_overview_refuses_an_unknown_p_size(
    mocked: aioresponses, client: AsyncHeliconeUsers
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await client.users.overview(p_size="p90")  # type: ignore[arg-type]
    assert info.value.field == "p_size"
    assert not mocked.requests


async def test_overview_warns_that_user_filters_are_ignored(
    mocked: aioresponses, client: AsyncHeliconeUsers
) -> None:
    mocked.post(OVERVIEW, payload=_ok({"request_count": [], "user_cost": []}))
    with pytest.warns(IgnoredFilterWarning, match="users_view"):
        await client.users.overview(U.cost > 1)


# --- query ---------------------------------------------------------------------------------------


def _stats_for(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"user_id": u, "count": "1", "prompt_tokens": None, "completion_tokens": 2, "cost": 0.25}
        for u in body.get("userIds", [])
    ]


def _echo_stats(url: Any, **kwargs: Any) -> Any:
    from aioresponses import CallbackResult

    return CallbackResult(payload=_ok(_stats_for(json.loads(kwargs["data"]))))


async def test_query_dedupes_chunks_by_100_and_merges_in_order(
    mocked: aioresponses, client: AsyncHeliconeUsers
) -> None:
    mocked.post(QUERY, callback=_echo_stats, repeat=True)
    ids = [f"user-{i:03d}" for i in range(250)]
    stats = await client.users.query([*ids, *ids[:10]], time_range=(START, END), concurrency=2)
    assert [s.user_id for s in stats] == ids
    assert stats[0] == UserStats(
        user_id="user-000", count=1, prompt_tokens=0, completion_tokens=2, cost=0.25
    )
    bodies = _bodies(mocked, QUERY)
    assert sorted(len(b["userIds"]) for b in bodies) == [50, 100, 100]
    assert all(
        b["timeFilter"] == {"startTimeUnixSeconds": 1714521600, "endTimeUnixSeconds": 1717113600}
        for b in bodies
    )


async def test_query_can_send_the_window_in_milliseconds(
    mocked: aioresponses, client: AsyncHeliconeUsers
) -> None:
    mocked.post(QUERY, callback=_echo_stats)
    await client.users.query(["a"], time_range=(START, END), time_unit="ms")
    (body,) = _bodies(mocked, QUERY)
    assert body["timeFilter"] == {
        "startTimeUnixSeconds": 1714521600000,
        "endTimeUnixSeconds": 1717113600000,
    }


async def test_query_without_ids_warns_about_the_arbitrary_100(
    mocked: aioresponses, client: AsyncHeliconeUsers
) -> None:
    mocked.post(QUERY, payload=_ok([]))
    with pytest.warns(HeliconeWarning, match="100 arbitrary users"):
        assert await client.users.query() == []
    assert _bodies(mocked, QUERY) == [{}]


async def test_query_with_an_empty_list_sends_nothing(
    mocked: aioresponses, client: AsyncHeliconeUsers
) -> None:
    assert await client.users.query([]) == []
    assert not mocked.requests


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"user_ids": "alice"}, "user_ids"),
        ({"user_ids": ["a", 3]}, "user_ids"),
        ({"user_ids": ["a"], "time_unit": "h"}, "time_unit"),
        ({"user_ids": ["a"], "concurrency": 0}, "concurrency"),
    ],
)
async def test_query_refuses_bad_arguments(
    mocked: aioresponses, client: AsyncHeliconeUsers, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await client.users.query(**kwargs)
    assert info.value.field == field
    assert not mocked.requests


async def test_a_failing_chunk_fails_the_query_and_cancels_the_rest(
    mocked: aioresponses, client: AsyncHeliconeUsers
) -> None:
    mocked.post(QUERY, payload={"data": None, "error": '{"code":"241"}'})
    mocked.post(QUERY, callback=_echo_stats, repeat=True)
    with pytest.raises(HeliconeAPIError, match="241"):
        await client.users.query([f"u{i}" for i in range(500)], concurrency=1)


# --- The key stays secret ------------------------------------------------------------------------


async def test_the_key_appears_in_no_log_repr_or_error(
    mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mocked.post(METRICS, status=503, payload={"error": "busy"})
    mocked.post(METRICS, exception=aiohttp.ServerDisconnectedError())
    mocked.post(METRICS, payload=_ok({"users": [_user(1)], "count": 1, "hasUsers": True}))
    mocked.post(QUERY, status=401, payload={"error": "No API key found"})
    texts: list[str] = []
    async with AsyncHeliconeUsers(CANARY, base_url=BASE, retry=RetryPolicy.testing()) as c:
        texts += [repr(c), repr(c.users), repr(c._session), repr(c.retry)]
        page = await c.users.metrics()
        texts.append(repr(page))
        with pytest.raises(AuthenticationError) as info:
            await c.users.query(["a"])
    error: BaseException | None = info.value
    while error is not None:
        texts += [str(error), repr(error), repr(getattr(error, "body", None))]
        error = error.__cause__
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record.args) for record in caplog.records]
    assert any("retrying" in text for text in texts)
    assert any("-> 200" in text for text in texts)
    assert all(CANARY not in text for text in texts)


async def test_pages_decode_the_same_without_the_c_fast_path(
    mocked: aioresponses, client: AsyncHeliconeUsers, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helicone_users import _converter

    body = _ok({"users": [_user(1), _user(2)], "count": "2", "hasUsers": True})
    mocked.post(METRICS, payload=body, repeat=True)
    first = await client.users.metrics(limit=2)
    monkeypatch.setattr(_converter, "_PAGE_DECODER", [None])
    assert await client.users.metrics(limit=2) == first


async def test_the_client_timeout_applies_on_a_caller_session(mocked: aioresponses) -> None:
    mocked.post(QUERY, payload=_ok([]))
    async with (
        aiohttp.ClientSession() as own,
        AsyncHeliconeUsers("k", base_url=BASE, session=own, timeout=7) as c,
    ):
        await c.users.query(["a"])
    ((_, calls),) = mocked.requests.items()
    assert calls[0].kwargs["timeout"].total == 7.0


@pytest.mark.parametrize("name", ["AsyncHeliconeUsers", "HeliconeUsers"])
def test_help_on_a_client_leads_to_its_users_methods(name: str) -> None:
    import pydoc

    import helicone_users

    text = pydoc.render_doc(getattr(helicone_users, name), renderer=pydoc.plaintext)
    for method in ("metrics(", "iter_metrics(", "overview(", "query("):
        assert f"client.users.{method}" in text, method
