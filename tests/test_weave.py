"""The Weave call stats client: refusals before sending, decoding, windows and merging."""

from __future__ import annotations

import base64
import bisect
import itertools
import json
import warnings
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from _mock_http import mock_http
from aioresponses import aioresponses
from hypothesis import given, settings
from hypothesis import strategies as st

import helicone_users
from helicone_users import (
    AsyncWeaveStats,
    AuthenticationError,
    BadRequestError,
    CallBucket,
    CallMetric,
    CallsFilter,
    CallStats,
    IgnoredFilterWarning,
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ResponseValidationError,
    UnprocessableEntityError,
    UsageBucket,
    UsageMetric,
)
from helicone_users._retry import RetryPolicy
from helicone_users.weave import (
    auto_granularity,
    bucket_starts,
    floor_to_bucket,
    merge_windows,
    plan_windows,
    resolve_granularity,
)

BASE = "http://weave.test"
URL = f"{BASE}/calls/stats"
START = datetime(2026, 3, 1, tzinfo=timezone.utc)
END = datetime(2026, 3, 2, tzinfo=timezone.utc)
UTC = timezone.utc


@pytest.fixture
async def weave() -> AsyncIterator[AsyncWeaveStats]:
    async with AsyncWeaveStats("secret-key", base_url=BASE, retry=RetryPolicy.testing()) as client:
        yield client


def _answer(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "start": "2026-03-01T00:00:00Z",
        "end": "2026-03-02T00:00:00Z",
        "granularity": 3600,
        "timezone": "UTC",
        "usage_buckets": [],
        "call_buckets": [],
    }
    body.update(extra)
    return body


def _sent(mocked: aioresponses) -> list[dict[str, Any]]:
    return [json.loads(call.kwargs["data"]) for calls in mocked.requests.values() for call in calls]


# --- the client object ---------------------------------------------------------------------------


def test_public_names_are_exported_from_the_package() -> None:
    for name in ("AsyncWeaveStats", "UsageMetric", "CallMetric", "CallsFilter", "CallStats",
                 "UsageBucket", "CallBucket"):
        assert name in helicone_users.__all__
        assert getattr(helicone_users, name).__module__ == "helicone_users"


def test_the_key_comes_from_wandb_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "from-env")
    monkeypatch.setenv("WEAVE_BASE_URL", "http://elsewhere.test")
    client = AsyncWeaveStats()
    assert client.base_url == "http://elsewhere.test"


def test_the_default_server_is_trace_wandb_ai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEAVE_BASE_URL", raising=False)
    assert AsyncWeaveStats("k").base_url == "https://trace.wandb.ai"


def test_a_missing_key_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    with pytest.raises(InvalidRequestError, match="WANDB_API_KEY") as info:
        AsyncWeaveStats()
    assert info.value.field == "api_key"


def test_the_key_never_shows_in_the_repr() -> None:
    assert "secret-key" not in repr(AsyncWeaveStats("secret-key", base_url=BASE))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"bucket_alignment": "local"}, "bucket_alignment"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": True}, "max_concurrency"),
        ({"max_range_days": 0}, "max_range_days"),
    ],
)
def test_bad_client_options_are_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        AsyncWeaveStats("k", base_url=BASE, **kwargs)
    assert info.value.field == field


async def test_requests_use_basic_auth_with_user_api(weave: AsyncWeaveStats) -> None:
    with mock_http() as mocked:
        mocked.post(URL, payload=_answer())
        await weave.call_stats("e/p", start=START, end=END, call_metrics=["call_count"])
        (call,) = next(iter(mocked.requests.values()))
    expected = "Basic " + base64.b64encode(b"api:secret-key").decode()
    assert call.kwargs["headers"]["Authorization"] == expected


async def test_the_body_carries_utc_times_with_z_and_the_metrics(weave: AsyncWeaveStats) -> None:
    new_york = ZoneInfo("America/New_York")
    with mock_http() as mocked:
        mocked.post(URL, payload=_answer())
        await weave.call_stats(
            "e/p",
            start=datetime(2026, 3, 1, 0, 0, tzinfo=new_york),
            end=datetime(2026, 3, 1, 6, 0, tzinfo=new_york),
            granularity=600,
            usage_metrics=[UsageMetric("input_tokens", aggregations=("sum", "avg"),
                                       percentiles=(95,))],
            call_metrics=[CallMetric("latency_ms", aggregations=("avg",), percentiles=(50, 99))],
            filter=CallsFilter(op_names=["web_app"], trace_roots_only=True),
            timezone="America/New_York",
        )
        (body,) = _sent(mocked)
    assert body == {
        "project_id": "e/p",
        "start": "2026-03-01T05:00:00Z",
        "end": "2026-03-01T11:00:00Z",
        "granularity": 600,
        "timezone": "America/New_York",
        "usage_metrics": [{"metric": "input_tokens", "aggregations": ["sum", "avg"],
                           "percentiles": [95]}],
        "call_metrics": [{"metric": "latency_ms", "aggregations": ["avg"],
                          "percentiles": [50, 99]}],
        "filter": {"op_names": ["web_app"], "trace_roots_only": True},
    }


