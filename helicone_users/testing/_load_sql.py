"""The JSONL request format as SQL: each row checked and filled in by DuckDB, as ``normalize_row``
does in Python.

``normalize_row`` (in ``_jsonl``) is the definition. The SQL here is an accelerator that must never
accept a row the definition refuses: every check is the same or stricter, and where it is
stricter the loader asks the definition (see ``_load``). A reader exposes one source's columns
(JSON values from ``read_json``, typed Parquet columns) through the same kinds of field; the
row builder turns them into the stored columns with the defaults and derived values of the
format.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NamedTuple, Protocol

from helicone_users.testing._jsonl import (
    BOOL_DEFAULTS,
    INT_DEFAULTS,
    NULLABLE_TEXT,
    REQUIRED,
    TEXT_DEFAULTS,
)
from helicone_users.testing._store import COLUMN_NAMES, DEFAULT_ORG_ID, ZERO_UUID

__all__ = [
    "GUARD_MARK",
    "ColumnType",
    "Field",
    "JsonReader",
    "ParquetReader",
    "Reader",
    "first_refused",
    "guarded_insert",
    "row_sql",
]

#: The text of the error a refused row raises inside DuckDB (followed by its record number).
GUARD_MARK: Final = "helicone-users: refused record "
#: Run on a connection before the row SQL: strings without an offset are read as UTC.
UTC_SESSION: Final = "SET SESSION TimeZone = 'UTC'"
_BIGINT_MIN: Final = "-9223372036854775808"
_TWO_63: Final = "9223372036854775808.0"
_MAX_COST_USD: Final = 9_000_000_000
_NAMESPACE_URL_HEX: Final = "6ba7b8119dad11d180b400c04fd430c8"  # uuid.NAMESPACE_URL
# The date-times ``_jsonl`` accepts, ASCII digits only, with the field ranges Python checks
# (DuckDB's own parser also takes hour 24, which Python refuses); year 0 is refused by range.
_DATE_TIME: Final = (
    r"^\d{4}-\d{2}-\d{2}(?:[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?)?"
    r"(?:Z|[+-](?:[01]\d|2[0-3]):?[0-5]\d)?$"
)
_INTEGER_TYPES: Final = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
)
_WIDE_INTEGER_TYPES: Final = frozenset({"UBIGINT", "HUGEINT", "UHUGEINT"})
_FLOAT_TYPES: Final = frozenset({"FLOAT", "DOUBLE"})
_TIMESTAMP_TYPES: Final = frozenset(
    {"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"}
)


class Field(NamedTuple):
    """One column of one row: its value (NULL when absent) and whether it is acceptable."""

    value: str
    ok: str


class Reader(Protocol):
    """The columns of one source, as fields of each kind the request format knows."""

    def text(self, name: str) -> Field: ...
    def integer(self, name: str) -> Field: ...
    def boolean(self, name: str) -> Field: ...
    def timestamp(self, name: str) -> Field: ...
    def cost(self, name: str) -> Field: ...
    def string_map(self, name: str) -> Field: ...
    def integer_map(self, name: str) -> Field: ...


def quote(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _whole_double(expr: str) -> str:
    """``expr`` (a DOUBLE) is a whole number in the 64-bit range, as ``_jsonl._integer`` asks."""
    return (
        f"(isfinite({expr}) AND {expr} = floor({expr}) AND {expr} >= -{_TWO_63} "
        f"AND {expr} < {_TWO_63})"
    )


def timestamp_from_text(text: str) -> Field:
    """An ISO-8601 string as naive UTC to the millisecond, like ``_jsonl.parse_timestamp``.

    DuckDB parses it (as ``TIMESTAMPTZ``: the loading session's time zone is UTC, so a string
    without an offset is UTC) once the pattern has vouched for its form; like Python it keeps
    six fraction digits, and the millisecond is then cut off.
    """
    # A date followed directly by a zone gets a midnight, and a time without seconds gets
    # ":00": DuckDB's parser (before 2.0, which Python 3.10 installs) needs both.
    fixed = (
        f"CASE WHEN substr({text}, 11, 1) IN ('Z', '+', '-') "
        f"THEN left({text}, 10) || 'T00:00:00' || substr({text}, 11) "
        f"WHEN length({text}) >= 16 AND substr({text}, 17, 1) <> ':' "
        f"THEN left({text}, 16) || ':00' || substr({text}, 17) ELSE {text} END"
    )
    parsed = f"date_trunc('millisecond', timezone('UTC', TRY_CAST({fixed} AS TIMESTAMPTZ)))"
    ok = (
        f"(regexp_full_match({text}, {literal(_DATE_TIME)}) AND {parsed} "
        "BETWEEN TIMESTAMP '0001-01-01' AND TIMESTAMP '9999-12-31 23:59:59.999')"
    )
    return Field(f"CASE WHEN {ok} THEN {parsed} END", ok)


def _nano_usd_from_double(expr: str) -> Field:
    ok = f"(isfinite({expr}) AND {expr} >= 0 AND {expr} <= {_MAX_COST_USD})"
    # round() in Python rounds half to even, like round_even here.
    return Field(f"CASE WHEN {ok} THEN CAST(round_even({expr} * 1e9, 0) AS BIGINT) END", ok)


def _nano_usd_from_integer(expr: str) -> Field:
    ok = f"({expr} >= 0 AND {expr} <= {_MAX_COST_USD})"
    return Field(f"CASE WHEN {ok} THEN CAST({expr} AS BIGINT) * 1000000000 END", ok)


def _either(absent: str, field: Field) -> Field:
    return Field(field.value, f"({absent} OR coalesce({field.ok}, FALSE))")


class JsonReader:
    """Columns of ``read_json(..., columns={name: 'JSON'})``: one JSON value per field."""

    def _parts(self, name: str) -> tuple[str, str, str]:
        column = quote(name)
        return column, f"json_type({column})", f"CAST({column} AS VARCHAR)"

    def text(self, name: str) -> Field:
        column, kind, _ = self._parts(name)
        return _either(f"{column} IS NULL", Field(f"({column} ->> '$')", f"{kind} = 'VARCHAR'"))

    def _integer_of(self, column: str, kind: str, text: str) -> Field:
        as_double = f"TRY_CAST({text} AS DOUBLE)"
        whole = f"TRY_CAST({text} AS BIGINT)"
        # A DOUBLE without '.' or an exponent is an integer literal too big for 64 bits.
        double_ok = f"(regexp_matches({text}, '[.eE]') AND {_whole_double(as_double)})"
        ok = (
            f"(({kind} IN ('BIGINT', 'UBIGINT') AND {whole} IS NOT NULL) "
            f"OR ({kind} = 'DOUBLE' AND {double_ok}))"
        )
        value = f"CASE WHEN {kind} = 'DOUBLE' THEN CAST({as_double} AS BIGINT) ELSE {whole} END"
        return Field(f"CASE WHEN {ok} THEN {value} END", ok)

    def integer(self, name: str) -> Field:
        column, kind, text = self._parts(name)
        return _either(f"{column} IS NULL", self._integer_of(column, kind, text))

    def boolean(self, name: str) -> Field:
        column, kind, text = self._parts(name)
        return _either(f"{column} IS NULL", Field(f"({text} = 'true')", f"{kind} = 'BOOLEAN'"))

    def timestamp(self, name: str) -> Field:
        column, kind, _ = self._parts(name)
        parsed = timestamp_from_text(f"({column} ->> '$')")
        return _either(f"{column} IS NULL", Field(parsed.value, f"({kind} = 'VARCHAR' AND "
                                                                f"{parsed.ok})"))  # fmt: skip

    def cost(self, name: str) -> Field:
        column, kind, text = self._parts(name)
        whole = _nano_usd_from_integer(f"TRY_CAST({text} AS BIGINT)")
        double = _nano_usd_from_double(f"TRY_CAST({text} AS DOUBLE)")
        ok = (
            f"(({kind} IN ('BIGINT', 'UBIGINT') AND coalesce({whole.ok}, FALSE)) OR "
            f"({kind} = 'DOUBLE' AND regexp_matches({text}, '[.eE]') AND {double.ok}))"
        )
        value = f"CASE WHEN {kind} = 'DOUBLE' THEN {double.value} ELSE {whole.value} END"
        return _either(f"{column} IS NULL", Field(value, ok))

    def string_map(self, name: str) -> Field:
        column, kind, _ = self._parts(name)
        entries = f"map_values(CAST({column} AS MAP(VARCHAR, JSON)))"
        strings = f"list_bool_and(list_transform({entries}, lambda v: json_type(v) = 'VARCHAR'))"
        ok = f"({kind} = 'OBJECT' AND coalesce({strings}, TRUE))"
        return _either(f"{column} IS NULL",
                       Field(f"CAST({column} AS MAP(VARCHAR, VARCHAR))", ok))  # fmt: skip

    def integer_map(self, name: str) -> Field:
        column, kind, _ = self._parts(name)
        entries = f"map_values(CAST({column} AS MAP(VARCHAR, JSON)))"
        each = self._integer_of("v", "json_type(v)", "CAST(v AS VARCHAR)").ok
        ok = f"({kind} = 'OBJECT' AND coalesce(list_bool_and(list_transform({entries}, "
        ok += f"lambda v: {each})), TRUE))"
        return _either(f"{column} IS NULL", Field(f"CAST({column} AS MAP(VARCHAR, BIGINT))", ok))


class ColumnType(NamedTuple):
    """A column's DuckDB type: its name, its base (``map``, ``struct``, ...), its fields."""

    name: str
    base: str = ""
    fields: tuple[tuple[str, str], ...] = ()


