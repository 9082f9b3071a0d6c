"""The DuckDB store: one ``requests`` table, one row per LLM request, queried off the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Final, TypeVar

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

# One row per user and UTC day: queries without request conditions or time bounds read this
# instead of every request (rebuilt in the same transaction as each insert).
ROLLUP_SELECT: Final = """
SELECT user_id, CAST(request_created_at AS DATE) AS day, count(request_id) AS n,
  min(request_created_at) AS first_at, max(request_created_at) AS last_at,
  sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
  sum(cost) AS cost,
  count(*) FILTER (WHERE map_extract_value(properties, 'Helicone-Rate-Limit-Status')
                   = 'rate_limited') AS rate_limited
FROM requests GROUP BY 1, 2
"""


def _import_duckdb() -> Any:
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "the emulator needs DuckDB: pip install 'helicone-users[emulator]'"
        ) from exc
    return duckdb


class Store:
    """An embedded DuckDB database holding the ``requests`` table.

    ``await store.run(fn)`` calls ``fn(cursor)`` in a worker thread with a fresh DuckDB cursor,
    so the event loop keeps serving while DuckDB works. Writes are serialised by ``write_lock``.
    """

    def __init__(self, path: str | None = None) -> None:
        duckdb = _import_duckdb()
        self.path = path
        self.connection: Any = duckdb.connect(path or ":memory:")
        self.write_lock = threading.Lock()
        columns = ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS)
        self.connection.execute(f"CREATE TABLE IF NOT EXISTS requests ({columns})")
        self.connection.execute(f"CREATE TABLE IF NOT EXISTS user_days AS {ROLLUP_SELECT}")

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

    def insert_columns(self, columns: Mapping[str, Sequence[Any]]) -> int:
        """Insert column-major data in one transaction; all rows or none."""
        count = len(columns["request_id"])
        if count == 0:
            return 0
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
        self.insert_sql(f"INSERT INTO requests ({names}) SELECT {', '.join(selects)}", params)
        return count

    def insert_sql(self, sql: str, params: Any = None) -> None:
        """Run one INSERT and refresh the rollup, in one transaction: all rows or none."""
        with self.write_lock:
            cursor = self.connection.cursor()
            try:
                cursor.execute("BEGIN TRANSACTION")
                try:
                    cursor.execute(sql, params)
                    cursor.execute(f"CREATE OR REPLACE TABLE user_days AS {ROLLUP_SELECT}")
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")
            finally:
                cursor.close()

    def count(self) -> int:
        """How many requests are stored."""
        sql = "SELECT count(*) FROM requests"
        row = self.execute(lambda cursor: cursor.execute(sql).fetchone())
        return int(row[0])

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

    def close(self) -> None:
        """Close the database."""
        self.connection.close()


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
