"""Filter test helpers: the spec's UserFilterNode validator and hypothesis strategies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from helicone_users.filters import (
    ALL,
    REQUEST_COLUMNS,
    USER_COLUMNS,
    F,
    Filter,
    U,
    all_of,
    any_of,
)

# CI runs from a fresh clone with the shared documents beside the repository.
SPEC_PATH = (
    Path(__file__).resolve().parents[1].parent / "shared" / "spec" / "helicone-users.openapi.yaml"
)


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    """The shared OpenAPI document; a missing file fails loudly."""
    if not SPEC_PATH.is_file():
        raise FileNotFoundError(f"the shared spec is missing: expected it at {SPEC_PATH}")
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return loaded


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = {"$ref": "#/components/schemas/UserFilterNode", "components": spec()["components"]}
    return Draft202012Validator(schema)


def assert_valid_wire(obj: Any) -> None:
    """Fail unless ``obj`` validates against the spec's UserFilterNode."""
    errors = sorted(_validator().iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


# --- Values: small domains so that records and filters often meet ---------------------------------

TEXTS = st.text(alphabet="aAb%_", max_size=3)
INTS = st.integers(-3, 3)
NUMBERS = st.one_of(INTS, st.sampled_from([-1.5, 0.5, 2.25]))
COSTS = st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.75])
INSTANTS = [
    datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc) + timedelta(milliseconds=ms)
    for ms in (0, 1, 500, 86_400_000)
]
TIMESTAMPS = st.sampled_from(INSTANTS)
PROPERTY_KEYS = st.sampled_from(["env", "team", "a b"])
SCORE_KEYS = st.sampled_from(["accuracy", "helpful"])

_TEXT_OPS = ["equals", "not_equals", "contains", "not_contains", "__eq__", "__ne__"]
_PATTERN_OPS = ["like", "ilike"]
_NUMBER_OPS = ["equals", "not_equals", "eq", "ne", "gt", "gte", "lt", "lte", "__gt__", "__le__"]
_SCORE_OPS = ["equals", "not_equals", "eq", "ne"]
_TIMESTAMP_OPS = ["equals", "gt", "gte", "lt", "lte", "__lt__", "__ge__"]


def _attribute(column: str) -> str:
    return column.replace("-", "_")


def _columns(kinds: dict[str, str], kind: str) -> list[str]:
    return sorted(c for c, k in kinds.items() if k == kind)


def _apply(field: Any, method: str, value: Any) -> Filter:
    node: Filter = getattr(field, method)(value)
    return node


def _leaf(
    fields: st.SearchStrategy[Any], methods: list[str], values: st.SearchStrategy[Any]
) -> Any:
    return st.builds(_apply, fields, st.sampled_from(methods), values)


def request_leaves(*, negatable: bool = False) -> st.SearchStrategy[Filter]:
    """Leaves over every request column kind; ``negatable`` leaves out like/ilike and scores."""

    def plain(kind: str) -> st.SearchStrategy[Any]:
        names = [c for c in _columns(dict(REQUEST_COLUMNS), kind) if c != "cost"]
        return st.sampled_from(names).map(lambda c: getattr(F, _attribute(c)))

    text_ops = _TEXT_OPS if negatable else _TEXT_OPS + _PATTERN_OPS
    choices = [
        _leaf(plain("text"), text_ops, TEXTS),
        _leaf(plain("number"), _NUMBER_OPS, NUMBERS),
        _leaf(st.just(F.cost), _NUMBER_OPS, COSTS),
        _leaf(plain("timestamp"), _TIMESTAMP_OPS, TIMESTAMPS),
        _leaf(plain("boolean"), ["equals"], st.booleans()),
        _leaf(PROPERTY_KEYS.map(lambda k: F.properties[k]), text_ops, TEXTS),
    ]
    if not negatable:
        choices.append(_leaf(SCORE_KEYS.map(lambda k: F.scores[k]), _SCORE_OPS, INTS))
    return st.one_of(*choices)


def user_leaves(*, negatable: bool = False) -> st.SearchStrategy[Filter]:
    """Leaves over the users_view aggregates."""
    numbers = [c.removeprefix("user_") for c in _columns(dict(USER_COLUMNS), "number")]
    stamps = [c.removeprefix("user_") for c in _columns(dict(USER_COLUMNS), "timestamp")]
    text_ops = _TEXT_OPS if negatable else _TEXT_OPS + _PATTERN_OPS
    return st.one_of(
        _leaf(st.just(U.user_id), text_ops, TEXTS),
        _leaf(st.sampled_from(numbers).map(lambda c: getattr(U, c)), _NUMBER_OPS, NUMBERS),
        _leaf(st.sampled_from(stamps).map(lambda c: getattr(U, c)), _TIMESTAMP_OPS, TIMESTAMPS),
    )


def trees(leaves: st.SearchStrategy[Filter], max_leaves: int = 10) -> st.SearchStrategy[Filter]:
    """And/Or trees over ``leaves`` built with the public combinators."""

    def extend(children: st.SearchStrategy[Filter]) -> st.SearchStrategy[Filter]:
        groups = st.lists(children, min_size=2, max_size=4)
        combine: list[Callable[..., Filter]] = [all_of, any_of]
        return st.builds(lambda xs, f: f(*xs), groups, st.sampled_from(combine))

    return st.recursive(leaves, extend, max_leaves=max_leaves)


def any_filters() -> st.SearchStrategy[Filter]:
    """Any filter the DSL builds: one table's trees, both ANDed, or ALL."""
    requests, users = trees(request_leaves()), trees(user_leaves())
    return st.one_of(
        requests,
        users,
        st.builds(lambda a, b: a & b, requests, users),
        st.just(ALL),
    )


def negatable_filters() -> st.SearchStrategy[Filter]:
    """Single-table trees whose leaves all have complements."""
    return st.one_of(trees(request_leaves(negatable=True)), trees(user_leaves(negatable=True)))


# --- Records --------------------------------------------------------------------------------------


@st.composite
def rows(draw: st.DrawFn) -> dict[str, Any]:
    """A request row with every column present (no NULLs)."""
    row: dict[str, Any] = {}
    for column, kind in REQUEST_COLUMNS.items():
        if column == "helicone-score-feedback":
            continue
        if kind == "text":
            row[column] = draw(TEXTS)
        elif kind == "number":
            row[column] = draw(COSTS if column == "cost" else NUMBERS)
        elif kind == "timestamp":
            row[column] = draw(TIMESTAMPS)
        else:
            row[column] = draw(st.booleans())
    row["properties"] = draw(st.dictionaries(PROPERTY_KEYS, TEXTS, max_size=3))
    scores = draw(st.dictionaries(SCORE_KEYS, INTS, max_size=2))
    scores["helicone-score-feedback"] = draw(st.sampled_from([0, 1]))
    row["scores"] = scores
    return row


@st.composite
def users(draw: st.DrawFn) -> dict[str, Any]:
    """One user's aggregates, keyed without the user_ prefix."""
    user: dict[str, Any] = {}
    for column, kind in USER_COLUMNS.items():
        name = column.removeprefix("user_")
        if kind == "text":
            user[name] = draw(TEXTS)
        elif kind == "number":
            user[name] = draw(NUMBERS)
        else:
            user[name] = draw(TIMESTAMPS)
    return user
