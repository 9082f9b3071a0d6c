"""Decoding: lenient where the server is loose, strict (with a field path) where it matters."""

from __future__ import annotations

import copy
import json
import pickle
import weakref
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helicone_users import (
    HistogramRow,
    MetricsOverview,
    ResponseValidationError,
    UserMetrics,
    UserMetricsPage,
    UserStats,
    _converter,
)
from helicone_users._converter import fast_metrics_page, make_converter, structure_or_raise
from helicone_users._models import MetricsQuery, OverviewQuery, TimeFilter, UsersQuery

UTC = timezone.utc


def _user(i: int, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"u{i}",
        "user_id": f"u{i}",
        "active_for": 3,
        "first_active": "2024-05-01T12:34:56.000Z",
        "last_active": "2024-05-03T00:00:00.000Z",
        "total_requests": 12,
        "average_requests_per_day_active": 4.0,
        "average_tokens_per_request": 150.5,
        "total_completion_tokens": 800,
        "total_prompt_tokens": 1006,
        "cost": 0.0123,
    }
    row.update(changes)
    return row


def _page(users: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"users": users, "count": len(users), "hasUsers": True}
    data.update(offset=0, limit=100)
    data.update(changes)
    return data


@pytest.fixture(scope="module")
def converter() -> cattrs.Converter:
    return make_converter()


def test_a_page_decodes_into_frozen_snake_case_models(converter: cattrs.Converter) -> None:
    page = converter.structure(_page([_user(1), _user(2)], count=40), UserMetricsPage)
    assert page.count == 40
    assert page.has_users is True
    assert [u.user_id for u in page.users] == ["u1", "u2"]
    user = page.users[0]
    assert user.first_active == datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)
    assert user.first_active.tzinfo is UTC
    assert user.rate_limited_count is None
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        user.cost = 1.0  # type: ignore[misc]
    assert not hasattr(user, "__dict__")


def test_decoded_models_are_plain_instances_of_the_public_classes(
    converter: cattrs.Converter,
) -> None:
    page = converter.structure(_page([_user(1)], count=1), UserMetricsPage)
    user = page.users[0]
    assert type(page) is UserMetricsPage
    assert type(user) is UserMetrics
    assert user == UserMetrics(**{f.name: getattr(user, f.name) for f in attrs.fields(UserMetrics)})
    assert weakref.ref(user)() is user
    assert pickle.loads(pickle.dumps(user)) == user
    assert attrs.evolve(user, cost=2.0).cost == 2.0
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        user.cost = 1.0  # type: ignore[misc]


def test_a_model_with_a_weakref_slot_of_its_own_is_still_decoded() -> None:
    @attrs.frozen(kw_only=True, slots=True)
    class Own:
        name: str
        count: int

    assert "__weakref__" in Own.__slots__  # the layout the fast fill cannot swap into
    made = _converter._fast_hook(Own)({"name": "a", "count": "3"})
    assert type(made) is Own
    assert made == Own(name="a", count=3)


def test_numbers_sent_as_strings_are_accepted(converter: cattrs.Converter) -> None:
    raw = _user(1, active_for="3", rate_limited_count="2", total_requests="12", cost="1e-7")
    page = converter.structure(_page([raw], count="7"), UserMetricsPage)
    user = page.users[0]
    assert (user.active_for, user.rate_limited_count, user.total_requests) == (3, 2, 12)
    assert user.cost == 1e-7
    assert page.count == 7


def test_null_sums_mean_zero(converter: cattrs.Converter) -> None:
    raw = _user(1, total_prompt_tokens=None, cost=None, average_tokens_per_request=None)
    user = converter.structure(_page([raw]), UserMetricsPage).users[0]
    assert (user.total_prompt_tokens, user.cost, user.average_tokens_per_request) == (0, 0.0, 0.0)


def test_unknown_extra_fields_are_ignored(converter: cattrs.Converter) -> None:
    raw = _user(1, brand_new_column="x", rate_limited_count=0)
    page = converter.structure(_page([raw], somethingElse=[1]), UserMetricsPage)
    assert page.users[0].rate_limited_count == 0


