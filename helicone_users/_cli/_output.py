"""Printing: tables that fit the terminal, record writers, bar charts and sparklines."""

from __future__ import annotations

import csv
import datetime as dt
import enum
import json
import math
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any

import attrs

from helicone_users._iso import parse_iso8601

FORMATS = ("table", "json", "jsonl", "csv")

_BLOCKS = " ▏▎▍▌▋▊▉█"
_SPARKS = "▁▂▃▄▅▆▇█"


@attrs.frozen(kw_only=True)
class Column:
    """One table column: the record key, its heading, how to show a value, where to align it."""

    key: str
    header: str
    fmt: Callable[[Any], str] = attrs.field(factory=lambda: format_value)
    numeric: bool = False


def format_value(value: Any) -> str:
    """Show one value in a table cell: compact numbers, ISO times, empty for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def format_number(value: float) -> str:
    """A float with at most 4 decimals and no trailing zeros; thousands separated."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value != 0 and abs(value) < 0.0001:
        return f"{value:.2e}"
    text = f"{value:,.4f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def format_time(value: Any) -> str:
    """A timestamp (datetime or ISO text) to the second, in UTC: ``2026-01-31 12:00:05``."""
    moment = value
    if isinstance(value, str):
        try:
            moment = parse_iso8601(value)
        except ValueError:
            return value
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.timezone.utc)
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return format_value(value)


def format_fixed(digits: int) -> Callable[[Any], str]:
    """A formatter with ``digits`` decimals and thousands separators."""

    def fmt(value: Any) -> str:
        return "" if value is None else f"{float(value):,.{digits}f}"

    return fmt


def column_decimals(values: Iterable[Any], most: int = 6) -> int:
    """Decimals that show every number of a column alike: none when all are whole, else enough
    for two significant digits of the smallest non-zero one (at least 1, at most ``most``)."""
    numbers = [
        abs(float(v))
        for v in values
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ]
    if all(n.is_integer() for n in numbers):
        return 0
    smallest = min(n for n in numbers if n)
    return min(max(1, 1 - math.floor(math.log10(smallest))), most)


