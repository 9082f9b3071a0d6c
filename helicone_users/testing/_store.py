"""The DuckDB store: one ``requests`` table, one row per LLM request, queried off the event loop.

Beside it, ``user_days`` holds one row per user and UTC day (request count, first and last
request, token and cost sums, rate-limited count): queries without request conditions or time
bounds read it instead of every request. Each insert updates it for the new rows only, in the
insert's own transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, TypeVar

from helicone_users.testing._dbfile import DatabaseFile, connect, read_meta, write_meta

T = TypeVar("T")

ZERO_UUID: Final = "00000000-0000-0000-0000-000000000000"
DEFAULT_ORG_ID: Final = "00000000-0000-0000-0000-0000000000e1"

# (column, DuckDB type). Timestamps are naive UTC; cost is integer nano-USD like the real server.
COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("request_id", "VARCHAR NOT NULL"),
    ("user_id", "VARCHAR NOT NULL"),
    ("request_created_at", "TIMESTAMP NOT NULL"),
    ("response_created_at", "TIMESTAMP"),
    ("model", "VARCHAR NOT NULL"),
    ("provider", "VARCHAR NOT NULL"),
    ("latency", "BIGINT NOT NULL"),
    ("time_to_first_token", "BIGINT"),
    ("status", "BIGINT NOT NULL"),
    ("prompt_tokens", "BIGINT NOT NULL"),
    ("completion_tokens", "BIGINT NOT NULL"),
    ("total_tokens", "BIGINT NOT NULL"),
    ("prompt_cache_read_tokens", "BIGINT NOT NULL"),
    ("prompt_cache_write_tokens", "BIGINT NOT NULL"),
    ("country_code", "VARCHAR"),
    ("target_url", "VARCHAR NOT NULL"),
    ("properties", "MAP(VARCHAR, VARCHAR) NOT NULL"),
    ("scores", "MAP(VARCHAR, BIGINT) NOT NULL"),
    ("request_body", "VARCHAR NOT NULL"),
    ("response_body", "VARCHAR NOT NULL"),
    ("cached", "BOOLEAN NOT NULL"),
    ("cache_enabled", "BOOLEAN NOT NULL"),
    ("cache_reference_id", "VARCHAR NOT NULL"),
    ("threat", "BOOLEAN NOT NULL"),
    ("organization_id", "VARCHAR NOT NULL"),
    ("node_id", "VARCHAR"),
    ("job_id", "VARCHAR"),
    ("prompt_id", "VARCHAR"),
    ("prompt_version", "VARCHAR"),
    ("request_referrer", "VARCHAR"),
    ("is_passthrough_billing", "BOOLEAN NOT NULL"),
    ("cost", "BIGINT NOT NULL"),
    ("scores_column", "VARCHAR NOT NULL"),
    ("assets", "VARCHAR NOT NULL"),
    ("op_name", "VARCHAR NOT NULL"),
    ("trace_id", "VARCHAR NOT NULL"),
    ("parent_id", "VARCHAR"),
    ("thread_id", "VARCHAR"),
    ("turn_id", "VARCHAR"),
    ("wb_user_id", "VARCHAR"),
    ("wb_run_id", "VARCHAR"),
)
COLUMN_NAMES: Final[tuple[str, ...]] = tuple(name for name, _ in COLUMNS)
_MAP_COLUMNS: Final = ("properties", "scores")

ROLLUP_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("user_id", "VARCHAR NOT NULL"),
    ("day", "DATE NOT NULL"),
    ("n", "BIGINT NOT NULL"),
    ("first_at", "TIMESTAMP NOT NULL"),
    ("last_at", "TIMESTAMP NOT NULL"),
    ("prompt_tokens", "HUGEINT NOT NULL"),
    ("completion_tokens", "HUGEINT NOT NULL"),
    ("cost", "HUGEINT NOT NULL"),
    ("rate_limited", "BIGINT NOT NULL"),
)
_ROLLUP_SELECT: Final = """
SELECT user_id, CAST(request_created_at AS DATE) AS day, count(request_id) AS n,
  min(request_created_at) AS first_at, max(request_created_at) AS last_at,
  sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
  sum(cost) AS cost,
  count(*) FILTER (WHERE map_extract_value(properties, 'Helicone-Rate-Limit-Status')
                   = 'rate_limited') AS rate_limited
FROM requests WHERE rowid >= $first GROUP BY 1, 2
"""
# Rows appended in an open transaction have row ids past every committed one (and nothing is
# ever deleted from ``requests``), so ``rowid >= <count before the insert>`` is the new rows.
_ROLLUP_MERGE: Final = f"""
MERGE INTO user_days u USING ({_ROLLUP_SELECT}) d ON u.user_id = d.user_id AND u.day = d.day
WHEN MATCHED THEN UPDATE SET
  n = u.n + d.n, first_at = least(u.first_at, d.first_at),
  last_at = greatest(u.last_at, d.last_at), prompt_tokens = u.prompt_tokens + d.prompt_tokens,
  completion_tokens = u.completion_tokens + d.completion_tokens, cost = u.cost + d.cost,
  rate_limited = u.rate_limited + d.rate_limited
