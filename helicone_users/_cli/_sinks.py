"""Export files written page by page: CSV and JSON Lines as text, Parquet in row groups.

A sink writes to the path it is given (the caller makes that a temporary file and renames it
once complete); memory stays at one page for text and one row group for Parquet. A resumable
Parquet export appends Arrow IPC stream messages instead, since a Parquet file cannot be
appended to, and converts that stream to Parquet at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

from helicone_users._cli._encode import CsvEncoder, JsonlEncoder
from helicone_users._tables import USER_COLUMNS, batch_of, require, require_pyarrow, schema

__all__ = ["AppendSink", "ArrowStreamEncoder", "ParquetSink", "Sink", "open_sink"]


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


class Encoder(Protocol):
    """Bytes for a file's start and for each page of users."""

    def header(self) -> bytes: ...

    def encode(self, items: Sequence[Any]) -> bytes: ...


class ArrowStreamEncoder:
    """Arrow IPC stream messages: the schema first, then one record batch per page."""

    def header(self) -> bytes:
        """The schema message."""
        return bytes(schema(USER_COLUMNS).serialize())

    def encode(self, items: Sequence[Any]) -> bytes:
        """One record batch message (nothing for no users)."""
        return bytes(batch_of(items, USER_COLUMNS).serialize()) if items else b""


def encoder_for(fmt: str) -> Encoder:
    """How pages of ``fmt`` are appended: CSV, JSON Lines, or an Arrow stream for Parquet."""
    if fmt == "csv":
        return CsvEncoder(USER_COLUMNS)
    if fmt == "jsonl":
        return JsonlEncoder(USER_COLUMNS)
    return ArrowStreamEncoder()


class AppendSink(Sink):
    """Encoded pages appended to ``path``; the header goes first into an empty file."""

    def __init__(self, path: Path, encoder: Encoder) -> None:
        self._encoder = encoder
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
        if users:
            self.write_batch(batch_of(users, USER_COLUMNS))

    def write_batch(self, batch: Any) -> None:
        """Add a record batch of the users schema."""
        self._pending.append(batch)
        self._buffered += batch.num_rows
        self.users += batch.num_rows
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


def stream_to_parquet(stream: Path, out: Path, row_group_size: int) -> None:
    """Rewrite an Arrow IPC stream file as Parquet, a record batch at a time."""
    pa = require_pyarrow("Parquet output")
    sink = ParquetSink(out, row_group_size)
    with open(stream, "rb") as f, sink:
        for batch in pa.ipc.open_stream(f):
            sink.write_batch(batch)


def open_sink(fmt: str, path: Path, *, row_group_size: int) -> Sink:
    """The sink for ``fmt`` (``csv``, ``jsonl`` or ``parquet``) writing to ``path``."""
    if fmt == "parquet":
        return ParquetSink(path, row_group_size)
    return AppendSink(path, encoder_for(fmt))