# --- refusals before sending ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "hint"),
    [
        ({"start": datetime(2026, 3, 1)}, "start", "timezone-aware"),
        ({"end": datetime(2026, 3, 2)}, "end", "timezone-aware"),
        ({"start": "2026-03-01"}, "start", "must be a datetime"),
        ({"end": START}, "end", "must be after start"),
        ({"end": START - timedelta(hours=1)}, "end", "must be after start"),
        ({"granularity": 0}, "granularity", ">= 1"),
        ({"granularity": -60}, "granularity", ">= 1"),
        ({"granularity": 60.5}, "granularity", "whole number"),
        ({"granularity": True}, "granularity", "whole number"),
        ({"timezone": "Mars/Olympus"}, "timezone", "IANA"),
        ({"timezone": ""}, "timezone", "IANA"),
        ({"project_id": "just-a-project"}, "project_id", "entity/project"),
        ({"usage_metrics": ["latency_ms"]}, "usage_metrics.metric", "input_tokens"),
        ({"call_metrics": ["input_tokens"]}, "call_metrics.metric", "latency_ms"),
        ({"call_metrics": "latency_ms"}, "call_metrics", "must be a list"),
        ({"usage_metrics": 7}, "usage_metrics", "must be a list"),
        ({"call_metrics": [CallMetric("latency_ms"), CallMetric("latency_ms")]}, "call_metrics",
         "twice"),
        ({"call_metrics": [42]}, "call_metrics", "CallMetric"),
        ({"filter": "op_names=x"}, "filter", "CallsFilter"),
        ({"filter": {"op_name": ["x"]}}, "filter", "op_name"),
    ],
)
async def test_bad_input_is_refused_before_sending(
    weave: AsyncWeaveStats, kwargs: dict[str, Any], field: str, hint: str
) -> None:
    call: dict[str, Any] = {"project_id": "e/p", "start": START, "end": END,
                            "call_metrics": ["call_count"], **kwargs}
    project = call.pop("project_id")
    with mock_http() as mocked:
        with pytest.raises(InvalidRequestError, match=hint) as info:
            await weave.call_stats(project, **call)
        assert not mocked.requests
    assert info.value.field == field


@pytest.mark.parametrize(
    ("build", "field", "hint"),
    [
        (lambda: UsageMetric("tokens"), "usage_metrics.metric", "unknown name"),
        (lambda: CallMetric("latency"), "call_metrics.metric", "unknown name"),
        (lambda: CallMetric("latency_ms", aggregations=("median",)), "aggregations", "median"),
        (lambda: CallMetric("latency_ms", aggregations="avg"), "aggregations", "list of names"),
        (lambda: CallMetric("latency_ms", aggregations=3), "aggregations", "list of names"),
        (lambda: CallMetric("latency_ms", aggregations=("avg", "avg")), "aggregations", "twice"),
        (lambda: CallMetric("latency_ms", percentiles=(99.5,)), "percentiles", "whole number"),
        (lambda: CallMetric("latency_ms", percentiles=(101,)), "percentiles", "0..100"),
        (lambda: CallMetric("latency_ms", percentiles=(-1,)), "percentiles", "0..100"),
        (lambda: CallMetric("latency_ms", percentiles=(float("nan"),)), "percentiles", "whole"),
        (lambda: CallMetric("latency_ms", percentiles=(True,)), "percentiles", "whole"),
        (lambda: CallMetric("latency_ms", percentiles=95), "percentiles", "list of numbers"),
        (lambda: CallMetric("latency_ms", percentiles=(50, 50.0)), "percentiles", "twice"),
        (lambda: UsageMetric("total_cost", aggregations=("avg",)), "usage_metrics.aggregations",
         "only computed as a sum"),
        (lambda: UsageMetric("input_cost", percentiles=(50,)), "usage_metrics.aggregations",
         "only computed as a sum"),
        (lambda: CallsFilter(op_names="web_app"), "filter.op_names", "not the string"),
        (lambda: CallsFilter(trace_ids=[]), "filter.trace_ids", "empty"),
        (lambda: CallsFilter(call_ids=["a", ""]), "filter.call_ids", "non-empty string"),
        (lambda: CallsFilter(trace_roots_only=1), "filter.trace_roots_only", "True, False"),
    ],
)
def test_bad_metrics_and_filters_are_refused_when_built(build: Any, field: str, hint: str) -> None:
    with pytest.raises(InvalidRequestError, match=hint) as info:
        build()
    assert info.value.field == field


