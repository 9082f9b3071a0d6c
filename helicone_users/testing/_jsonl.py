"""The JSONL request format: validate rows, fill defaults, and read or write files."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

from helicone_users._errors import HeliconeError
from helicone_users._iso import parse_iso8601
from helicone_users.testing._store import COLUMN_NAMES, DEFAULT_ORG_ID, ZERO_UUID

__all__ = ["DataLoadError", "normalize_rows", "read_jsonl", "write_jsonl"]

REQUIRED: Final = ("request_id", "user_id", "request_created_at")
TEXT_DEFAULTS: Final[dict[str, str]] = {
    "model": "",
    "provider": "",
    "target_url": "",
    "request_body": "",
    "response_body": "",
    "scores_column": "",
    "assets": "",
}
NULLABLE_TEXT: Final = (
    "country_code",
    "node_id",
    "job_id",
    "prompt_id",
    "prompt_version",
    "request_referrer",
    "parent_id",
    "thread_id",
    "turn_id",
    "wb_user_id",
    "wb_run_id",
)
INT_DEFAULTS: Final[dict[str, int]] = {
    "latency": 0,
    "status": 200,
    "prompt_tokens": 0,
    "completion_tokens": 0,
    "prompt_cache_read_tokens": 0,
    "prompt_cache_write_tokens": 0,
}
BOOL_DEFAULTS: Final[dict[str, bool]] = {
    "cached": False,
    "threat": False,
    "is_passthrough_billing": False,
}
_KNOWN: Final = frozenset(COLUMN_NAMES)
_BOM: Final = b"\xef\xbb\xbf"
_EPOCH: Final = datetime(1970, 1, 1)
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$"
)


class DataLoadError(HeliconeError, ValueError):
    """A request row that cannot be loaded; ``path``, ``line`` (JSONL) or ``row`` (Parquet, and
    rows in memory: 1 is the first) and ``field`` say where."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
        row: int | None = None,
        path: str | Path | None = None,
    ) -> None:
        where = f"{path}: " if path is not None else ""
        where += f"line {line}: " if line is not None else ""
        where += f"row {row}: " if row is not None else ""
        what = f"field {field!r}: " if field else ""
        super().__init__(f"{where}{what}{message}")
        self.reason = message
        self.line = line
        self.row = row
        self.field = field
        self.path = None if path is None else str(path)


def parse_timestamp(value: Any, field: str) -> datetime:
    """An ISO-8601 string or datetime as a naive UTC datetime (naive input is read as UTC)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and _DATE_TIME.match(value.strip()):
        try:
            parsed = parse_iso8601(value)
        except ValueError as exc:
            raise DataLoadError(f"{value!r} is not an ISO-8601 timestamp", field=field) from exc
    else:
        raise DataLoadError(
            f"{value!r} is not an ISO-8601 timestamp such as '2024-05-01T12:00:00Z'", field=field
        )
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    # Stored like DateTime64(3): millisecond precision.
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise DataLoadError(f"expected a string, got {type(value).__name__}", field=field)
    return value


def _integer(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataLoadError(f"expected an integer, got {value!r}", field=field)
    if isinstance(value, float) and not value.is_integer():
        raise DataLoadError(f"expected a whole number, got {value!r}", field=field)
    if not -(2**63) <= value < 2**63:
        raise DataLoadError(f"{value!r} is out of the 64-bit range", field=field)
    return int(value)


def _boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise DataLoadError(f"expected true or false, got {value!r}", field=field)
    return value


def _cost(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataLoadError(f"expected a number of USD, got {value!r}", field="cost")
    if not math.isfinite(value) or value < 0 or value > 9e9:
        raise DataLoadError(f"expected a USD amount between 0 and 9e9, got {value!r}", field="cost")
    return round(value * 1_000_000_000)


def _string_map(value: Any, field: str, cast: Callable[[Any, str], Any]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise DataLoadError(f"expected an object, got {type(value).__name__}", field=field)
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise DataLoadError(f"keys must be strings, got {key!r}", field=field)
        out[key] = cast(item, f"{field}.{key}")
    return out


def default_op_name(provider: str, model: str) -> str:
    """The Weave op name given to a request that has none: ``provider.model``."""
    return f"{provider or 'llm'}.{model or 'unknown'}"


def normalize_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One request row with every column filled in, as stored (cost in nano-USD)."""
    if not isinstance(row, Mapping):
        raise DataLoadError(f"expected a JSON object, got {type(row).__name__}")
    unknown = sorted(set(row) - _KNOWN)
    if unknown:
        raise DataLoadError(
            "unknown field; see the JSONL request format in the README", field=unknown[0]
        )
    for name in REQUIRED:
        if row.get(name) is None:
            raise DataLoadError("is required", field=name)
    out: dict[str, Any] = {
        "request_id": _text(row["request_id"], "request_id"),
        "user_id": _text(row["user_id"], "user_id"),
        "request_created_at": parse_timestamp(row["request_created_at"], "request_created_at"),
    }
    if not out["request_id"]:
        raise DataLoadError("must not be empty", field="request_id")
    for name, text_default in TEXT_DEFAULTS.items():
        out[name] = _text(row[name], name) if row.get(name) is not None else text_default
    for name in NULLABLE_TEXT:
        out[name] = _text(row[name], name) if row.get(name) is not None else None
    for name, int_default in INT_DEFAULTS.items():
        out[name] = _integer(row[name], name) if row.get(name) is not None else int_default
    for name, bool_default in BOOL_DEFAULTS.items():
        out[name] = _boolean(row[name], name) if row.get(name) is not None else bool_default
    _fill_derived(row, out)
    return out


