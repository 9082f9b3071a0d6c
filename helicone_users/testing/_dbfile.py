"""The emulator's DuckDB file: where it lives, its schema version, and what it refuses to open.

Every store is a DuckDB file, so DuckDB compresses the stored requests (dictionary, FSST,
bit-packing) and keeps only the blocks it needs in memory. Without a path the file is private
and temporary: it lives in a fresh temporary directory that ``close()`` removes.

A file the emulator creates carries a ``helicone_emulator`` table with its schema version and
the source its data was loaded from. Anything else is refused with ``DatabaseFileError``: a file
that is not a DuckDB database, a DuckDB database of something else, one written by an older or
newer schema version, or one another process holds open.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from helicone_users._errors import HeliconeError

__all__ = [
    "META_TABLE",
    "SCHEMA_VERSION",
    "DatabaseFile",
    "DatabaseFileError",
    "connect",
    "import_duckdb",
]

#: Bumped whenever the tables change; files of another version are refused, never migrated.
SCHEMA_VERSION: Final = 2
META_TABLE: Final = "helicone_emulator"
_TEMP_PREFIX: Final = "helicone-emulator-"
_TEMP_NAME: Final = "emulator.duckdb"
_OUR_TABLES: Final = frozenset({"requests", "user_days"})
_FIX_NEW_PATH: Final = "pass a path that does not exist yet (the emulator creates it)"
# Every DuckDB database file carries this at byte 8; checking it first keeps DuckDB from
# opening other formats it knows (it would fetch its SQLite extension for a SQLite file).
_MAGIC: Final = b"DUCK"
_MAGIC_OFFSET: Final = 8
# The emulator needs only what DuckDB's Python package links in (json, parquet, icu): never
# download an extension (no network in tests, nothing fetched behind the user's back).
_DEFAULT_CONFIG: Final = {"autoinstall_known_extensions": False}


class DatabaseFileError(HeliconeError, ValueError):
    """A ``db_path`` the emulator will not open or reuse; the message names the file and the fix."""

    def __init__(self, path: str, problem: str, fix: str) -> None:
        super().__init__(f"{path}: {problem}; {fix}")
        self.path = path
        self.problem = problem
        self.fix = fix


def import_duckdb() -> Any:
    """The ``duckdb`` module, or an ImportError naming the extra to install."""
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "the emulator needs DuckDB: pip install 'helicone-users[emulator]'"
        ) from exc
    return duckdb


class DatabaseFile:
    """Where a store's data lives: the file the caller named, or a private temporary one."""

    def __init__(self, path: str | Path | None) -> None:
        self.temporary = path is None
        self._directory = tempfile.mkdtemp(prefix=_TEMP_PREFIX) if path is None else None
        self.path = str(Path(self._directory) / _TEMP_NAME) if self._directory else str(path)

    def remove(self) -> None:
        """Delete a temporary file and its directory (a named file is kept)."""
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None


def connect(
    where: DatabaseFile, create: Callable[[Any], None], config: Mapping[str, Any] | None = None
) -> Any:
    """A DuckDB connection to ``where``; ``create(connection)`` makes the tables of a new file.

    Raises ``DatabaseFileError`` for any file it must not use; the connection is closed first.
    """
    duckdb = import_duckdb()
    target = Path(where.path)
    if target.is_dir():
        raise DatabaseFileError(where.path, "is a directory", _FIX_NEW_PATH)
    if target.is_file() and target.stat().st_size == 0:
        target.unlink()  # an empty file (say, from mkstemp) holds nothing to keep
    if target.is_file() and not _is_duckdb(target):
        raise DatabaseFileError(where.path, "is not a DuckDB database file", _FIX_NEW_PATH)
    try:
        connection = duckdb.connect(where.path, config={**_DEFAULT_CONFIG, **(config or {})})
    except duckdb.InvalidInputException:
        raise  # a bad ``config`` setting: DuckDB's own message names it
    except duckdb.Error as exc:
        raise _open_error(where.path, exc) from None
    try:
        if _check(connection, where.path):
            _create(connection, create)
    except BaseException:
        connection.close()
        raise
    return connection


def _is_duckdb(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(_MAGIC_OFFSET + len(_MAGIC))
    return head[_MAGIC_OFFSET:] == _MAGIC


def _open_error(path: str, exc: Exception) -> DatabaseFileError:
    text = str(exc)
    if "not a valid DuckDB database file" in text:
        return DatabaseFileError(path, "is not a DuckDB database file", _FIX_NEW_PATH)
    if "Could not set lock" in text:
        return DatabaseFileError(
            path,
            "is open in another process (DuckDB allows one writer per file)",
            "stop the other emulator or pass another path",
        )
    if "version" in text.lower():
        return DatabaseFileError(
            path,
            f"was written by a DuckDB storage version this DuckDB cannot read ({_first(text)})",
            f"delete it and load the data again, or {_FIX_NEW_PATH}",
        )
    return DatabaseFileError(path, f"cannot be opened: {_first(text)}", _FIX_NEW_PATH)


def _first(text: str) -> str:
    return text.splitlines()[0] if text else "unknown error"


def _tables(connection: Any) -> set[str]:
    """The database's tables and views (a database with only views is not empty)."""
    rows = connection.execute(
        "SELECT table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() AND NOT temporary "
        "UNION ALL SELECT view_name FROM duckdb_views() "
        "WHERE database_name = current_database() AND NOT internal AND NOT temporary"
    ).fetchall()
    return {name for (name,) in rows}


def _check(connection: Any, path: str) -> bool:
    """Whether the database is new (no tables); raises for one the emulator must not reuse."""
    tables = _tables(connection)
    if not tables:
        return True
    if META_TABLE in tables:
        found = read_meta(connection).get("schema_version", "?")
        if found != str(SCHEMA_VERSION):
            raise DatabaseFileError(
                path,
                f"has emulator schema version {found}; this helicone-users reads version "
                f"{SCHEMA_VERSION}",
                "delete it and load the data again (keep a copy with export_jsonl() from the "
                "version that wrote it), or pass another path",
            )
        return False
    if tables >= _OUR_TABLES:
        raise DatabaseFileError(
            path,
            "was written by an earlier helicone-users (schema version 1, without a version "
            "table); this one reads version " + str(SCHEMA_VERSION),
            "delete it and load the data again (keep a copy with export_jsonl() from the "
            "version that wrote it), or pass another path",
        )
    listed = ", ".join(sorted(tables)[:5])
    raise DatabaseFileError(
        path,
        f"is a DuckDB database the emulator did not create (tables: {listed})",
        f"the emulator only opens files it created; {_FIX_NEW_PATH}",
    )


def _create(connection: Any, create: Callable[[Any], None]) -> None:
    """The caller's tables and the version table, in one transaction."""
    connection.execute("BEGIN TRANSACTION")
    try:
        connection.execute(
            f"CREATE TABLE {META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)"
        )
        create(connection)
        write_meta(connection, "schema_version", str(SCHEMA_VERSION))
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def read_meta(connection: Any) -> dict[str, str]:
    """The key/value rows of the version table."""
    rows = connection.execute(f"SELECT key, value FROM {META_TABLE}").fetchall()
    return {str(key): str(value) for key, value in rows}


def write_meta(connection: Any, key: str, value: str) -> None:
    """Set one key of the version table (in the caller's transaction)."""
    connection.execute(
        f"INSERT OR REPLACE INTO {META_TABLE} (key, value) VALUES (?, ?)", [key, value]
    )
