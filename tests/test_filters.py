"""The filter DSL: fields, operators, combinators, wire JSON, and every refusal."""

from __future__ import annotations

import copy
import json
import pickle
import sys
import warnings
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import attrs
import pytest
from _filter_strategies import SPEC_PATH, assert_valid_wire, spec

import helicone_users
from helicone_users import (
    ALL,
    F,
    Filter,
    FilterError,
    HeliconeWarning,
    U,
    UnknownFieldError,
    all_of,
    any_of,
)
from helicone_users.filters import (
    REQUEST_COLUMNS,
    USER_COLUMNS,
    And,
    BooleanField,
    Leaf,
    NumberField,
    Or,
    ScoreField,
    TextField,
    TimestampField,
    coerce,
    from_json,
    parse,
)

RMT = "request_response_rmt"
USERS = "users_view"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def rmt(column: str, operator: str, value: Any) -> dict[str, Any]:
    return {RMT: {column: {operator: value}}}


def users_view(column: str, operator: str, value: Any) -> dict[str, Any]:
    return {USERS: {column: {operator: value}}}


# --- Public names and the catalog ----------------------------------------------------------------


def test_the_dsl_names_are_exported_from_the_package() -> None:
    for name in ("F", "U", "ALL", "Filter", "all_of", "any_of"):
        assert name in helicone_users.__all__
        assert getattr(helicone_users, name) is not None


def test_every_request_column_of_the_spec_is_an_attribute_of_f() -> None:
    columns = spec()["components"]["schemas"]["Partial_RequestResponseRMTToOperators_"]
    for column in columns["properties"]:
        if column in ("properties", "scores", "search_properties", "property_key"):
            continue
        assert column in REQUEST_COLUMNS
        field = getattr(F, column.replace("-", "_"))
        assert field.name == column


def test_every_user_column_of_the_spec_is_an_attribute_of_u_without_its_prefix() -> None:
    columns = spec()["components"]["schemas"]["Partial_UserViewToOperators_"]["properties"]
    assert set(columns) == set(USER_COLUMNS)
    for column in columns:
        assert getattr(U, column.removeprefix("user_")).name == "user." + column[5:]


def test_fields_are_typed_by_column_kind() -> None:
    assert isinstance(F.model, TextField)
    assert isinstance(F.latency, NumberField)
    assert isinstance(F.request_created_at, TimestampField)
    assert isinstance(F.threat, BooleanField)
    assert isinstance(F.helicone_score_feedback, BooleanField)
    assert isinstance(F.properties["environment"], TextField)
    assert isinstance(F.scores["accuracy"], ScoreField)
    assert isinstance(U.cost, NumberField)
    assert isinstance(U.first_active, TimestampField)
    assert isinstance(U.user_id, TextField)


# --- Golden wire JSON for every operator of every kind -------------------------------------------

