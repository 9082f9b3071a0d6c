"""A plain-Python evaluator of wire filter JSON for one request row: the reference semantics.

``matches(filter_json, row, user)`` follows the server's documented default semantics (the
emulator's default mode, every quirk off):

- ``"all"`` and the empty leaf ``{}`` are true; a branch is ``left and|or right``; inside a leaf
  every table, column and operator is ANDed (no first-key-only rule).
- ``request_response_rmt`` leaves read the row. ``users_view`` (and the legacy ``user_metrics``)
  leaves read ``user``, that user's aggregates keyed without the ``user_`` prefix; with
  ``user=None`` they are true, which is exactly the row (WHERE) pass of the two-pass compiler.
- A missing or ``None`` row value takes the emulator's JSONL default: ``""`` for ``model``,
  ``provider``, ``target_url``, the bodies, ``scores_column`` and ``assets``; 0 for ``latency``,
  ``cost`` and the token counts (``total_tokens`` = prompt + completion); ``status`` 200; false
  for ``cached``, ``threat`` and ``is_passthrough_billing``; ``cache_enabled`` = ``cached``;
  ``response_created_at`` = ``request_created_at`` + ``latency`` ms; the default organization and
  cache reference id; empty ``properties`` and ``scores``. The nullable columns
  (``country_code``, ``node_id``, ``job_id``, ``prompt_id``, ``prompt_version``,
  ``request_referrer``, ``time_to_first_token``) stay SQL NULL: every comparison with NULL is
  false, except the text special ``equals "null"``.
- Text: ``equals``/``not-equals`` compare exactly; on plain columns ``equals "null"`` is IS NULL,
  ``not-equals "null"`` IS NOT NULL and ``equals "__empty__"`` tests for ``""``. ``like`` is
  case-sensitive LIKE, ``ilike`` case-insensitive; ``contains`` is ``ILIKE '%v%'`` and
  ``not-contains`` its negation, so ``%`` and ``_`` in values are wildcards (``\\`` escapes).
- ``properties[K]`` reads ``""`` when the key is missing (no specials); ``scores[K]`` requires
  the key (``has(scores, K) AND scores[K] <op> v``) and compares integers;
  ``helicone-score-feedback`` is ``scores['helicone-score-feedback']`` (missing reads 0) compared
  with 1 for true and 0 for false.
- Request ``cost`` compares integer nano-USD: ``round(row cost × 1e9) <op> floor(value × 1e9)``;
  the user ``cost`` aggregate compares USD directly.
- Timestamps compare at millisecond precision; rows carry aware datetimes or ISO strings.

Invalid filters (unknown tables, columns or operators, empty operator objects, values of the
wrong type) raise ``ValueError``.
"""

from __future__ import annotations

import math
import operator as op
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from helicone_users._filter_text import (
    BOOLEAN,
    LEGACY_USERS,
    NUMBER,
    REQUEST_COLUMNS,
    RMT,
    TEXT,
    TIMESTAMP,
    USER_COLUMNS,
    USERS,
    parse_timestamp,
)
from helicone_users.testing._store import DEFAULT_ORG_ID, ZERO_UUID

__all__ = ["matches"]

_ORDER: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "equals": op.eq,
    "not-equals": op.ne,
    "gt": op.gt,
    "gte": op.ge,
    "lt": op.lt,
    "lte": op.le,
}
_DEFAULTS: Final[Mapping[str, Any]] = {
    **dict.fromkeys(
        ("model", "provider", "target_url", "request_body", "response_body", "scores_column"), ""
    ),
    "assets": "",
    **dict.fromkeys(
        ("latency", "prompt_tokens", "completion_tokens", "prompt_cache_read_tokens"), 0
    ),
    "prompt_cache_write_tokens": 0,
    "status": 200,
    "cost": 0,
    **dict.fromkeys(("cached", "threat", "is_passthrough_billing"), False),
    "organization_id": DEFAULT_ORG_ID,
}
_FEEDBACK: Final = "helicone-score-feedback"


