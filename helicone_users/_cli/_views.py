"""How results look on screen: the columns of each table and the records behind them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from helicone_users._cli._output import Column, format_fixed, format_time, format_usd, to_record

USER_COLUMNS: tuple[Column, ...] = (
    Column(key="user_id", header="user"),
    Column(key="total_requests", header="requests", numeric=True),
    Column(key="cost", header="cost", fmt=format_usd, numeric=True),
    Column(key="active_for", header="active days", numeric=True),
    Column(
        key="average_tokens_per_request", header="tokens/req", fmt=format_fixed(1), numeric=True
    ),
    Column(key="first_active", header="first active (UTC)", fmt=format_time),
    Column(key="last_active", header="last active (UTC)", fmt=format_time),
)

STATS_COLUMNS: tuple[Column, ...] = (
    Column(key="user_id", header="user"),
    Column(key="count", header="requests", numeric=True),
    Column(key="prompt_tokens", header="prompt tokens", numeric=True),
    Column(key="completion_tokens", header="completion tokens", numeric=True),
    Column(key="cost", header="cost", fmt=format_usd, numeric=True),
)


def records(items: Sequence[Any], *, text_times: bool = True) -> list[dict[str, Any]]:
    """Plain dicts for a sequence of result models (datetimes as ISO text unless told not to)."""
    out: list[dict[str, Any]] = []
    for item in items:
        record = to_record(item, text_times=text_times)
        if not isinstance(record, dict):
            record = {"value": record}
        elif record.get("id") == record.get("user_id"):
            # The server repeats user_id as id; one copy is enough on screen and in files.
            del record["id"]
        out.append(record)
    return out


def histogram_items(rows: Sequence[Any]) -> list[tuple[str, float]]:
    """``(range label, height)`` pairs for a bar chart of histogram rows; a range no bin covers
    (the server leaves empty bins out) gets a row of its own with height 0."""
    return [(f"{_bound(start)} – {_bound(end)}", value) for start, end, value in _with_gaps(rows)]


def usd_items(rows: Sequence[Any]) -> list[tuple[str, float]]:
    """Like ``histogram_items``, for ranges of US dollars."""
    return [
        (f"{format_usd(start)} – {format_usd(end)}", value)
        for start, end, value in _with_gaps(rows)
    ]


def _with_gaps(rows: Sequence[Any]) -> list[tuple[Any, Any, float]]:
    out: list[tuple[Any, Any, float]] = []
    for row in rows:
        start, end = row.range_start, row.range_end
        if out and _is_number(start) and _is_number(out[-1][1]) and start > out[-1][1]:
            out.append((out[-1][1], start, 0.0))
        out.append((start, end, float(getattr(row, "value", 0.0))))
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bound(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