GOLDEN: list[tuple[str, Any, Any]] = [
    ("text equals", lambda: F.model.equals("gpt-4o"), rmt("model", "equals", "gpt-4o")),
    ("text ==", lambda: F.model == "gpt-4o", rmt("model", "equals", "gpt-4o")),
    ("text not_equals", lambda: F.model.not_equals("x"), rmt("model", "not-equals", "x")),
    ("text !=", lambda: F.model != "x", rmt("model", "not-equals", "x")),
    ("text like", lambda: F.model.like("gpt%"), rmt("model", "like", "gpt%")),
    ("text ilike", lambda: F.model.ilike("GPT%"), rmt("model", "ilike", "GPT%")),
    ("text contains", lambda: F.model.contains("gpt"), rmt("model", "contains", "gpt")),
    ("text not_contains", lambda: F.model.not_contains("a"), rmt("model", "not-contains", "a")),
    ("number ==", lambda: F.latency == 5, rmt("latency", "equals", 5)),
    ("number eq", lambda: F.latency.eq(5), rmt("latency", "equals", 5)),
    ("number equals", lambda: F.latency.equals(5), rmt("latency", "equals", 5)),
    ("number !=", lambda: F.latency != 5, rmt("latency", "not-equals", 5)),
    ("number ne", lambda: F.latency.ne(5), rmt("latency", "not-equals", 5)),
    ("number >", lambda: F.latency > 500, rmt("latency", "gt", 500)),
    ("number gt", lambda: F.latency.gt(500), rmt("latency", "gt", 500)),
    ("number >=", lambda: F.latency >= 1.5, rmt("latency", "gte", 1.5)),
    ("number gte", lambda: F.latency.gte(1.5), rmt("latency", "gte", 1.5)),
    ("number <", lambda: F.status < 400, rmt("status", "lt", 400)),
    ("number lt", lambda: F.status.lt(400), rmt("status", "lt", 400)),
    ("number <=", lambda: F.status <= 400, rmt("status", "lte", 400)),
    ("number lte", lambda: F.status.lte(400), rmt("status", "lte", 400)),
    ("reflected number", lambda: F.latency > 500, rmt("latency", "gt", 500)),
    ("cost in USD", lambda: F.cost > 0.25, rmt("cost", "gt", 0.25)),
    (
        "timestamp equals",
        lambda: F.request_created_at.equals(T0),
        rmt("request_created_at", "equals", "2024-05-01T12:00:00Z"),
    ),
    (
        "timestamp ==",
        lambda: F.request_created_at == "2024-05-01T14:00:00+02:00",
        rmt("request_created_at", "equals", "2024-05-01T12:00:00Z"),
    ),
    (
        "timestamp gt",
        lambda: F.request_created_at.gt(T0),
        rmt("request_created_at", "gt", "2024-05-01T12:00:00Z"),
    ),
    (
        "timestamp >",
        lambda: F.response_created_at > T0,
        rmt("response_created_at", "gt", "2024-05-01T12:00:00Z"),
    ),
    (
        "timestamp gte",
        lambda: F.request_created_at.gte("2024-05-01T12:00:00.250Z"),
        rmt("request_created_at", "gte", "2024-05-01T12:00:00.250Z"),
    ),
    (
        "timestamp >=",
        lambda: F.request_created_at >= T0,
        rmt("request_created_at", "gte", "2024-05-01T12:00:00Z"),
    ),
    (
        "timestamp lt",
        lambda: F.request_created_at.lt(T0),
        rmt("request_created_at", "lt", "2024-05-01T12:00:00Z"),
    ),
    (
        "timestamp <",
        lambda: F.request_created_at < T0,
        rmt("request_created_at", "lt", "2024-05-01T12:00:00Z"),
    ),
    (
        "timestamp lte",
        lambda: F.request_created_at.lte(T0),
        rmt("request_created_at", "lte", "2024-05-01T12:00:00Z"),
    ),
    (
        "timestamp <=",
        lambda: F.request_created_at <= T0,
        rmt("request_created_at", "lte", "2024-05-01T12:00:00Z"),
    ),
    ("boolean is_true", lambda: F.threat.is_true(), rmt("threat", "equals", True)),
    ("boolean is_false", lambda: F.cached.is_false(), rmt("cached", "equals", False)),
    ("boolean equals", lambda: F.cache_enabled.equals(True), rmt("cache_enabled", "equals", True)),
    ("boolean ==", lambda: F.threat == False, rmt("threat", "equals", False)),  # noqa: E712
    ("boolean !=", lambda: F.threat != True, rmt("threat", "equals", False)),  # noqa: E712
    (
        "hyphenated column",
        lambda: F.helicone_score_feedback.is_true(),
        rmt("helicone-score-feedback", "equals", True),
    ),
    (
        "property",
        lambda: F.properties["environment"] == "prod",
        {RMT: {"properties": {"environment": {"equals": "prod"}}}},
    ),
    (
        "property contains",
        lambda: F.properties["env"].contains("pro"),
        {RMT: {"properties": {"env": {"contains": "pro"}}}},
    ),
    (
        "score !=",
        lambda: F.scores["accuracy"] != 3,
        {RMT: {"scores": {"accuracy": {"not-equals": "3"}}}},
    ),
    (
        "score ==",
        lambda: F.scores["accuracy"] == 3,
        {RMT: {"scores": {"accuracy": {"equals": "3"}}}},
    ),
    ("user text", lambda: U.user_id == "alice", users_view("user_user_id", "equals", "alice")),
    ("user cost", lambda: U.cost >= 5, users_view("user_cost", "gte", 5)),
    ("user count", lambda: U.total_requests < 10, users_view("user_total_requests", "lt", 10)),
    (
        "user timestamp",
        lambda: U.last_active > T0,
        users_view("user_last_active", "gt", "2024-05-01T12:00:00Z"),
    ),
    ("all", lambda: ALL, "all"),
]


