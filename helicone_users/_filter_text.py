"""The filter DSL's column catalog and values, its text form and its wire reader.

The column catalog says which columns each wire table has and of which kind; values are checked
here for every path that builds a leaf. The text form is ``str(node)`` / ``parse(text)``, the
Python form ``repr(node)``; ``read_json`` reads wire JSON back.

Text grammar (keywords are case-insensitive, field names are not)::


    expr       := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" expr ")" | "all" | comparison
    comparison := field operator value
    field      := column | "user." column | ("properties" | "scores") "." (name | "quoted")
    operator   := = | == | != | > | >= | < | <= | contains | not contains | like | ilike
    value      := "string" (JSON escapes) | number | true | false | 2024-05-01T12:00:00Z
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from helicone_users._config import INT32_MAX, INT32_MIN, NANO_USD_PER_USD
from helicone_users._errors import FilterError, HeliconeWarning
from helicone_users._iso import parse_iso8601

if TYPE_CHECKING:
    from helicone_users.filters import Filter, Leaf

RMT: Final = "request_response_rmt"
USERS: Final = "users_view"
LEGACY_USERS: Final = "user_metrics"

TEXT: Final = "text"
NUMBER: Final = "number"
TIMESTAMP: Final = "timestamp"
BOOLEAN: Final = "boolean"
SCORE: Final = "score"

#: Wire operators per column kind. The spec types scores with text operators, and the column is
#: an integer map, so only equality is both accepted by the schema and meaningful in the database.
OPERATORS: Final[Mapping[str, tuple[str, ...]]] = {
    TEXT: ("equals", "not-equals", "like", "ilike", "contains", "not-contains"),
    NUMBER: ("equals", "not-equals", "gt", "gte", "lt", "lte"),
    TIMESTAMP: ("equals", "gt", "gte", "lt", "lte"),
    BOOLEAN: ("equals",),
    SCORE: ("equals", "not-equals"),
}

#: Every plain ``request_response_rmt`` column and its kind (maps are handled apart).
REQUEST_COLUMNS: Final[Mapping[str, str]] = {
    "country_code": TEXT,
    "latency": NUMBER,
    "cost": NUMBER,
    "provider": TEXT,
    "time_to_first_token": NUMBER,
    "status": NUMBER,
    "request_created_at": TIMESTAMP,
    "response_created_at": TIMESTAMP,
    "model": TEXT,
    "user_id": TEXT,
    "organization_id": TEXT,
    "node_id": TEXT,
    "job_id": TEXT,
    "threat": BOOLEAN,
    "request_id": TEXT,
    "prompt_tokens": NUMBER,
    "completion_tokens": NUMBER,
    "prompt_cache_read_tokens": NUMBER,
    "prompt_cache_write_tokens": NUMBER,
    "total_tokens": NUMBER,
    "target_url": TEXT,
    "scores_column": TEXT,
    "request_body": TEXT,
    "response_body": TEXT,
    "cache_enabled": BOOLEAN,
    "cache_reference_id": TEXT,
    "cached": BOOLEAN,
    "assets": TEXT,
    "helicone-score-feedback": BOOLEAN,
    "prompt_id": TEXT,
    "prompt_version": TEXT,
    "request_referrer": TEXT,
    "is_passthrough_billing": BOOLEAN,
}
MAP_COLUMNS: Final[Mapping[str, str]] = {"properties": TEXT, "scores": SCORE}

#: Every ``users_view`` column (wire names, with the ``user_`` prefix) and its kind.
USER_COLUMNS: Final[Mapping[str, str]] = {
    "user_user_id": TEXT,
    "user_active_for": NUMBER,
    "user_first_active": TIMESTAMP,
    "user_last_active": TIMESTAMP,
    "user_total_requests": NUMBER,
    "user_average_requests_per_day_active": NUMBER,
    "user_average_tokens_per_request": NUMBER,
    "user_total_completion_tokens": NUMBER,
    "user_total_prompt_tokens": NUMBER,
    "user_cost": NUMBER,
}

UNSUPPORTED_COLUMNS: Final[Mapping[str, str]] = {
    "search_properties": (
        "search_properties compiles to a bare `key` column that exists only in property-search "
        "queries, so user-metrics queries fail in the database; use F.properties[key] instead"
    ),
    "property_key": (
        "property_key has no known compiler mapping, so the server's meaning is unknown; "
        "test a property's value with F.properties[key] instead"
    ),
}

_DATETIME_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"([Zz]|[+-]\d{2}:?\d{2})?"
)
_SIMPLE_KEY_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")

Value = str | int | float | bool | datetime


# --- Columns -------------------------------------------------------------------------------------


def column_kind(table: str, column: str) -> str:
    """The kind of a wire column (``text``, ``number``, ``timestamp``, ``boolean``, ``score``)."""
    if table == RMT:
        kind = REQUEST_COLUMNS.get(column) or MAP_COLUMNS.get(column)
    elif table == USERS:
        kind = USER_COLUMNS.get(column)
    else:
        raise FilterError(f"unknown table {table!r}; expected {RMT!r} or {USERS!r}")
    if kind is None:
        raise FilterError(f"unknown column {column!r} in {table}", field=column)
    return kind


def field_name(table: str, column: str, key: str | None = None) -> str:
    """The text-form name of a column: ``model``, ``user.cost``, ``properties.env``."""
    if table == USERS:
        return "user." + column.removeprefix("user_")
    if key is None:
        return column
    return f"{column}.{key if _SIMPLE_KEY_RE.fullmatch(key) else _quote(key)}"


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


# --- Values --------------------------------------------------------------------------------------


def parse_timestamp(text: str, *, name: str = "timestamp") -> datetime:
    """An ISO-8601 date-time with an offset, as an aware UTC datetime at millisecond precision."""
    match = _DATETIME_RE.fullmatch(text.strip())
    if match is None:
        raise FilterError(
            f"{name}: {text!r} is not an ISO-8601 date-time such as 2024-05-01T12:00:00Z",
            field=name,
        )
    if match.group(8) is None:
        raise FilterError(
            f"{name}: {text!r} has no UTC offset; add 'Z' or '+HH:MM' to make it one instant",
            field=name,
        )
    try:
        # The pattern above is the grammar filters accept; the shared reader does the rest.
        value = parse_iso8601(text)
    except ValueError as exc:
        raise FilterError(
            f"{name}: {text!r} is not a valid date-time ({exc})", field=name
        ) from None
    return _to_millis(value)


def _to_millis(value: datetime) -> datetime:
    # The server compares at millisecond precision at best, so finer digits carry no meaning.
    value = value.astimezone(timezone.utc)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def format_timestamp(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS[.mmm]Z`` in UTC."""
    value = value.astimezone(timezone.utc)
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    if value.microsecond:
        text += f".{value.microsecond // 1000:03d}"
    return text + "Z"