def test_whole_floats_become_ints_and_fractions_are_refused(converter: cattrs.Converter) -> None:
    user = converter.structure(_page([_user(1, total_requests=12.0)]), UserMetricsPage).users[0]
    assert user.total_requests == 12
    assert isinstance(user.total_requests, int)
    with pytest.raises(ResponseValidationError) as info:
        structure_or_raise(converter, _page([_user(1, total_requests=1.5)]), UserMetricsPage)
    assert info.value.field_path == "data.users[0].total_requests"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:34:56.000Z", datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)),
        ("2024-05-01T14:34:56+02:00", datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)),
        ("2024-05-01 12:34:56", datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)),
        ("2024-05-01T12:34:56.123456", datetime(2024, 5, 1, 12, 34, 56, 123456, tzinfo=UTC)),
    ],
)
def test_datetimes_come_out_aware_utc(
    converter: cattrs.Converter, text: str, expected: datetime
) -> None:
    user = converter.structure(_page([_user(1, last_active=text)]), UserMetricsPage).users[0]
    assert user.last_active == expected
    assert user.last_active.utcoffset() == timedelta(0)


def test_a_misfit_names_its_field_path_and_shows_the_body(converter: cattrs.Converter) -> None:
    users = [_user(i) for i in range(5)]
    users[3]["cost"] = "a lot"
    with pytest.raises(ResponseValidationError) as info:
        structure_or_raise(converter, _page(users), UserMetricsPage, method="POST", path="/p")
    error = info.value
    assert error.field_path == "data.users[3].cost"
    assert "a lot" in error.body_snippet
    assert "data.users[3].cost" in str(error)
    assert "POST /p" in str(error)
    assert isinstance(error.__cause__, Exception)


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["users"][1].pop("user_id"), "data.users[1].user_id"),
        (lambda d: d["users"][0].update(first_active="yesterday"), "data.users[0].first_active"),
        (lambda d: d["users"][2].update(id=None), "data.users[2].id"),
        (lambda d: d.update(users={"a": 1}), "data.users"),
        (lambda d: d.update(count=None), "data.count"),
        (lambda d: d.pop("hasUsers"), "data.hasUsers"),
        (lambda d: d["users"].__setitem__(1, "u1"), "data.users[1]"),
        (lambda d: d["users"][0].update(cost=float("nan")), "data.users[0].cost"),
        (lambda d: d["users"][1].update(cost=10**400), "data.users[1].cost"),
        (
            lambda d: d["users"][2].update(last_active="0001-01-01T00:00:00+01:00"),
            "data.users[2].last_active",
        ),
    ],
)
def test_each_kind_of_misfit_is_located(
    converter: cattrs.Converter, mutate: Any, path: str
) -> None:
    data = _page([_user(i) for i in range(3)])
    mutate(data)
    with pytest.raises(ResponseValidationError) as info:
        structure_or_raise(converter, data, UserMetricsPage)
    assert info.value.field_path == path


def test_a_body_that_is_not_an_object_is_refused(converter: cattrs.Converter) -> None:
    with pytest.raises(ResponseValidationError) as info:
        structure_or_raise(converter, [1, 2], UserMetricsPage)
    assert info.value.field_path == "data"


def test_histogram_bounds_arrive_as_strings_in_any_number_form(
    converter: cattrs.Converter,
) -> None:
    data = {
        "request_count": [{"range_start": "4.5", "range_end": "12", "value": 4.125}],
        "user_cost": [{"range_start": "1e-7", "range_end": "0.000123", "value": 2}],
    }
    overview = converter.structure(data, MetricsOverview)
    assert overview.request_count == (HistogramRow(range_start=4.5, range_end=12.0, value=4.125),)
    assert overview.user_cost[0].range_start == 1e-7
    assert overview.user_cost[0].value == 2.0


def test_empty_histograms_are_empty_tuples(converter: cattrs.Converter) -> None:
    overview = converter.structure({"request_count": [], "user_cost": []}, MetricsOverview)
    assert overview == MetricsOverview(request_count=(), user_cost=())


def test_user_stats_accept_string_counts_and_null_token_sums(converter: cattrs.Converter) -> None:
    rows = [
        {"user_id": "a", "count": "3", "prompt_tokens": None, "completion_tokens": "9", "cost": 1},
        {"user_id": "b", "count": 1, "prompt_tokens": 2, "completion_tokens": 3, "cost": 0.5},
    ]
    stats = converter.structure(rows, list[UserStats])
    assert stats[0] == UserStats(
        user_id="a", count=3, prompt_tokens=0, completion_tokens=9, cost=1.0
    )
    with pytest.raises(ResponseValidationError) as info:
        structure_or_raise(converter, [rows[1], {"user_id": "c"}], list[UserStats])
    assert info.value.field_path == "data[1].count"


