"""Request-body validation with the server's 422 shape, from a compact embedded schema.

The schema mirrors the request schemas of the Helicone OpenAPI spec; validation runs the way
tsoa does with ``throw-on-extras``: unknown properties, missing fields, wrong types, bad enums
and bad date-times are all reported under ``details["requestBody.<path>"]``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any, Final

from helicone_users._config import SORT_FIELDS
from helicone_users._filter_text import LEGACY_USERS, USERS, legacy_users_hint
from helicone_users.testing._sql import (
    NUMBER_OPS,
    RMT_COLUMNS,
    TEXT_OPS,
    TIMESTAMP_OPS,
    USERS_COLUMNS,
)

Schema = dict[str, Any]
Details = dict[str, dict[str, Any]]

_DATE_TIME: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$"
)
NUMBER: Final[Schema] = {"type": "number"}
STRING: Final[Schema] = {"type": "string"}
BOOLEAN: Final[Schema] = {"type": "boolean"}
DATE_TIME: Final[Schema] = {"type": "string", "format": "date-time"}
FILTER: Final[Schema] = {"type": "filter"}


def _object(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    return {"type": "object", "properties": properties, "required": required}


def _ops(names: tuple[str, ...], value: Schema) -> Schema:
    return _object(dict.fromkeys(names, value))


_KIND_SCHEMAS: Final[dict[str, Schema]] = {
    "text": _ops(TEXT_OPS, STRING),
    "number": _ops(NUMBER_OPS, NUMBER),
    "timestamp": _ops(TIMESTAMP_OPS, DATE_TIME),
    "boolean": _ops(("equals",), BOOLEAN),
}
_TEXT_MAP: Final[Schema] = {"type": "object", "properties": {}, "additional": _KIND_SCHEMAS["text"]}
RMT_SCHEMA: Final[Schema] = _object(
    {
        **{name: _KIND_SCHEMAS[kind] for name, kind in RMT_COLUMNS.items()},
        "property_key": _object({"equals": STRING}, ("equals",)),
        "properties": _TEXT_MAP,
        "search_properties": _TEXT_MAP,
        "scores": _TEXT_MAP,
    }
)
USERS_SCHEMA: Final[Schema] = _object(
    {name: _KIND_SCHEMAS[kind] for name, (_column, kind) in USERS_COLUMNS.items()}
)
LEAF_SCHEMA: Final[Schema] = _object(
    {"request_response_rmt": RMT_SCHEMA, "users_view": USERS_SCHEMA}
)
BRANCH_SCHEMA: Final[Schema] = _object(
    {"left": FILTER, "operator": {"enum": ["or", "and"]}, "right": FILTER},
    ("right", "operator", "left"),
)
TIME_FILTER: Final[Schema] = _object(
    {"endTimeUnixSeconds": NUMBER, "startTimeUnixSeconds": NUMBER},
    ("endTimeUnixSeconds", "startTimeUnixSeconds"),
)
METRICS_BODY: Final[Schema] = _object(
    {
        "filter": FILTER,
        "offset": NUMBER,
        "limit": NUMBER,
        "timeFilter": TIME_FILTER,
        "timeZoneDifferenceMinutes": NUMBER,
        "sort": _object({key: {"enum": ["asc", "desc"]} for key in SORT_FIELDS}),
    },
    ("filter", "offset", "limit"),
)
PSIZES: Final[dict[str, float]] = {
    "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99, "p99.9": 0.999,
}  # fmt: skip
OVERVIEW_BODY: Final[Schema] = _object(
    {"useInterquartile": BOOLEAN, "pSize": {"enum": list(PSIZES)}, "filter": FILTER},
    ("useInterquartile", "pSize", "filter"),
)


def user_query_body(max_user_ids: int | None) -> Schema:
    """The /v1/user/query body; ``None`` drops the 100-id cap (quirk)."""
    ids: Schema = {"type": "array", "items": STRING}
    if max_user_ids is not None:
        ids["maxItems"] = max_user_ids
    return _object({"userIds": ids, "timeFilter": TIME_FILTER})


def validate(body: Any, schema: Schema) -> Details:
    """The 422 ``details`` for ``body``; empty when it is valid."""
    details: Details = {}
    _check(body, schema, "requestBody", details)
    return details


def _fail(details: Details, path: str, message: str, value: Any = None) -> None:
    details[path] = {"message": message, "value": value}


def _check(value: Any, schema: Schema, path: str, details: Details) -> None:
    kind = schema.get("type")
    if "enum" in schema:
        if value not in schema["enum"] or not isinstance(value, str):
            options = ",".join(f"'{option}'" for option in schema["enum"])
            _fail(details, path, f"should be one of the following; [{options}]", value)
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(details, path, "invalid float number", value)
        elif isinstance(value, float) and not math.isfinite(value):
            _fail(details, path, "invalid float number", str(value))
    elif kind == "string":
        _check_string(value, schema, path, details)
    elif kind == "boolean":
        if not isinstance(value, bool):
            _fail(details, path, "invalid boolean value", value)
    elif kind == "array":
        _check_array(value, schema, path, details)
    elif kind == "filter":
        _check_filter(value, path, details)
    else:
        _check_object(value, schema, path, details)


def _check_string(value: Any, schema: Schema, path: str, details: Details) -> None:
    if not isinstance(value, str):
        _fail(details, path, "invalid string value", value)
    elif schema.get("format") == "date-time" and not _DATE_TIME.match(value):
        _fail(details, path, "invalid ISO 8601 datetime format, i.e. YYYY-MM-DDTHH:MM:SS", value)


def _check_array(value: Any, schema: Schema, path: str, details: Details) -> None:
    if not isinstance(value, list):
        _fail(details, path, "invalid array", value)
        return
    limit = schema.get("maxItems")
    if limit is not None and len(value) > limit:
        _fail(details, path, f"maxItems {limit}", len(value))
    for index, item in enumerate(value):
        _check(item, schema["items"], f"{path}.${index}", details)


def _check_object(value: Any, schema: Schema, path: str, details: Details) -> None:
    if not isinstance(value, Mapping):
        _fail(details, path, "invalid object", value)
        return
    properties: Mapping[str, Schema] = schema.get("properties", {})
    additional: Schema | None = schema.get("additional")
    for name in schema.get("required", ()):
        if name not in value:
            _fail(details, f"{path}.{name}", f"'{name}' is required")
    for name, item in value.items():
        child = properties.get(name, additional)
        if child is None:
            _fail(
                details,
                f"{path}.{name}",
                f'"{name}" is an excess property and therefore is not allowed'
                + _did_you_mean(name, item, properties),
                item,
            )
        else:
            _check(item, child, f"{path}.{name}", details)


def _did_you_mean(name: str, value: Any, properties: Mapping[str, Schema]) -> str:
    """The fix for an excess property: the older docs' ``user_metrics`` table, a ``users_view``
    column without its ``user_`` prefix, or a near miss."""
    if name == LEGACY_USERS and USERS in properties:
        columns = value if isinstance(value, Mapping) else {}
        return legacy_users_hint(map(str, columns), quote=lambda text: f'"{text}"')
    if "user_" + name in properties:
        return f'; did you mean "user_{name}"?'
    close = difflib.get_close_matches(name, list(properties), n=1)
    return f'; did you mean "{close[0]}"?' if close else ""


def _check_filter(value: Any, path: str, details: Details) -> None:
    if value == "all":
        return
    if isinstance(value, Mapping):
        schema = BRANCH_SCHEMA if "left" in value else LEAF_SCHEMA
        _check_object(value, schema, path, details)
        return
    _fail(
        details,
        path,
        "Could not match the union against any of the items: expected a filter leaf, "
        "a {left, operator, right} branch, or 'all'",
        value,
    )
