"""Independent plain-Python answers for the emulator's endpoints, and the spec's schemas."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import yaml

from helicone_users.testing._evaluate import matches

SPEC_PATH = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "spec" / "helicone-users.openapi.yaml"
)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def load_spec() -> dict[str, Any]:
    """The shared OpenAPI spec; fails loudly when the shared folder is missing."""
    if not SPEC_PATH.is_file():
        raise FileNotFoundError(f"the shared spec is missing: {SPEC_PATH}")
    spec: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return spec


def sort_fields() -> tuple[str, ...]:
    """The keys a metrics query may sort by: the spec's ``SortLeafUsers``."""
    return tuple(load_spec()["components"]["schemas"]["SortLeafUsers"]["properties"])


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable`` as JSON Schema ``type: [.., "null"]``."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _openapi_to_jsonschema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


class SpecSchemas:
    """Validators for the spec's component schemas and the operations' response bodies."""

    def __init__(self) -> None:
        self.spec = load_spec()
        self.components = _openapi_to_jsonschema(self.spec["components"])

    def validator(self, schema: Mapping[str, Any]) -> jsonschema.Draft7Validator:
        full = {**_openapi_to_jsonschema(dict(schema)), "components": self.components}
        return jsonschema.Draft7Validator(full)

    def response_schema(self, path: str) -> dict[str, Any]:
        operation = self.spec["paths"][path]["post"]
        schema: dict[str, Any] = operation["responses"]["200"]["content"]["application/json"][
            "schema"
        ]
        return schema

    def request_schema(self, path: str) -> dict[str, Any]:
        schema: dict[str, Any] = self.spec["paths"][path]["post"]["requestBody"]["content"][
            "application/json"
        ]["schema"]
        return schema

    def check_response(self, path: str, body: Any) -> None:
        """Raise ``jsonschema.ValidationError`` when ``body`` breaks the 200 schema of ``path``."""
        self.validator(self.response_schema(path)).validate(body)


def aggregates(
    rows: Iterable[Mapping[str, Any]], tz_minutes: float = 0
) -> dict[str, dict[str, Any]]:
    """Per-user aggregates of request rows, keyed like the evaluator's ``user`` mapping."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["user_id"]].append(row)
    shift = timedelta(minutes=tz_minutes)
    out: dict[str, dict[str, Any]] = {}
    for user, items in groups.items():
        days = {row["request_created_at"].astimezone(timezone.utc).date() for row in items}
        prompt = sum(row["prompt_tokens"] for row in items)
        completion = sum(row["completion_tokens"] for row in items)
        out[user] = {
            "user_id": user,
            "active_for": len(days),
            "first_active": min(row["request_created_at"] for row in items) - shift,
            "last_active": max(row["request_created_at"] for row in items) - shift,
            "total_requests": len(items),
            "average_requests_per_day_active": len(items) / len(days),
            "average_tokens_per_request": (prompt + completion) / len(items),
            "total_prompt_tokens": prompt,
            "total_completion_tokens": completion,
            "cost": sum(round(row["cost"] * 1e9) for row in items) / 1e9,
            "rate_limited_count": sum(
                1
                for row in items
                if row["properties"].get("Helicone-Rate-Limit-Status") == "rate_limited"
            ),
        }
    return out


def expected_users(
    rows: Sequence[Mapping[str, Any]],
    filter_json: Any = "all",
    *,
    start: float | None = None,
    end: float | None = None,
    tz_minutes: float = 0,
) -> dict[str, dict[str, Any]]:
    """The metrics users: the per-row two-pass evaluation, then aggregation (A.5)."""
    base = [
        row
        for row in rows
        if row["user_id"] != ""
        and (start is None or row["request_created_at"] > EPOCH + timedelta(seconds=start))
        and (end is None or row["request_created_at"] < EPOCH + timedelta(seconds=end))
    ]
    first = aggregates([row for row in base if matches(filter_json, row, None)], tz_minutes)
    kept = [
        row
        for row in base
        if row["user_id"] in first and matches(filter_json, row, first[row["user_id"]])
    ]
    return aggregates(kept, tz_minutes)


def iso(value: datetime) -> str:
    """The emulator's timestamp text for an aware datetime."""
    value = value.astimezone(timezone.utc)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def sort_key(field: str, user: Mapping[str, Any]) -> Any:
    """The value metrics/query sorts on."""
    return user["user_id"] if field == "id" else user[field]


def expected_order(users: Mapping[str, Mapping[str, Any]], field: str, direction: str) -> list[str]:
    """User ids in the emulator's documented order: the field, then user_id ascending."""
    ids = sorted(users)
    if field in ("id", "user_id"):
        return sorted(ids, reverse=direction == "desc")
    return sorted(ids, key=lambda uid: (_signed(users[uid][field], direction), uid))


def _signed(value: Any, direction: str) -> Any:
    if direction == "asc":
        return value
    if isinstance(value, datetime):
        return -value.timestamp()
    return -value


def linear_quantile(ordered: Sequence[float], q: float) -> float:
    """The exact, linearly interpolated quantile."""
    position = (len(ordered) - 1) * q
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def user_stats(
    rows: Sequence[Mapping[str, Any]],
    user_ids: Sequence[str] | None,
    start: float | None,
    end: float | None,
) -> list[dict[str, Any]]:
    """The /v1/user/query answer: inclusive bounds in seconds, first 100 users by id."""
    chosen = [
        row
        for row in rows
        if row["user_id"] != ""
        and (not user_ids or row["user_id"] in user_ids)
        and (start is None or row["request_created_at"] >= EPOCH + timedelta(seconds=start))
        and (end is None or row["request_created_at"] <= EPOCH + timedelta(seconds=end))
    ]
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in chosen:
        groups[row["user_id"]].append(row)
    return [
        {
            "user_id": user,
            "count": len(items),
            "prompt_tokens": sum(row["prompt_tokens"] for row in items),
            "completion_tokens": sum(row["completion_tokens"] for row in items),
            "cost": sum(round(row["cost"] * 1e9) for row in items) / 1e9,
        }
        for user, items in sorted(groups.items())[:100]
    ]