class ParquetReader:
    """Columns of ``read_parquet``, checked by their DuckDB type (``types``: name -> type)."""

    def __init__(self, types: Mapping[str, ColumnType]) -> None:
        self.types = dict(types)

    def _typed(self, name: str) -> tuple[str, str] | None:
        kind = self.types.get(name)
        return None if kind is None else (quote(name), kind.name)

    def _only_null(self, name: str) -> Field:
        typed = self._typed(name)
        return Field("NULL", "TRUE") if typed is None else Field("NULL", f"{typed[0]} IS NULL")

    def text(self, name: str) -> Field:
        typed = self._typed(name)
        if typed is None or typed[1] != "VARCHAR":
            return self._only_null(name)
        return Field(typed[0], "TRUE")

    def integer(self, name: str) -> Field:
        typed = self._typed(name)
        if typed is None:
            return self._only_null(name)
        column, kind = typed
        if kind in _INTEGER_TYPES:
            return Field(f"CAST({column} AS BIGINT)", "TRUE")
        if kind in _WIDE_INTEGER_TYPES:
            ok = f"({column} IS NULL OR {column} BETWEEN {_BIGINT_MIN} AND 9223372036854775807)"
            return Field(f"TRY_CAST({column} AS BIGINT)", ok)
        if kind in _FLOAT_TYPES:
            ok = f"({column} IS NULL OR {_whole_double(f'CAST({column} AS DOUBLE)')})"
            return Field(f"CASE WHEN {ok} THEN CAST({column} AS BIGINT) END", ok)
        return self._only_null(name)

    def boolean(self, name: str) -> Field:
        typed = self._typed(name)
        return Field(typed[0], "TRUE") if typed and typed[1] == "BOOLEAN" else self._only_null(name)

    def timestamp(self, name: str) -> Field:
        typed = self._typed(name)
        if typed is None:
            return self._only_null(name)
        column, kind = typed
        if kind in _TIMESTAMP_TYPES:
            return Field(f"date_trunc('millisecond', CAST({column} AS TIMESTAMP))", "TRUE")
        if kind == "TIMESTAMP WITH TIME ZONE":
            return Field(f"date_trunc('millisecond', timezone('UTC', {column}))", "TRUE")
        if kind == "VARCHAR":
            return _either(f"{column} IS NULL", timestamp_from_text(column))
        return self._only_null(name)

    def cost(self, name: str) -> Field:
        typed = self._typed(name)
        if typed is None:
            return self._only_null(name)
        column, kind = typed
        if kind in _INTEGER_TYPES or kind in _WIDE_INTEGER_TYPES:
            return _either(f"{column} IS NULL", _nano_usd_from_integer(column))
        if kind in _FLOAT_TYPES:
            return _either(f"{column} IS NULL", _nano_usd_from_double(f"CAST({column} AS DOUBLE)"))
        return self._only_null(name)

    def string_map(self, name: str) -> Field:
        return self._map(name, frozenset({"VARCHAR"}), "VARCHAR")

    def integer_map(self, name: str) -> Field:
        return self._map(name, _INTEGER_TYPES, "BIGINT")

    def _map(self, name: str, values: frozenset[str], target: str) -> Field:
        kind = self.types.get(name)
        if kind is None:
            return self._only_null(name)
        column = quote(name)
        types = [field_type for _, field_type in kind.fields]
        if kind.base == "map" and types[0] == "VARCHAR" and types[1] in values:
            # A null value inside a map is refused by the definition (not a string/integer).
            ok = f"({column} IS NULL OR list_count(map_values({column})) = cardinality({column}))"
            return Field(f"CAST({column} AS MAP(VARCHAR, {target}))", ok)
        if kind.base == "struct" and types and all(t in values for t in types):
            return Field(_struct_as_map(column, [n for n, _ in kind.fields], target), "TRUE")
        return self._only_null(name)