@pytest.mark.parametrize(("build", "expected"), [g[1:] for g in GOLDEN], ids=[g[0] for g in GOLDEN])
def test_every_operator_compiles_to_its_golden_wire_json(build: Any, expected: Any) -> None:
    node = build()
    assert node.to_json() == expected
    assert_valid_wire(node.to_json())
    assert from_json(expected) == node


def test_between_is_an_inclusive_and_of_gte_and_lte() -> None:
    node = F.latency.between(100, 200)
    assert node.to_json() == {
        "left": rmt("latency", "gte", 100),
        "operator": "and",
        "right": rmt("latency", "lte", 200),
    }
    assert U.first_active.between(T0, T0 + timedelta(days=1)) == (U.first_active >= T0) & (
        U.first_active <= T0 + timedelta(days=1)
    )


def test_between_refuses_a_low_end_above_the_high_end() -> None:
    with pytest.raises(FilterError, match="low is above high"):
        F.latency.between(5, 1)


def test_timestamps_keep_milliseconds_and_normalise_to_utc() -> None:
    local = datetime(2024, 5, 1, 14, 0, 0, 123_456, tzinfo=timezone(timedelta(hours=2)))
    node = F.request_created_at > local
    assert node.to_json() == rmt("request_created_at", "gt", "2024-05-01T12:00:00.123Z")
    assert node == (F.request_created_at > "2024-05-01T12:00:00.123Z")


# --- Combining -----------------------------------------------------------------------------------


def test_and_chains_flatten_into_one_node() -> None:
    a, b, c = F.latency > 1, F.model == "x", U.cost < 2
    node = a & b & c
    assert isinstance(node, And)
    assert node.children == (a, b, c)
    assert node == all_of(a, b, c) == a & (b & c)


def test_or_chains_flatten_into_one_node() -> None:
    a, b, c = F.latency > 1, F.model == "x", F.status == 500
    node = a | b | c
    assert isinstance(node, Or)
    assert node.children == (a, b, c)
    assert node == any_of(a, b, c)


def test_all_is_the_identity_of_and() -> None:
    x = F.latency > 1
    assert ALL & x is x
    assert x & ALL is x
    assert all_of() is ALL
    assert all_of(ALL, ALL) is ALL


def test_all_absorbs_or() -> None:
    assert (ALL | (F.latency > 1)) is ALL
    assert any_of(F.model == "a", ALL) is ALL


def test_any_of_nothing_is_refused() -> None:
    with pytest.raises(FilterError, match="at least one"):
        any_of()