def check_value(kind: str, value: object, name: str) -> Value:
    """The value, validated for a column kind, or a FilterError naming the field."""
    if kind == TEXT:
        if isinstance(value, str):
            return value
        raise value_error(name, "a string", value)
    if kind in (NUMBER, SCORE):
        return _check_number(kind, value, name)
    if kind == TIMESTAMP:
        return _check_timestamp(value, name)
    if isinstance(value, bool):
        return value
    raise value_error(name, "True or False", value)


def _check_number(kind: str, value: object, name: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        wanted = "an integer" if kind == SCORE else "a number"
        raise value_error(name, wanted, value)
    if not math.isfinite(value):
        raise FilterError(
            f"{name}: {value!r} cannot be sent; JSON has no NaN or infinity", field=name
        )
    if kind == SCORE:
        if not float(value).is_integer():
            raise value_error(name, "an integer (scores are stored as integers)", value)
        return int(value)
    return value


def _check_timestamp(value: object, name: str) -> datetime:
    if isinstance(value, str):
        return parse_timestamp(value, name=name)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise FilterError(
                f"{name}: naive datetime {value.isoformat()} refused; pass an aware one such as "
                "datetime(2024, 5, 1, tzinfo=timezone.utc) or an ISO string ending in Z",
                field=name,
            )
        return _to_millis(value)
    raise value_error(name, "an aware datetime or an ISO-8601 string", value)


def value_error(name: str, wanted: str, value: object) -> FilterError:
    return FilterError(f"{name} needs {wanted}, got {type(value).__name__} {value!r}", field=name)


def warn_int32(table: str, column: str, value: int | float, name: str) -> None:
    """Warn when the hosted server would bind a whole number outside Int32."""
    bound: float = value
    if table == RMT and column == "cost":
        bound = math.floor(value * NANO_USD_PER_USD)
    elif not float(value).is_integer():
        return  # fractions are bound as Float64, which holds them
    if INT32_MIN <= bound <= INT32_MAX:
        return
    detail = (
        " (the server compares cost as floor(usd × 1e9) nano-USD, so only |cost| < $2.147 fits)"
        if column == "cost"
        else ""
    )
    warnings.warn(
        f"{name} {value!r}: the hosted server binds whole numbers as Int32{detail}; this value is "
        "outside ±2,147,483,647 and the query may fail or compare a wrapped value",
        HeliconeWarning,
        stacklevel=_caller_level(),
    )


def _caller_level() -> int:
    """The warnings stacklevel of the first frame outside this package (the user's line)."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


def suggest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3)
    return f"; did you mean {', '.join(close)}?" if close else ""


def legacy_users_hint(columns: Iterable[str], quote: Callable[[str], str] = repr) -> str:
    """The fix for a leaf on the older docs' ``user_metrics`` table: ``users_view``, whose
    columns carry the ``user_`` prefix (``cost`` → ``user_cost``)."""
    renames = [
        f"{quote(column)} → {quote('user_' + column)}"
        for column in columns
        if "user_" + column in USER_COLUMNS
    ]
    fix = f"; did you mean {quote(USERS)}? {quote(LEGACY_USERS)} is the older docs' name"
    if renames:
        fix += f", and {quote(USERS)} columns take the user_ prefix: {', '.join(renames)}"
    return fix


_SYMBOLS: Final = {
    "equals": "=",
    "not-equals": "!=",
    "like": "like",
    "ilike": "ilike",
    "contains": "contains",
    "not-contains": "not contains",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
}
_OPERATORS: Final = {
    "=": "equals",
    "==": "equals",
    "!=": "not-equals",
    ">": "gt",
    ">=": "gte",
    "<": "lt",
    "<=": "lte",
    "contains": "contains",
    "like": "like",
    "ilike": "ilike",
}
_METHODS: Final = {"not-equals": "not_equals", "not-contains": "not_contains"}

_TOKEN: Final = re.compile(
    r"""
    (?P<ws>\s+)
   |(?P<str>"(?:[^"\\]|\\.)*")
   |(?P<ts>\d{4}-\d{2}-\d{2}[Tt][0-9:.]+(?:[Zz]|[+-]\d{2}:?\d{2})?)
   |(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
   |(?P<op>>=|<=|!=|==|=|>|<)
   |(?P<lp>\()
   |(?P<rp>\))
   |(?P<dot>\.)
   |(?P<ident>[A-Za-z_][A-Za-z0-9_\-]*)
    """,
    re.VERBOSE,
)
_EXCERPT: Final = 60


# --- Formatting ----------------------------------------------------------------------------------


def format_text(node: Filter) -> str:
    """The readable text form; ``parse`` reads it back to an equal node."""
    return _format(node, _leaf_text, " and ", " or ", "all")


def format_python(node: Filter) -> str:
    """Python DSL source that evaluates (with F, U, nodes.ALL in scope) to an equal node."""
    return _format(node, _leaf_python, " & ", " | ", "ALL")


def _format(node: Filter, leaf: Callable[[Leaf], str], and_: str, or_: str, everything: str) -> str:
    if isinstance(node, nodes.Leaf):
        return leaf(node)
    if isinstance(node, (nodes.And, nodes.Or)):
        joiner = and_ if isinstance(node, nodes.And) else or_
        # Parentheses around every nested group: And inside Or needs none, but reads better.
        return joiner.join(
            f"({_format(child, leaf, and_, or_, everything)})"
            if isinstance(child, (nodes.And, nodes.Or))
            else _format(child, leaf, and_, or_, everything)
            for child in node.children
        )
    return everything


def _leaf_text(leaf: Leaf) -> str:
    return f"{leaf.name} {_SYMBOLS[leaf.operator]} {_value_text(leaf.value)}"


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, float)):
        return repr(value)
    return format_timestamp(value)


def python_field(table: str, column: str, key: str | None) -> str:
    """The Python expression of a field: ``F.model``, ``F.properties['env']``, ``U.cost``."""
    if table == USERS:
        return "U." + column.removeprefix("user_")
    if key is not None:
        return f"F.{column}[{key!r}]"
    return "F." + column.replace("-", "_")


def _leaf_python(leaf: Leaf) -> str:
    field = python_field(leaf.table, leaf.column, leaf.key)
    if isinstance(leaf.value, bool):
        return f"{field}.{'is_true' if leaf.value else 'is_false'}()"
    value = format_timestamp(leaf.value) if isinstance(leaf.value, datetime) else leaf.value
    method = _METHODS.get(leaf.operator, leaf.operator)
    return f"{field}.{method}({value!r})"


# --- Parsing -------------------------------------------------------------------------------------


class _Token(NamedTuple):
    kind: str
    text: str
    pos: int


def parse_text(text: str) -> Filter:
    """Parse the text form into a filter; errors name the column and show a caret."""
    if not isinstance(text, str):
        raise FilterError(f"parse() takes a string, got {type(text).__name__}")
    parser = _Parser(text)
    try:
        return parser.parse()
    except RecursionError:
        raise FilterError("filter text is nested too deeply to parse") from None


def _error(text: str, pos: int, message: str) -> FilterError:
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line_end = len(text) if line_end < 0 else line_end
    column = pos - line_start + 1
    start = max(line_start, pos - _EXCERPT)
    end = min(line_end, pos + _EXCERPT)
    prefix = "…" if start > line_start else ""
    excerpt = prefix + text[start:end] + ("…" if end < line_end else "")
    caret = " " * (len(prefix) + pos - start) + "^"
    where = f"column {column}"
    if "\n" in text:
        where = f"line {text.count(chr(10), 0, pos) + 1}, {where}"
    return FilterError(f"{message} at {where}:\n  {excerpt}\n  {caret}")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            what = "unterminated string" if text[pos] == '"' else f"unexpected {text[pos]!r}"
            raise _error(text, pos, what)
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(_Token("eof", "", len(text)))
    return tokens


class _Parser:
    """A recursive-descent parser over the token list; ``and``/``or`` chains loop, not recurse."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    # helpers
    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token.kind == "ident" and token.text.lower() == word:
            self.index += 1
            return True
        return False

    def fail(self, token: _Token, message: str) -> FilterError:
        found = "the end of the text" if token.kind == "eof" else repr(token.text)
        return _error(self.text, token.pos, f"{message}, found {found}")

    # grammar
    def parse(self) -> Filter:
        if self.peek().kind == "eof":
            raise self.fail(self.peek(), "expected a filter")
        node = self.expr()
        if self.peek().kind != "eof":
            raise self.fail(self.peek(), "expected 'and', 'or' or the end")
        return node

    def expr(self) -> Filter:
        start = self.peek()
        parts = [self.and_expr()]
        while self.keyword("or"):
            parts.append(self.and_expr())
        try:
            return nodes.any_of(*parts)
        except FilterError as exc:
            raise _error(self.text, start.pos, str(exc).split(" Filter: ")[0]) from None

    def and_expr(self) -> Filter:
        parts = [self.unary()]
        while self.keyword("and"):
            parts.append(self.unary())
        return nodes.all_of(*parts)

    def unary(self) -> Filter:
        token = self.peek()
        if self.keyword("not"):
            node = self.unary()
            try:
                return ~node
            except FilterError as exc:
                raise _error(self.text, token.pos, str(exc).split(" Filter: ")[0]) from None
        if token.kind == "lp":
            self.advance()
            node = self.expr()
            if self.peek().kind != "rp":
                raise self.fail(self.peek(), "expected ')'")
            self.advance()
            return node
        if self.keyword("all"):
            return nodes.ALL
        return self.comparison()

    def comparison(self) -> Filter:
        table, column, key = self.field()
        kind = column_kind(table, column)
        name = field_name(table, column, key)
        op_token = self.peek()
        operator = self.operator()
        if kind == BOOLEAN and operator == "not-equals":
            operator = "flip"  # `flag != true` reads as `flag = false`
        elif operator not in OPERATORS[kind]:
            allowed = ", ".join(_SYMBOLS[op] for op in OPERATORS[kind])
            message = f"{name} is a {kind} field; its operators are: {allowed}"
            raise _error(self.text, op_token.pos, message)
        value_token = self.peek()
        value = self.value(kind, name)
        if operator == "flip":
            operator, value = "equals", not value
        try:
            return nodes.make_leaf(table, column, operator, value, key)
        except FilterError as exc:
            raise _error(self.text, value_token.pos, str(exc)) from None

    def field(self) -> tuple[str, str, str | None]:
        token = self.advance()
        if token.kind != "ident":
            self.index -= 1
            raise self.fail(token, "expected a field name, 'not', 'all' or '('")
        name = token.text
        if name == "user":
            column = "user_" + self.dotted(token, "a user field").text
            if column not in USER_COLUMNS:
                names = [c.removeprefix("user_") for c in USER_COLUMNS]
                hint = suggest(column.removeprefix("user_"), names)
                raise _error(self.text, token.pos, f"unknown user field {column[5:]!r}{hint}")
            return USERS, column, None
        if name in MAP_COLUMNS:
            key_token = self.dotted(token, f"a {name} key")
            key = json.loads(key_token.text) if key_token.kind == "str" else key_token.text
            return RMT, name, key
        if name in (RMT, USERS, LEGACY_USERS) and self.peek().kind == "dot":
            raise self.table_prefix(token)
        column = name.replace("_", "-") if name == "helicone_score_feedback" else name
        if column not in REQUEST_COLUMNS:
            try:
                nodes.make_leaf(RMT, column, "equals", "")  # refusals of search_properties & co.
            except FilterError as exc:
                message = str(exc)
                if column not in ("search_properties", "property_key"):
                    message = f"unknown field {name!r}{suggest(name, self.field_names())}"
                raise _error(self.text, token.pos, message) from None
        return RMT, column, None

    def table_prefix(self, table: _Token) -> FilterError:
        """``user_metrics.cost`` and the like: the text form names fields without the table."""
        column = self.dotted(table, "a column").text
        if table.text == RMT:
            hint = suggest(column, [*REQUEST_COLUMNS, *MAP_COLUMNS])
        else:
            names = ["user." + c.removeprefix("user_") for c in USER_COLUMNS]
            hint = suggest("user." + column.removeprefix("user_"), names)
        return _error(
            self.text, table.pos,
            f"unknown field '{table.text}.{column}': fields are written without their table "
            f"(latency, user.cost){hint}",
        )

    @staticmethod
    def field_names() -> list[str]:
        names = [*REQUEST_COLUMNS, *MAP_COLUMNS]
        return names + ["user." + c.removeprefix("user_") for c in USER_COLUMNS]

    def dotted(self, head: _Token, what: str) -> _Token:
        if self.peek().kind != "dot":
            raise self.fail(self.peek(), f"expected '.' and {what} after {head.text!r}")
        self.advance()
        token = self.advance()
        if token.kind not in ("ident", "str", "num"):
            self.index -= 1
            raise self.fail(token, f"expected {what}")
        return token

    def operator(self) -> str:
        token = self.advance()
        word = token.text.lower() if token.kind == "ident" else token.text
        if token.kind == "ident" and word == "not":
            if self.keyword("contains"):
                return "not-contains"
            raise self.fail(self.peek(), "expected 'contains' after 'not'")
        if token.kind in ("op", "ident") and word in _OPERATORS:
            return _OPERATORS[word]
        self.index -= 1
        raise self.fail(token, "expected an operator (=, !=, >, >=, <, <=, contains, like, ilike)")

    def value(self, kind: str, name: str) -> Any:
        token = self.advance()
        if kind == TEXT and token.kind == "str":
            return self.string(token)
        if kind in (NUMBER, SCORE) and token.kind == "num":
            is_float = any(c in token.text for c in ".eE")
            return float(token.text) if is_float else int(token.text)
        if kind == TIMESTAMP and token.kind in ("ts", "str"):
            raw = self.string(token) if token.kind == "str" else token.text
            try:
                return parse_timestamp(raw, name=name)
            except FilterError as exc:
                raise _error(self.text, token.pos, str(exc)) from None
        if kind == BOOLEAN and token.kind == "ident" and token.text.lower() in ("true", "false"):
            return token.text.lower() == "true"
        self.index -= 1
        wanted = {
            TEXT: "a quoted string",
            NUMBER: "a number",
            SCORE: "an integer",
            TIMESTAMP: "an ISO-8601 timestamp such as 2024-05-01T00:00:00Z",
            BOOLEAN: "true or false",
        }[kind]
        raise self.fail(token, f"{name} is a {kind} field: expected {wanted}")

    def string(self, token: _Token) -> str:
        try:
            value: str = json.loads(token.text, strict=False)
        except json.JSONDecodeError as exc:
            raise _error(self.text, token.pos + exc.pos, f"bad string escape ({exc.msg})") from None
        return value


# --- Read wire JSON ------------------------------------------------------------------------------

_Path = tuple[Any, str]  # (parent path or None, part): shared prefixes keep deep trees cheap

_LEGACY_COLUMNS: Final = frozenset(name.removeprefix("user_") for name in USER_COLUMNS)


def _render(path: _Path | None) -> str:
    parts: list[str] = []
    while path is not None:
        path, part = path
        parts.append(part)
    return ".".join(reversed(parts))


def read_json(obj: Any, *, strict: bool = True) -> Filter:
    """Read a wire ``UserFilterNode``; see ``filters.from_json``."""
    return _read(obj, (None, "filter"), strict)


def _read(obj: Any, path: _Path, strict: bool) -> Filter:
    if isinstance(obj, str):
        if obj == "all":
            return nodes.ALL
        raise FilterError(f"{_render(path)}: expected 'all', a leaf or a branch, got {obj!r}")
    if not isinstance(obj, Mapping):
        raise FilterError(f"{_render(path)}: expected an object or 'all', got {type(obj).__name__}")
    if _is_branch(obj):
        return _read_branch(obj, path, strict)
    return _read_leaf(obj, path, strict)


def _is_branch(obj: Any) -> bool:
    return isinstance(obj, Mapping) and any(k in obj for k in ("left", "right", "operator"))


def _branch_operator(obj: Mapping[str, Any], path: _Path) -> str:
    missing = [k for k in ("left", "operator", "right") if k not in obj]
    extra = sorted(set(obj) - {"left", "operator", "right"})
    if missing or extra:
        raise FilterError(
            f"{_render(path)}: a branch has exactly left, operator, right "
            f"(missing {missing}, unexpected {extra})"
        )
    operator = obj["operator"]
    if operator not in ("and", "or"):
        raise FilterError(
            f"{_render((path, 'operator'))}: expected 'and' or 'or', got {operator!r}"
        )
    return str(operator)


def _read_branch(obj: Mapping[str, Any], path: _Path, strict: bool) -> Filter:
    operator = _branch_operator(obj, path)
    operands: list[tuple[Any, _Path]] = []
    # A same-operator chain is read iteratively, so right-nested chains of any length are safe.
    stack: list[tuple[Any, _Path]] = [(obj, path)]
    while stack:
        node, where = stack.pop()
        if _is_branch(node) and _branch_operator(node, where) == operator:
            stack.append((node["right"], (where, "right")))
            stack.append((node["left"], (where, "left")))
        else:
            operands.append((node, where))
    children = [_read(node, where, strict) for node, where in operands]
    return nodes.all_of(*children) if operator == "and" else nodes._any_of(children, check=strict)


def _read_leaf(obj: Mapping[str, Any], path: _Path, strict: bool) -> Filter:
    legacy = obj.get(LEGACY_USERS)
    if strict and legacy is not None:
        # The older docs' example: name the fix before any other fault of the same leaf.
        columns = legacy if isinstance(legacy, Mapping) else {}
        raise FilterError(
            f"{_render((path, LEGACY_USERS))}: unknown table {LEGACY_USERS!r}"
            f"{legacy_users_hint(map(str, columns))}",
            field=LEGACY_USERS,
        )
    parts: list[Filter] = []
    for table, columns in obj.items():
        where = (path, str(table))
        if table not in (RMT, USERS, LEGACY_USERS):
            raise FilterError(
                f"{_render(where)}: unknown table {table!r}; expected {RMT!r} or {USERS!r}"
            )
        if not isinstance(columns, Mapping):
            raise FilterError(f"{_render(where)}: expected an object of columns")
        for column, cell in columns.items():
            parts.extend(_read_column(str(table), str(column), cell, (where, str(column)), strict))
    return nodes.all_of(*parts)


def _read_column(table: str, column: str, cell: Any, path: _Path, strict: bool) -> list[Leaf]:
    if table == LEGACY_USERS:
        if column not in _LEGACY_COLUMNS:
            raise FilterError(f"{_render(path)}: unknown user_metrics column {column!r}")
        table, column = USERS, "user_" + column
    if not isinstance(cell, Mapping):
        raise FilterError(f"{_render(path)}: expected an object of operators")
    if table == RMT and column in UNSUPPORTED_COLUMNS:
        raise FilterError(f"{_render(path)}: {UNSUPPORTED_COLUMNS[column]}", field=column)
    if table == RMT and column in MAP_COLUMNS:
        leaves: list[Leaf] = []
        for key, ops in cell.items():
            leaves.extend(_read_ops(table, column, str(key), ops, (path, str(key)), strict))
        return leaves
    try:
        column_kind(table, column)
    except FilterError as exc:
        raise FilterError(f"{_render(path)}: {exc}", field=column) from None
    return _read_ops(table, column, None, cell, path, strict)


def _read_ops(
    table: str, column: str, key: str | None, ops: Any, path: _Path, strict: bool
) -> list[Leaf]:
    if not isinstance(ops, Mapping) or not ops:
        raise FilterError(
            f"{_render(path)}: expected a non-empty object of operators "
            "(the server fails on an empty one)"
        )
    leaves = []
    for operator, value in ops.items():
        if column == "scores" and isinstance(value, str):
            value = _score_from_wire(value, (path, str(operator)))
        try:
            leaves.append(nodes.make_leaf(table, column, str(operator), value, key, warn=strict))
        except FilterError as exc:
            where = _render((path, str(operator)))
            raise FilterError(f"{where}: {exc}", field=exc.field) from None
    return leaves


def _score_from_wire(value: str, path: _Path) -> int:
    try:
        return int(value)
    except ValueError:
        raise FilterError(f"{_render(path)}: scores are integers, got {value!r}") from None


# filters.py imports the catalog above at its top, so the node classes are reached through the
# module object, bound last: whichever module is imported first, both finish loading.
import helicone_users.filters as nodes  # noqa: E402