def _struct_as_map(column: str, names: list[str], target: str) -> str:
    # A struct (what pyarrow makes of a column of dicts) as a map of its non-null fields.
    entries = ", ".join(
        f"struct_pack(key := {literal(n)}, value := CAST({column}.{quote(n)} AS {target}))"
        for n in names
    )
    kept = f"list_filter([{entries}], lambda e: e.value IS NOT NULL)"
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE map_from_entries({kept}) END"


# --- the row ------------------------------------------------------------------------------------

_KINDS: Final[dict[str, str]] = {
    **dict.fromkeys(("request_id", "user_id", *TEXT_DEFAULTS, *NULLABLE_TEXT), "text"),
    **dict.fromkeys(("cache_reference_id", "organization_id", "op_name", "trace_id"), "text"),
    **dict.fromkeys((*INT_DEFAULTS, "time_to_first_token", "total_tokens"), "integer"),
    **dict.fromkeys((*BOOL_DEFAULTS, "cache_enabled"), "boolean"),
    "request_created_at": "timestamp",
    "response_created_at": "timestamp",
    "cost": "cost",
    "properties": "string_map",
    "scores": "integer_map",
}


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(uuid.NAMESPACE_URL, name))`` in SQL."""
    h = f"sha1(unhex('{_NAMESPACE_URL_HEX}') || encode({name}))"
    variant = f"'89ab'[(('0x' || substr({h}, 17, 1))::INTEGER & 3) + 1]"
    return (
        f"(substr({h}, 1, 8) || '-' || substr({h}, 9, 4) || '-5' || substr({h}, 14, 3) || '-' "
        f"|| {variant} || substr({h}, 18, 3) || '-' || substr({h}, 21, 12))"
    )


def _stored(name: str) -> str:
    """The stored column from the checked fields ``f_<name>`` (defaults, derived values)."""
    f = {n: f"f_{n}" for n in COLUMN_NAMES}
    cached = f"coalesce({f['cached']}, FALSE)"
    derived = {
        "total_tokens": f"coalesce({f['total_tokens']}, coalesce({f['prompt_tokens']}, 0) "
        f"+ coalesce({f['completion_tokens']}, 0))",
        "response_created_at": f"coalesce({f['response_created_at']}, "
        f"{f['request_created_at']} + to_milliseconds(coalesce({f['latency']}, 0)))",
        "properties": f"coalesce({f['properties']}, MAP([]::VARCHAR[], []::VARCHAR[]))",
        "scores": f"coalesce({f['scores']}, MAP([]::VARCHAR[], []::BIGINT[]))",
        "cache_enabled": f"coalesce({f['cache_enabled']}, {cached})",
        "cache_reference_id": f"coalesce({f['cache_reference_id']}, CASE WHEN {cached} "
        f"THEN {_uuid5(f['request_id'])} ELSE {literal(ZERO_UUID)} END)",
        "organization_id": f"coalesce({f['organization_id']}, {literal(DEFAULT_ORG_ID)})",
        "cost": f"coalesce({f['cost']}, 0)",
        "op_name": f"coalesce({f['op_name']}, coalesce(nullif({f['provider']}, ''), 'llm') "
        f"|| '.' || coalesce(nullif({f['model']}, ''), 'unknown'))",
        "trace_id": f"coalesce({f['trace_id']}, {f['request_id']})",
    }
    if name in derived:
        return derived[name]
    defaults = {**{k: literal(v) for k, v in TEXT_DEFAULTS.items()},
                **{k: str(v) for k, v in INT_DEFAULTS.items()},
                **{k: str(v).upper() for k, v in BOOL_DEFAULTS.items()}}  # fmt: skip
    return f"coalesce({f[name]}, {defaults[name]})" if name in defaults else f[name]


def row_sql(reader: Reader, source: str, record: str) -> tuple[str, str]:
    """``SELECT rec, ok, <stored columns>`` over ``source`` (with ``record`` numbering its rows),
    and the name of the row-acceptable flag column (``ok``)."""
    fields = {name: getattr(reader, _KINDS[name])(name) for name in COLUMN_NAMES}
    checked = ", ".join(f"{field.value} AS f_{name}" for name, field in fields.items())
    required = " AND ".join(f"f_{name} IS NOT NULL" for name in REQUIRED)
    oks = " AND ".join(f"coalesce({field.ok}, FALSE)" for field in fields.values())
    inner = f"SELECT {record} AS rec, ({oks}) AS ok_fields, {checked} FROM {source}"
    stored = ", ".join(f"{_stored(name)} AS {quote(name)}" for name in COLUMN_NAMES)
    ok = f"(ok_fields AND {required} AND f_request_id <> '')"
    return f"SELECT rec, {ok} AS ok, {stored} FROM ({inner})", "ok"


def guarded_insert(rows: str) -> str:
    """``INSERT INTO requests`` of ``rows`` (from ``row_sql``), failing on the first refused row
    with an error whose text starts with ``GUARD_MARK``."""
    names = ", ".join(quote(name) for name in COLUMN_NAMES)
    values = ", ".join(
        f"CASE WHEN ok THEN {quote(name)} ELSE error({literal(GUARD_MARK)} "
        "|| coalesce(rec::VARCHAR, '?')) END"
        if name == "request_id" else quote(name)
        for name in COLUMN_NAMES
    )
    return f"INSERT INTO requests ({names}) SELECT {values} FROM ({rows})"


def first_refused(rows: str) -> str:
    """The record number of the first refused row of ``rows`` (NULL when none)."""
    return f"SELECT min(rec) FROM ({rows}) WHERE NOT ok"