def matches(
    filter_json: Any, row: Mapping[str, Any], user: Mapping[str, Any] | None = None
) -> bool:
    """Whether one request ``row`` (and its user's aggregates) passes the wire filter."""
    if isinstance(filter_json, str):
        if filter_json == "all":
            return True
        raise ValueError(f"a filter string must be 'all', got {filter_json!r}")
    if not isinstance(filter_json, Mapping):
        raise ValueError(f"a filter node is an object or 'all', got {type(filter_json).__name__}")
    if "left" in filter_json or "operator" in filter_json:
        return _branch(filter_json, row, user)
    return _leaf(filter_json, row, user)


def _branch(
    node: Mapping[str, Any], row: Mapping[str, Any], user: Mapping[str, Any] | None
) -> bool:
    operator = node.get("operator")
    if operator not in ("and", "or"):
        raise ValueError(f"branch operator must be 'and' or 'or', got {operator!r}")
    # Same-operator chains are flattened iteratively, so deep wire chains need no recursion.
    operands: list[Any] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Mapping) and current.get("operator") == operator:
            if "left" not in current or "right" not in current:
                raise ValueError("a branch needs left, operator and right")
            stack.extend((current["right"], current["left"]))
        else:
            operands.append(current)
    results = (matches(operand, row, user) for operand in operands)
    return all(results) if operator == "and" else any(results)


def _leaf(node: Mapping[str, Any], row: Mapping[str, Any], user: Mapping[str, Any] | None) -> bool:
    for table, columns in node.items():
        if not isinstance(columns, Mapping):
            raise ValueError(f"{table}: expected an object of columns")
        if table == RMT:
            if not all(_request_column(c, cell, row) for c, cell in columns.items()):
                return False
        elif table in (USERS, LEGACY_USERS):
            if user is not None and not all(
                _user_column(table, c, cell, user) for c, cell in columns.items()
            ):
                return False
        else:
            raise ValueError(f"unknown table {table!r}")
    return True


def _operators(column: str, cell: Any) -> list[tuple[str, Any]]:
    if not isinstance(cell, Mapping) or not cell:
        raise ValueError(f"{column}: expected a non-empty object of operators")
    return list(cell.items())


def _request_column(column: str, cell: Any, row: Mapping[str, Any]) -> bool:
    if column == "properties":
        props: Mapping[str, Any] = row.get("properties") or {}
        return all(
            _text(operator, props.get(key, ""), value, specials=False)
            for key, ops in _mapping(column, cell).items()
            for operator, value in _operators(f"properties.{key}", ops)
        )
    if column == "scores":
        scores: Mapping[str, Any] = row.get("scores") or {}
        return all(
            key in scores and _score(operator, scores[key], value)
            for key, ops in _mapping(column, cell).items()
            for operator, value in _operators(f"scores.{key}", ops)
        )
    kind = REQUEST_COLUMNS.get(column)
    if kind is None:
        raise ValueError(f"unknown or unsupported request column {column!r}")
    actual = _request_value(column, row)
    return all(
        _compare(kind, operator, actual, _request_bound(column, value))
        for operator, value in _operators(column, cell)
    )


def _mapping(column: str, cell: Any) -> Mapping[str, Any]:
    if not isinstance(cell, Mapping):
        raise ValueError(f"{column}: expected an object keyed by name")
    return cell


def _request_value(column: str, row: Mapping[str, Any]) -> Any:
    if column == _FEEDBACK:
        feedback = (row.get("scores") or {}).get(_FEEDBACK, 0)
        return {0: False, 1: True}.get(feedback)  # other scores equal neither true nor false
    value = row.get(column)
    if value is None:
        value = _derived(column, row) if column in _DERIVED else _DEFAULTS.get(column)
    if column == "cost" and value is not None:
        return round(value * 1_000_000_000)
    return value


