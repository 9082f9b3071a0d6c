"""The filter DSL: typed fields build leaves, ``&`` ``|`` ``~`` combine them, ``to_json`` compiles.

::

    from helicone_users import F, U

    f = (F.model.contains("gpt") & (F.latency > 500)) | F.properties["env"].equals("prod")
    f = f & (U.cost >= 1.5)
    f.to_json()        # the wire's UserFilterNode: a balanced left/operator/right tree
    str(f)             # ((model contains "gpt" and latency > 500) or ...) and user.cost >= 1.5

``F`` holds the per-request columns (``request_response_rmt``), ``U`` the per-user aggregates
(``users_view``, without the ``user_`` prefix). Nodes are frozen, hashable and compare by
structure. ``ALL`` is the wire's ``"all"``: the identity of ``&`` and the absorbing element of
``|`` (``ALL | x`` is ``ALL``). Anything the API cannot express, or that the hosted server would
silently mis-evaluate, raises :class:`~helicone_users.FilterError` when the filter is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final, NoReturn

import attrs

from helicone_users._errors import FilterError, UnknownFieldError
from helicone_users._filter_text import (
    BOOLEAN,
    MAP_COLUMNS,
    NUMBER,
    OPERATORS,
    REQUEST_COLUMNS,
    RMT,
    SCORE,
    TEXT,
    TIMESTAMP,
    UNSUPPORTED_COLUMNS,
    USER_COLUMNS,
    USERS,
    Value,
    check_value,
    column_kind,
    field_name,
    format_python,
    format_text,
    format_timestamp,
    parse_text,
    python_field,
    read_json,
    suggest,
    value_error,
    warn_int32,
)

__all__ = [
    "ALL",
    "OPERATORS",
    "REQUEST_COLUMNS",
    "USER_COLUMNS",
    "And",
    "BooleanField",
    "F",
    "Filter",
    "FilterLike",
    "Leaf",
    "NumberField",
    "Or",
    "ScoreField",
    "TextField",
    "TimestampField",
    "U",
    "all_of",
    "any_of",
    "coerce",
    "from_json",
    "parse",
]


def make_leaf(
    table: str,
    column: str,
    operator: str,
    value: object,
    key: str | None = None,
    *,
    warn: bool = True,
) -> Leaf:
    """A validated leaf; every path that builds one goes through here."""
    if table == RMT and column in UNSUPPORTED_COLUMNS:
        raise FilterError(UNSUPPORTED_COLUMNS[column], field=column)
    kind = column_kind(table, column)
    name = field_name(table, column, key)
    if (column in MAP_COLUMNS and table == RMT) != (key is not None):
        raise FilterError(f"{column}: a map key is {'needed' if key is None else 'not allowed'}")
    if operator not in OPERATORS[kind]:
        allowed = ", ".join(OPERATORS[kind])
        raise FilterError(
            f"{name} is a {kind} column; operator {operator!r} is not one of: {allowed}", field=name
        )
    checked = check_value(kind, value, name)
    if warn and kind == NUMBER and isinstance(checked, (int, float)):
        warn_int32(table, column, checked, name)
    return Leaf(table=table, column=column, operator=operator, value=checked, key=key)


# --- Nodes ---------------------------------------------------------------------------------------


class Filter:
    """Base of every filter node: a leaf, an ``And``/``Or`` of nodes, or ``ALL``."""

    __slots__ = ()

    def to_json(self) -> Any:
        """The wire JSON (``UserFilterNode``): a leaf dict, a balanced branch dict or ``"all"``."""
        return _compile(self)

    def tables(self) -> frozenset[str]:
        """The wire tables this node reads."""
        raise NotImplementedError

    def __and__(self, other: Filter) -> Filter:
        if not isinstance(other, Filter):
            return NotImplemented
        return all_of(self, other)

    def __or__(self, other: Filter) -> Filter:
        if not isinstance(other, Filter):
            return NotImplemented
        return any_of(self, other)

    def __invert__(self) -> Filter:
        return _negate(self)

    def __bool__(self) -> bool:
        raise TypeError(
            "a filter has no truth value: combine filters with & (and), | (or), ~ (not) instead of "
            "and/or/not, and wrap each comparison in parentheses: (F.latency > 5) & (U.cost < 1)"
        )

    def __str__(self) -> str:
        return format_text(self)

    def __repr__(self) -> str:
        return format_python(self)


@attrs.frozen(repr=False, cache_hash=True)
class Leaf(Filter):
    """One comparison: ``column operator value`` on one table (``key`` for map columns)."""

    table: str
    column: str
    operator: str
    value: Value
    key: str | None = None

    @property
    def kind(self) -> str:
        """The column kind: text, number, timestamp, boolean or score."""
        return column_kind(self.table, self.column)

    @property
    def name(self) -> str:
        """The text-form name of the column."""
        return field_name(self.table, self.column, self.key)

    def tables(self) -> frozenset[str]:
        return frozenset((self.table,))

    def wire_value(self) -> Any:
        """The value as JSON: timestamps as ISO strings, scores as strings (text operators)."""
        if isinstance(self.value, datetime):
            return format_timestamp(self.value)
        if self.column == "scores":
            return str(self.value)
        return self.value

    def wire(self) -> dict[str, Any]:
        """This leaf as a wire leaf dict."""
        ops = {self.operator: self.wire_value()}
        cell: dict[str, Any] = ops if self.key is None else {self.key: ops}
        return {self.table: {self.column: cell}}


def _union_tables(children: tuple[Filter, ...]) -> frozenset[str]:
    return frozenset().union(*(child.tables() for child in children))


@attrs.frozen(repr=False, cache_hash=True)
class And(Filter):
    """All of two or more nodes (never nested And, never ALL)."""

    children: tuple[Filter, ...]
    _tables: frozenset[str] = attrs.field(init=False, eq=False)

    @_tables.default
    def _tables_default(self) -> frozenset[str]:
        return _union_tables(self.children)

    def tables(self) -> frozenset[str]:
        return self._tables


@attrs.frozen(repr=False, cache_hash=True)
class Or(Filter):
    """Any of two or more nodes (never nested Or, never ALL)."""

    children: tuple[Filter, ...]
    _tables: frozenset[str] = attrs.field(init=False, eq=False)

    @_tables.default
    def _tables_default(self) -> frozenset[str]:
        return _union_tables(self.children)

    def tables(self) -> frozenset[str]:
        return self._tables


@attrs.frozen(repr=False)
class _All(Filter):
    """Every request: the wire's ``"all"``."""

    def tables(self) -> frozenset[str]:
        return frozenset()