def test_whole_float_percentiles_are_kept_as_integers() -> None:
    assert CallMetric("latency_ms", percentiles=[50.0, 99]).percentiles == (50, 99)


def test_none_means_the_default_aggregation_and_no_percentiles() -> None:
    metric = UsageMetric("input_tokens", aggregations=None, percentiles=None)
    assert (metric.aggregations, metric.percentiles) == (("sum",), ())


@pytest.mark.parametrize(
    ("filter_", "fragment"),
    [
        (CallsFilter(thread_ids=["t"]), "thread_ids"),
        (CallsFilter(turn_ids=["t"]), "turn_ids"),
        (CallsFilter(input_refs=["weave:///e/p/object/x:1"]), "input_refs"),
        (CallsFilter(output_refs=["weave:///e/p/object/x:1"]), "output_refs"),
        (CallsFilter(op_names=["weave:///e/p/op/name:*"]), "wildcard"),
    ],
)
async def test_filters_the_server_ignores_warn(
    weave: AsyncWeaveStats, filter_: CallsFilter, fragment: str
) -> None:
    with mock_http() as mocked:
        mocked.post(URL, payload=_answer())
        with pytest.warns(IgnoredFilterWarning, match=fragment):
            await weave.call_stats("e/p", start=START, end=END, filter=filter_,
                                   call_metrics=["call_count"])


async def test_applied_filters_do_not_warn(weave: AsyncWeaveStats) -> None:
    with mock_http() as mocked, warnings.catch_warnings():
        warnings.simplefilter("error")
        mocked.post(URL, payload=_answer())
        await weave.call_stats(
            "e/p", start=START, end=END, call_metrics=["call_count"],
            filter={"op_names": ["web_app"], "trace_ids": ["t"], "wb_run_ids": ["r"]},
        )


# --- server errors -------------------------------------------------------------------------------


async def test_a_422_reaches_the_caller_with_the_servers_message(weave: AsyncWeaveStats) -> None:
    detail = [{"type": "value_error", "loc": ["body"],
               "msg": "Value error, CallStatsReq date range cannot exceed 31 days"}]
    with mock_http() as mocked:
        mocked.post(URL, status=422, payload={"detail": detail})
        with pytest.raises(UnprocessableEntityError, match="cannot exceed 31 days") as info:
            await weave.call_stats_raw({"project_id": "e/p", "start": "2026-01-01T00:00:00Z"})
    assert info.value.details == detail


async def test_a_400_reason_reaches_the_caller(weave: AsyncWeaveStats) -> None:
    with mock_http() as mocked:
        mocked.post(URL, status=400,
                    payload={"reason": "Percentile must be between 0 and 100, got 101.0"})
        with pytest.raises(BadRequestError, match=r"got 101\.0"):
            await weave.call_stats_raw({"project_id": "e/p", "start": "2026-01-01T00:00:00Z"})


@pytest.mark.parametrize(
    ("status", "cls", "names"),
    [
        (401, AuthenticationError, ("WANDB_API_KEY", "trace.wandb.ai", "WEAVE_BASE_URL")),
        (403, PermissionDeniedError, ("this project",)),
        (404, NotFoundError, ("WEAVE_BASE_URL",)),
    ],
)
async def test_weave_errors_name_the_weave_key_and_server_not_helicones(
    weave: AsyncWeaveStats, status: int, cls: type[Exception], names: tuple[str, ...]
) -> None:
    with mock_http() as mocked:
        mocked.post(URL, status=status, payload={"detail": "Not authenticated"})
        with pytest.raises(cls) as info:
            await weave.call_stats("e/p", start=START, end=END, call_metrics=["call_count"])
    message = str(info.value)
    assert all(name in message for name in names), message
    assert "HELICONE" not in message
    assert "helicone.ai" not in message
    assert "region" not in message


