"""Decoding fuzz: every answer body gives a well-typed value or a ResponseValidationError.

Bodies start from valid answers of each endpoint and are then bent: fields dropped, nulled,
given the wrong type, numbers sent as strings, huge or non-finite numbers, extra fields,
envelopes broken. They go through the clients' whole decoding path (bytes in, models out), with
the socket replaced by a function, so no network is involved.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helicone_users import (
    AsyncHeliconeUsers,
    AsyncWeaveStats,
    CallBucket,
    CallStats,
    HeliconeAPIError,
    MetricsOverview,
    ResponseValidationError,
    UsageBucket,
    UserMetrics,
    UserMetricsPage,
    UserStats,
)
from helicone_users._converter import structure_or_raise

FUZZ = settings(
    max_examples=100,
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- Values that bend a field ---------------------------------------------------------------------

HUGE = st.sampled_from(
    [10**20, -(2**63) - 1, 2**64, 10**400, 1e308, -1e308, 1e-320, 2**53 + 1, 1e16]
)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
ODD_STRINGS = st.sampled_from(
    ["", " ", "nan", "NaN", "inf", "-Infinity", "1e999", "0x10", "1_000", "١٢", "true", "null",
     "12abc", "9" * 5000, "2024-13-40T25:61:61Z", "0001-01-01T00:00:00+01:00",
     "9999-12-31T23:59:59-01:00", "2024-05-01", "2024-05-01T12:00:00", "2024-05-01 12:00:00"]
)  # fmt: skip
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def as_string(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def bent(valid: Any) -> st.SearchStrategy[Any]:
    """Either the valid value or something a server might send instead."""
    return st.one_of(
        st.just(valid),
        st.just(valid),
        st.just(None),
        st.just(as_string(valid)),
        HUGE,
        NON_FINITE,
        ODD_STRINGS,
        JUNK,
    )


MISSING = object()


@st.composite
def bent_object(draw: st.DrawFn, valid: dict[str, Any], *, intact: float = 0.5) -> Any:
    """``valid`` with some fields bent or dropped and extra fields added; sometimes not an
    object at all."""
    if draw(st.integers(0, 30)) == 0:
        return draw(JUNK)
    out: dict[str, Any] = {}
    for key, value in valid.items():
        if draw(st.floats(0, 1)) < intact:
            out[key] = value
            continue
        choice = draw(st.one_of(st.just(MISSING), bent(value)))
        if choice is not MISSING:
            out[key] = choice
    out.update(draw(st.dictionaries(st.text(max_size=8), JUNK, max_size=2)))
    return out


@st.composite
def envelope(draw: st.DrawFn, data: st.SearchStrategy[Any]) -> Any:
    body = {"data": draw(data), "error": None}
    shape = draw(st.integers(0, 20))
    if shape == 0:
        body["error"] = draw(st.text(max_size=10) | JUNK)
    elif shape == 1:
        del body["data"]
    elif shape == 2:
        return draw(JUNK)
    return body


# --- Valid answers --------------------------------------------------------------------------------

DATETIMES = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)
).map(lambda moment: moment.isoformat().replace("+00:00", "Z"))
NUMBERS = st.integers(0, 10**6) | st.floats(0, 1e6, allow_nan=False)


@st.composite
def valid_user(draw: st.DrawFn) -> dict[str, Any]:
    user_id = draw(st.text(max_size=8))
    return {
        "id": user_id,
        "user_id": user_id,
        "active_for": draw(st.integers(0, 400)),
        "first_active": draw(DATETIMES),
        "last_active": draw(DATETIMES),
        "total_requests": draw(st.integers(0, 10**6)),
        "average_requests_per_day_active": draw(NUMBERS),
        "average_tokens_per_request": draw(NUMBERS),
        "total_completion_tokens": draw(st.integers(0, 10**9)),
        "total_prompt_tokens": draw(st.integers(0, 10**9)),
        "cost": draw(NUMBERS),
        "rate_limited_count": draw(st.integers(0, 10) | st.none()),
    }


@st.composite
def metrics_data(draw: st.DrawFn) -> Any:
    users = draw(st.lists(valid_user().flatmap(bent_object), max_size=3))
    return draw(bent_object({"users": users, "count": len(users), "hasUsers": True}, intact=0.8))


@st.composite
def histogram(draw: st.DrawFn) -> list[Any]:
    rows = [
        {"range_start": draw(NUMBERS), "range_end": draw(NUMBERS), "value": draw(NUMBERS)}
        for _ in range(draw(st.integers(0, 3)))
    ]
    return [draw(bent_object(row)) for row in rows]


@st.composite
def overview_data(draw: st.DrawFn) -> Any:
    valid = {"request_count": draw(histogram()), "user_cost": draw(histogram())}
    return draw(bent_object(valid, intact=0.8))


@st.composite
def stats_row(draw: st.DrawFn) -> Any:
    valid = {
        "user_id": draw(st.sampled_from(["a", "b"])),
        "count": draw(st.integers(0, 1000)),
        "prompt_tokens": draw(st.integers(0, 10**6)),
        "completion_tokens": draw(st.integers(0, 10**6)),
        "cost": draw(NUMBERS),
    }
    return draw(bent_object(valid))


@st.composite
def call_stats_body(draw: st.DrawFn) -> Any:
    usage = [
        draw(bent_object({"timestamp": draw(DATETIMES), "model": "gpt-4o", "count": 3,
                          "input_tokens_sum": draw(NUMBERS)}))
        for _ in range(draw(st.integers(0, 2)))
    ]  # fmt: skip
    calls = [
        draw(bent_object({"timestamp": draw(DATETIMES), "count": 2,
                          "latency_ms_avg": draw(NUMBERS | st.none())}))
        for _ in range(draw(st.integers(0, 2)))
    ]  # fmt: skip
    valid = {
        "start": draw(DATETIMES),
        "end": draw(DATETIMES),
        "granularity": draw(st.sampled_from([300, 3600, 86400])),
        "timezone": "UTC",
        "usage_buckets": usage,
        "call_buckets": calls,
    }
    return draw(bent_object(valid, intact=0.7))


def wire(body: Any) -> st.SearchStrategy[bytes]:
    """The body as bytes, now and then cut short."""
    raw = json.dumps(body).encode()  # NaN and Infinity tokens included, as json.loads reads them
    return st.just(raw) | st.integers(0, max(0, len(raw) - 1)).map(lambda cut: raw[:cut])


# --- Checking what came out -----------------------------------------------------------------------


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def is_utc(value: Any) -> bool:
    return isinstance(value, datetime) and value.utcoffset() is not None and not value.utcoffset()


def check_user(user: UserMetrics) -> None:
    assert isinstance(user, UserMetrics)
    assert isinstance(user.id, str)
    assert isinstance(user.user_id, str)
    for name in ("active_for", "total_requests", "total_completion_tokens", "total_prompt_tokens"):
        assert is_int(getattr(user, name)), (name, getattr(user, name))
    for name in ("average_requests_per_day_active", "average_tokens_per_request", "cost"):
        assert is_finite(getattr(user, name)), (name, getattr(user, name))
    assert is_utc(user.first_active), user.first_active
    assert is_utc(user.last_active), user.last_active
    assert user.rate_limited_count is None or is_int(user.rate_limited_count)


def check_page(page: UserMetricsPage) -> None:
    assert isinstance(page, UserMetricsPage)
    assert isinstance(page.users, tuple)
    assert is_int(page.count)
    assert isinstance(page.has_users, bool)
    for user in page.users:
        check_user(user)


def check_overview(overview: MetricsOverview) -> None:
    assert isinstance(overview, MetricsOverview)
    for row in (*overview.request_count, *overview.user_cost):
        assert all(is_finite(v) for v in (row.range_start, row.range_end, row.value)), row


def check_stats(rows: list[UserStats]) -> None:
    for row in rows:
        assert isinstance(row, UserStats)
        assert isinstance(row.user_id, str)
        assert all(is_int(v) for v in (row.count, row.prompt_tokens, row.completion_tokens)), row
        # Rows of one user are summed, and two costs near 1e308 add up to infinity.
        assert isinstance(row.cost, float), row
        assert not math.isnan(row.cost), row


def check_call_stats(stats: CallStats) -> None:
    assert isinstance(stats, CallStats)
    assert isinstance(stats.start, datetime)
    assert stats.start.tzinfo is not None
    assert isinstance(stats.end, datetime)
    assert stats.end.tzinfo is not None
    assert is_int(stats.granularity)
    assert isinstance(stats.timezone, str)
    buckets: list[CallBucket | UsageBucket] = [*stats.usage_buckets, *stats.call_buckets]
    for bucket in buckets:
        assert is_int(bucket.count)
        assert bucket.timestamp.tzinfo is not None
        for value in bucket.values.values():
            assert value is None or is_int(value) or isinstance(value, float), bucket


# --- The harness ----------------------------------------------------------------------------------

Call = Callable[[Any], Coroutine[Any, Any, Any]]


def answering(client: Any, raw: bytes) -> None:
    """Make every request of ``client`` get ``raw`` with status 200, without a socket."""

    async def send(*_args: Any, **_kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, raw

    client._session._send = send


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    yield running
    running.close()


def decode(loop: asyncio.AbstractEventLoop, client: Any, raw: bytes, call: Call, body: Any) -> Any:
    """The value ``call`` returns for ``raw``, or ``None`` after an allowed error."""
    answering(client, raw)
    try:
        return loop.run_until_complete(call(client))
    except ResponseValidationError:
        return None
    except HeliconeAPIError:
        # Only a body whose envelope reports an error may raise this.
        assert isinstance(body, dict)
        assert body.get("error") is not None
        return None


@pytest.fixture(scope="module")
def users() -> AsyncHeliconeUsers:
    """One client for every example: its socket is never opened, only its decoding runs."""
    return AsyncHeliconeUsers("sk-fuzz", base_url="http://127.0.0.1:9")


@pytest.fixture(scope="module")
def weave() -> AsyncWeaveStats:
    return AsyncWeaveStats("wandb-fuzz", base_url="http://127.0.0.1:9")


@FUZZ
@given(data=st.data())
def test_any_metrics_page_body_gives_a_page_or_a_validation_error(
    loop: asyncio.AbstractEventLoop, users: AsyncHeliconeUsers, data: st.DataObject
) -> None:
    body = data.draw(envelope(metrics_data()))
    raw = data.draw(wire(body))
    page = decode(loop, users, raw, lambda c: c.users.metrics(limit=3), body)
    if page is not None:
        check_page(page)


@FUZZ
@given(data=st.data())
def test_any_overview_body_gives_histograms_or_a_validation_error(
    loop: asyncio.AbstractEventLoop, users: AsyncHeliconeUsers, data: st.DataObject
) -> None:
    body = data.draw(envelope(overview_data()))
    raw = data.draw(wire(body))
    overview = decode(loop, users, raw, lambda c: c.users.overview(), body)
    if overview is not None:
        check_overview(overview)


@FUZZ
@given(data=st.data())
def test_any_user_query_body_gives_totals_or_a_validation_error(
    loop: asyncio.AbstractEventLoop, users: AsyncHeliconeUsers, data: st.DataObject
) -> None:
    rows = data.draw(st.lists(stats_row(), max_size=3) | JUNK)
    body = data.draw(envelope(st.just(rows)))
    raw = data.draw(wire(body))
    stats = decode(loop, users, raw, lambda c: c.users.query(["a", "b"]), body)
    if stats is not None:
        check_stats(stats)


@FUZZ
@given(data=st.data())
def test_any_call_stats_body_gives_call_stats_or_a_validation_error(
    loop: asyncio.AbstractEventLoop, weave: AsyncWeaveStats, data: st.DataObject
) -> None:
    body = data.draw(call_stats_body())
    raw = data.draw(wire(body))
    stats = decode(loop, weave, raw, lambda c: c.call_stats_raw({}), body)
    if stats is not None:
        check_call_stats(stats)


MODELS: list[tuple[Any, st.SearchStrategy[Any], Callable[[Any], None]]] = [
    (UserMetrics, valid_user().flatmap(bent_object), check_user),
    (UserStats, stats_row(), lambda row: check_stats([row])),
    (MetricsOverview, overview_data(), check_overview),
    (
        UserMetricsPage,
        metrics_data().map(lambda d: {**d, "offset": 0, "limit": 3} if isinstance(d, dict) else d),
        check_page,
    ),
]


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize(
    ("model", "bodies", "check"), MODELS, ids=lambda m: getattr(m, "__name__", "")
)
def test_the_converter_alone_gives_each_model_or_a_validation_error(
    users: AsyncHeliconeUsers,
    model: Any,
    bodies: st.SearchStrategy[Any],
    check: Callable[[Any], None],
    data: st.DataObject,
) -> None:
    body = data.draw(bodies)
    try:
        value = structure_or_raise(users.converter, body, model, method="POST", path="/fuzz")
    except ResponseValidationError:
        return
    check(value)


def test_a_timestamp_whose_utc_form_leaves_the_calendar_is_a_validation_error(
    loop: asyncio.AbstractEventLoop, users: AsyncHeliconeUsers
) -> None:
    user = {
        "id": "a", "user_id": "a", "active_for": 1, "first_active": "0001-01-01T00:00:00+01:00",
        "last_active": "2024-01-01T00:00:00Z", "total_requests": 1,
        "average_requests_per_day_active": 1, "average_tokens_per_request": 1,
        "total_completion_tokens": 1, "total_prompt_tokens": 1, "cost": 1,
    }  # fmt: skip
    body = {"data": {"users": [user], "count": 1, "hasUsers": True}, "error": None}
    with pytest.raises(ResponseValidationError, match="first_active"):
        loop.run_until_complete(_metrics(users, json.dumps(body).encode()))


def test_a_number_too_large_for_a_float_is_a_validation_error(
    loop: asyncio.AbstractEventLoop, users: AsyncHeliconeUsers
) -> None:
    row = {"user_id": "a", "count": 1, "prompt_tokens": 1, "completion_tokens": 1, "cost": 10**400}
    raw = json.dumps({"data": [row], "error": None}).encode()
    answering(users, raw)
    with pytest.raises(ResponseValidationError, match="cost"):
        loop.run_until_complete(users.users.query(["a"]))


def test_a_call_count_too_large_for_a_float_gives_a_count_or_a_validation_error(
    loop: asyncio.AbstractEventLoop, weave: AsyncWeaveStats
) -> None:
    bucket = {"timestamp": "2024-05-01T00:00:00Z", "count": 10**400}
    body = {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z", "granularity": 3600,
            "timezone": "UTC", "call_buckets": [bucket]}  # fmt: skip
    stats = decode(loop, weave, json.dumps(body).encode(), lambda c: c.call_stats_raw({}), body)
    if stats is not None:
        check_call_stats(stats)
        assert stats.call_buckets[0].count == 10**400


def test_a_nan_number_is_refused_as_the_converter_refuses_it_elsewhere(
    loop: asyncio.AbstractEventLoop, users: AsyncHeliconeUsers
) -> None:
    # json.loads reads NaN and Infinity tokens; the converter refuses non-finite numbers.
    row = {"user_id": "a", "count": 1, "prompt_tokens": 1, "completion_tokens": 1, "cost": "NaN"}
    raw = json.dumps({"data": [row], "error": None}).encode()
    answering(users, raw)
    with pytest.raises(ResponseValidationError, match="cost"):
        loop.run_until_complete(users.users.query(["a"]))
    answering(users, raw.replace(b'"NaN"', b"NaN"))
    with pytest.raises(ResponseValidationError, match="cost"):
        loop.run_until_complete(users.users.query(["a"]))


async def _metrics(client: AsyncHeliconeUsers, raw: bytes) -> UserMetricsPage:
    answering(client, raw)
    return await client.users.metrics(limit=3)
