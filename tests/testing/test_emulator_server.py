"""The emulator's HTTP contract, spoken to with plain aiohttp requests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import Post
from emulator_oracle import (
    SpecSchemas,
    expected_order,
    expected_users,
    iso,
    sort_fields,
    user_stats,
)

from helicone_users import InvalidRequestError
from helicone_users._config import SORT_FIELDS as CLIENT_SORT_FIELDS
from helicone_users.testing import QUIRKS, Emulator, FaultPlan
from helicone_users.testing._quirks import HELICONE_QUIRKS, resolve_quirks

METRICS = "/v1/user/metrics/query"
OVERVIEW = "/v1/user/metrics-overview/query"
QUERY = "/v1/user/query"
SORT_FIELDS = sort_fields()


def page(filter_json: Any = "all", **extra: Any) -> dict[str, Any]:
    return {"filter": filter_json, "offset": 0, "limit": 1000, **extra}


def ids(body: Any) -> list[str]:
    return [user["user_id"] for user in body["data"]["users"]]


@pytest.fixture
async def quirky() -> AsyncIterator[Emulator]:
    rows = [
        {
            "request_id": f"q{i}",
            "user_id": user,
            "request_created_at": ts,
            "cost": cost,
            "prompt_tokens": 3,
            "completion_tokens": 4,
            "model": model,
        }
        for i, (user, ts, cost, model) in enumerate(
            [
                ("alice", "2024-01-01T00:00:00Z", 1.0, "gpt-4o"),
                ("alice", "2024-01-02T12:00:00.500Z", 2.0, "gpt-4o-mini"),
                ("bob", "2024-01-01T00:00:01Z", 3.0, "gpt-4o"),
                ("", "2024-01-01T00:00:02Z", 0.5, "gpt-4o"),
            ]
        )
    ]
    async with Emulator(rows) as running:
        yield running


async def test_metrics_rows_equal_the_python_oracle_and_the_spec(
    post: Post, rows: list[dict[str, Any]], spec: SpecSchemas
) -> None:
    status, body, _ = await post(METRICS, page())
    assert status == 200
    spec.check_response(METRICS, body)
    expected = expected_users(rows)
    assert body["data"]["count"] == len(expected)
    assert body["data"]["hasUsers"] is True
    for user in body["data"]["users"]:
        want = expected[user["user_id"]]
        assert user["id"] == user["user_id"]
        assert user["total_requests"] == want["total_requests"]
        assert user["active_for"] == want["active_for"]
        assert user["first_active"] == iso(want["first_active"])
        assert user["last_active"] == iso(want["last_active"])
        assert user["total_prompt_tokens"] == want["total_prompt_tokens"]
        assert user["total_completion_tokens"] == want["total_completion_tokens"]
        assert user["cost"] == pytest.approx(want["cost"])
        assert user["average_tokens_per_request"] == pytest.approx(
            want["average_tokens_per_request"]
        )
        assert user["average_requests_per_day_active"] == pytest.approx(
            want["average_requests_per_day_active"]
        )


def test_the_client_and_the_emulator_sort_by_exactly_the_spec_fields() -> None:
    assert CLIENT_SORT_FIELDS == SORT_FIELDS


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("field", SORT_FIELDS)
async def test_every_sortable_field_orders_users_with_user_id_tie_breaker(
    post: Post, rows: list[dict[str, Any]], field: str, direction: str
) -> None:
    status, body, _ = await post(METRICS, page(sort={field: direction}))
    assert status == 200
    assert ids(body) == expected_order(expected_users(rows), field, direction)


async def test_omitted_and_empty_sort_order_by_last_active_descending(
    post: Post, rows: list[dict[str, Any]]
) -> None:
    want = expected_order(expected_users(rows), "last_active", "desc")
    assert ids((await post(METRICS, page()))[1]) == want
    assert ids((await post(METRICS, page(sort={})))[1]) == want


async def test_offset_and_limit_page_through_every_user_once(
    post: Post, rows: list[dict[str, Any]]
) -> None:
    seen: list[str] = []
    for offset in range(0, 40, 7):
        body = {"filter": "all", "offset": offset, "limit": 7, "sort": {"user_id": "asc"}}
        status, answer, _ = await post(METRICS, body)
        assert status == 200
        seen += ids(answer)
    assert seen == sorted(expected_users(rows))


async def test_offset_beyond_the_end_still_reports_the_count(post: Post) -> None:
    status, body, _ = await post(METRICS, {"filter": "all", "offset": 500, "limit": 5})
    assert status == 200
    assert body["data"]["users"] == []
    assert body["data"]["count"] > 0


async def test_limit_over_1000_is_the_reference_400(post: Post) -> None:
    status, body, _ = await post(METRICS, {"filter": "all", "offset": 0, "limit": 1001})
    assert status == 400
    assert body == {"error": "Limit cannot be greater than 1000", "data": None}


@pytest.mark.parametrize(
    ("value", "field"), [(2.5, "limit"), (-1, "limit"), (0.5, "offset"), (-3, "offset")]
)
async def test_fractional_or_negative_paging_is_a_400_envelope(
    post: Post, value: float, field: str
) -> None:
    body = {"filter": "all", "offset": 0, "limit": 10, field: value}
    status, answer, _ = await post(METRICS, body)
    assert status == 400
    assert answer["data"] is None
    assert field in answer["error"]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"offset": 0, "limit": 1}, "requestBody.filter"),
        ({"filter": "all", "offset": "0", "limit": 1}, "requestBody.offset"),
        (
            {"filter": "all", "offset": 0, "limit": 1, "sort": {"cost": "up"}},
            "requestBody.sort.cost",
        ),
        ({"filter": "all", "offset": 0, "limit": 1, "extra": 1}, "requestBody.extra"),
        (
            {"filter": {"user_metrics": {}}, "offset": 0, "limit": 1},
            "requestBody.filter.user_metrics",
        ),
        (
            {
                "filter": {"request_response_rmt": {"latency": {"gte": "1"}}},
                "offset": 0,
                "limit": 1,
            },
            "requestBody.filter.request_response_rmt.latency.gte",
        ),
        (
            {
                "filter": {"request_response_rmt": {"request_created_at": {"gt": "yesterday"}}},
                "offset": 0,
                "limit": 1,
            },
            "requestBody.filter.request_response_rmt.request_created_at.gt",
        ),
        (
            {"filter": {"left": "all", "operator": "xor", "right": "all"}, "offset": 0, "limit": 1},
            "requestBody.filter.operator",
        ),
        (
            {"filter": "all", "offset": 0, "limit": 1, "timeFilter": {}},
            "requestBody.timeFilter.endTimeUnixSeconds",
        ),
    ],
)
async def test_schema_violations_are_422_naming_the_field(
    post: Post, body: dict[str, Any], key: str
) -> None:
    status, answer, _ = await post(METRICS, body)
    assert status == 422
    assert answer["message"] == "Validation Failed"
    assert key in answer["details"]
    assert "message" in answer["details"][key]


SEED_000 = (
    Path(__file__).resolve().parents[3] / "shared" / "seeds" / "000_cb8bada5788ecc70.txt"
)


async def test_the_older_docs_example_body_gets_a_422_naming_users_view_and_user_cost(
    post: Post,
) -> None:
    text = SEED_000.read_text(encoding="utf-8")
    body = json.loads(text.split("--data '", 1)[1].split("}'", 1)[0] + "}")
    status, answer, _ = await post(OVERVIEW, body)
    assert status == 422
    message = answer["details"]["requestBody.filter.user_metrics"]["message"]
    assert message.startswith('"user_metrics" is an excess property')
    assert 'did you mean "users_view"?' in message
    assert '"cost" → "user_cost"' in message


@pytest.mark.parametrize(
    ("filter_json", "key", "fix"),
    [
        ({"users_view": {"cost": {"gt": 1}}}, "requestBody.filter.users_view.cost", '"user_cost"'),
        ({"request_response_rmt": {"latncy": {"gt": 1}}},
         "requestBody.filter.request_response_rmt.latncy", '"latency"'),
    ],
)  # fmt: skip
async def test_an_excess_property_near_a_known_one_gets_a_did_you_mean(
    post: Post, filter_json: Any, key: str, fix: str
) -> None:
    status, answer, _ = await post(METRICS, page(filter_json))
    assert status == 422
    assert answer["details"][key]["message"].endswith(f"did you mean {fix}?")


async def test_overview_and_user_query_validate_their_bodies(post: Post) -> None:
    status, answer, _ = await post(
        OVERVIEW, {"filter": "all", "pSize": "p42", "useInterquartile": 1}
    )
    assert status == 422
    assert {"requestBody.pSize", "requestBody.useInterquartile"} <= set(answer["details"])
    status, answer, _ = await post(QUERY, {"userIds": [str(i) for i in range(101)]})
    assert status == 422
    assert "requestBody.userIds" in answer["details"]


async def test_invalid_json_is_a_400_envelope(emulator: Emulator) -> None:
    headers = {"Authorization": f"Bearer {emulator.api_key}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(emulator.base_url + METRICS, data=b"{not json", headers=headers) as response,
    ):
        assert response.status == 400
        assert (await response.json())["data"] is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, {"error": "No authorization header"}),
        (
            {"Authorization": "Bearer wrong"},
            {"error": "No API key found", "trace": "isAuthenticated.error"},
        ),
        ({"helicone-authorization": "{oops"}, {"error": "Invalid auth header"}),
        ({"helicone-authorization": '{"_type": "magic"}'}, {"error": "Invalid auth header format"}),
    ],
)
async def test_bad_auth_gets_the_reference_401_bodies(
    post: Post, headers: dict[str, str], expected: dict[str, Any]
) -> None:
    status, body, _ = await post(QUERY, {}, headers=headers)
    assert (status, body) == (401, expected)


async def test_raw_key_is_refused_unless_raw_key_auth(post: Post, emulator: Emulator) -> None:
    status, _, _ = await post(QUERY, {}, headers={"Authorization": emulator.api_key})
    assert status == 401
    async with Emulator(quirks={"raw_key_auth"}) as raw:
        status, _, _ = await post(QUERY, {}, headers={"Authorization": raw.api_key}, target=raw)
        assert status == 200


async def test_helicone_authorization_bearer_json_is_accepted(
    post: Post, emulator: Emulator
) -> None:
    header = json.dumps({"_type": "bearer", "token": emulator.api_key})
    status, _, _ = await post(QUERY, {}, headers={"helicone-authorization": header})
    assert status == 200


async def test_rate_limit_answers_429_with_retry_after_and_draft6_headers(post: Post) -> None:
    async with Emulator(rate_limit=(2, 60.0)) as limited:
        first = await post(QUERY, {}, target=limited)
        assert first[0] == 200
        assert first[2]["RateLimit-Limit"] == "2"
        assert first[2]["RateLimit-Remaining"] == "1"
        await post(QUERY, {}, target=limited)
        status, body, headers = await post(QUERY, {}, target=limited)
    assert status == 429
    assert body == {"error": "Too many requests, please try again later."}
    assert headers["RateLimit-Policy"] == "2;w=60"
    assert int(headers["Retry-After"]) > 0
    assert headers["RateLimit-Remaining"] == "0"


async def test_unlimited_by_default(post: Post) -> None:
    for _ in range(5):
        status, _, headers = await post(QUERY, {})
        assert status == 200
        assert "RateLimit-Limit" not in headers


async def test_user_query_is_inclusive_in_seconds_and_matches_the_oracle(
    post: Post, rows: list[dict[str, Any]], spec: SpecSchemas
) -> None:
    first = min(row["request_created_at"] for row in rows if row["user_id"])
    start = first.timestamp()
    end = start + 3 * 86400
    status, body, _ = await post(
        QUERY, {"timeFilter": {"startTimeUnixSeconds": start, "endTimeUnixSeconds": end}}
    )
    assert status == 200
    spec.check_response(QUERY, body)
    want = user_stats(rows, None, start, end)
    assert [u["user_id"] for u in body["data"]] == [u["user_id"] for u in want]
    for got, expected in zip(body["data"], want, strict=True):
        assert got["count"] == expected["count"]
        assert got["prompt_tokens"] == expected["prompt_tokens"]
        assert got["cost"] == pytest.approx(expected["cost"])


async def test_user_query_with_ids_returns_only_those_users(
    post: Post, rows: list[dict[str, Any]]
) -> None:
    wanted = ["user_000002", "o'brien; DROP TABLE requests; --", "nobody"]
    status, body, _ = await post(QUERY, {"userIds": wanted})
    assert status == 200
    assert body["data"] == [
        {**stats, "cost": pytest.approx(stats["cost"])}
        for stats in user_stats(rows, wanted, None, None)
    ]


async def test_metrics_time_filter_bounds_are_exclusive(quirky: Emulator, post: Post) -> None:
    start = 1704067200.0  # 2024-01-01T00:00:00Z: alice's first request, excluded
    body = page(timeFilter={"startTimeUnixSeconds": start, "endTimeUnixSeconds": start + 1})
    status, answer, _ = await post(METRICS, body, target=quirky)
    assert (status, answer["data"]["users"]) == (200, [])
    body = page(timeFilter={"startTimeUnixSeconds": start - 1, "endTimeUnixSeconds": start + 2})
    assert ids((await post(METRICS, body, target=quirky))[1]) == ["bob", "alice"]


async def test_user_query_bounds_are_inclusive(quirky: Emulator, post: Post) -> None:
    start = 1704067200.0
    body = {"timeFilter": {"startTimeUnixSeconds": start, "endTimeUnixSeconds": start + 1}}
    _, answer, _ = await post(QUERY, body, target=quirky)
    assert [u["user_id"] for u in answer["data"]] == ["alice", "bob"]


async def test_user_query_time_in_ms_quirk_reads_seconds_as_milliseconds(post: Post) -> None:
    async with Emulator(
        [{"request_id": "a", "user_id": "u", "request_created_at": "2024-01-01T00:00:00Z"}],
        quirks={"user_query_time_in_ms"},
    ) as hosted:
        window = {"startTimeUnixSeconds": 1704067100, "endTimeUnixSeconds": 1704067300}
        assert (await post(QUERY, {"timeFilter": window}, target=hosted))[1]["data"] == []
        millis = {"startTimeUnixSeconds": 1704067100000, "endTimeUnixSeconds": 1704067300000}
        answer = (await post(QUERY, {"timeFilter": millis}, target=hosted))[1]
        assert [u["user_id"] for u in answer["data"]] == ["u"]


async def test_timezone_difference_shifts_first_and_last_active(
    quirky: Emulator, post: Post
) -> None:
    west = (
        await post(
            METRICS, page(timeZoneDifferenceMinutes=120, sort={"user_id": "asc"}), target=quirky
        )
    )[1]
    east = (
        await post(
            METRICS, page(timeZoneDifferenceMinutes=-120, sort={"user_id": "asc"}), target=quirky
        )
    )[1]
    assert west["data"]["users"][0]["first_active"] == "2023-12-31T22:00:00.000Z"
    assert east["data"]["users"][0]["first_active"] == "2024-01-01T02:00:00.000Z"
    assert west["data"]["users"][0]["active_for"] == 2  # distinct UTC days, not shifted


async def test_timezone_sign_bug_quirk_subtracts_for_both_signs(post: Post) -> None:
    row = {"request_id": "a", "user_id": "u", "request_created_at": "2024-01-01T00:00:00Z"}
    async with Emulator([row], quirks={"timezone_sign_bug"}) as hosted:
        answer = (await post(METRICS, page(timeZoneDifferenceMinutes=-120), target=hosted))[1]
    assert answer["data"]["users"][0]["first_active"] == "2023-12-31T22:00:00.000Z"


async def test_requests_without_user_id_are_left_out_unless_quirk(
    quirky: Emulator, post: Post
) -> None:
    assert "" not in ids((await post(METRICS, page(), target=quirky))[1])
    assert "" not in [u["user_id"] for u in (await post(QUERY, {}, target=quirky))[1]["data"]]
    async with Emulator(await quirky.rows(), quirks={"empty_user_id_is_user"}) as hosted:
        assert "" in ids((await post(METRICS, page(), target=hosted))[1])
        answer = (await post(QUERY, {}, target=hosted))[1]
        assert "" in [u["user_id"] for u in answer["data"]]


async def test_numbers_as_strings_and_extra_rate_limited_count_quirks(
    quirky: Emulator, post: Post
) -> None:
    quirks = {"numbers_as_strings", "extra_rate_limited_count"}
    async with Emulator(await quirky.rows(), quirks=quirks) as hosted:
        metrics = (await post(METRICS, page(), target=hosted))[1]["data"]
        stats = (await post(QUERY, {}, target=hosted))[1]["data"]
    assert metrics["count"] == "2"
    assert metrics["users"][0]["active_for"] in ("1", "2")
    assert metrics["users"][0]["rate_limited_count"] == "0"
    assert stats[0]["count"] == "2"
    assert isinstance(stats[0]["prompt_tokens"], str)


async def test_empty_condition_is_a_400_by_default_and_500_with_its_quirk(
    quirky: Emulator, post: Post
) -> None:
    empty: dict[str, Any] = {"request_response_rmt": {"latency": {}}}
    status, body, _ = await post(METRICS, page(empty), target=quirky)
    assert status == 400
    assert "latency" in body["error"]
    async with Emulator(quirks={"empty_condition_500"}) as hosted:
        status, body, _ = await post(
            OVERVIEW,
            {"filter": {"request_response_rmt": {}}, "pSize": "p95", "useInterquartile": False},
            target=hosted,
        )
    assert (status, body) == (
        500,
        {"message": "Internal Server Error", "details": "Internal Server Error"},
    )


async def test_cross_table_or_is_evaluated_as_written_unless_quirk(
    quirky: Emulator, post: Post
) -> None:
    tree = {
        "left": {"request_response_rmt": {"model": {"equals": "gpt-4o-mini"}}},
        "operator": "or",
        "right": {"users_view": {"user_total_requests": {"lt": 2}}},
    }
    answer = (await post(METRICS, page(tree, sort={"user_id": "asc"}), target=quirky))[1]
    users = {u["user_id"]: u for u in answer["data"]["users"]}
    assert users["alice"]["total_requests"] == 1  # only the gpt-4o-mini request
    assert users["bob"]["total_requests"] == 1  # bob has fewer than two requests
    async with Emulator(await quirky.rows(), quirks={"cross_table_or_matches_all"}) as hosted:
        answer = (await post(METRICS, page(tree), target=hosted))[1]
    assert {u["user_id"]: u["total_requests"] for u in answer["data"]["users"]} == {
        "alice": 2,
        "bob": 1,
    }


async def test_first_key_only_quirk_ignores_later_columns(quirky: Emulator, post: Post) -> None:
    leaf = {"request_response_rmt": {"model": {"equals": "gpt-4o"}, "cost": {"gt": 2.5}}}
    assert ids((await post(METRICS, page(leaf), target=quirky))[1]) == ["bob"]
    async with Emulator(await quirky.rows(), quirks={"first_key_only"}) as hosted:
        assert sorted(ids((await post(METRICS, page(leaf), target=hosted))[1])) == ["alice", "bob"]


async def test_int32_overflow_quirk_fails_big_cost_bounds(quirky: Emulator, post: Post) -> None:
    leaf = {"request_response_rmt": {"cost": {"lt": 5}}}
    assert sorted(ids((await post(METRICS, page(leaf), target=quirky))[1])) == ["alice", "bob"]
    async with Emulator(
        await quirky.rows(), quirks={"int32_filter_overflow", "errors_as_200"}
    ) as hosted:
        status, body, _ = await post(METRICS, page(leaf), target=hosted)
        assert status == 400
        assert "Int32" in body["error"]
        status, body, _ = await post(
            OVERVIEW, {"filter": leaf, "pSize": "p95", "useInterquartile": False}, target=hosted
        )
        assert (status, body) == (200, {"data": None, "error": "No request count found"})


async def test_timestamp_second_precision_quirk_cuts_milliseconds(
    quirky: Emulator, post: Post
) -> None:
    leaf = {"request_response_rmt": {"request_created_at": {"equals": "2024-01-02T12:00:00.500Z"}}}
    assert ids((await post(METRICS, page(leaf), target=quirky))[1]) == ["alice"]
    async with Emulator(await quirky.rows(), quirks={"timestamp_second_precision"}) as hosted:
        answer = (await post(METRICS, page(leaf), target=hosted))[1]
        assert answer["data"]["users"] == []
        everyone = (await post(METRICS, page(), target=hosted))[1]["data"]["users"]
    assert all(u["first_active"].endswith(".000Z") for u in everyone)


async def test_empty_sort_quirk_still_returns_every_user(quirky: Emulator, post: Post) -> None:
    async with Emulator(await quirky.rows(), quirks={"empty_sort_arbitrary_order"}) as hosted:
        assert sorted(ids((await post(METRICS, page(sort={}), target=hosted))[1])) == [
            "alice",
            "bob",
        ]


async def test_count_cache_leak_quirk_shares_the_count_between_filters(
    quirky: Emulator, post: Post
) -> None:
    only_bob = {"request_response_rmt": {"user_id": {"equals": "bob"}}}
    assert (await post(METRICS, page(only_bob), target=quirky))[1]["data"]["count"] == 1
    async with Emulator(await quirky.rows(), quirks={"count_cache_leak"}) as hosted:
        now = [100.0]
        hosted.state.context.clock = lambda: now[0]
        first = (await post(METRICS, page(), target=hosted))[1]
        now[0] += 0.050  # within the 60 ms the count is shared, whatever the filter
        second = (await post(METRICS, page(only_bob), target=hosted))[1]
        now[0] += 0.100
        third = (await post(METRICS, page(only_bob), target=hosted))[1]
    assert first["data"]["count"] == 2
    assert second["data"]["count"] == 2
    assert ids(second) == ["bob"]
    assert third["data"]["count"] == 1


async def test_user_query_arbitrary_100_quirk_accepts_long_id_lists(post: Post) -> None:
    async with Emulator(quirks={"user_query_arbitrary_100"}) as hosted:
        status, body, _ = await post(
            QUERY, {"userIds": [str(i) for i in range(150)]}, target=hosted
        )
    assert (status, body) == (200, {"data": [], "error": None})


async def test_user_query_without_ids_returns_the_first_100_users_by_id(post: Post) -> None:
    rows = [
        {
            "request_id": f"r{i}",
            "user_id": f"u{i:03d}",
            "request_created_at": "2024-01-01T00:00:00Z",
        }
        for i in range(130)
    ]
    async with Emulator(rows) as big:
        body = (await post(QUERY, {}, target=big))[1]
    assert [u["user_id"] for u in body["data"]] == [f"u{i:03d}" for i in range(100)]


def test_unknown_quirks_are_refused_with_a_did_you_mean() -> None:
    with pytest.raises(InvalidRequestError, match="did you mean 'raw_key_auth'"):
        resolve_quirks({"raw_key_aut"})


def test_hosted_preset_switches_every_quirk_on() -> None:
    assert resolve_quirks("hosted") == QUIRKS
    assert HELICONE_QUIRKS <= QUIRKS
    assert len(HELICONE_QUIRKS) == 16


async def test_faults_are_deterministic_by_seed(post: Post) -> None:
    async def statuses(seed: int) -> list[int]:
        plan = FaultPlan(rate=0.5, seed=seed, kinds=("429", "500", "502", "503"))
        async with Emulator(faults=plan) as faulty:
            return [(await post(QUERY, {}, target=faulty))[0] for _ in range(16)]

    first, again, other = await statuses(1), await statuses(1), await statuses(2)
    assert first == again
    assert first != other
    assert set(first) - {200} <= {429, 500, 502, 503}
    assert 200 in first
    assert len(set(first)) > 1


async def test_injected_429_carries_retry_after(post: Post) -> None:
    async with Emulator(faults=FaultPlan(rate=1.0, kinds=("429",), retry_after=3)) as faulty:
        status, _, headers = await post(QUERY, {}, target=faulty)
    assert (status, headers["Retry-After"]) == (429, "3")


@pytest.mark.parametrize(
    ("kind", "error"),
    [("reset", aiohttp.ServerDisconnectedError), ("truncate", aiohttp.ClientPayloadError)],
)
async def test_connection_faults_break_the_transport(
    post: Post, kind: str, error: type[Exception]
) -> None:
    async with Emulator(faults=FaultPlan(rate=1.0, kinds=(kind,))) as faulty:
        with pytest.raises(error):
            await post(QUERY, {}, target=faulty)


async def test_slow_fault_delays_but_answers(post: Post) -> None:
    async with Emulator(faults=FaultPlan(rate=1.0, kinds=("slow",), delay=0.01)) as faulty:
        assert (await post(QUERY, {}, target=faulty))[0] == 200


@pytest.mark.parametrize("depth", [50, 400, 3000])
async def test_deeply_nested_filters_are_answered_without_a_500(
    emulator: Emulator, depth: int
) -> None:
    leaf = '{"request_response_rmt": {"status": {"equals": 200}}}'
    tree = '{"left": ' * depth + leaf + ', "operator": "and", "right": "all"}' * depth
    text = '{"filter": ' + tree + ', "offset": 0, "limit": 10}'
    headers = {"Authorization": f"Bearer {emulator.api_key}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(emulator.base_url + METRICS, data=text.encode(), headers=headers) as response,
    ):
        assert response.status in (200, 400)
        body = await response.json()
    if response.status == 400:
        assert body["data"] is None


async def test_the_server_answers_concurrent_requests(post: Post) -> None:
    import asyncio

    answers = await asyncio.gather(*(post(METRICS, page(sort={"cost": "desc"})) for _ in range(12)))
    assert {status for status, _, _ in answers} == {200}
    assert len({json.dumps(body) for _, body, _ in answers}) == 1


async def test_overview_answers_validate_against_the_spec(post: Post, spec: SpecSchemas) -> None:
    for p_size in ("p50", "p99.9"):
        body = {"filter": "all", "pSize": p_size, "useInterquartile": p_size == "p50"}
        status, answer, _ = await post(OVERVIEW, body)
        assert status == 200
        spec.check_response(OVERVIEW, answer)
        assert all(isinstance(row["range_start"], str) for row in answer["data"]["user_cost"])


async def test_error_envelopes_validate_against_the_spec(post: Post, spec: SpecSchemas) -> None:
    status, answer, _ = await post(METRICS, {"filter": "all", "offset": 0, "limit": 5000})
    assert status == 400
    spec.check_response(METRICS, answer)
    status, answer, _ = await post(
        QUERY, {"timeFilter": {"startTimeUnixSeconds": 1e300, "endTimeUnixSeconds": 0}}
    )
    assert status == 400
    spec.check_response(QUERY, answer)


async def test_users_view_on_the_overview_is_applied_unless_quirk(
    quirky: Emulator, post: Post
) -> None:
    body = {
        "filter": {"users_view": {"user_total_requests": {"gte": 2}}},
        "pSize": "p99.9",
        "useInterquartile": False,
    }
    answer = (await post(OVERVIEW, body, target=quirky))[1]["data"]
    # Only alice (2 requests) is kept by the users_view condition.
    assert answer["request_count"] == [{"range_start": "2", "range_end": "2", "value": 1.0}]
    async with Emulator(await quirky.rows(), quirks={"users_view_ignored_on_overview"}) as hosted:
        answer = (await post(OVERVIEW, body, target=hosted))[1]["data"]
    # Alice and bob both count; p99.9 (1.999) trims alice's 2, leaving bob's 1.
    assert answer["request_count"] == [{"range_start": "1", "range_end": "1", "value": 1.0}]


async def test_errors_as_200_quirk_reports_user_query_failures_with_200(post: Post) -> None:
    window = {"timeFilter": {"startTimeUnixSeconds": 1e300, "endTimeUnixSeconds": 0}}
    async with Emulator(quirks={"errors_as_200"}) as hosted:
        status, answer, _ = await post(QUERY, window, target=hosted)
    assert status == 200
    assert answer["data"] is None
    assert json.loads(answer["error"])["message"]
