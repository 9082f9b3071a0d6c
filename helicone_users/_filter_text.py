"""The filter text form (``str(node)`` / ``parse(text)``) and the Python form (``repr(node)``).

Grammar (keywords are case-insensitive, field names are not)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" expr ")" | "all" | comparison
    comparison := field operator value
    field      := column | "user." column | ("properties" | "scores") "." (name | "quoted")
    operator   := = | == | != | > | >= | < | <= | contains | not contains | like | ilike
    value      := "string" (JSON escapes) | number | true | false | 2024-05-01T12:00:00Z
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, NamedTuple

from helicone_users._errors import FilterError
from helicone_users.filters import (
    ALL,
    BOOLEAN,
    MAP_COLUMNS,
    NUMBER,
    OPERATORS,
    REQUEST_COLUMNS,
    RMT,
    SCORE,
    TEXT,
    TIMESTAMP,
    USER_COLUMNS,
    USERS,
    And,
    Filter,
    Leaf,
    Or,
    all_of,
    any_of,
    column_kind,
    field_name,
    format_timestamp,
    make_leaf,
    parse_timestamp,
)
from helicone_users.filters import (
    _suggest as suggest,
)

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
    """Python DSL source that evaluates (with F, U, ALL in scope) to an equal node."""
    return _format(node, _leaf_python, " & ", " | ", "ALL")


def _format(node: Filter, leaf: Callable[[Leaf], str], and_: str, or_: str, everything: str) -> str:
    if isinstance(node, Leaf):
        return leaf(node)
    if isinstance(node, (And, Or)):
        joiner = and_ if isinstance(node, And) else or_
        # Parentheses around every nested group: And inside Or needs none, but reads better.
        return joiner.join(
            f"({_format(child, leaf, and_, or_, everything)})"
            if isinstance(child, (And, Or))
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
            return any_of(*parts)
        except FilterError as exc:
            raise _error(self.text, start.pos, str(exc).split(" Filter: ")[0]) from None

    def and_expr(self) -> Filter:
        parts = [self.unary()]
        while self.keyword("and"):
            parts.append(self.unary())
        return all_of(*parts)

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
            return ALL
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
            return make_leaf(table, column, operator, value, key)
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
        column = name.replace("_", "-") if name == "helicone_score_feedback" else name
        if column not in REQUEST_COLUMNS:
            try:
                make_leaf(RMT, column, "equals", "")  # refusals of search_properties & co.
            except FilterError as exc:
                message = str(exc)
                if column not in ("search_properties", "property_key"):
                    message = f"unknown field {name!r}{suggest(name, self.field_names())}"
                raise _error(self.text, token.pos, message) from None
        return RMT, column, None

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