def test_a_bad_weave_base_url_is_refused_with_a_weave_example() -> None:
    with pytest.raises(InvalidRequestError, match=r"trace\.wandb\.ai") as info:
        AsyncWeaveStats("k", base_url="trace.wandb.ai")
    assert "helicone" not in str(info.value)


async def test_a_502_is_retried_then_raised(weave: AsyncWeaveStats) -> None:
    with mock_http() as mocked:
        for _ in range(4):
            mocked.post(URL, status=502, payload={"reason": "Temporary backend error"})
        with pytest.raises(InternalServerError, match="Temporary backend error"):
            await weave.call_stats("e/p", start=START, end=END, call_metrics=["call_count"])
        assert len(_sent(mocked)) == 4


async def test_an_answer_of_the_wrong_shape_is_a_response_validation_error(
    weave: AsyncWeaveStats,
) -> None:
    bad = _answer(call_buckets=[{"timestamp": "yesterday", "count": 1}])
    with mock_http() as mocked:
        mocked.post(URL, payload=bad)
        with pytest.raises(ResponseValidationError) as info:
            await weave.call_stats("e/p", start=START, end=END, call_metrics=["call_count"])
    assert info.value.field_path == "call_buckets[0].timestamp"


# --- decoding ------------------------------------------------------------------------------------


async def test_buckets_decode_into_typed_values(weave: AsyncWeaveStats) -> None:
    answer = _answer(
        call_buckets=[{"timestamp": "2026-03-01T00:00:00", "avg_latency_ms": 12.5,
                       "p99_latency_ms": None, "count": 3}],
        usage_buckets=[{"timestamp": "2026-03-01T00:00:00-05:00", "model": "gpt-4o",
                        "sum_input_tokens": "498.0", "count": "2", "sum_total_cost": 0.01}],
    )
    with mock_http() as mocked:
        mocked.post(URL, payload=answer)
        stats = await weave.call_stats("e/p", start=START, end=END, call_metrics=["call_count"])
    (call,) = stats.call_buckets
    assert call.timestamp == datetime(2026, 3, 1, tzinfo=UTC)
    assert call.timestamp.utcoffset() == timedelta(0)
    assert call.value("latency_ms", "avg") == 12.5
    assert call.value("latency_ms", percentile=99) is None
    assert call.count == 3
    (usage,) = stats.usage_buckets
    assert usage.timestamp.utcoffset() == timedelta(hours=-5)
    assert usage.value("input_tokens") == 498.0
    assert usage.value("total_cost") == 0.01
    assert usage.count == 2


def test_asking_for_a_value_not_requested_names_the_known_keys() -> None:
    bucket = CallBucket(timestamp=START, count=0, values={"avg_latency_ms": 0})
    with pytest.raises(KeyError, match="avg_latency_ms"):
        bucket.value("latency_ms", "max")


def test_asking_for_an_aggregation_and_a_percentile_at_once_is_refused() -> None:
    bucket = CallBucket(timestamp=START, count=0, values={"p99_latency_ms": None})
    with pytest.raises(InvalidRequestError, match="not both") as info:
        bucket.value("latency_ms", "avg", percentile=99)
    assert info.value.field == "percentile"


async def test_a_granularity_too_coarse_to_split_is_refused_before_sending(
    weave: AsyncWeaveStats,
) -> None:
    with mock_http() as mocked:
        with pytest.raises(InvalidRequestError, match="too coarse"):
            await weave.call_stats("e/p", start=START, end=START + timedelta(days=90),
                                   granularity=40 * 86400, call_metrics=["call_count"])
        assert not mocked.requests


async def test_a_start_outside_the_calendar_in_utc_is_refused_naming_the_field(
    weave: AsyncWeaveStats,
) -> None:
    plus_five = timezone(timedelta(hours=5))
    with mock_http() as mocked:
        with pytest.raises(InvalidRequestError, match="outside the years 1-9999") as info:
            await weave.call_stats("e/p", start=datetime(1, 1, 1, tzinfo=plus_five),
                                   end=datetime(1, 1, 2, tzinfo=UTC), call_metrics=["call_count"])
        assert not mocked.requests
    assert info.value.field == "start"


async def test_dates_far_from_today_are_sent_as_they_are(weave: AsyncWeaveStats) -> None:
    with mock_http() as mocked:
        mocked.post(URL, payload=_answer())
        await weave.call_stats("e/p", start=datetime(999, 12, 31, tzinfo=UTC),
                               end=datetime(1000, 1, 1, tzinfo=UTC), granularity=10**12,
                               call_metrics=["call_count"])
    [sent] = _sent(mocked)
    assert (sent["start"], sent["end"]) == ("0999-12-31T00:00:00Z", "1000-01-01T00:00:00Z")
    assert sent["granularity"] == 10**12


