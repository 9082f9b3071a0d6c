"""Export files written page by page: CSV and JSON Lines as text, Parquet in row groups.

A sink writes to the path it is given (the caller makes that a temporary file and renames it
once complete); memory stays at one page for text and one row group for Parquet.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from helicone_users._cli._encode import CsvEncoder, JsonlEncoder
from helicone_users._tables import USER_COLUMNS, batch_of, require, require_pyarrow, schema

__all__ = ["ParquetSink", "Sink", "TextSink", "open_sink"]


class Sink:
    """Where exported users go; ``close()`` completes the file (also on ``with`` exit)."""

    users = 0

    def write(self, users: Sequence[Any]) -> None:
        """Add ``users`` to the file."""
        raise NotImplementedError

    def close(self) -> None:
        """Write what is buffered and close the file."""

    def abort(self) -> None:
        """Close the file without completing it (the caller discards it)."""
        self.close()

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class TextSink(Sink):
    """CSV or JSON Lines, appended to ``path``; the CSV header goes first in an empty file."""

    def __init__(self, path: Path, fmt: str) -> None:
        self._encoder = CsvEncoder(USER_COLUMNS) if fmt == "csv" else JsonlEncoder(USER_COLUMNS)
        self._file: IO[bytes] = open(path, "ab")  # noqa: SIM115  # closed by close()
        if self._file.tell() == 0:
            self._file.write(self._encoder.header())

    def write(self, users: Sequence[Any]) -> None:
        self._file.write(self._encoder.encode(users))
        self.users += len(users)

    def flush(self) -> int:
        """Push what was written to the operating system; the file's size in bytes."""
        self._file.flush()
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


class ParquetSink(Sink):
    """Parquet through ``pyarrow.parquet.ParquetWriter``: pages are kept as Arrow batches until
    ``row_group_size`` rows are buffered, then written as one row group."""

    def __init__(self, path: Path, row_group_size: int) -> None:
        self._pa = require_pyarrow("Parquet output")
        parquet = require("pyarrow.parquet", extra="arrow", feature="Parquet output")
        self._writer = parquet.ParquetWriter(str(path), schema(USER_COLUMNS))
        self._size = row_group_size
        self._pending: list[Any] = []
        self._buffered = 0

    def write(self, users: Sequence[Any]) -> None:
        if not users:
            return
        self._pending.append(batch_of(users, USER_COLUMNS))
        self._buffered += len(users)
        self.users += len(users)
        if self._buffered >= self._size:
            self._write_groups(final=False)

    def _write_groups(self, *, final: bool) -> None:
        table = self._pa.Table.from_batches(self._pending, schema=schema(USER_COLUMNS))
        while table.num_rows >= self._size or (final and table.num_rows):
            self._writer.write_table(table.slice(0, self._size), row_group_size=self._size)
            table = table.slice(self._size)
        self._pending = table.to_batches()
        self._buffered = table.num_rows

    def close(self) -> None:
        try:
            if self._buffered:
                self._write_groups(final=True)
        finally:
            self._writer.close()

    def abort(self) -> None:
        self._pending.clear()
        self._writer.close()


def open_sink(fmt: str, path: Path, *, row_group_size: int) -> Sink:
    """The sink for ``fmt`` (``csv``, ``jsonl`` or ``parquet``) writing to ``path``."""
    if fmt == "parquet":
        return ParquetSink(path, row_group_size)
    return TextSink(path, fmt)