ALL: Final[Filter] = _All()


def _require_filter(node: object, where: str) -> Filter:
    if isinstance(node, Filter):
        return node
    raise FilterError(
        f"{where} takes filter nodes, got {type(node).__name__} {node!r}; "
        "build them from F, U or ALL, or read them with from_json()/parse()"
    )


def all_of(*nodes: Filter) -> Filter:
    """The conjunction of ``nodes``: flattened, without ``ALL``; ``all_of()`` is ``ALL``."""
    parts: list[Filter] = []
    for node in nodes:
        node = _require_filter(node, "all_of()")
        if isinstance(node, And):
            parts.extend(node.children)
        elif not isinstance(node, _All):
            parts.append(node)
    if not parts:
        return ALL
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def any_of(*nodes: Filter) -> Filter:
    """The disjunction of ``nodes``: flattened, ``ALL`` if any is ``ALL``; no cross-table or."""
    return _any_of(nodes, check=True)


def _any_of(nodes: Iterable[Filter], *, check: bool) -> Filter:
    parts: list[Filter] = []
    everything = False
    for node in nodes:
        node = _require_filter(node, "any_of()")
        if isinstance(node, Or):
            parts.extend(node.children)
        elif isinstance(node, _All):
            everything = True
        else:
            parts.append(node)
    if everything:
        return ALL
    if not parts:
        raise FilterError("any_of() needs at least one node: the wire has no 'nothing' filter")
    if len(parts) == 1:
        return parts[0]
    node = Or(tuple(parts))
    if check and {RMT, USERS} <= node.tables():
        raise FilterError(_CROSS_TABLE_OR.format(node=node))
    return node


_CROSS_TABLE_OR: Final = (
    "`or` between request fields (F) and user aggregates (U) is refused: the hosted server "
    "compiles the tree twice (rows, then users) and each pass turns the other table's side into "
    "true, so this `or` filters nothing. Run one query per side, or use & instead. Filter: {node}"
)


# --- Negation ------------------------------------------------------------------------------------

_COMPLEMENT: Final[Mapping[str, str]] = {
    "equals": "not-equals",
    "not-equals": "equals",
    "contains": "not-contains",
    "not-contains": "contains",
    "gt": "lte",
    "lte": "gt",
    "gte": "lt",
    "lt": "gte",
}


