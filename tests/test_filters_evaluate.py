"""The reference evaluator of wire filter JSON (helicone_users.testing._evaluate)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from helicone_users import ALL, F, U
from helicone_users.testing._evaluate import matches

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
ROW: dict[str, Any] = {
    "request_id": "r1",
    "user_id": "alice",
    "request_created_at": T0,
    "model": "gpt-4o-mini",
    "latency": 420,
    "cost": 0.25,
    "properties": {"env": "prod"},
    "scores": {"accuracy": 4},
}
USER: dict[str, Any] = {"user_id": "alice", "cost": 3.5, "total_requests": 10, "first_active": T0}


def check(node: Any, row: dict[str, Any] | None = None, user: Any = USER) -> bool:
    wire = node.to_json() if hasattr(node, "to_json") else node
    return matches(wire, ROW if row is None else row, user)


def test_all_and_the_empty_leaf_match_every_row() -> None:
    assert check(ALL)
    assert check({})
    assert check({"request_response_rmt": {}})


def test_branches_combine_with_and_and_or() -> None:
    assert check((F.latency > 400) & F.model.contains("gpt"))
    assert not check((F.latency > 500) & F.model.contains("gpt"))
    assert check((F.latency > 500) | F.model.contains("gpt"))


def test_user_leaves_read_the_aggregates_or_pass_in_the_row_pass() -> None:
    assert check((U.cost > 3) & (F.latency > 1))
    assert not check(U.cost > 4)
    assert check(U.cost > 4, user=None)  # the WHERE pass turns users_view leaves into true
    assert check(U.first_active == T0)
    assert check({"user_metrics": {"total_requests": {"equals": 10}}})


def test_a_leaf_with_several_parts_is_their_and() -> None:
    wire = {"request_response_rmt": {"latency": {"gt": 400, "lt": 410}}}
    assert not check(wire)
    wire = {
        "request_response_rmt": {"latency": {"gt": 400}},
        "users_view": {"user_cost": {"lt": 1}},
    }
    assert not check(wire)


def test_missing_nullable_values_are_null_and_match_no_comparison() -> None:
    assert "country_code" not in ROW
    assert not check(F.country_code == "US")
    assert not check(F.country_code != "US")
    assert check(F.country_code == "null")
    assert not check(F.country_code != "null")
    assert not check(F.time_to_first_token < 10, {**ROW, "time_to_first_token": None})
    assert check(F.country_code == "US", {**ROW, "country_code": "US"})


def test_missing_values_take_the_jsonl_defaults() -> None:
    row = {"request_id": "r", "user_id": "u", "request_created_at": T0, "latency": 250}
    assert check(F.status == 200, row)
    assert check(F.cost == 0, row)
    assert check(F.model == "", row)
    assert check(F.model != "null", row)
    assert check(F.prompt_tokens == 0, row)
    assert check(F.total_tokens == 0, {**row, "prompt_tokens": None})
    assert check(F.total_tokens == 7, {**row, "prompt_tokens": 3, "completion_tokens": 4})
    assert check(F.cached.is_false() & F.cache_enabled.is_false() & F.threat.is_false(), row)
    assert check(F.cache_enabled.is_true(), {**row, "cached": True})
    assert check(F.cache_reference_id == "00000000-0000-0000-0000-000000000000", row)
    assert check(
        F.cache_reference_id != "00000000-0000-0000-0000-000000000000", {**row, "cached": True}
    )
    assert check(F.response_created_at == T0 + timedelta(milliseconds=250), row)
    assert check(F.organization_id.contains("0000"), row)


def test_empty_special_tests_for_the_empty_string() -> None:
    assert check(F.model == "__empty__", {**ROW, "model": ""})
    assert not check(F.model == "__empty__", ROW)


def test_contains_is_case_insensitive_and_treats_percent_and_underscore_as_wildcards() -> None:
    assert check(F.model.contains("GPT"))
    assert check(F.model.contains("4_-m"))  # _ matches the "o"
    assert check(F.model.contains("gpt%mini"))
    assert not check(F.model.not_contains("4o"))
    assert check(F.model.contains("4\\_"), {**ROW, "model": "gpt-4_"})
    assert not check(F.model.contains("4\\_"), ROW)


def test_like_is_case_sensitive_and_ilike_is_not() -> None:
    assert check(F.model.like("gpt%"))
    assert not check(F.model.like("GPT%"))
    assert check(F.model.ilike("GPT%"))
    assert not check(F.model.like("gpt"))


def test_a_missing_property_reads_as_the_empty_string() -> None:
    assert check(F.properties["team"] == "")
    assert check(F.properties["team"] != "x")
    assert check(F.properties["env"] == "prod")
    assert check(F.properties["team"] == "null", {**ROW, "properties": {"team": "null"}})
    assert not check(F.properties["team"] == "null")


def test_score_leaves_need_the_key_to_exist() -> None:
    assert check(F.scores["accuracy"] == 4)
    assert check(F.scores["accuracy"] != 3)
    assert not check(F.scores["helpful"] == 3)
    assert not check(F.scores["helpful"] != 3)


def test_feedback_reads_the_feedback_score() -> None:
    assert check(F.helicone_score_feedback.is_false())
    liked = {**ROW, "scores": {"helicone-score-feedback": 1}}
    assert check(F.helicone_score_feedback.is_true(), liked)


def test_request_cost_compares_whole_nano_usd() -> None:
    assert check(F.cost == 0.25)
    tiny = {**ROW, "cost": 1e-10}  # stored as 0 nano-USD
    assert not check(F.cost > 0, tiny)
    assert check(F.cost > 0.2499999999)  # floor(0.2499999999e9) = 249999999
    assert not check(F.cost > 0.2500000009)


def test_timestamps_compare_at_millisecond_precision() -> None:
    row = {**ROW, "request_created_at": T0 + timedelta(microseconds=999)}
    assert check(F.request_created_at == T0, row)
    assert check(
        {"request_response_rmt": {"request_created_at": {"equals": "2024-05-01T12:00:00Z"}}}
    )
    iso_row = {**ROW, "request_created_at": "2024-05-01T14:00:00+02:00"}
    assert check(F.request_created_at == T0, iso_row)


def test_deep_wire_chains_evaluate_without_recursion_errors() -> None:
    wire: Any = {"request_response_rmt": {"latency": {"equals": 0}}}
    for i in range(1, 20_000):
        wire = {
            "left": {"request_response_rmt": {"latency": {"equals": i}}},
            "operator": "or",
            "right": wire,
        }
    assert matches(wire, ROW)
    assert not matches(wire, {**ROW, "latency": -1})


@pytest.mark.parametrize(
    "wire",
    [
        "none",
        42,
        {"left": "all", "operator": "xor", "right": "all"},
        {"nope": {}},
        {"request_response_rmt": {"latency": {}}},
        {"request_response_rmt": {"latency": {"between": 1}}},
        {"request_response_rmt": {"latency": {"gt": "1"}}},
        {"request_response_rmt": {"unknown": {"equals": "1"}}},
        {"request_response_rmt": {"search_properties": {"k": {"equals": "1"}}}},
        {"request_response_rmt": {"model": {"regex": "x"}}},
        {"request_response_rmt": {"threat": {"equals": 1}}},
        {"request_response_rmt": {"request_created_at": {"not-equals": "2024-05-01T12:00:00Z"}}},
        {"request_response_rmt": {"scores": {"accuracy": {"equals": "high"}}}},
        {"users_view": {"user_nope": {"equals": 1}}},
    ],
)
def test_invalid_filters_raise_value_error(wire: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the messages differ per case
        matches(wire, ROW, USER)