def test_booleans_are_not_numbers(converter: cattrs.Converter) -> None:
    with pytest.raises(ResponseValidationError) as info:
        structure_or_raise(converter, _page([_user(0, total_requests=True)]), UserMetricsPage)
    assert info.value.field_path == "data.users[0].total_requests"


def test_each_converter_is_new_and_the_global_one_is_untouched() -> None:
    first, second = make_converter(), make_converter()
    assert first is not second
    assert first is not cattrs.global_converter
    # The global converter knows nothing of the wire rename.
    unstructured = cattrs.global_converter.unstructure(
        UserMetricsPage(users=(), count=0, has_users=False, offset=0, limit=1)
    )
    assert "has_users" in unstructured


def test_request_bodies_use_wire_names_and_omit_unset_fields(converter: cattrs.Converter) -> None:
    window = TimeFilter(start_time_unix_seconds=0, end_time_unix_seconds=1714521600)
    query = MetricsQuery(filter="all", offset=0, limit=10, time_filter=window)
    assert converter.unstructure(query) == {
        "filter": "all",
        "offset": 0,
        "limit": 10,
        "timeFilter": {"startTimeUnixSeconds": 0, "endTimeUnixSeconds": 1714521600},
    }
    overview = OverviewQuery(filter="all", p_size="p99.9", use_interquartile=True)
    assert converter.unstructure(overview) == {
        "filter": "all",
        "pSize": "p99.9",
        "useInterquartile": True,
    }
    assert converter.unstructure(UsersQuery(user_ids=["a"])) == {"userIds": ["a"]}


_texts = st.text(min_size=1, max_size=12)
_counts = st.integers(min_value=0, max_value=2**53)
_floats = st.floats(min_value=0, max_value=1e12, allow_nan=False)
_times = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
_users = st.builds(
    UserMetrics,
    id=_texts,
    user_id=_texts,
    active_for=_counts,
    first_active=_times,
    last_active=_times,
    total_requests=_counts,
    average_requests_per_day_active=_floats,
    average_tokens_per_request=_floats,
    total_completion_tokens=_counts,
    total_prompt_tokens=_counts,
    cost=_floats,
    rate_limited_count=st.none() | _counts,
)


@given(users=st.lists(_users, max_size=5), stringify=st.booleans())
def test_any_page_survives_a_trip_through_wire_json(
    users: list[UserMetrics], stringify: bool
) -> None:
    converter = make_converter()
    page = UserMetricsPage(users=tuple(users), count=len(users), has_users=True, offset=0, limit=5)
    wire = converter.unstructure(page)
    assert "hasUsers" in wire
    if stringify:  # the hosted server may quote 64-bit integers
        wire = copy.deepcopy(wire)
        for row in wire["users"]:
            row["active_for"] = str(row["active_for"])
        wire["count"] = str(wire["count"])
    assert converter.structure(wire, UserMetricsPage) == page


def _raw_page(users: list[dict[str, Any]], count: int | str = 3) -> bytes:
    return json.dumps(
        {"data": {"users": users, "count": count, "hasUsers": True}, "error": None}
    ).encode()


def test_the_c_fast_path_and_the_general_path_agree(converter: cattrs.Converter) -> None:
    pytest.importorskip("msgspec")
    users = [_user(1), _user(2, active_for="4", cost="1e-7", rate_limited_count="1", extra=[1])]
    raw = _raw_page(users, count="9")
    fast = fast_metrics_page(raw, offset=10, limit=2)
    general = structure_or_raise(
        converter, {**json.loads(raw)["data"], "offset": 10, "limit": 2}, UserMetricsPage
    )
    assert fast is not None
    assert fast == general
    assert fast.users[0].first_active.tzinfo is UTC


@pytest.mark.parametrize(
    "body",
    [
        _raw_page([_user(1, cost=None)]),
        _raw_page([_user(1, last_active="2024-05-01T14:00:00+02:00")]),
        _raw_page([_user(1, last_active="2024-05-01 12:00:00")]),
        _raw_page([_user(1, total_requests=2.5)]),
        b'{"data": null, "error": "boom"}',
        b"not json",
    ],
)
def test_the_fast_path_leaves_anything_unusual_to_the_general_path(body: bytes) -> None:
    pytest.importorskip("msgspec")
    assert fast_metrics_page(body, offset=0, limit=10) is None