def test_to_rows_flattens_both_kinds_for_tables() -> None:
    stats = CallStats(
        start=START, end=END, granularity=3600, timezone="UTC",
        usage_buckets=(UsageBucket(timestamp=START, model="m", count=1,
                                   values={"sum_input_tokens": 5.0}),),
        call_buckets=(CallBucket(timestamp=START, count=2, values={"sum_call_count": 2}),),
    )
    assert stats.to_rows() == [
        {"kind": "usage", "timestamp": START, "model": "m", "count": 1, "sum_input_tokens": 5.0},
        {"kind": "call", "timestamp": START, "model": None, "count": 2, "sum_call_count": 2},
    ]
    assert [row["kind"] for row in stats.to_rows("call")] == ["call"]


# --- granularity, alignment, windows -------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "size"),
    [(1, 300), (2, 300), (2.01, 3600), (12, 3600), (72, 21600), (73, 43200), (14 * 24, 43200),
     (15 * 24, 86400), (90 * 24, 86400)],
)
def test_automatic_granularity_follows_the_servers_table(hours: float, size: int) -> None:
    assert auto_granularity(hours * 3600) == size


def test_more_than_ten_thousand_buckets_raise_the_granularity() -> None:
    assert resolve_granularity(60, 31 * 86400) == 268
    assert resolve_granularity(60, 7 * 86400) == 61
    assert resolve_granularity(60, 6 * 86400) == 60


@pytest.mark.parametrize("size", [10**12, 10**30, 10**400])
def test_a_granularity_beyond_the_range_stays_one_bucket_from_1970(size: int) -> None:
    assert resolve_granularity(size, 31 * 86400) == size
    for alignment in ("timezone", "utc"):
        assert bucket_starts(START, END, size, UTC, alignment) == [datetime(1970, 1, 1, tzinfo=UTC)]


def test_buckets_near_the_ends_of_the_calendar_stop_at_the_range() -> None:
    last_day = datetime(9999, 12, 31, tzinfo=UTC)
    starts = bucket_starts(last_day, last_day + timedelta(hours=23), 21600, UTC)
    assert starts[-1] == datetime(9999, 12, 31, 18, tzinfo=UTC)
    first_day = datetime(1, 1, 1, tzinfo=UTC)
    assert bucket_starts(first_day, first_day + timedelta(hours=7), 21600, UTC)[0] == first_day
    with pytest.raises(InvalidRequestError, match="outside the years 1-9999") as info:
        floor_to_bucket(first_day, 7 * 86400, UTC, "utc")  # 1970 was a Thursday
    assert info.value.field == "granularity"


def test_day_buckets_start_at_local_midnight_by_default() -> None:
    zone = ZoneInfo("America/New_York")
    moment = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)  # 22:00 on Feb 28 in New York
    assert floor_to_bucket(moment, 86400, zone) == datetime(2026, 2, 28, 5, tzinfo=UTC)
    assert floor_to_bucket(moment, 86400, zone, "utc") == datetime(2026, 3, 1, tzinfo=UTC)


def test_a_dst_change_makes_a_short_local_day() -> None:
    zone = ZoneInfo("America/New_York")
    starts = bucket_starts(
        datetime(2026, 3, 7, 5, tzinfo=UTC), datetime(2026, 3, 10, 4, tzinfo=UTC), 86400, zone
    )
    assert [s.astimezone(zone).hour for s in starts] == [0, 0, 0]
    assert starts[2] - starts[1] == timedelta(hours=23)


def test_windows_are_cut_on_bucket_boundaries_within_the_limit() -> None:
    zone = ZoneInfo("Asia/Kolkata")
    start = datetime(2026, 1, 1, 7, 13, tzinfo=UTC)
    end = start + timedelta(days=90)
    windows = plan_windows(start, end, 86400, zone, "timezone", timedelta(days=31))
    assert windows[0][0] == start
    assert windows[-1][1] == end
    for (_, high), (next_low, _) in itertools.pairwise(windows):
        assert high == next_low
        assert high.astimezone(zone).time().isoformat() == "00:00:00"
    assert all(high - low <= timedelta(days=31) for low, high in windows)


