"""The emulator's /calls/stats rules: auth, validation answers, labels, clamps and quirks."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helicone_users import AsyncWeaveStats, CallMetric, InternalServerError, UsageMetric
from helicone_users._retry import RetryPolicy
from helicone_users.testing import QUIRKS, Emulator, FaultPlan
from helicone_users.testing._quirks import resolve_quirks
from helicone_users.testing._weave import WEAVE_QUIRKS, _Reject, parse_request, stats_answer
from helicone_users.testing._weave_stats import compute_stats, default_prices

UTC = timezone.utc
KEY = "weave-rules-key"
DAY = {"start": "2026-01-05T00:00:00Z", "end": "2026-01-06T00:00:00Z"}
ROWS = [
    {"request_id": f"r{i}", "user_id": "u", "request_created_at": f"2026-01-05T{i:02d}:10:00Z",
     "model": "gpt-4o", "latency": 100 * (i + 1), "prompt_tokens": 10, "completion_tokens": 5,
     "total_tokens": 100, "thread_id": "th1", "wb_user_id": "u1", "op_name": "chat"}
    for i in range(12)
]


def body(**extra: Any) -> dict[str, Any]:
    return {"project_id": "e/p", **DAY, "call_metrics": [{"metric": "call_count"}], **extra}


async def post(emulator: Emulator, payload: Any, *, auth: str | None = None) -> tuple[int, Any]:
    token = base64.b64encode(f"api:{KEY}".encode()).decode()
    headers = {"Authorization": auth if auth is not None else f"Basic {token}"}
    async with aiohttp.ClientSession() as session, session.post(
        f"{emulator.base_url}/calls/stats", json=payload, headers=headers
    ) as response:
        return response.status, await response.json(content_type=None)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(ROWS, api_key=KEY) as running:
        yield running


def quirky(*names: str) -> Emulator:
    return Emulator(ROWS, api_key=KEY, quirks=names)


# --- auth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    ["", f"Bearer {KEY}", "Basic " + base64.b64encode(f"bob:{KEY}".encode()).decode(),
     "Basic " + base64.b64encode(b"api:wrong").decode(), "Basic !!!"],
)
async def test_anything_but_basic_api_and_the_key_is_401(emulator: Emulator, auth: str) -> None:
    status, answer = await post(emulator, body(), auth=auth)
    assert status == 401
    assert answer == {"detail": "Not authenticated"}


# --- validation answers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "loc", "message"),
    [
        (body(bogus=1), ["body", "bogus"], "Extra inputs are not permitted"),
        ({"project_id": "e/p"}, ["body", "start"], "Field required"),
        (body(start="yesterday"), ["body", "start"], "Input should be a valid datetime"),
        (body(granularity=0), ["body", "granularity"], "greater than or equal to 1"),
        (body(granularity=-5), ["body", "granularity"], "greater than or equal to 1"),
        (body(granularity="soon"), ["body", "granularity"], "valid integer"),
        (body(timezone="Mars/Olympus"), ["body", "timezone"], "Unknown time zone 'Mars/Olympus'"),
        (body(call_metrics=[{"metric": "latency"}]), ["body", "call_metrics", 0, "metric"],
         "Input should be 'latency_ms', 'call_count' or 'error_count'"),
        (body(usage_metrics=[{"metric": "cost"}]), ["body", "usage_metrics", 0, "metric"],
         "Input should be 'input_tokens'"),
        (body(call_metrics=[{"metric": "latency_ms", "aggregations": ["median"]}]),
         ["body", "call_metrics", 0, "aggregations", 0], "'count_true' or 'count_false'"),
        (body(filter={"op_names": "chat"}), ["body", "filter", "op_names"], "valid list"),
        (body(end="2026-01-04T00:00:00Z"), ["body"], "CallStatsReq end must be after start"),
        (body(end="2026-02-06T00:00:00Z"), ["body"], "date range cannot exceed 31 days"),
    ],
)
async def test_bad_bodies_are_422_with_pydantic_details(
    emulator: Emulator, payload: dict[str, Any], loc: list[Any], message: str
) -> None:
    status, answer = await post(emulator, payload)
    assert status == 422
    assert any(d["loc"] == loc and message in d["msg"] for d in answer["detail"]), answer


async def test_an_emulator_without_the_range_limit_answers_a_ninety_day_query() -> None:
    payload = body(end="2026-04-05T00:00:00Z", granularity=86400)
    async with Emulator(ROWS, api_key=KEY, weave_max_range_days=None) as unlimited:
        status, answer = await post(unlimited, payload)
    assert status == 200
    assert len(answer["call_buckets"]) == 90
    assert sum(bucket["count"] for bucket in answer["call_buckets"]) == len(ROWS)


async def test_a_percentile_outside_0_100_is_a_400_reason(emulator: Emulator) -> None:
    status, answer = await post(emulator, body(call_metrics=[
        {"metric": "latency_ms", "percentiles": [120]}]))
    assert (status, answer) == (400, {"reason": "Percentile must be between 0 and 100, got 120.0"})


async def test_a_fractional_percentile_is_computed_by_default(emulator: Emulator) -> None:
    status, answer = await post(emulator, body(call_metrics=[
        {"metric": "latency_ms", "aggregations": [], "percentiles": [99.5]}]))
    assert status == 200
    assert "p99.5_latency_ms" in answer["call_buckets"][0]


async def test_no_metrics_means_granularity_0_and_no_buckets(emulator: Emulator) -> None:
    status, answer = await post(emulator, {"project_id": "e/p", **DAY})
    assert status == 200
    assert answer == {"start": "2026-01-05T00:00:00Z", "end": "2026-01-06T00:00:00Z",
                      "granularity": 0, "timezone": "UTC", "usage_buckets": [],
                      "call_buckets": []}


async def test_too_many_buckets_raise_the_granularity(emulator: Emulator) -> None:
    status, answer = await post(emulator, body(start="2026-01-01T00:00:00Z",
                                               end="2026-02-01T00:00:00Z", granularity=60))
    assert (status, answer["granularity"]) == (200, 268)


@pytest.mark.parametrize("size", [10**12, 10**15, 10**400, "1000000000000"])
async def test_a_granularity_larger_than_the_range_is_kept_as_one_bucket(
    emulator: Emulator, size: int | str
) -> None:
    # The clamp only raises a size (seed 004: adjusted when buckets would exceed 10,000), so
    # the server keeps it: one bucket, aligned on a multiple of the size since 1970.
    status, answer = await post(emulator, body(granularity=size))
    assert status == 200, answer
    assert answer["granularity"] == int(size)
    assert answer["call_buckets"] == [
        {"timestamp": "1970-01-01T00:00:00", "sum_call_count": len(ROWS), "count": len(ROWS)}
    ]


async def test_a_huge_granularity_in_another_zone_is_labelled_in_that_zone(
    emulator: Emulator,
) -> None:
    status, answer = await post(emulator, body(granularity=10**12, timezone="Asia/Kolkata"))
    assert status == 200
    assert [b["timestamp"] for b in answer["call_buckets"]] == ["1970-01-01T00:00:00+05:30"]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z"),
        ("0999-12-31T00:00:00Z", "1000-01-01T12:00:00Z"),
        ("9000-01-01T00:00:00Z", "9000-01-02T00:00:00Z"),
        ("9999-12-30T00:00:00Z", "9999-12-31T23:59:59Z"),
        (0, 86400),
        (1_767_571_200_000, 1_767_657_600_000),  # above 2e10: milliseconds, as pydantic reads
    ],
)
async def test_every_date_pydantic_accepts_gets_an_answer(
    emulator: Emulator, start: str | int, end: str | int
) -> None:
    status, answer = await post(emulator, body(start=start, end=end, granularity=21600))
    assert status == 200, answer
    assert len(answer["call_buckets"]) >= 2


@pytest.mark.parametrize(
    ("start", "message"),
    [
        ("0000-01-01T00:00:00Z", "Input should be a valid datetime, year 0 is out of range"),
        ("2026-13-01T00:00:00Z", "Input should be a valid datetime, month must be in 1..12"),
        ("yesterday", "Input should be a valid datetime or date in ISO 8601 form"),
        (10**16, "Input should be a valid datetime, dates after 9999 are not supported"),
    ],
)
async def test_a_date_pydantic_refuses_gets_its_true_reason(
    emulator: Emulator, start: str | int, message: str
) -> None:
    status, answer = await post(emulator, body(start=start))
    assert status == 422
    [detail] = [d for d in answer["detail"] if d["loc"] == ["body", "start"]]
    assert detail["msg"].startswith(message)
    assert "invalid character" not in detail["msg"]


async def test_a_bucket_that_would_start_before_year_1_is_refused_with_the_reason(
    emulator: Emulator,
) -> None:
    status, answer = await post(emulator, body(start="0001-01-01T00:00:00Z",
                                               end="0001-01-02T00:00:00Z", granularity=604800))
    assert status == 400
    assert "outside the years 1-9999" in answer["reason"]
    assert "granularity" in answer["reason"]


DATES = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31))


@settings(max_examples=200, deadline=None)
@given(
    start=DATES,
    length=st.integers(1, 31 * 86400),
    granularity=st.none() | st.integers(1, 10**6) | st.sampled_from([10**12, 10**30]),
    zone=st.sampled_from(["UTC", "Asia/Kolkata", "America/New_York", "Pacific/Kiritimati"]),
    offset=st.sampled_from(["Z", "+05:00", "-11:00"]),
)
def test_any_valid_date_and_granularity_is_answered_or_refused_with_a_4xx(
    start: datetime, length: int, granularity: int | None, zone: str, offset: str
) -> None:
    end = min(start + timedelta(seconds=length), datetime(9999, 12, 31, 23, 59, 59))
    payload = body(start=start.isoformat() + offset, end=end.isoformat() + offset,
                   granularity=granularity, timezone=zone)
    status, answer = _answer(payload)
    assert status in (200, 400, 422), answer
    if status == 400:
        assert "years 1-9999" in answer["reason"]


def _answer(payload: Any) -> tuple[int, Any]:
    """What the handler answers after auth, without HTTP: validation, then the stats."""
    now = datetime(2026, 1, 6, tzinfo=UTC)
    try:
        query, start, end = parse_request(payload, frozenset(), now=now, max_range_days=31)
    except _Reject as reject:
        return reject.status, reject.body
    return stats_answer([], query, default_prices(), echo_start=start, echo_end=end)


async def test_empty_aggregations_and_percentiles_mean_a_sum(emulator: Emulator) -> None:
    _, answer = await post(emulator, body(call_metrics=[
        {"metric": "call_count", "aggregations": [], "percentiles": []}]))
    assert list(answer["call_buckets"][0]) == ["timestamp", "sum_call_count", "count"]


# --- times and labels ----------------------------------------------------------------------------


async def test_utc_labels_have_no_offset_and_other_zones_do(emulator: Emulator) -> None:
    _, utc = await post(emulator, body(granularity=21600))
    _, new_york = await post(emulator, body(granularity=86400, timezone="America/New_York"))
    assert [b["timestamp"] for b in utc["call_buckets"]][:2] == [
        "2026-01-05T00:00:00", "2026-01-05T06:00:00"]
    assert [b["timestamp"] for b in new_york["call_buckets"]] == [
        "2026-01-04T00:00:00-05:00", "2026-01-05T00:00:00-05:00"]


async def test_offsets_are_converted_and_naive_times_read_as_utc(emulator: Emulator) -> None:
    _, answer = await post(emulator, body(start="2026-01-05T00:00:00-05:00",
                                          end="2026-01-06T00:00:00", granularity=3600))
    assert (answer["start"], answer["end"]) == ("2026-01-05T05:00:00Z", "2026-01-06T00:00:00Z")
    assert answer["call_buckets"][0]["timestamp"] == "2026-01-05T05:00:00"
    assert sum(b["count"] for b in answer["call_buckets"]) == 7  # 05:10 .. 11:10


async def test_buckets_align_on_the_zone_by_default(emulator: Emulator) -> None:
    _, answer = await post(emulator, body(granularity=3600, timezone="Asia/Kolkata"))
    assert answer["call_buckets"][0]["timestamp"] == "2026-01-05T05:00:00+05:30"


# --- never a 500 by default ----------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8,
)
FIELD_VALUES = {
    "project_id": JSON, "start": st.sampled_from(["2026-01-05T00:00:00Z", "2026-01-05", "x", 0])
    | JSON, "end": st.sampled_from(["2026-01-06T00:00:00+05:00", "2026-01-05T00:00:00", None])
    | JSON, "granularity": st.integers(-5, 10**9) | JSON,
    "usage_metrics": st.lists(st.fixed_dictionaries({
        "metric": st.sampled_from(["input_tokens", "total_cost", "nope"]),
        "aggregations": st.lists(st.sampled_from(["sum", "min", "count_true", "x"]), max_size=3),
        "percentiles": st.lists(st.floats(-10, 110), max_size=2)}), max_size=2) | JSON,
    "call_metrics": st.lists(st.fixed_dictionaries({
        "metric": st.sampled_from(["latency_ms", "error_count"]),
        "percentiles": st.lists(st.integers(0, 100), max_size=2)}), max_size=2) | JSON,
    "filter": st.fixed_dictionaries({}, optional={"op_names": st.lists(st.text(max_size=4)),
                                                  "trace_roots_only": st.booleans()}) | JSON,
    "timezone": st.sampled_from(["UTC", "Asia/Kolkata", "Nope/Nope", ""]) | JSON,
}


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional=FIELD_VALUES) | JSON)
def test_no_body_gets_a_5xx_in_default_mode(payload: Any) -> None:
    assert _status(payload) < 500


def _status(payload: Any) -> int:
    now = datetime(2026, 1, 6, tzinfo=UTC)
    try:
        query, _, _ = parse_request(payload, frozenset(), now=now, max_range_days=31)
    except _Reject as reject:
        return reject.status
    compute_stats([], query, default_prices())
    return 200


# --- quirks --------------------------------------------------------------------------------------


def test_the_hosted_preset_switches_on_every_weave_quirk() -> None:
    assert frozenset(QUIRKS) >= WEAVE_QUIRKS
    assert resolve_quirks("hosted") >= WEAVE_QUIRKS


async def test_utc_bucket_alignment_only_relabels_the_buckets() -> None:
    async with quirky("utc_bucket_alignment") as emulator:
        _, answer = await post(emulator, body(granularity=3600, timezone="Asia/Kolkata"))
    assert answer["call_buckets"][0]["timestamp"] == "2026-01-05T05:30:00+05:30"


async def test_fractional_percentile_error_is_a_502() -> None:
    async with quirky("fractional_percentile_error") as emulator:
        status, answer = await post(emulator, body(call_metrics=[
            {"metric": "latency_ms", "percentiles": [99.9]}]))
    assert (status, answer) == (502, {"reason": "Temporary backend error"})


async def test_ignored_filters_do_not_narrow_the_result(emulator: Emulator) -> None:
    payload = body(filter={"thread_ids": ["nope"], "turn_ids": ["nope"]})
    _, default = await post(emulator, payload)
    async with quirky("ignored_filters") as hosted:
        _, ignored = await post(hosted, payload)
    assert sum(b["count"] for b in default["call_buckets"]) == 0
    assert sum(b["count"] for b in ignored["call_buckets"]) == len(ROWS)


async def test_granularity_zero_crash_answers_500_and_a_negative_one_502() -> None:
    async with quirky("granularity_zero_crash") as emulator:
        zero = await post(emulator, body(granularity=0))
        negative = await post(emulator, body(granularity=-60))
    assert zero == (500, {"reason": "Internal server error"})
    assert negative == (502, {"reason": "Temporary backend error"})


async def test_non_utc_offset_misread_lands_hours_early() -> None:
    payload = body(start="2026-01-05T00:00:00-05:00", end="2026-01-05T06:00:00-05:00",
                   granularity=3600)
    async with quirky("non_utc_offset_misread") as emulator:
        _, answer = await post(emulator, payload)
    assert answer["start"] == "2026-01-05T00:00:00-05:00"
    assert answer["call_buckets"][0]["timestamp"] == "2026-01-05T00:00:00"
    assert sum(b["count"] for b in answer["call_buckets"]) == 6  # 00:10 .. 05:10 UTC


async def test_naive_datetime_crash_answers_500_for_mixed_times(emulator: Emulator) -> None:
    payload = body(start="2026-01-05T00:00:00")
    assert (await post(emulator, payload))[0] == 200
    async with quirky("naive_datetime_crash") as hosted:
        assert await post(hosted, payload) == (500, {"reason": "Internal server error"})


async def test_invalid_timezone_502_is_retried_then_raised() -> None:
    async with quirky("invalid_timezone_502") as emulator, AsyncWeaveStats(
        KEY, base_url=emulator.base_url, retry=RetryPolicy.testing(max_attempts=2)
    ) as weave:
        with pytest.raises(InternalServerError, match="Temporary backend error"):
            await weave.call_stats_raw(body(timezone="Mars/Olympus"))


async def test_wb_ids_unconverted_match_nothing(emulator: Emulator) -> None:
    payload = body(filter={"wb_user_ids": ["u1"]})
    _, default = await post(emulator, payload)
    async with quirky("wb_ids_unconverted") as hosted:
        _, unconverted = await post(hosted, payload)
    assert sum(b["count"] for b in default["call_buckets"]) == len(ROWS)
    assert sum(b["count"] for b in unconverted["call_buckets"]) == 0


async def test_total_tokens_raw_only_reads_the_providers_total(emulator: Emulator) -> None:
    payload = body(usage_metrics=[{"metric": "total_tokens"}], granularity=86400)
    _, default = await post(emulator, payload)
    async with quirky("total_tokens_raw_only") as hosted:
        _, raw = await post(hosted, payload)
    assert default["usage_buckets"][0]["sum_total_tokens"] == 15.0 * len(ROWS)
    assert raw["usage_buckets"][0]["sum_total_tokens"] == 100.0 * len(ROWS)


async def test_extra_fields_ignored_accepts_unknown_fields() -> None:
    async with quirky("extra_fields_ignored") as emulator:
        status, _ = await post(emulator, body(bogus=1))
    assert status == 200


# --- faults --------------------------------------------------------------------------------------


async def test_injected_faults_are_retried_to_the_same_answer() -> None:
    query: dict[str, Any] = {
        "start": datetime(2026, 1, 5, tzinfo=UTC), "end": datetime(2026, 1, 6, tzinfo=UTC),
        "granularity": 3600, "call_metrics": [CallMetric("latency_ms", aggregations=("avg",))],
        "usage_metrics": [UsageMetric("input_tokens")],
    }
    async with Emulator(ROWS, api_key=KEY) as clean, AsyncWeaveStats(
        KEY, base_url=clean.base_url
    ) as weave:
        expected = await weave.call_stats("e/p", **query)
    plan = FaultPlan(rate=0.6, seed=3, kinds=("429", "502", "503", "reset", "truncate"))
    async with Emulator(ROWS, api_key=KEY, faults=plan) as faulty, AsyncWeaveStats(
        KEY, base_url=faulty.base_url, retry=RetryPolicy.testing(max_attempts=20)
    ) as weave:
        got = await weave.call_stats("e/p", **query)
        assert faulty.state.faults.injected
    assert got == expected
