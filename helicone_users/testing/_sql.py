"""Compile Helicone filter JSON to DuckDB SQL: one compiler, every value a bound parameter.

Column names come only from the fixed tables below; values and map keys always travel as
``$n`` parameters, never as SQL text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from helicone_users._config import INT32_MAX, INT32_MIN, NANO_USD_PER_USD
from helicone_users.testing._jsonl import DataLoadError, parse_timestamp

RMT: Final = "request_response_rmt"
USERS: Final = "users_view"
TABLES: Final = (RMT, USERS)

TEXT_OPS: Final = ("equals", "not-equals", "like", "ilike", "contains", "not-contains")
NUMBER_OPS: Final = ("equals", "not-equals", "gte", "lte", "lt", "gt")
TIMESTAMP_OPS: Final = ("equals", "gte", "lte", "lt", "gt")
BOOLEAN_OPS: Final = ("equals",)
OPS_BY_KIND: Final[dict[str, tuple[str, ...]]] = {
    "text": TEXT_OPS,
    "number": NUMBER_OPS,
    "timestamp": TIMESTAMP_OPS,
    "boolean": BOOLEAN_OPS,
}

RMT_COLUMNS: Final[dict[str, str]] = {
    "country_code": "text", "latency": "number", "cost": "number", "provider": "text",
    "time_to_first_token": "number", "status": "number", "request_created_at": "timestamp",
    "response_created_at": "timestamp", "model": "text", "user_id": "text",
    "organization_id": "text", "node_id": "text", "job_id": "text", "threat": "boolean",
    "request_id": "text", "prompt_tokens": "number", "completion_tokens": "number",
    "prompt_cache_read_tokens": "number", "prompt_cache_write_tokens": "number",
    "total_tokens": "number", "target_url": "text", "scores_column": "text",
    "request_body": "text", "response_body": "text", "cache_enabled": "boolean",
    "cache_reference_id": "text", "cached": "boolean", "assets": "text",
    "helicone-score-feedback": "boolean", "prompt_id": "text", "prompt_version": "text",
    "request_referrer": "text", "is_passthrough_billing": "boolean",
}  # fmt: skip
RMT_MAP_COLUMNS: Final = ("properties", "search_properties", "scores")
USERS_COLUMNS: Final[dict[str, tuple[str, str]]] = {
    "user_user_id": ("user_id", "text"),
    "user_active_for": ("active_for", "number"),
    "user_first_active": ("first_active", "timestamp"),
    "user_last_active": ("last_active", "timestamp"),
    "user_total_requests": ("total_requests", "number"),
    "user_average_requests_per_day_active": ("average_requests_per_day_active", "number"),
    "user_average_tokens_per_request": ("average_tokens_per_request", "number"),
    "user_total_completion_tokens": ("total_completion_tokens", "number"),
    "user_total_prompt_tokens": ("total_prompt_tokens", "number"),
    "user_cost": ("cost", "number"),
}
_COMPARISON: Final[dict[str, str]] = {
    "equals": "=", "not-equals": "!=", "gte": ">=", "gt": ">", "lt": "<", "lte": "<=",
}  # fmt: skip
_BIGINT_LIMIT: Final = 2**63 - 1


class FilterCompileError(Exception):
    """A filter the emulator refuses; ``kind`` is empty, unsupported, overflow or invalid."""

    def __init__(self, message: str, *, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


class Params:
    """Collects bound values and hands out their ``$n`` placeholders."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        """Bind ``value``; return its placeholder."""
        self.values.append(value)
        return f"${len(self.values)}"


class Options:
    """Compiler switches set by quirks."""

    def __init__(
        self,
        *,
        first_key_only: bool = False,
        int32_overflow: bool = False,
        second_precision: bool = False,
    ) -> None:
        self.first_key_only = first_key_only
        self.int32_overflow = int32_overflow
        self.second_precision = second_precision


def is_branch(node: Any) -> bool:
    """Whether ``node`` is a ``{left, operator, right}`` branch."""
    return isinstance(node, Mapping) and "left" in node


def tables_of(node: Any) -> frozenset[str]:
    """The tables a filter tree names in non-empty leaf parts."""
    if is_branch(node):
        return tables_of(node.get("left")) | tables_of(node.get("right"))
    if isinstance(node, Mapping):
        return frozenset(t for t in TABLES if node.get(t))
    return frozenset()


def has_cross_table_or(node: Any) -> bool:
    """Whether an ``or`` combines request and users_view conditions (A.5)."""
    if not is_branch(node):
        return False
    if node.get("operator") == "or" and len(tables_of(node)) > 1:
        return True
    return has_cross_table_or(node.get("left")) or has_cross_table_or(node.get("right"))


def compile_filter(
    node: Any,
    params: Params,
    *,
    rows: str | None,
    users: str | None,
    options: Options,
    where: str = "filter",
) -> str:
    """SQL for ``node``; request leaves read alias ``rows``, users_view leaves alias ``users``.

    A pass that leaves a table out (``None``) compiles that table's conditions to ``TRUE``,
    after still checking them, so every pass refuses the same bad filters.
    """
    if node == "all":
        return "TRUE"
    if is_branch(node):
        operator = node.get("operator")
        if operator not in ("and", "or"):
            raise FilterCompileError(f"{where}.operator must be 'and' or 'or'")
        left = compile_filter(
            node.get("left"), params, rows=rows, users=users, options=options,
            where=f"{where}.left",
        )  # fmt: skip
        right = compile_filter(
            node.get("right"), params, rows=rows, users=users, options=options,
            where=f"{where}.right",
        )  # fmt: skip
        return f"({left} {operator.upper()} {right})"
    if not isinstance(node, Mapping):
        raise FilterCompileError(f"{where} must be a leaf object, a branch or 'all'")
    return _leaf(node, params, rows=rows, users=users, options=options, where=where)


def _leaf(
    leaf: Mapping[str, Any],
    params: Params,
    *,
    rows: str | None,
    users: str | None,
    options: Options,
    where: str,
) -> str:
    clauses: list[str] = []
    for table, columns in leaf.items():
        if table not in TABLES:
            raise FilterCompileError(f"{where}: unknown table {table!r}")
        alias = rows if table == RMT else users
        target = params if alias is not None else Params()
        compile_table = _rmt_table if table == RMT else _users_table
        sql = compile_table(columns, target, alias or "t", options, f"{where}.{table}")
        if alias is not None:
            clauses.append(sql)
    return "(" + " AND ".join(clauses) + ")" if clauses else "TRUE"


def _entries(obj: Any, options: Options, where: str) -> list[tuple[str, Any]]:
    """The keys of a column or operator object that count: all, or the first (quirk)."""
    if not isinstance(obj, Mapping):
        raise FilterCompileError(f"{where} must be an object")
    if not obj:
        raise FilterCompileError(f"{where} is an empty object; name a column and an operator",
                                 kind="empty")  # fmt: skip
    items = list(obj.items())
    return items[:1] if options.first_key_only else items


def _rmt_table(columns: Any, params: Params, alias: str, options: Options, where: str) -> str:
    clauses: list[str] = []
    for column, ops in _entries(columns, options, where):
        here = f"{where}.{column}"
        if column == "properties":
            clauses.append(_properties(ops, params, alias, options, here))
        elif column == "scores":
            clauses.append(_scores(ops, params, alias, options, here))
        elif column == "property_key":
            value = _single_equals(ops, here)
            clauses.append(f"map_contains({alias}.properties, {params.add(value)})")
        elif column == "search_properties":
            raise FilterCompileError(
                f"{here}: search_properties is not supported by the user endpoints; "
                "use properties", kind="unsupported",
            )  # fmt: skip
        elif column in RMT_COLUMNS:
            kind = RMT_COLUMNS[column]
            for op, value in _entries(ops, options, here):
                clauses.append(_rmt_condition(column, kind, op, value, params, alias,
                                              options, f"{here}.{op}"))  # fmt: skip
        else:
            raise FilterCompileError(f"{where}: unknown column {column!r}")
    return "(" + " AND ".join(clauses) + ")"


def _single_equals(ops: Any, where: str) -> str:
    if not isinstance(ops, Mapping) or not isinstance(ops.get("equals"), str):
        raise FilterCompileError(f"{where} must be {{'equals': <key>}}")
    value: str = ops["equals"]
    return value


def _rmt_condition(
    column: str, kind: str, op: str, value: Any, params: Params, alias: str,
    options: Options, where: str,
) -> str:  # fmt: skip
    if column == "cached":
        _check_op(op, BOOLEAN_OPS, where)
        return f"({alias}.cached = {params.add(_boolean(value, where))})"
    if column == "helicone-score-feedback":
        _check_op(op, BOOLEAN_OPS, where)
        key = params.add("helicone-score-feedback")
        flag = params.add(int(_boolean(value, where)))
        return f"(coalesce(map_extract_value({alias}.scores, {key}), 0) = {flag})"
    expr = f'{alias}."{column}"'
    if column == "cost":
        _check_op(op, NUMBER_OPS, where)
        nano = _cost_bound(_number(value, where))
        _check_int32(nano, options, where)
        return f"({expr} {_COMPARISON[op]} {params.add(nano)})"
    return condition(expr, kind, op, value, params, options, where, specials=True)


def condition(
    expr: str, kind: str, op: str, value: Any, params: Params, options: Options,
    where: str, *, specials: bool,
) -> str:  # fmt: skip
    """One ``expr <op> value`` test for a column of the given kind."""
    _check_op(op, OPS_BY_KIND[kind], where)
    if kind == "text":
        return _text_condition(expr, op, _text(value, where), params, specials=specials)
    if kind == "number":
        number = _number(value, where)
        _check_int32(number, options, where)
        return f"({expr} {_COMPARISON[op]} {params.add(_number_param(number))})"
    if kind == "timestamp":
        moment = _timestamp(value, where)
        if options.second_precision:
            moment = moment.replace(microsecond=0)
        return f"({expr} {_COMPARISON[op]} {params.add(moment)})"
    return f"({expr} = {params.add(_boolean(value, where))})"


def _text_condition(expr: str, op: str, value: str, params: Params, *, specials: bool) -> str:
    if specials and value == "null" and op in ("equals", "not-equals"):
        return f"({expr} IS {'NOT ' if op == 'not-equals' else ''}NULL)"
    if specials and value == "__empty__" and op == "equals":
        return f"({expr} = '')"
    if op in ("contains", "not-contains"):
        negate = "NOT " if op == "not-contains" else ""
        placeholder = params.add(value)
        return f"({expr} {negate}ILIKE '%' || {placeholder} || '%' ESCAPE '\\')"
    if op in ("like", "ilike"):
        return f"({expr} {op.upper()} {params.add(like_pattern(value))} ESCAPE '\\')"
    return f"({expr} {_COMPARISON[op]} {params.add(value)})"


def like_pattern(value: str) -> str:
    """A LIKE pattern where backslash escapes; a dangling final backslash means itself."""
    index = 0
    while index < len(value):
        if value[index] == "\\":
            if index + 1 == len(value):
                return value + "\\"
            index += 2
        else:
            index += 1
    return value


def _properties(ops: Any, params: Params, alias: str, options: Options, where: str) -> str:
    clauses: list[str] = []
    for key, key_ops in _entries(ops, options, where):
        expr = f"coalesce(map_extract_value({alias}.properties, {params.add(key)}), '')"
        for op, value in _entries(key_ops, options, f"{where}.{key}"):
            clauses.append(
                condition(expr, "text", op, value, params, options, f"{where}.{key}.{op}",
                          specials=False)
            )  # fmt: skip
    return "(" + " AND ".join(clauses) + ")"


def _scores(ops: Any, params: Params, alias: str, options: Options, where: str) -> str:
    clauses: list[str] = []
    for key, key_ops in _entries(ops, options, where):
        placeholder = params.add(key)
        score = f"map_extract_value({alias}.scores, {placeholder})"
        for op, value in _entries(key_ops, options, f"{where}.{key}"):
            here = f"{where}.{key}.{op}"
            _check_op(op, TEXT_OPS, here)
            text = _text(value, here)
            numeric = _parse_number(text)
            if op in ("equals", "not-equals") and numeric is not None:
                test = f"({score} {_COMPARISON[op]} {params.add(_number_param(numeric))})"
            else:
                test = _text_condition(f"CAST({score} AS VARCHAR)", op, text, params,
                                       specials=False)  # fmt: skip
            clauses.append(f"(map_contains({alias}.scores, {placeholder}) AND {test})")
    return "(" + " AND ".join(clauses) + ")"


def _users_table(columns: Any, params: Params, alias: str, options: Options, where: str) -> str:
    clauses: list[str] = []
    for column, ops in _entries(columns, options, where):
        if column not in USERS_COLUMNS:
            raise FilterCompileError(f"{where}: unknown users_view column {column!r}")
        name, kind = USERS_COLUMNS[column]
        for op, value in _entries(ops, options, f"{where}.{column}"):
            clauses.append(condition(f"{alias}.{name}", kind, op, value, params, options,
                                     f"{where}.{column}.{op}", specials=True))  # fmt: skip
    return "(" + " AND ".join(clauses) + ")"


def _check_op(op: str, allowed: tuple[str, ...], where: str) -> None:
    if op not in allowed:
        raise FilterCompileError(f"{where}: operator must be one of {', '.join(allowed)}")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise FilterCompileError(f"{where} must be a string")
    return value


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise FilterCompileError(f"{where} must be true or false")
    return value


def _number(value: Any, where: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FilterCompileError(f"{where} must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise FilterCompileError(f"{where} must be a finite number")
    return value


def _parse_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _number_param(number: float | int) -> float | int:
    """A value DuckDB can bind: integers beyond 64 bits travel as floats."""
    if isinstance(number, int) and not -_BIGINT_LIMIT <= number <= _BIGINT_LIMIT:
        return float(number) if abs(number) < 10**308 else math.copysign(1e308, number)
    return number


def _cost_bound(usd: float | int) -> int:
    """A USD bound as the server sends it: floor(usd * 1e9) nano-USD, clamped to 64 bits."""
    scaled = usd * NANO_USD_PER_USD
    if not math.isfinite(scaled) or abs(scaled) > _BIGINT_LIMIT:
        return _BIGINT_LIMIT if scaled > 0 else -_BIGINT_LIMIT
    return math.floor(scaled)


def _check_int32(number: float | int, options: Options, where: str) -> None:
    if not options.int32_overflow:
        return
    whole = isinstance(number, int) or float(number).is_integer()
    if whole and not INT32_MIN <= number <= INT32_MAX:
        raise FilterCompileError(
            f"{where}: value {number} is out of Int32 range", kind="overflow"
        )


def _timestamp(value: Any, where: str) -> datetime:
    try:
        return parse_timestamp(value, where)
    except DataLoadError as exc:
        raise FilterCompileError(f"{where} must be an ISO-8601 date-time") from exc