def _derived(column: str, row: Mapping[str, Any]) -> Any:
    """Defaults that depend on other columns, as the emulator's JSONL loader fills them."""
    if column == "total_tokens":
        return _request_value("prompt_tokens", row) + _request_value("completion_tokens", row)
    if column == "response_created_at":
        start = row.get("request_created_at")
        if start is None:
            return None
        return _millis(start) + timedelta(milliseconds=_request_value("latency", row))
    cached = bool(_request_value("cached", row))
    if column == "cache_enabled":
        return cached
    # cache_reference_id: a stable id per cached request, the zero UUID otherwise.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, str(row.get("request_id")))) if cached else ZERO_UUID


_DERIVED: Final = frozenset(
    ("total_tokens", "response_created_at", "cache_enabled", "cache_reference_id")
)


def _request_bound(column: str, value: Any) -> Any:
    if column == "cost" and _is_number(value):
        return math.floor(value * 1_000_000_000)
    return value


def _user_column(table: str, column: str, cell: Any, user: Mapping[str, Any]) -> bool:
    name = column if table == LEGACY_USERS else column.removeprefix("user_")
    kind = USER_COLUMNS.get("user_" + name)
    if kind is None:
        raise ValueError(f"unknown {table} column {column!r}")
    actual = user.get(name)
    return all(
        _compare(kind, operator, actual, value) for operator, value in _operators(column, cell)
    )


def _compare(kind: str, operator: str, actual: Any, value: Any) -> bool:
    if kind == TEXT:
        return _text(operator, actual, value, specials=True)
    if kind == BOOLEAN:
        if operator != "equals" or not isinstance(value, bool):
            raise ValueError(f"booleans take only equals true/false, got {operator} {value!r}")
        return actual is not None and bool(actual) == value
    if kind == NUMBER:
        if not _is_number(value):
            raise ValueError(f"a number operator needs a number, got {value!r}")
        return actual is not None and _ordered(operator, actual, value)
    if kind == TIMESTAMP:
        if operator == "not-equals" or not isinstance(value, str):
            raise ValueError(f"timestamps take ISO strings and no not-equals, got {operator}")
        return actual is not None and _ordered(operator, _millis(actual), parse_timestamp(value))
    raise ValueError(f"unknown column kind {kind!r}")  # pragma: no cover - catalog is closed


def _ordered(operator: str, actual: Any, value: Any) -> bool:
    compare = _ORDER.get(operator)
    if compare is None:
        raise ValueError(f"unknown operator {operator!r}")
    return compare(actual, value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _millis(value: Any) -> datetime:
    if isinstance(value, str):
        return parse_timestamp(value)
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"row timestamps must be aware datetimes or ISO strings, got {value!r}")
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _text(operator: str, actual: Any, value: Any, *, specials: bool) -> bool:
    if not isinstance(value, str):
        raise ValueError(f"a text operator needs a string, got {value!r}")
    if specials and value == "null" and operator in ("equals", "not-equals"):
        return (actual is None) == (operator == "equals")
    if actual is None:
        return False
    text = actual if isinstance(actual, str) else str(actual)
    if specials and value == "__empty__" and operator == "equals":
        return text == ""
    if operator == "equals":
        return text == value
    if operator == "not-equals":
        return text != value
    if operator in ("like", "ilike"):
        return _like(value, operator == "ilike").fullmatch(text) is not None
    if operator in ("contains", "not-contains"):
        found = _like(f"%{value}%", True).fullmatch(text) is not None
        return found == (operator == "contains")
    raise ValueError(f"unknown text operator {operator!r}")


def _score(operator: str, actual: Any, value: Any) -> bool:
    try:
        bound = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"scores compare integers, got {value!r}") from None
    return _ordered(operator, int(actual), bound)


@lru_cache(maxsize=4096)
def _like(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """SQL LIKE as a regex: ``%`` any run, ``_`` one character, ``\\`` escapes the next one."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            parts.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        index += 1
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("".join(parts), flags)
