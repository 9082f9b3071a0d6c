"""Property tests of the filter DSL: the wire, text and Python forms round-trip; ~ is exact."""

from __future__ import annotations

from typing import Any

import pytest
from _filter_strategies import (
    any_filters,
    assert_valid_wire,
    negatable_filters,
    request_leaves,
    rows,
    trees,
    user_leaves,
    users,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from helicone_users import ALL, F, FilterError, U
from helicone_users.filters import Filter, from_json, parse
from helicone_users.testing._evaluate import matches

EXAMPLES = settings(max_examples=60, deadline=None)


@EXAMPLES
@given(any_filters())
def test_every_built_filter_validates_against_the_spec(node: Filter) -> None:
    assert_valid_wire(node.to_json())


@EXAMPLES
@given(any_filters())
def test_wire_json_reads_back_to_an_equal_filter(node: Filter) -> None:
    again = from_json(node.to_json())
    assert again == node
    assert hash(again) == hash(node)


@EXAMPLES
@given(any_filters())
def test_text_form_parses_back_to_an_equal_filter(node: Filter) -> None:
    assert parse(str(node)) == node


@EXAMPLES
@given(any_filters())
def test_repr_evaluates_back_to_an_equal_filter(node: Filter) -> None:
    assert eval(repr(node), {"F": F, "U": U, "ALL": ALL}) == node


@EXAMPLES
@given(any_filters())
def test_compiling_twice_gives_the_same_wire_json(node: Filter) -> None:
    assert node.to_json() == node.to_json()


@EXAMPLES
@given(negatable_filters(), st.lists(rows(), min_size=1, max_size=6), users())
def test_negation_matches_exactly_the_records_the_filter_does_not(
    node: Filter, records: list[dict[str, Any]], user: dict[str, Any]
) -> None:
    negated = ~node
    assert_valid_wire(negated.to_json())
    for row in records:
        assert matches(negated.to_json(), row, user) is not matches(node.to_json(), row, user)


@EXAMPLES
@given(trees(request_leaves(negatable=True)), trees(user_leaves(negatable=True)))
def test_negating_an_and_across_tables_is_refused_as_a_cross_table_or(
    requests: Filter, aggregates: Filter
) -> None:
    with pytest.raises(FilterError, match="filters nothing"):
        ~(requests & aggregates)