WHEN NOT MATCHED THEN INSERT BY NAME
"""
SOURCE_KEY: Final = "source"


def requests_ddl() -> str:
    """``CREATE TABLE requests (...)``."""
    columns = ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS)
    return f"CREATE TABLE requests ({columns})"


class Store:
    """An embedded DuckDB database holding the ``requests`` table and its ``user_days`` rollup.

    ``path`` names the database file (created when missing, refused with ``DatabaseFileError``
    when it is not one the emulator wrote); without it the data lives in a private temporary
    file removed by ``close()``. ``config`` is passed to ``duckdb.connect`` (``memory_limit``,
    ``threads``, ...).

    ``await store.run(fn)`` calls ``fn(cursor)`` in a worker thread with a fresh DuckDB cursor,
    so the event loop keeps serving while DuckDB works. Writes go through ``write()``, which
    serialises them and makes each one a transaction.
    """

    def __init__(self, path: str | Path | None = None, *, config: Mapping[str, Any] | None = None,
                 ) -> None:  # fmt: skip
        self.file = DatabaseFile(path)
        self.path = None if path is None else str(path)
        try:
            self.connection: Any = connect(self.file, _create_tables, config)
        except BaseException:
            self.file.remove()
            raise
        self.write_lock = threading.Lock()

    def execute(self, fn: Callable[[Any], T]) -> T:
        """Call ``fn(cursor)`` in this thread with a cursor of its own."""
        cursor = self.connection.cursor()
        try:
            return fn(cursor)
        finally:
            cursor.close()

    async def run(self, fn: Callable[[Any], T]) -> T:
        """Call ``fn(cursor)`` in a worker thread, off the event loop."""
        return await asyncio.to_thread(self.execute, fn)

    @contextlib.contextmanager
    def write(self) -> Iterator[Any]:
        """A cursor inside one transaction, committed on success and rolled back on error."""
        with self.write_lock:
            cursor = self.connection.cursor()
            try:
                cursor.execute("BEGIN TRANSACTION")
                try:
                    yield cursor
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")
            finally:
                cursor.close()

    def append(self, cursor: Any, sql: str, params: Any = None) -> int:
        """Run an ``INSERT INTO requests`` in ``write()``'s transaction and fold the new rows
        into the rollup; returns how many rows it added."""
        first = int(cursor.execute("SELECT count(*) FROM requests").fetchone()[0])
        cursor.execute(sql, params)
        added = int(cursor.execute("SELECT count(*) FROM requests").fetchone()[0]) - first
        if added:
            cursor.execute(_ROLLUP_MERGE, {"first": first})
        return added

    def insert_columns(self, columns: Mapping[str, Sequence[Any]]) -> int:
        """Insert column-major data in one transaction; all rows or none."""
        if not columns["request_id"]:
            return 0
        sql, params = columns_insert(columns)
        with self.write() as cursor:
            return self.append(cursor, sql, params)

    def count(self) -> int:
        """How many requests are stored."""
        sql = "SELECT count(*) FROM requests"
        row = self.execute(lambda cursor: cursor.execute(sql).fetchone())
        return int(row[0])

    def source(self) -> str | None:
        """What the stored data was loaded from (see ``set_source``), if recorded."""
        return self.execute(read_meta).get(SOURCE_KEY)

    @staticmethod
    def set_source(cursor: Any, description: str) -> None:
        """Record what the data was loaded from, in the caller's transaction."""
        write_meta(cursor, SOURCE_KEY, description)

    def fetch_rows(self) -> list[dict[str, Any]]:
        """Every stored request in the JSONL row format (cost in USD, aware UTC timestamps)."""

        def read(cursor: Any) -> list[dict[str, Any]]:
            cursor.execute(
                "SELECT * FROM requests ORDER BY request_created_at, request_id"
            )
            names = [d[0] for d in cursor.description]
            return [
                _to_public_row(dict(zip(names, values, strict=True)))
                for values in cursor.fetchall()
            ]

        return self.execute(read)

    def export_parquet(self, path: str | Path) -> int:
        """Write every request to a Parquet file in the JSONL row format; returns how many.

        Blocks are written as DuckDB's threads finish them, each in stored order: keeping the
        whole file in order would buffer several times the table's size in memory.
        """
        sql = (
            "COPY (SELECT * REPLACE (cost / 1e9 AS cost) FROM requests) "
            "TO $path (FORMAT parquet)"
        )

        def write(cursor: Any) -> None:
            cursor.execute("SET SESSION preserve_insertion_order = false")
            cursor.execute(sql, {"path": str(path)})

        self.execute(write)
        return self.count()

    def close(self) -> None:
        """Close the database (a temporary file is deleted)."""
        try:
            self.connection.close()
        finally:
            self.file.remove()


def _create_tables(connection: Any) -> None:
    connection.execute(requests_ddl())
    columns = ", ".join(f"{name} {kind}" for name, kind in ROLLUP_COLUMNS)
    connection.execute(f"CREATE TABLE user_days ({columns})")


def columns_insert(columns: Mapping[str, Sequence[Any]]) -> tuple[str, list[Any]]:
    """An ``INSERT ... SELECT unnest(...)`` of column-major data, and its parameters."""
    selects: list[str] = []
    params: list[Any] = []
    for name in COLUMN_NAMES:
        if name in _MAP_COLUMNS:
            params.append([list(m.keys()) for m in columns[name]])
            params.append([list(m.values()) for m in columns[name]])
            kind = "VARCHAR" if name == "properties" else "BIGINT"
            selects.append(
                f"map(unnest(${len(params) - 1}::VARCHAR[][]), "
                f"unnest(${len(params)}::{kind}[][]))"
            )
        else:
            params.append(list(columns[name]))
            selects.append(f"unnest(${len(params)})")
    names = ", ".join(f'"{name}"' for name in COLUMN_NAMES)
    return f"INSERT INTO requests ({names}) SELECT {', '.join(selects)}", params


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=timezone.utc)


def _to_public_row(raw: dict[str, Any]) -> dict[str, Any]:
    row = dict(raw)
    row["request_created_at"] = _aware(row["request_created_at"])
    row["response_created_at"] = _aware(row["response_created_at"])
    row["cost"] = row["cost"] / 1e9
    row["properties"] = dict(row["properties"])
    row["scores"] = {key: int(value) for key, value in dict(row["scores"]).items()}
    return row
