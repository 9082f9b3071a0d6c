"""Results as tables: one fixed column layout per result, built into Arrow and DataFrames.

The layouts are plain data (names and kinds), shared by the Arrow builders here and by the
CLI's CSV and JSON Lines writers. pyarrow, polars and pandas are imported on first use, never
with the package; a missing one raises MissingDependencyError naming the extra to install.

Arrow types by kind: ``string`` → string, ``int`` → int64, ``float`` → float64,
``timestamp`` → ``timestamp[ms, tz=UTC]`` (sub-millisecond digits are dropped).
"""

from __future__ import annotations

import functools
import importlib
import operator
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from helicone_users._errors import MissingDependencyError, ResponseValidationError

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    from helicone_users._models import MetricsOverview, UserMetricsPage
    from helicone_users._weave_models import CallStats

__all__ = [
    "HISTOGRAM_COLUMNS",
    "STATS_COLUMNS",
    "USER_COLUMNS",
    "Column",
    "collect",
    "overview_table",
    "page_batches",
    "record_batch",
    "require_frames",
    "require_pyarrow",
    "to_pandas",
    "to_polars",
    "usage_or_call_table",
]

Kind = Literal["string", "int", "float", "timestamp"]
BucketKind = Literal["usage", "call"]


@attrs.frozen
class Column:
    """One column of a result table: its name (the model's attribute) and kind."""

    name: str
    kind: Kind
    nullable: bool = False