def test_combinators_refuse_things_that_are_not_filters() -> None:
    with pytest.raises(FilterError, match="all_of"):
        all_of(F.latency > 1, "latency > 1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        (F.latency > 1) & "x"  # type: ignore[operator]


def test_tables_names_the_wire_tables_a_filter_reads() -> None:
    assert ALL.tables() == frozenset()
    assert (F.latency > 1).tables() == {RMT}
    assert ((F.latency > 1) & (U.cost > 1)).tables() == {RMT, USERS}


def test_a_wide_and_compiles_to_a_balanced_tree() -> None:
    leaves = [F.latency == i for i in range(10_000)]
    node = all_of(*leaves)
    wire = node.to_json()
    assert _depth(wire) <= 15
    assert wire == all_of(*leaves).to_json()
    assert from_json(wire) == node
    assert _inorder(wire) == [leaf.to_json() for leaf in leaves]


def test_a_deep_right_nested_wire_chain_reads_without_recursion_errors() -> None:
    wire: Any = rmt("latency", "equals", 0)
    for i in range(1, sys.getrecursionlimit() * 5):
        wire = {"left": rmt("latency", "equals", i), "operator": "or", "right": wire}
    node = from_json(wire)
    assert isinstance(node, Or)
    assert len(node.children) == sys.getrecursionlimit() * 5
    assert _depth(node.to_json()) <= 15


def _depth(wire: Any) -> int:
    deepest, stack = 0, [(wire, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict) and "left" in node:
            stack += [(node["left"], depth + 1), (node["right"], depth + 1)]
    return deepest


def _inorder(wire: Any) -> list[Any]:
    out, stack = [], [wire]
    while stack:
        node = stack.pop()
        if isinstance(node, dict) and "left" in node:
            stack += [node["right"], node["left"]]
        else:
            out.append(node)
    return out


# --- Values: immutable, hashable, structural -----------------------------------------------------


def test_nodes_are_immutable() -> None:
    leaf = F.latency > 1
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        leaf.value = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        leaf.extra = 1  # type: ignore[attr-defined]


def test_nodes_compare_and_hash_by_structure() -> None:
    a = (F.latency > 1) & (F.model == "x")
    b = (F.latency > 1) & (F.model == "x")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b, F.latency > 2}) == 2
    assert (F.latency > 1) != (F.latency >= 1)


def test_nodes_survive_pickling() -> None:
    node = ((F.latency > 1) | (F.latency < 0)) & (U.cost < 2.5)
    assert pickle.loads(pickle.dumps(node)) == node


def test_a_filter_has_no_truth_value() -> None:
    with pytest.raises(TypeError, match=r"combine filters with & \(and\)"):
        bool(F.latency > 1)
    with pytest.raises(TypeError, match="parentheses"):
        _ = (F.latency > 1) and (F.latency < 5)


def test_fields_are_not_hashable_because_equality_builds_a_leaf() -> None:
    with pytest.raises(TypeError):
        hash(F.model)
    assert isinstance(F.model == "x", Leaf)


# --- Negation ------------------------------------------------------------------------------------


def test_negation_pushes_down_with_de_morgan() -> None:
    node = ~((F.latency > 5) & ((F.model == "x") | F.threat.is_true()))
    assert node == (F.latency <= 5) | ((F.model != "x") & F.threat.is_false())


@pytest.mark.parametrize(
    ("node", "negated"),
    [
        (F.model == "a", F.model != "a"),
        (F.model.contains("a"), F.model.not_contains("a")),
        (F.latency > 1, F.latency <= 1),
        (F.latency >= 1, F.latency < 1),
        (F.latency == 1, F.latency != 1),
        (F.properties["env"] == "prod", F.properties["env"] != "prod"),
        (F.cached.is_true(), F.cached.is_false()),
        (F.request_created_at == T0, (F.request_created_at < T0) | (F.request_created_at > T0)),
        (F.model == "__empty__", F.model != ""),
        (F.model == "null", F.model != "null"),
    ],
)
def test_each_operator_negates_to_its_complement(node: Filter, negated: Filter) -> None:
    assert ~node == negated


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: ~F.model.like("a%"), "like"),
        (lambda: ~F.model.ilike("a%"), "ilike"),
        (lambda: ~(F.scores["accuracy"] == 3), "scores.accuracy"),
        (lambda: ~ALL, "nothing"),
        (lambda: ~(F.model != "__empty__"), "__empty__"),
        (lambda: ~((F.latency > 1) & (U.cost > 1)), "filters nothing"),
    ],
)
def test_negation_without_a_wire_complement_is_refused(build: Any, match: str) -> None:
    with pytest.raises(FilterError, match=match):
        build()