def _negate(node: Filter) -> Filter:
    if isinstance(node, Leaf):
        return _negate_leaf(node)
    if isinstance(node, And):
        return any_of(*(_negate(child) for child in node.children))
    if isinstance(node, Or):
        return all_of(*(_negate(child) for child in node.children))
    raise FilterError("~ALL would match nothing, and the wire has no 'nothing' filter")


def _negate_leaf(leaf: Leaf) -> Filter:
    kind = leaf.kind
    if kind == SCORE:
        raise FilterError(
            f"cannot negate {leaf}: a score leaf also requires the key to exist, and the wire "
            "cannot say 'key missing', so no filter matches exactly the other requests",
            field=leaf.name,
        )
    if kind == BOOLEAN:
        return attrs.evolve(leaf, value=not leaf.value)
    if kind == TIMESTAMP and leaf.operator == "equals":
        return Or((attrs.evolve(leaf, operator="lt"), attrs.evolve(leaf, operator="gt")))
    if kind == TEXT and leaf.key is None and leaf.value == "__empty__":
        # equals "__empty__" is the server's empty(col) test; not-equals compares the literal.
        if leaf.operator == "equals":
            return attrs.evolve(leaf, operator="not-equals", value="")
        raise FilterError(f"cannot negate {leaf}: the wire has no literal test for '__empty__'")
    complement = _COMPLEMENT.get(leaf.operator)
    if complement is None:
        raise FilterError(
            f"cannot negate {leaf}: {leaf.operator} has no complement on the wire "
            "(there is no not-like / not-ilike); rewrite with contains/not-contains if possible",
            field=leaf.name,
        )
    return attrs.evolve(leaf, operator=complement)


# --- Compile -------------------------------------------------------------------------------------


def _compile(node: Filter) -> Any:
    """Post-order with an explicit stack, so deeply nested and/or groups need no recursion."""
    done: list[Any] = []
    todo: list[tuple[Filter, bool]] = [(node, False)]
    while todo:
        current, children_done = todo.pop()
        if isinstance(current, (And, Or)):
            if children_done:
                count = len(current.children)
                operands = done[-count:]
                del done[-count:]
                done.append(_balanced(operands, "and" if isinstance(current, And) else "or"))
            else:
                todo.append((current, True))
                todo.extend((child, False) for child in reversed(current.children))
        else:
            done.append(current.wire() if isinstance(current, Leaf) else "all")
    return done[0]


