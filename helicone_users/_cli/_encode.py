"""CSV and JSON Lines text of result models, a page at a time, from a fixed column layout.

Each encoder is built once per layout and works column by column with C-level loops (getters,
``str``, msgspec's number and RFC 3339 formatting when the ``fast`` extra is installed), so no
code runs per value in Python. Timestamps are ISO 8601 text in UTC with ``Z``; missing values are
empty CSV cells and JSON nulls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final

from helicone_users._tables import Column, column_values
from helicone_users._tables import optional_msgspec as _msgspec

__all__ = ["CsvEncoder", "JsonlEncoder", "iso_text"]

CSV_NEWLINE: Final = "\r\n"  # what the csv module writes, and RFC 4180
# What makes a CSV cell need quotes (the csv module's QUOTE_MINIMAL rule).
_NEEDS_QUOTES: Final = re.compile(r'[,"\r\n]')
_COMPACT: Final[dict[str, Any]] = {"ensure_ascii": False, "separators": (",", ":")}
_TYPES: Final[dict[str, type]] = {"string": str, "int": int, "float": float, "timestamp": datetime}


def iso_text(moment: datetime) -> str:
    """``2024-05-01T12:34:56Z``: ISO 8601, UTC written as ``Z`` (msgspec's form too)."""
    return moment.isoformat().replace("+00:00", "Z")


class _Texts:
    """Formats a column of values as text cells, in C where msgspec allows."""

    def __init__(self) -> None:
        msgspec = _msgspec()
        self._encode: Callable[[Any], bytes] | None = (
            None if msgspec is None else msgspec.json.Encoder().encode
        )

    def numbers(self, values: list[Any], fallback: Callable[[Any], str]) -> list[str]:
        """Numbers as JSON writes them (shortest round-trip form); None as an empty cell."""
        if self._encode is not None:
            encoded = self._encode(values)
            if b"n" not in encoded:  # no null: no None, NaN or infinity to spell by hand
                return encoded[1:-1].decode().split(",") if values else []
        return ["" if value is None else fallback(value) for value in values]

    def times(self, values: list[Any]) -> list[str]:
        """Timestamps as ISO 8601 text; None as an empty cell."""
        if self._encode is not None and None not in values:
            encoded = self._encode(values)
            return encoded[2:-2].decode().split('","') if values else []
        return ["" if value is None else iso_text(value) for value in values]


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


class CsvEncoder:
    """CSV rows (with ``\\r\\n`` line ends) of result models; ``header()`` names the columns."""

    def __init__(self, columns: tuple[Column, ...]) -> None:
        self._columns = columns
        self._texts = _Texts()

    def header(self) -> bytes:
        """The header line."""
        return self._line([c.name for c in self._columns]).encode()

    def encode(self, items: Sequence[Any]) -> bytes:
        """The rows of ``items``, one line each."""
        if not items:
            return b""
        data = column_values(items, self._columns)
        cells = [self._cells(column, data[column.name]) for column in self._columns]
        lines = map(",".join, zip(*cells, strict=True))
        return (CSV_NEWLINE.join(lines) + CSV_NEWLINE).encode()

    def _cells(self, column: Column, values: list[Any]) -> list[str]:
        if column.kind == "string":
            if None in values:
                values = ["" if value is None else value for value in values]
            if _NEEDS_QUOTES.search("".join(values)) is None:
                return values
            return [_quote(v) if _NEEDS_QUOTES.search(v) else v for v in values]
        if column.kind == "timestamp":
            return self._texts.times(values)
        return self._texts.numbers(values, str)

    def _line(self, cells: Sequence[str]) -> str:
        return ",".join(_quote(c) if _NEEDS_QUOTES.search(c) else c for c in cells) + CSV_NEWLINE


class JsonlEncoder:
    """JSON Lines of result models: one object per line with the layout's keys, in order."""

    def __init__(self, columns: tuple[Column, ...]) -> None:
        self._columns = columns
        self._names = [column.name for column in columns]
        msgspec = _msgspec()
        self._fast: tuple[Any, Any, Any] | None = None
        if msgspec is not None:
            fields = [(c.name, _TYPES[c.kind] | None if c.nullable else _TYPES[c.kind])
                      for c in columns]  # fmt: skip
            row = msgspec.defstruct("Row", fields, gc=False)  # atomic fields: no cycles
            self._fast = (msgspec, list[row], msgspec.json.Encoder())  # type: ignore[valid-type]

    def header(self) -> bytes:
        """JSON Lines have no header."""
        return b""

    def encode(self, items: Sequence[Any]) -> bytes:
        """The lines of ``items``."""
        if not items:
            return b""
        if self._fast is not None:
            msgspec, rows, encoder = self._fast
            try:
                converted = msgspec.convert(items, rows, from_attributes=True, strict=False)
            except msgspec.ValidationError:
                pass  # a value of an unexpected type: the general path writes what it can
            else:
                return bytes(encoder.encode_lines(converted))
        return self._slow(items)

    def _slow(self, items: Sequence[Any]) -> bytes:
        data = column_values(items, self._columns)
        for column in self._columns:
            if column.kind == "timestamp":
                data[column.name] = [None if v is None else iso_text(v) for v in data[column.name]]
        rows = zip(*(data[name] for name in self._names), strict=True)
        lines = (json.dumps(dict(zip(self._names, row, strict=True)), **_COMPACT)
                 for row in rows)  # fmt: skip
        return ("\n".join(lines) + "\n").encode()