USER_COLUMNS: Final = (
    Column("user_id", "string"),
    Column("active_for", "int"),
    Column("first_active", "timestamp"),
    Column("last_active", "timestamp"),
    Column("total_requests", "int"),
    Column("average_requests_per_day_active", "float"),
    Column("average_tokens_per_request", "float"),
    Column("total_completion_tokens", "int"),
    Column("total_prompt_tokens", "int"),
    Column("cost", "float"),
    Column("rate_limited_count", "int", nullable=True),
)
STATS_COLUMNS: Final = (
    Column("user_id", "string"),
    Column("count", "int"),
    Column("prompt_tokens", "int"),
    Column("completion_tokens", "int"),
    Column("cost", "float"),
)
HISTOGRAM_COLUMNS: Final = (
    Column("histogram", "string"),
    Column("range_start", "float"),
    Column("range_end", "float"),
    Column("value", "float"),
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Weave values: counts are whole numbers; every other aggregation (sums of tokens included, exact
# as float64 up to 2**53) may be fractional, so one rule keeps a column's type independent of data.
_COUNT_AGGREGATIONS: Final = ("count_", "count_true_", "count_false_")


# --- Optional libraries ---------------------------------------------------------------------------


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module``, or raise MissingDependencyError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs {module.split('.')[0]}, which is not installed: "
            f"pip install 'helicone-users[{extra}]'",
            extra=extra,
        ) from exc


def require_pyarrow(feature: str = "to_arrow()", extra: str = "arrow") -> Any:
    """The ``pyarrow`` module (MissingDependencyError naming ``extra`` when absent)."""
    return require("pyarrow", extra=extra, feature=feature)


# --- Building Arrow -------------------------------------------------------------------------------


def arrow_type(pa: Any, kind: Kind) -> Any:
    """The Arrow type of a column kind."""
    if kind == "string":
        return pa.string()
    if kind == "int":
        return pa.int64()
    if kind == "float":
        return pa.float64()
    return pa.timestamp("ms", tz="UTC")


@functools.lru_cache(maxsize=64)
def schema(columns: tuple[Column, ...]) -> pa.Schema:
    """The Arrow schema of a layout (built once per layout)."""
    pa = require_pyarrow()
    return pa.schema(
        [pa.field(c.name, arrow_type(pa, c.kind), nullable=c.nullable) for c in columns]
    )


@functools.lru_cache(maxsize=64)
def _getters(columns: tuple[Column, ...]) -> tuple[operator.attrgetter[Any], ...]:
    return tuple(operator.attrgetter(column.name) for column in columns)


def column_values(items: Sequence[Any], columns: tuple[Column, ...]) -> dict[str, list[Any]]:
    """Each column's values, read with one C-level getter per column (not per value)."""
    return {
        column.name: list(map(get, items))
        for column, get in zip(columns, _getters(columns), strict=True)
    }


def optional_msgspec() -> ModuleType | None:
    """msgspec (the ``fast`` extra), or None when it is not installed."""
    try:
        import msgspec
    except ImportError:
        return None
    return msgspec


def timestamp_array(pa: Any, values: list[Any]) -> pa.Array:
    """``timestamp[ms, tz=UTC]`` of aware datetimes. pyarrow asks each value's tzinfo for its
    offset; RFC 3339 text written by msgspec (the ``fast`` extra) and parsed by Arrow in C++
    takes a quarter less time, with the same result: sub-millisecond digits are cut, which for
    times before 1970 only pyarrow's own path does as a floor, so those take it."""
    target = arrow_type(pa, "timestamp")
    msgspec = optional_msgspec()
    try:
        usable = msgspec is not None and bool(values) and min(values) >= _EPOCH
    except TypeError:  # None, naive datetimes, other objects: pyarrow decides
        usable = False
    if not usable:
        return pa.array(values, type=target)
    texts = msgspec.json.encode(values)[2:-2].decode().split('","')  # type: ignore[union-attr]
    micros = pa.array(texts, type=pa.string()).cast(pa.timestamp("us", tz="UTC"))
    return micros.cast(target, safe=False)


def _array(pa: Any, kind: Kind, values: Iterable[Any], size: int) -> pa.Array:
    if kind == "timestamp":
        return timestamp_array(pa, list(values))
    # An iterator, not a list: pyarrow reads the values straight into the array.
    return pa.array(values, type=arrow_type(pa, kind), size=size)


def record_batch(
    data: Mapping[str, Sequence[Any]], columns: tuple[Column, ...]
) -> pa.RecordBatch:
    """A record batch of ``columns`` from per-column values."""
    pa = require_pyarrow()
    arrays = [_array(pa, c.kind, data[c.name], len(data[c.name])) for c in columns]
    return pa.RecordBatch.from_arrays(arrays, schema=schema(columns))


def batch_of(items: Sequence[Any], columns: tuple[Column, ...]) -> pa.RecordBatch:
    """A record batch of result models (one row per model), read column by column."""
    pa = require_pyarrow()
    size = len(items)
    arrays = [
        _array(pa, column.kind, map(get, items), size)
        for column, get in zip(columns, _getters(columns), strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema(columns))


def table_of(items: Sequence[Any], columns: tuple[Column, ...]) -> pa.Table:
    """A table of result models (one row per model)."""
    return require_pyarrow().Table.from_batches([batch_of(items, columns)])


async def page_batches(
    pages: AsyncIterator[UserMetricsPage],
) -> AsyncGenerator[pa.RecordBatch, None]:
    """One record batch of users per page, as the pages arrive."""
    async for page in pages:
        yield batch_of(page.users, USER_COLUMNS)


async def collect(batches: AsyncIterator[pa.RecordBatch], columns: tuple[Column, ...]) -> pa.Table:
    """Every batch as one table (an empty table of the layout when there are none)."""
    parts = [batch async for batch in batches]
    return require_pyarrow().Table.from_batches(parts, schema=schema(columns))


# --- Other results --------------------------------------------------------------------------------


def overview_table(overview: MetricsOverview) -> pa.Table:
    """Both histograms in one table; ``histogram`` says which: request_count or user_cost."""
    rows = [("request_count", row) for row in overview.request_count]
    rows += [("user_cost", row) for row in overview.user_cost]
    data: dict[str, list[Any]] = {
        "histogram": [name for name, _ in rows],
        "range_start": [row.range_start for _, row in rows],
        "range_end": [row.range_end for _, row in rows],
        "value": [row.value for _, row in rows],
    }
    return require_pyarrow().Table.from_batches([record_batch(data, HISTOGRAM_COLUMNS)])


def bucket_columns(kind: BucketKind, keys: Iterable[str]) -> tuple[Column, ...]:
    """The layout of a Weave bucket table: timestamp, model (usage only), count, then one
    column per value key, int64 for count aggregations and float64 for the others."""
    fixed = [Column("timestamp", "timestamp")]
    if kind == "usage":
        fixed.append(Column("model", "string"))
    fixed.append(Column("count", "int"))
    values = [
        Column(key, "int" if key.startswith(_COUNT_AGGREGATIONS) else "float", nullable=True)
        for key in keys
    ]
    return (*fixed, *values)


def usage_or_call_table(stats: CallStats, kind: BucketKind) -> pa.Table:
    """Weave buckets as a table: one row per bucket and model (``usage``) or per bucket
    (``call``); value columns are the keys the buckets hold, in the server's order."""
    if kind not in ("usage", "call"):
        raise ValueError(f"kind must be 'usage' or 'call', not {kind!r}")
    buckets: Sequence[Any] = stats.usage_buckets if kind == "usage" else stats.call_buckets
    keys = list(dict.fromkeys(key for bucket in buckets for key in bucket.values))
    columns = bucket_columns(kind, keys)
    data = column_values(buckets, columns[: len(columns) - len(keys)])
    for column in columns[len(columns) - len(keys) :]:
        values = [bucket.values.get(column.name) for bucket in buckets]
        data[column.name] = _whole(values, column.name) if column.kind == "int" else values
    return require_pyarrow().Table.from_batches([record_batch(data, columns)])


def _whole(values: list[Any], key: str) -> list[Any]:
    # Arrow would truncate 2.5 to 2 without a word: a fractional count is refused instead.
    out = []
    for value in values:
        if isinstance(value, float):
            if not value.is_integer():
                raise ResponseValidationError(
                    f"{key} holds {value!r}, which is not a whole count", field_path=key
                )
            value = int(value)
        out.append(value)
    return out


# --- DataFrames -----------------------------------------------------------------------------------


def require_frames(library: Literal["polars", "pandas"]) -> ModuleType:
    """The DataFrame library and pyarrow, both checked before anything is fetched; the extra
    named when one is missing is the library's own (it brings pyarrow along)."""
    feature = f"to_{library}()"
    require_pyarrow(feature, extra=library)
    return require(library, extra=library, feature=feature)


def to_polars(table: pa.Table) -> pl.DataFrame:
    """A polars DataFrame of ``table`` (Datetime in ms, UTC; Int64; Float64; String)."""
    frame: pl.DataFrame = require_frames("polars").from_arrow(table)
    return frame


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """A pandas DataFrame of ``table`` (datetime64[ms, UTC] timestamps)."""
    require_frames("pandas")
    return table.to_pandas()
