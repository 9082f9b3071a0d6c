"""Loading JSONL and Parquet files through DuckDB's own readers, all rows or none.

The fast path reads the file with ``read_json`` / ``read_parquet`` and inserts it in one
``INSERT ... SELECT`` whose SQL checks each row as the request format asks (``_load_sql``); the
first refused row stops the insert and rolls it back. The loader then asks the Python definition
(``_jsonl.normalize_row``) about that row, so the error names the same line (or row), field and
reason as ``read_jsonl`` would. Where the SQL is stricter than the definition (a row it cannot
vouch for but the definition accepts, such as ``"properties": []``), or where DuckDB cannot read
the file at all, the file is loaded by the definition itself, in batches, in one transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, Protocol

from helicone_users.testing._dbfile import import_duckdb
from helicone_users.testing._jsonl import (
    DataLoadError,
    jsonl_lines,
    normalize_row,
    normalize_rows,
    parse_line,
)
from helicone_users.testing._load_sql import (
    GUARD_MARK,
    UTC_SESSION,
    ColumnType,
    JsonReader,
    ParquetReader,
    first_refused,
    guarded_insert,
    literal,
    quote,
    row_sql,
)
from helicone_users.testing._store import COLUMN_NAMES, Store, columns_insert

__all__ = ["JsonlSource", "ParquetSource"]

_BATCH: Final = 50_000
_KNOWN: Final = frozenset(COLUMN_NAMES)
# Top-level objects the fast path cannot vouch for: unknown or repeated keys (the definition
# keeps the last of repeated keys; DuckDB the first) and trailing commas (which DuckDB's JSON
# reader accepts and Python's refuses). The first pass only looks; the second, run when the
# first found something, numbers the records.
_OBJECTS: Final = """
SELECT {number} AS rec, json_keys(json) AS keys,
  regexp_matches(json, ',\\s*[\\]}}]') AS trailing_comma
FROM read_ndjson_objects($path) {ordinality}
"""
_SHAPES: Final = "SELECT keys, bool_or(trailing_comma) FROM ({objects}) GROUP BY keys"
_FIRST_SHAPE: Final = (
    "SELECT min(rec) FROM ({objects}) WHERE trailing_comma OR list_contains($bad, keys)"
)


class _Exact(Exception):
    """Only the Python definition can load this file."""


class _File(Protocol):
    path: Path

    def rows(self, cursor: Any, *, numbered: bool = False) -> str: ...
    def first_doubtful(self, cursor: Any) -> int | None: ...
    def check(self, record: int) -> None: ...
    def python_rows(self) -> Iterator[dict[str, Any]]: ...


class _FileSource:
    """A file loaded when the emulator starts; ``describe`` names it with its size and time."""

    kind = "file"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no such {self.kind} file: {self.path}")

    def describe(self) -> str:
        stat = self.path.stat()
        modified = datetime.fromtimestamp(stat.st_mtime, timezone.utc).isoformat()
        return (
            f"the {self.kind} file {self.path.resolve()} ({stat.st_size:,} bytes, modified "
            f"{modified})"
        )

    def _file(self) -> _File:
        raise NotImplementedError

    def load(self, store: Store, finish: Callable[[Any], None]) -> int:
        """Insert every row in one transaction; ``DataLoadError`` names the first bad one."""
        file = self._file()
        try:
            return _load_natively(store, finish, file)
        except _Exact:
            return _load_exactly(store, finish, file)


class JsonlSource(_FileSource):
    """A JSONL file in the request format, read with DuckDB's ``read_json``."""

    kind = "JSONL"

    def _file(self) -> _File:
        return _JsonlFile(self.path)


class ParquetSource(_FileSource):
    """A Parquet file whose columns are fields of the request format, read with
    ``read_parquet``. A struct column (what pyarrow makes of dicts) counts as a map of its
    non-null fields, and a null cell as a missing field."""

    kind = "Parquet"

    def _file(self) -> _File:
        return _ParquetFile(self.path)


def _params(file: _File) -> dict[str, Any]:
    return {"path": str(file.path)}


def _load_natively(store: Store, finish: Callable[[Any], None], file: _File) -> int:
    duckdb = import_duckdb()
    params = _params(file)
    try:
        doubtful = store.execute(file.first_doubtful)
        if doubtful is None:
            rows = store.execute(file.rows)
            try:
                with store.write() as cursor:
                    cursor.execute(UTC_SESSION)
                    added = store.append(cursor, guarded_insert(rows), params)
                    finish(cursor)
                return added
            except duckdb.Error as exc:
                if GUARD_MARK not in str(exc):
                    raise
        numbered = store.execute(lambda cursor: file.rows(cursor, numbered=True))
        refused = store.execute(
            lambda c: c.execute(UTC_SESSION).execute(first_refused(numbered), params).fetchone()[0]
        )
    except duckdb.Error:
        raise _Exact from None
    candidates = [record for record in (doubtful, refused) if record is not None]
    if not candidates:
        raise _Exact
    file.check(min(candidates))  # raises DataLoadError when the definition refuses it too
    raise _Exact