# --- Refusals at build time ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: F.latency > "fast", "latency needs a number"),
        (lambda: F.latency == True, "latency needs a number"),  # noqa: E712
        (lambda: F.latency > float("nan"), "NaN"),
        (lambda: F.latency < float("inf"), "infinity"),
        (lambda: U.cost >= None, "user.cost needs a number"),
        (lambda: F.model == 3, "model needs a string"),
        (lambda: F.threat.equals(1), "threat needs True or False"),
        (lambda: F.threat != 1, "threat needs True or False"),
        (lambda: F.scores["a"] == 1.5, "scores.a needs an integer"),
        (lambda: F.request_created_at > 5, "request_created_at needs an aware datetime"),
        (lambda: F.request_created_at > datetime(2024, 1, 1), "naive datetime"),
        (lambda: F.request_created_at > "2024-01-01T00:00:00", "no UTC offset"),
        (lambda: F.request_created_at > "yesterday", "not an ISO-8601"),
        (lambda: F.request_created_at > "2024-02-30T00:00:00Z", "not a valid date-time"),
        (lambda: F.properties[""], "non-empty string key"),
    ],
)
def test_wrong_value_types_are_refused_naming_the_field(build: Any, match: str) -> None:
    with pytest.raises(FilterError, match=match):
        build()


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: F.model > 3, "model is a text field and has no '>'"),
        (lambda: F.model.gt(3), "model is a text field and has no 'gt'"),
        (lambda: F.threat > 1, "threat is a boolean field"),
        (lambda: F.request_created_at != T0, "request_created_at is a timestamp field"),
        (lambda: U.first_active.not_equals(T0), "user.first_active is a timestamp field"),
        (lambda: F.latency.contains("1"), "latency is a number field"),
    ],
)
def test_operators_the_kind_lacks_are_refused_naming_the_field(build: Any, match: str) -> None:
    with pytest.raises(FilterError, match=match):
        build()


def test_unknown_fields_are_refused_with_a_suggestion() -> None:
    with pytest.raises(FilterError, match="did you mean latency"):
        F.latncy  # noqa: B018
    with pytest.raises(FilterError, match="did you mean total_requests"):
        U.total_request  # noqa: B018


def test_an_unknown_field_is_also_an_attribute_error_so_introspection_works() -> None:
    with pytest.raises(AttributeError, match="did you mean latency") as info:
        F.latncy  # noqa: B018
    assert isinstance(info.value, UnknownFieldError)
    assert isinstance(info.value, FilterError)
    assert info.value.field == "latncy"
    assert not hasattr(F, "latncy")
    assert getattr(U, "nope", None) is None
    assert hasattr(F, "latency")
    assert getattr(F.latency, "contains", None) is None  # a number field has no contains
    assert not hasattr(F, "search_properties")
    assert "search_properties" not in dir(F)
    assert "latency" in dir(F)


def test_copies_and_mocks_of_the_namespaces_work() -> None:
    assert copy.copy(F).latency.gt(1) == (F.latency > 1)
    assert copy.deepcopy(U).cost.gt(1) == (U.cost > 1)
    spec = mock.create_autospec(F)
    assert hasattr(spec, "latency")
    assert not hasattr(spec, "latncy")


@pytest.mark.parametrize("name", ["__deepcopy__", "__wrapped__", "_private", "__len__"])
def test_dunder_and_private_lookups_get_a_plain_attribute_error(name: str) -> None:
    for obj in (F, U, F.latency):
        with pytest.raises(AttributeError) as info:
            getattr(obj, name)
        assert type(info.value) is AttributeError
        assert "did you mean" not in str(info.value)
        assert name in str(info.value)