def without_float_noise(obj: Any) -> Any:
    """``obj`` with each float rounded to 15 significant digits, the precision a float holds,
    so that printed JSON shows ``140.1`` rather than ``140.10000000000002``."""
    if isinstance(obj, float) and math.isfinite(obj):
        return float(f"{obj:.15g}")
    if isinstance(obj, Mapping):
        return {k: without_float_noise(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [without_float_noise(v) for v in obj]
    return obj


def format_usd(value: Any) -> str:
    """A dollar amount: cents for large amounts, more digits for small ones."""
    if value is None:
        return ""
    amount = float(value)
    if amount != 0 and abs(amount) < 0.01:
        return f"${amount:.6f}".rstrip("0")
    return f"${amount:,.2f}"


def is_tty(stream: IO[str]) -> bool:
    """True when ``stream`` is an interactive terminal."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def terminal_width(stream: IO[str], default: int = 100) -> int:
    """The terminal's width for ``stream`` (``COLUMNS`` wins), or ``default`` for pipes."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    if not is_tty(stream):
        return default
    return shutil.get_terminal_size((default, 24)).columns


def rich_available() -> bool:
    """True when the ``cli`` extra (rich) is installed."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


# --- Records -------------------------------------------------------------------------------------


def to_record(obj: Any, *, text_times: bool = True) -> Any:
    """Turn a result (attrs model, mapping, list, datetime, filter) into plain JSON-able data;
    ``text_times=False`` keeps datetimes as they are (for Parquet)."""
    if attrs.has(type(obj)):
        fields = attrs.fields(type(obj))
        return {f.name: to_record(getattr(obj, f.name), text_times=text_times) for f in fields}
    if isinstance(obj, Mapping):
        return {str(k): to_record(v, text_times=text_times) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_record(v, text_times=text_times) for v in obj]
    if isinstance(obj, dt.datetime) and not text_times:
        return obj
    if isinstance(obj, dt.datetime):
        return obj.isoformat().replace("+00:00", "Z")
    if isinstance(obj, dt.date):
        return obj.isoformat()
    if isinstance(obj, enum.Enum):
        return obj.value
    to_json = getattr(obj, "to_json", None)
    if callable(to_json):
        return to_json()
    return obj


def json_default(obj: Any) -> Any:
    """``json.dumps`` fallback for values ``to_record`` leaves alone."""
    record = to_record(obj)
    if record is obj:
        raise TypeError(f"cannot write {type(obj).__name__} as JSON")
    return record


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """JSON text for a result, floats without binary noise."""
    record = without_float_noise(to_record(obj))
    return json.dumps(record, indent=indent, default=json_default, ensure_ascii=False)


def csv_cell(value: Any) -> Any:
    """A CSV cell: nested values as compact JSON, None as empty."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


class RecordWriter:
    """Writes records one at a time as JSON Lines or CSV (header from the first record)."""

    def __init__(self, stream: IO[str], fmt: str, fieldnames: Sequence[str] | None = None) -> None:
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"RecordWriter writes jsonl or csv, not {fmt!r}")
        self._stream = stream
        self._fmt = fmt
        self._fieldnames = list(fieldnames) if fieldnames else None
        self._csv: csv.DictWriter[str] | None = None
        self.count = 0

    def write(self, record: Mapping[str, Any]) -> None:
        """Write one record."""
        if self._fmt == "jsonl":
            self._stream.write(json.dumps(record, default=json_default, ensure_ascii=False) + "\n")
        else:
            if self._csv is None:
                names = self._fieldnames or list(record)
                self._csv = csv.DictWriter(self._stream, fieldnames=names, extrasaction="ignore")
                self._csv.writeheader()
            self._csv.writerow({k: csv_cell(v) for k, v in record.items()})
        self.count += 1

    def write_all(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Write every record."""
        for record in records:
            self.write(record)


def write_records(
    records: Sequence[Mapping[str, Any]],
    fmt: str,
    stream: IO[str],
    columns: Sequence[Column] = (),
) -> None:
    """Print records as a table (nothing at all when there are none), a JSON array, JSON Lines
    or CSV; floats without binary noise."""
    if fmt == "table":
        if records:
            print_table(records, columns or auto_columns(records), stream)
    elif fmt == "json":
        stream.write(dumps(list(records), indent=2) + "\n")
    else:
        RecordWriter(stream, fmt).write_all(without_float_noise(list(records)))


# --- Tables --------------------------------------------------------------------------------------


def auto_columns(records: Sequence[Mapping[str, Any]]) -> list[Column]:
    """One column per key of the first record, numbers right-aligned."""
    if not records:
        return []
    first = records[0]
    return [
        Column(key=k, header=k, numeric=isinstance(v, (int, float)) and not isinstance(v, bool))
        for k, v in first.items()
    ]


def print_table(
    records: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    stream: IO[str],
    *,
    title: str | None = None,
) -> None:
    """A table: drawn by rich on a terminal, plain aligned text otherwise."""
    cells = [[c.fmt(r.get(c.key)) for c in columns] for r in records]
    if is_tty(stream) and rich_available():
        _print_rich_table(cells, columns, stream, title)
        return
    if title:
        stream.write(title + "\n")
    for line in plain_table(cells, columns):
        stream.write(line + "\n")


def plain_table(cells: Sequence[Sequence[str]], columns: Sequence[Column]) -> list[str]:
    """Aligned text rows with a header and a rule; numbers right-aligned."""
    headers = [c.header for c in columns]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=False)]

    def line(values: Sequence[str]) -> str:
        triples = zip(values, widths, columns, strict=True)
        parts = [v.rjust(w) if c.numeric else v.ljust(w) for v, w, c in triples]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return [line(headers), rule, *(line(row) for row in cells)]


def _print_rich_table(
    cells: Sequence[Sequence[str]], columns: Sequence[Column], stream: IO[str], title: str | None
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream, width=terminal_width(stream))
    table = Table(title=title, header_style="bold", expand=False)
    for column in columns:
        # Ids and labels may be long: let them fold; numbers must stay whole.
        table.add_column(
            column.header,
            justify="right" if column.numeric else "left",
            overflow="fold",
            no_wrap=column.numeric,
        )
    for row in cells:
        table.add_row(*row)
    console.print(table)


# --- Charts --------------------------------------------------------------------------------------


def bar(value: float, maximum: float, width: int) -> str:
    """A horizontal bar of ``value / maximum`` of ``width`` cells, in eighths of a cell."""
    if maximum <= 0 or value <= 0 or width <= 0:
        return ""
    eighths = round(min(value / maximum, 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (_BLOCKS[part] if part else "")


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    width: int = 80,
    value_fmt: Callable[[float], str] = format_number,
) -> list[str]:
    """Lines of a horizontal bar chart: label, bar, value; fits in ``width`` columns."""
    if not items:
        return ["(no data)"]
    labels = [label for label, _ in items]
    values = [value_fmt(v) for _, v in items]
    label_w = max(len(label) for label in labels)
    value_w = max(len(v) for v in values)
    bar_w = max(width - label_w - value_w - 4, 4)
    maximum = max(v for _, v in items)
    return [
        f"{label.rjust(label_w)} │{bar(v, maximum, bar_w).ljust(bar_w)} {text.rjust(value_w)}"
        for (label, v), text in zip(items, values, strict=True)
    ]


def sparkline(values: Sequence[float | None]) -> str:
    """One character per value, from ▁ (lowest) to █ (highest); gaps for missing values."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    if not present:
        return ""
    low, high = min(present), max(present)
    span = high - low
    out = []
    for v in values:
        if v is None or math.isnan(v):
            out.append(" ")
        elif span == 0:
            out.append(_SPARKS[len(_SPARKS) // 2] if high else _SPARKS[0])
        else:
            out.append(_SPARKS[min(int((v - low) / span * len(_SPARKS)), len(_SPARKS) - 1)])
    return "".join(out)