def _balanced(items: list[Any], operator: str) -> Any:
    """Pairwise reduction: in-order, deterministic, depth ceil(log2(n)), no recursion."""
    level = items
    while len(level) > 1:
        paired = [
            {"left": level[i], "operator": operator, "right": level[i + 1]}
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


# --- Entry points --------------------------------------------------------------------------------

FilterLike = Filter | Mapping[str, Any] | str


def from_json(obj: Any, *, strict: bool = True) -> Filter:
    """Read a wire ``UserFilterNode`` back into nodes.

    Multi-table, multi-column and multi-operator leaves become the AND of their parts; empty
    leaves mean ``ALL``. The older docs' ``user_metrics`` table (the server refuses it) raises
    FilterError naming the fix, ``users_view`` with ``user_``-prefixed columns. With
    ``strict=False`` the server traps (a cross-table ``or``, Int32 overflow) are read as written
    instead of refused or warned about, and ``user_metrics`` is read as ``users_view``. Invalid
    shapes raise FilterError naming the path.
    """
    return read_json(obj, strict=strict)


def parse(text: str) -> Filter:
    """Read the text form: ``model contains "gpt" and (latency > 500 or user.cost >= 2)``."""
    return parse_text(text)


def coerce(value: FilterLike) -> Filter:
    """A Filter from a Filter, wire JSON (a dict or ``"all"``) or the text form."""
    if isinstance(value, Filter):
        return value
    if isinstance(value, str):
        return ALL if value.strip() == "all" else parse(value)
    if isinstance(value, Mapping):
        return from_json(value)
    raise FilterError(
        f"expected a Filter, wire JSON or filter text, got {type(value).__name__} {value!r}"
    )


# --- Fields --------------------------------------------------------------------------------------


class _Field:
    """A column handle: its methods build leaves; only the kind's operators exist."""

    __slots__ = ("_column", "_key", "_table")
    kind: ClassVar[str] = ""
    __hash__ = None  # type: ignore[assignment]  # == builds a leaf, so fields cannot be keys

    def __init__(self, table: str, column: str, key: str | None = None) -> None:
        self._table = table
        self._column = column
        self._key = key

    def _leaf(self, operator: str, value: object) -> Leaf:
        return make_leaf(self._table, self._column, operator, value, self._key)

    @property
    def name(self) -> str:
        """The field's name in the text form (``model``, ``user.cost``, ``properties.env``)."""
        return field_name(self._table, self._column, self._key)

    def __repr__(self) -> str:
        return python_field(self._table, self._column, self._key)

    def __bool__(self) -> bool:
        raise TypeError(f"{self!r} is a field, not a filter: compare it, e.g. {self!r} == value")

    def _unsupported(self, operator: str, *_: object) -> NoReturn:
        raise FilterError(self._no_operator(operator), field=self.name)

    def _no_operator(self, operator: str) -> str:
        return (
            f"{self.name} is a {self.kind} field and has no {operator!r} operator; "
            f"the API allows: {', '.join(OPERATORS[self.kind])}"
        )

    if not TYPE_CHECKING:  # runtime guidance; mypy sees only the kind's own operators

        def __eq__(self, other):
            self._unsupported("==")

        def __ne__(self, other):
            self._unsupported("!=")

        def __lt__(self, other):
            self._unsupported("<")

        def __le__(self, other):
            self._unsupported("<=")

        def __gt__(self, other):
            self._unsupported(">")

        def __ge__(self, other):
            self._unsupported(">=")

        def __getattr__(self, name):
            # Also an AttributeError, so hasattr(), getattr(field, name, None) and mocks work.
            if name.startswith("_"):
                raise _no_attribute(self, name)
            raise UnknownFieldError(self._no_operator(name), field=self.name)


class TextField(_Field):
    """A text column: equals, not_equals, like, ilike, contains, not_contains, ==, !=."""

    __slots__ = ()
    kind: ClassVar[str] = TEXT

    def equals(self, value: str) -> Leaf:
        """Equal to ``value`` (``"null"`` tests IS NULL and ``"__empty__"`` empty on the server)."""
        return self._leaf("equals", value)

    def not_equals(self, value: str) -> Leaf:
        """Different from ``value``."""
        return self._leaf("not-equals", value)

    def like(self, pattern: str) -> Leaf:
        """SQL LIKE, case-sensitive; write the ``%`` and ``_`` wildcards yourself."""
        return self._leaf("like", pattern)

    def ilike(self, pattern: str) -> Leaf:
        """SQL ILIKE, case-insensitive; write the ``%`` and ``_`` wildcards yourself."""
        return self._leaf("ilike", pattern)

    def contains(self, value: str) -> Leaf:
        """Case-insensitive substring; ``%`` and ``_`` inside ``value`` act as wildcards."""
        return self._leaf("contains", value)

    def not_contains(self, value: str) -> Leaf:
        """Not a case-insensitive substring (``%`` and ``_`` act as wildcards)."""
        return self._leaf("not-contains", value)

    def __eq__(self, other: object) -> Leaf:  # type: ignore[override]
        return self.equals(other)  # type: ignore[arg-type]  # validated at runtime

    def __ne__(self, other: object) -> Leaf:  # type: ignore[override]
        return self.not_equals(other)  # type: ignore[arg-type]


class _Ordered(_Field):
    """Shared ordering operators for numbers and timestamps."""

    __slots__ = ()

    def gt(self, value: Any) -> Leaf:
        """Greater than ``value``."""
        return self._leaf("gt", value)

    def gte(self, value: Any) -> Leaf:
        """Greater than or equal to ``value``."""
        return self._leaf("gte", value)

    def lt(self, value: Any) -> Leaf:
        """Less than ``value``."""
        return self._leaf("lt", value)

    def lte(self, value: Any) -> Leaf:
        """Less than or equal to ``value``."""
        return self._leaf("lte", value)

    def equals(self, value: Any) -> Leaf:
        """Equal to ``value``."""
        return self._leaf("equals", value)

    def between(self, low: Any, high: Any) -> Filter:
        """``low <= field <= high``, both ends included."""
        lo, hi = self.gte(low), self.lte(high)
        if _ordered_value(lo) > _ordered_value(hi):
            raise FilterError(f"{self.name}.between({low!r}, {high!r}): low is above high")
        return lo & hi

    def __gt__(self, other: Any) -> Leaf:
        return self.gt(other)

    def __ge__(self, other: Any) -> Leaf:
        return self.gte(other)

    def __lt__(self, other: Any) -> Leaf:
        return self.lt(other)

    def __le__(self, other: Any) -> Leaf:
        return self.lte(other)

    def __eq__(self, other: object) -> Leaf:  # type: ignore[override]
        return self.equals(other)


def _ordered_value(leaf: Leaf) -> float:
    value = leaf.value
    return value.timestamp() if isinstance(value, datetime) else float(value)


class NumberField(_Ordered):
    """A number column: ==, !=, >, >=, <, <= (eq, ne, gt, gte, lt, lte) and between()."""

    __slots__ = ()
    kind: ClassVar[str] = NUMBER

    def not_equals(self, value: float) -> Leaf:
        """Different from ``value``."""
        return self._leaf("not-equals", value)

    def eq(self, value: float) -> Leaf:
        """Equal to ``value``."""
        return self.equals(value)

    def ne(self, value: float) -> Leaf:
        """Different from ``value``."""
        return self.not_equals(value)

    def __ne__(self, other: object) -> Leaf:  # type: ignore[override]
        return self.not_equals(other)  # type: ignore[arg-type]


class ScoreField(_Field):
    """One key of the integer ``scores`` map: ==, != (eq, ne); matches only requests with the key.

    The spec types scores with text operators, so the server's schema accepts ``equals`` and
    ``not-equals`` (sent as strings) and refuses the ordering operators: there is no ``>`` here.
    """

    __slots__ = ()
    kind: ClassVar[str] = SCORE

    def equals(self, value: int) -> Leaf:
        """Equal to ``value``."""
        return self._leaf("equals", value)

    def not_equals(self, value: int) -> Leaf:
        """Different from ``value`` (requests without the key still do not match)."""
        return self._leaf("not-equals", value)

    def eq(self, value: int) -> Leaf:
        """Equal to ``value``."""
        return self.equals(value)

    def ne(self, value: int) -> Leaf:
        """Different from ``value``."""
        return self.not_equals(value)

    def __eq__(self, other: object) -> Leaf:  # type: ignore[override]
        return self.equals(other)  # type: ignore[arg-type]  # validated at runtime

    def __ne__(self, other: object) -> Leaf:  # type: ignore[override]
        return self.not_equals(other)  # type: ignore[arg-type]


class TimestampField(_Ordered):
    """A timestamp column: equals, gt, gte, lt, lte, the comparisons and between().

    Values are aware datetimes or ISO-8601 strings with an offset; they are kept at millisecond
    precision. The hosted server compares at whole seconds, so ``equals`` rarely matches there.
    """

    __slots__ = ()
    kind: ClassVar[str] = TIMESTAMP


class BooleanField(_Field):
    """A boolean column: is_true(), is_false(), equals(bool), ==, !=."""

    __slots__ = ()
    kind: ClassVar[str] = BOOLEAN

    def equals(self, value: bool) -> Leaf:
        """Equal to ``value``."""
        return self._leaf("equals", value)

    def is_true(self) -> Leaf:
        """The flag is set."""
        return self.equals(True)

    def is_false(self) -> Leaf:
        """The flag is not set."""
        return self.equals(False)

    def __eq__(self, other: object) -> Leaf:  # type: ignore[override]
        return self.equals(other)  # type: ignore[arg-type]

    def __ne__(self, other: object) -> Leaf:  # type: ignore[override]
        if not isinstance(other, bool):
            raise value_error(self.name, "True or False", other)
        return self.equals(not other)


def _no_attribute(obj: object, name: str) -> AttributeError:
    return AttributeError(f"{type(obj).__name__!r} object has no attribute {name!r}")


class _MapField:
    """A map column: index it by key (``F.properties["env"]``)."""

    __slots__ = ("_column", "_field")

    def __init__(self, column: str, field: type[_Field]) -> None:
        self._column = column
        self._field = field

    def _get(self, key: str) -> Any:
        if not isinstance(key, str) or not key:
            raise FilterError(f"{self._column}[...] needs a non-empty string key, got {key!r}")
        return self._field(RMT, self._column, key)

    def __repr__(self) -> str:
        return f"F.{self._column}"


class _PropertyMap(_MapField):
    __slots__ = ()

    def __getitem__(self, key: str) -> TextField:
        field: TextField = self._get(key)
        return field


class _ScoreMap(_MapField):
    __slots__ = ()

    def __getitem__(self, key: str) -> ScoreField:
        field: ScoreField = self._get(key)
        return field


class _Namespace:
    __slots__ = ()
    _label: ClassVar[str] = ""

    def _names(self) -> list[str]:
        return [n for n in dir(type(self)) if not n.startswith("_")]

    if not TYPE_CHECKING:

        def __getattr__(self, name):
            # Dunder and private lookups (copy, pickle, mocks) get the plain AttributeError.
            if name.startswith("_"):
                raise _no_attribute(self, name)
            refused = UNSUPPORTED_COLUMNS.get(name) if self._label == "F" else None
            raise UnknownFieldError(
                refused or f"{self._label} has no field {name!r}{suggest(name, self._names())}",
                field=name,
            )

    def __dir__(self) -> list[str]:
        return self._names()

    def __repr__(self) -> str:
        return self._label


class RequestFields(_Namespace):
    """Per-request columns (``request_response_rmt``); the public instance is ``F``."""

    __slots__ = ()
    _label: ClassVar[str] = "F"

    country_code: Final = TextField(RMT, "country_code")
    latency: Final = NumberField(RMT, "latency")
    cost: Final = NumberField(RMT, "cost")
    provider: Final = TextField(RMT, "provider")
    time_to_first_token: Final = NumberField(RMT, "time_to_first_token")
    status: Final = NumberField(RMT, "status")
    request_created_at: Final = TimestampField(RMT, "request_created_at")
    response_created_at: Final = TimestampField(RMT, "response_created_at")
    model: Final = TextField(RMT, "model")
    user_id: Final = TextField(RMT, "user_id")
    organization_id: Final = TextField(RMT, "organization_id")
    node_id: Final = TextField(RMT, "node_id")
    job_id: Final = TextField(RMT, "job_id")
    threat: Final = BooleanField(RMT, "threat")
    request_id: Final = TextField(RMT, "request_id")
    prompt_tokens: Final = NumberField(RMT, "prompt_tokens")
    completion_tokens: Final = NumberField(RMT, "completion_tokens")
    prompt_cache_read_tokens: Final = NumberField(RMT, "prompt_cache_read_tokens")
    prompt_cache_write_tokens: Final = NumberField(RMT, "prompt_cache_write_tokens")
    total_tokens: Final = NumberField(RMT, "total_tokens")
    target_url: Final = TextField(RMT, "target_url")
    scores_column: Final = TextField(RMT, "scores_column")
    request_body: Final = TextField(RMT, "request_body")
    response_body: Final = TextField(RMT, "response_body")
    cache_enabled: Final = BooleanField(RMT, "cache_enabled")
    cache_reference_id: Final = TextField(RMT, "cache_reference_id")
    cached: Final = BooleanField(RMT, "cached")
    assets: Final = TextField(RMT, "assets")
    helicone_score_feedback: Final = BooleanField(RMT, "helicone-score-feedback")
    prompt_id: Final = TextField(RMT, "prompt_id")
    prompt_version: Final = TextField(RMT, "prompt_version")
    request_referrer: Final = TextField(RMT, "request_referrer")
    is_passthrough_billing: Final = BooleanField(RMT, "is_passthrough_billing")
    properties: Final = _PropertyMap("properties", TextField)
    scores: Final = _ScoreMap("scores", ScoreField)


class UserFields(_Namespace):
    """Per-user aggregates (``users_view``) without the ``user_`` prefix; the instance is ``U``."""

    __slots__ = ()
    _label: ClassVar[str] = "U"

    user_id: Final = TextField(USERS, "user_user_id")
    active_for: Final = NumberField(USERS, "user_active_for")
    first_active: Final = TimestampField(USERS, "user_first_active")
    last_active: Final = TimestampField(USERS, "user_last_active")
    total_requests: Final = NumberField(USERS, "user_total_requests")
    average_requests_per_day_active: Final = NumberField(
        USERS, "user_average_requests_per_day_active"
    )
    average_tokens_per_request: Final = NumberField(USERS, "user_average_tokens_per_request")
    total_completion_tokens: Final = NumberField(USERS, "user_total_completion_tokens")
    total_prompt_tokens: Final = NumberField(USERS, "user_total_prompt_tokens")
    cost: Final = NumberField(USERS, "user_cost")


F: Final = RequestFields()
U: Final = UserFields()

# The public path in tracebacks and reprs of the type itself.
Filter.__module__ = "helicone_users"