def test_search_properties_and_property_key_are_refused_with_the_reason() -> None:
    with pytest.raises(FilterError, match="property-search queries"):
        F.search_properties  # noqa: B018
    with pytest.raises(FilterError, match="no known compiler mapping"):
        F.property_key  # noqa: B018


def test_an_or_across_request_and_user_fields_is_refused() -> None:
    with pytest.raises(FilterError, match="filters nothing") as info:
        (F.latency > 500) | (U.cost > 5)
    assert "one query per side" in str(info.value)
    with pytest.raises(FilterError, match="filters nothing"):
        any_of((F.latency > 1) & (U.cost > 1), F.model == "x")


def test_an_and_across_tables_and_an_or_inside_one_table_are_fine() -> None:
    node = ((F.latency > 500) | (F.model == "x")) & ((U.cost > 5) | (U.total_requests > 3))
    assert_valid_wire(node.to_json())


@pytest.mark.parametrize(
    "build",
    [
        lambda: F.cost >= 2.5,
        lambda: F.cost < -3,
        lambda: F.latency > 2**31,
        lambda: F.prompt_tokens < -(2**31) - 1,
        lambda: U.total_prompt_tokens > 3e10,
    ],
)
def test_values_outside_int32_on_the_wire_warn(build: Any) -> None:
    with pytest.warns(HeliconeWarning, match="Int32"):
        build()


@pytest.mark.parametrize(
    "build",
    [lambda: F.cost >= 2.147, lambda: F.latency > 2**31 - 1, lambda: U.cost > 5e9 + 0.5],
)
def test_values_inside_int32_or_fractional_do_not_warn(build: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build()


# --- Reading wire JSON ---------------------------------------------------------------------------


def test_empty_leaves_read_as_all() -> None:
    assert from_json({}) is ALL
    assert from_json({RMT: {}}) is ALL
    assert from_json({USERS: {}}) is ALL
    assert from_json("all") is ALL


def test_a_leaf_with_several_tables_columns_and_operators_is_their_and() -> None:
    wire = {
        RMT: {"latency": {"gt": 1, "lt": 9}, "model": {"equals": "x"}},
        USERS: {"user_cost": {"gte": 2}},
    }
    assert from_json(wire) == all_of(F.latency > 1, F.latency < 9, F.model == "x", U.cost >= 2)


def test_leniently_the_legacy_user_metrics_table_reads_as_user_fields() -> None:
    wire = {
        "user_metrics": {
            "user_id": {"equals": "alice"},
            "last_active": {"gte": "2024-05-01T12:00:00Z"},
            "total_requests": {"gt": 3},
            "cost": {"lt": 1.5},
        }
    }
    expected = (
        (U.user_id == "alice") & (U.last_active >= T0) & (U.total_requests > 3) & (U.cost < 1.5)
    )
    assert from_json(wire, strict=False) == expected
    assert_valid_wire(expected.to_json())


# The older docs page (seed 000), beside the repository like the spec.
SEED_000 = SPEC_PATH.parents[1] / "seeds" / "000_cb8bada5788ecc70.txt"


def _seed_000_filter() -> Any:
    text = SEED_000.read_text(encoding="utf-8")
    return json.loads(text.split("--data '", 1)[1].split("}'", 1)[0] + "}")["filter"]


def test_the_older_docs_example_body_is_refused_naming_users_view_and_user_cost() -> None:
    with pytest.raises(FilterError) as info:
        from_json(_seed_000_filter())
    message = str(info.value)
    assert message.startswith("filter.user_metrics: unknown table 'user_metrics'")
    assert "did you mean 'users_view'?" in message
    assert "'cost' → 'user_cost'" in message
    assert "'user_id' → 'user_user_id'" in message


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("user_metrics.cost > 1", "did you mean user.cost?"),
        ("users_view.user_cost > 1", "did you mean user.cost?"),
        ("request_response_rmt.latency > 1", "did you mean latency?"),
    ],
)
def test_text_naming_a_table_gets_the_field_to_write_instead(text: str, fix: str) -> None:
    with pytest.raises(FilterError, match="fields are written without their table") as info:
        parse(text)
    assert fix in str(info.value)


