"""How results look on screen: the columns of each table and the records behind them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from helicone_users._cli._output import Column, format_usd, to_record

USER_COLUMNS: tuple[Column, ...] = (
    Column(key="user_id", header="user"),
    Column(key="total_requests", header="requests", numeric=True),
    Column(key="cost", header="cost", fmt=format_usd, numeric=True),
    Column(key="active_for", header="active days", numeric=True),
    Column(key="average_tokens_per_request", header="tokens/req", numeric=True),
    Column(key="first_active", header="first active"),
    Column(key="last_active", header="last active"),
)

STATS_COLUMNS: tuple[Column, ...] = (
    Column(key="user_id", header="user"),
    Column(key="count", header="requests", numeric=True),
    Column(key="prompt_tokens", header="prompt tokens", numeric=True),
    Column(key="completion_tokens", header="completion tokens", numeric=True),
    Column(key="cost", header="cost", fmt=format_usd, numeric=True),
)


def records(items: Sequence[Any]) -> list[dict[str, Any]]:
    """Plain dicts for a sequence of result models."""
    out: list[dict[str, Any]] = []
    for item in items:
        record = to_record(item)
        out.append(record if isinstance(record, dict) else {"value": record})
    return out


def histogram_items(rows: Sequence[Any]) -> list[tuple[str, float]]:
    """``(range label, height)`` pairs for a bar chart of histogram rows."""
    items = []
    for row in rows:
        start, end = _bound(row, "range_start"), _bound(row, "range_end")
        items.append((f"{start} – {end}", float(getattr(row, "value", 0.0))))
    return items


def _bound(row: Any, name: str) -> str:
    value = getattr(row, name)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