def _fill_derived(row: Mapping[str, Any], out: dict[str, Any]) -> None:
    """Columns whose default depends on other columns."""
    ttft = row.get("time_to_first_token")
    out["time_to_first_token"] = None if ttft is None else _integer(ttft, "time_to_first_token")
    total = row.get("total_tokens")
    out["total_tokens"] = (
        out["prompt_tokens"] + out["completion_tokens"]
        if total is None
        else _integer(total, "total_tokens")
    )
    response = row.get("response_created_at")
    out["response_created_at"] = (
        out["request_created_at"] + timedelta(milliseconds=out["latency"])
        if response is None
        else parse_timestamp(response, "response_created_at")
    )
    out["properties"] = _string_map(row.get("properties") or {}, "properties", _text)
    out["scores"] = _string_map(row.get("scores") or {}, "scores", _integer)
    cache_enabled = row.get("cache_enabled")
    out["cache_enabled"] = (
        out["cached"] if cache_enabled is None else _boolean(cache_enabled, "cache_enabled")
    )
    reference = row.get("cache_reference_id")
    if reference is not None:
        out["cache_reference_id"] = _text(reference, "cache_reference_id")
    else:
        derived = uuid.uuid5(uuid.NAMESPACE_URL, out["request_id"])
        out["cache_reference_id"] = str(derived) if out["cached"] else ZERO_UUID
    org = row.get("organization_id")
    out["organization_id"] = DEFAULT_ORG_ID if org is None else _text(org, "organization_id")
    out["cost"] = 0 if row.get("cost") is None else _cost(row["cost"])
    op_name = row.get("op_name")
    out["op_name"] = (
        default_op_name(out["provider"], out["model"]) if op_name is None
        else _text(op_name, "op_name")
    )
    trace_id = row.get("trace_id")
    out["trace_id"] = out["request_id"] if trace_id is None else _text(trace_id, "trace_id")


def normalize_rows(
    rows: Iterable[Mapping[str, Any]], *, first_line: int = 1
) -> dict[str, list[Any]]:
    """Validate every row, then return the columns; a bad row raises before anything is kept."""
    columns: dict[str, list[Any]] = {name: [] for name in COLUMN_NAMES}
    for index, row in enumerate(rows):
        try:
            normalized = normalize_row(row)
        except DataLoadError as exc:
            raise DataLoadError(exc.reason, line=first_line + index, field=exc.field) from None
        for name in COLUMN_NAMES:
            columns[name].append(normalized[name])
    return columns


def jsonl_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each non-blank line; lines end at ``\\n`` only (as in DuckDB's
    reader), a leading byte-order mark is skipped, and bytes that are not UTF-8 raise
    ``DataLoadError`` naming their line."""
    with Path(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataLoadError("not valid UTF-8", line=number, path=path) from None
            if text.strip():
                yield number, text


def parse_line(text: str, number: int, path: str | Path | None = None) -> dict[str, Any]:
    """One JSONL line as a checked row (not normalised); ``DataLoadError`` names the line."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataLoadError(f"not valid JSON ({exc.msg})", line=number, path=path) from None
    except RecursionError:
        raise DataLoadError("not valid JSON (nested too deeply)", line=number, path=path) from None
    if not isinstance(value, dict):
        raise DataLoadError("expected a JSON object", line=number, path=path)
    try:
        normalize_row(value)
    except DataLoadError as exc:
        raise DataLoadError(exc.reason, line=number, field=exc.field, path=path) from None
    return value


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file; a bad line raises ``DataLoadError`` naming it."""
    return [parse_line(text, number, path) for number, text in jsonl_lines(path)]


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return aware.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return value


def write_jsonl(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Write rows in the JSONL request format; returns how many were written."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as handle:
        for row in rows:
            public = {
                key: _json_value(value)
                for key, value in row.items()
                if key in _KNOWN and value is not None
            }
            handle.write(json.dumps(public, separators=(",", ":")) + "\n")
            count += 1
    return count