def test_branches_with_all_simplify() -> None:
    leaf = rmt("latency", "gt", 1)
    assert from_json({"left": "all", "operator": "and", "right": leaf}) == (F.latency > 1)
    assert from_json({"left": "all", "operator": "or", "right": leaf}) is ALL


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        (42, "filter: expected an object or 'all'"),
        ("everything", "filter: expected 'all'"),
        ({"left": "all", "operator": "xor", "right": "all"}, "filter.operator: expected 'and'"),
        ({"left": "all", "operator": "and"}, "filter: a branch has exactly"),
        ({"left": "all", "operator": "and", "right": {"x": {}}}, "filter.right.x: unknown table"),
        ({RMT: []}, "filter.request_response_rmt: expected an object of columns"),
        ({RMT: {"latncy": {"gt": 1}}}, "filter.request_response_rmt.latncy: unknown column"),
        ({RMT: {"latency": {}}}, "latency: expected a non-empty object of operators"),
        ({RMT: {"latency": {"contains": "1"}}}, "latency.contains: latency is a number column"),
        ({RMT: {"latency": {"gt": "1"}}}, "latency.gt: latency needs a number"),
        ({RMT: {"cached": {"not-equals": True}}}, "cached.not-equals: cached is a boolean"),
        ({RMT: {"search_properties": {"k": {"equals": "v"}}}}, "property-search"),
        ({RMT: {"property_key": {"equals": "k"}}}, "no known compiler mapping"),
        ({RMT: {"scores": {"a": {"equals": "high"}}}}, "scores.a.equals: scores are integers"),
        ({RMT: {"scores": {"a": {"contains": "1"}}}}, "scores.a.contains: scores.a is a score"),
        ({"user_metrics": {"cost": {"gt": 1}}}, "did you mean 'users_view'"),
        (
            {
                "left": rmt("latency", "gt", 1),
                "operator": "or",
                "right": users_view("user_cost", "gt", 1),
            },
            "filters nothing",
        ),
    ],
)
def test_invalid_wire_json_is_refused_naming_the_path(wire: Any, match: str) -> None:
    with pytest.raises(FilterError, match=match):
        from_json(wire)


def test_non_strict_reading_keeps_server_traps_as_written() -> None:
    wire = {
        "left": rmt("cost", "gt", 5),
        "operator": "or",
        "right": users_view("user_cost", "gt", 1),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        node = from_json(wire, strict=False)
    assert node.to_json() == wire


def test_coerce_accepts_filters_wire_json_and_text() -> None:
    node = (F.latency > 500) & (F.model == "x")
    assert coerce(node) is node
    assert coerce(node.to_json()) == node
    assert coerce('latency > 500 and model = "x"') == node
    assert coerce("all") is ALL
    with pytest.raises(FilterError, match="expected a Filter"):
        coerce(42)  # type: ignore[arg-type]


def test_parse_is_the_inverse_of_str_for_the_documented_example() -> None:
    node = parse('model contains "gpt" and latency > 500')
    assert node == F.model.contains("gpt") & (F.latency > 500)


def test_the_int32_warning_points_at_the_line_that_built_the_filter() -> None:
    with pytest.warns(HeliconeWarning) as record:
        F.cost > 3  # noqa: B015
    assert record[0].filename == __file__


def test_deeply_nested_groups_compile_without_recursion_errors() -> None:
    node: Filter = F.latency == 0
    for i in range(1, sys.getrecursionlimit() * 2):
        node = (node | (F.model == str(i))) & (F.status != i)
    wire = node.to_json()
    assert _depth(wire) > sys.getrecursionlimit()
    assert _inorder(wire)[0] == rmt("latency", "equals", 0)
