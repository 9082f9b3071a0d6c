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
    """``(range label, height)`` pairs for a bar chart of histogram rows."""
    items = []
    for row in rows:
        start, end = _bound(row, "range_start"), _bound(row, "range_end")
        items.append((f"{start} – {end}", float(getattr(row, "value", 0.0))))
    return items


def usd_items(rows: Sequence[Any]) -> list[tuple[str, float]]:
    """Like ``histogram_items``, for ranges of US dollars."""
    return [
        (f"{format_usd(row.range_start)} – {format_usd(row.range_end)}", float(row.value))
        for row in rows
    ]


def _bound(row: Any, name: str) -> str:
    value = getattr(row, name)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