def _load_exactly(store: Store, finish: Callable[[Any], None], file: _File) -> int:
    rows = file.python_rows()
    added = 0
    with store.write() as cursor:
        while batch := list(itertools.islice(rows, _BATCH)):
            added += store.append(cursor, *columns_insert(normalize_rows(batch)))
        finish(cursor)
    return added


# --- JSONL ---------------------------------------------------------------------------------------


class _JsonlFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def rows(self, _cursor: Any, *, numbered: bool = False) -> str:
        columns = "{" + ", ".join(f"{literal(name)}: 'JSON'" for name in COLUMN_NAMES) + "}"
        source = f"read_json($path, format='newline_delimited', columns={columns})"
        if numbered:  # numbering the records costs a little: only to find a refused one
            source += " WITH ORDINALITY"
        sql, _ = row_sql(JsonReader(), source, "ordinality" if numbered else "NULL")
        return sql

    def first_doubtful(self, cursor: Any) -> int | None:
        plain = _OBJECTS.format(number="NULL", ordinality="")
        shapes = cursor.execute(_SHAPES.format(objects=plain), _params(self)).fetchall()
        bad = [keys for keys, _ in shapes
               if not _KNOWN.issuperset(keys) or len(set(keys)) != len(keys)]  # fmt: skip
        if not bad and not any(comma for _, comma in shapes):
            return None
        numbered = _OBJECTS.format(number="ordinality", ordinality="WITH ORDINALITY")
        found = cursor.execute(_FIRST_SHAPE.format(objects=numbered),
                               {**_params(self), "bad": bad}).fetchone()  # fmt: skip
        return None if found is None else found[0]

    def check(self, record: int) -> None:
        for index, (number, text) in enumerate(jsonl_lines(self.path), start=1):
            if index == record:
                parse_line(text, number, self.path)
                return

    def python_rows(self) -> Iterator[dict[str, Any]]:
        for number, text in jsonl_lines(self.path):
            yield parse_line(text, number, self.path)


# --- Parquet -------------------------------------------------------------------------------------


class _ParquetFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.types: dict[str, ColumnType] = {}

    def _read_types(self, cursor: Any) -> dict[str, ColumnType]:
        duckdb = import_duckdb()
        try:
            relation = cursor.sql(f"SELECT * FROM read_parquet({literal(str(self.path))})")
        except duckdb.Error as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataLoadError(f"cannot be read as Parquet ({reason})", path=self.path) from None
        types: dict[str, ColumnType] = {}
        for name, kind in zip(relation.columns, relation.types, strict=True):
            base = str(kind.id)
            fields = tuple((n, str(t)) for n, t in kind.children) if base in ("map",
                                                                              "struct") else ()
            types[name] = ColumnType(str(kind), base, fields)  # fmt: skip
        return types

    def rows(self, cursor: Any, *, numbered: bool = False) -> str:
        self.types = self._read_types(cursor)
        unknown = sorted(set(self.types) - _KNOWN)
        if unknown:
            count = cursor.execute(
                "SELECT count(*) FROM read_parquet($path)", _params(self)
            ).fetchone()[0]
            raise DataLoadError(
                "unknown field; see the JSONL request format in the README",
                field=unknown[0], row=1 if count else None, path=self.path,
            )  # fmt: skip
        source = "read_parquet($path, file_row_number=true)"
        sql, _ = row_sql(ParquetReader(self.types), source, "file_row_number + 1")
        return sql

    def first_doubtful(self, _cursor: Any) -> int | None:
        return None  # a Parquet file's columns are typed: the SQL sees every row as it is

    def _as_row(self, names: list[str], values: tuple[Any, ...]) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name, value in zip(names, values, strict=True):
            if isinstance(value, Mapping) and self.types[name].base == "struct":
                value = {key: item for key, item in value.items() if item is not None}
            if value is not None:
                row[name] = value
        return row

    def _select(self, cursor: Any, where: str = "") -> list[str]:
        columns = ", ".join(quote(name) for name in self.types)
        cursor.execute(
            f"SELECT {columns} FROM read_parquet($path, file_row_number=true) {where} "
            "ORDER BY file_row_number",
            _params(self),
        )
        return list(self.types)

    def check(self, record: int) -> None:
        duckdb = import_duckdb()
        with duckdb.connect() as connection:
            self.types = self._read_types(connection)
            names = self._select(connection, f"WHERE file_row_number = {int(record) - 1}")
            values = connection.fetchone()
        if values is not None:
            _checked(self._as_row(names, values), record, self.path)

    def python_rows(self) -> Iterator[dict[str, Any]]:
        duckdb = import_duckdb()
        with duckdb.connect() as connection:
            self.types = self._read_types(connection)
            names = self._select(connection)
            record = 0
            while batch := connection.fetchmany(_BATCH):
                for values in batch:
                    record += 1
                    yield _checked(self._as_row(names, values), record, self.path)


def _checked(row: dict[str, Any], record: int, path: Path) -> dict[str, Any]:
    try:
        normalize_row(row)
    except DataLoadError as exc:
        raise DataLoadError(exc.reason, row=record, field=exc.field, path=path) from None
    return row