def test_a_granularity_coarser_than_the_limit_cannot_be_split() -> None:
    with pytest.raises(InvalidRequestError, match="too coarse") as info:
        plan_windows(START, START + timedelta(days=90), 40 * 86400, UTC, "utc", timedelta(days=31))
    assert info.value.field == "granularity"


def test_merging_fills_models_missing_from_a_window_with_empty_values() -> None:
    first = CallStats(
        start=START, end=START + timedelta(days=1), granularity=86400, timezone="UTC",
        usage_buckets=(UsageBucket(timestamp=START, model="a", count=1, values={
            "sum_input_tokens": 3.0, "max_input_tokens": 3.0, "p50_input_tokens": 3.0}),),
    )
    second = CallStats(start=START + timedelta(days=1), end=START + timedelta(days=2),
                       granularity=86400, timezone="UTC")
    windows = [(START, START + timedelta(days=1)), (START + timedelta(days=1),
                                                    START + timedelta(days=2))]
    merged = merge_windows([first, second], windows, start=START, end=windows[1][1], zone=UTC,
                           alignment="timezone")
    assert merged.usage_buckets[1] == UsageBucket(
        timestamp=START + timedelta(days=1), model="a", count=0,
        values={"sum_input_tokens": 0, "max_input_tokens": None, "p50_input_tokens": None},
    )


async def test_a_long_range_is_fetched_in_windows_with_one_granularity(
    weave: AsyncWeaveStats,
) -> None:
    end = START + timedelta(days=90)
    with mock_http() as mocked:
        for _ in range(3):
            mocked.post(URL, payload=_answer(granularity=86400))
        stats = await weave.call_stats("e/p", start=START, end=end, call_metrics=["call_count"])
        bodies = sorted(_sent(mocked), key=lambda body: body["start"])
    assert [body["granularity"] for body in bodies] == [86400] * 3
    assert bodies[0]["start"] == "2026-03-01T00:00:00Z"
    assert bodies[-1]["end"] == "2026-05-30T00:00:00Z"
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(bodies))
    assert (stats.start, stats.end, stats.granularity) == (START, end, 86400)


async def test_a_failing_window_fails_the_whole_query(weave: AsyncWeaveStats) -> None:
    with mock_http() as mocked:
        mocked.post(URL, payload=_answer(granularity=86400))
        mocked.post(URL, status=400, payload={"reason": "nope"}, repeat=True)
        with pytest.raises(BadRequestError, match="nope"):
            await weave.call_stats("e/p", start=START, end=START + timedelta(days=90),
                                   call_metrics=["call_count"])


# --- properties of bucketing and windows ---------------------------------------------------------

ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe",
         "America/St_Johns", "Pacific/Chatham")
SIZES = (300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 268, 5000)


@settings(max_examples=200, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    size=st.sampled_from(SIZES),
    alignment=st.sampled_from(("timezone", "utc")),
    offset=st.integers(0, 365 * 86400),
    span=st.integers(1, 3 * 86400),
    probes=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=5),
)
def test_every_moment_falls_in_one_listed_bucket(
    zone_name: str, size: int, alignment: Any, offset: int, span: int, probes: list[float]
) -> None:
    zone = ZoneInfo(zone_name)
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=offset)
    end = start + timedelta(seconds=span)
    starts = bucket_starts(start, end, size, zone, alignment)
    assert starts == sorted(set(starts))
    assert starts[0] <= start
    assert starts[-1] < end
    for probe in probes:
        moment = start + timedelta(seconds=span * probe)
        # Buckets are consecutive intervals: the floor is the last start at or before the moment.
        assert floor_to_bucket(moment, size, zone, alignment) == starts[
            bisect.bisect_right(starts, moment) - 1]


@settings(max_examples=100, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    size=st.sampled_from((*SIZES[:-2], 7 * 86400)),
    alignment=st.sampled_from(("timezone", "utc")),
    offset=st.integers(0, 365 * 86400),
    days=st.integers(32, 120),
)
def test_windows_list_the_same_buckets_as_the_whole_range(
    zone_name: str, size: int, alignment: Any, offset: int, days: int
) -> None:
    zone = ZoneInfo(zone_name)
    start = datetime(2025, 6, 1, tzinfo=UTC) + timedelta(seconds=offset)
    end = start + timedelta(days=days)
    windows = plan_windows(start, end, size, zone, alignment, timedelta(days=31))
    assert all(high - low <= timedelta(days=31) for low, high in windows)
    pieces = [s for low, high in windows for s in bucket_starts(low, high, size, zone, alignment)]
    assert pieces == bucket_starts(start, end, size, zone, alignment)
