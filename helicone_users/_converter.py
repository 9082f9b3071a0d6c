"""The cattrs converter: wire names, lenient numbers, aware datetimes, fast generated hooks.

Structuring is generated once per model class as straight-line Python (one local per field, a
type check, a conversion only when the type is off), because the generic path costs several
times more per user. When a body does not fit, a second, slow walk finds the exact field path
for the ``ResponseValidationError``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override
from cattrs.gen._consts import AttributeOverride

from helicone_users import _models
from helicone_users._errors import ResponseValidationError, snippet
from helicone_users._iso import parse_iso8601
from helicone_users._models import (
    HistogramRow,
    MetricsOverview,
    MetricsQuery,
    OverviewQuery,
    TimeFilter,
    UserMetrics,
    UserMetricsPage,
    UsersQuery,
    UserStats,
)

__all__ = [
    "REQUEST_OVERRIDES",
    "WIRE_OVERRIDES",
    "fast_metrics_page",
    "locate_error",
    "make_converter",
    "structure_or_raise",
]

_T = TypeVar("_T")
_UTC = timezone.utc

# Wire names, in the one place they live. Every other field is sent and read as named.
WIRE_OVERRIDES: dict[type[Any], dict[str, AttributeOverride]] = {
    UserMetrics: {},
    UserMetricsPage: {"has_users": override(rename="hasUsers")},
    HistogramRow: {},
    MetricsOverview: {},
    UserStats: {},
}
# Request bodies: unstructured only; fields left at their default (None) are not sent.
REQUEST_OVERRIDES: dict[type[Any], dict[str, AttributeOverride]] = {
    TimeFilter: {
        "start_time_unix_seconds": override(rename="startTimeUnixSeconds"),
        "end_time_unix_seconds": override(rename="endTimeUnixSeconds"),
    },
    MetricsQuery: {
        "time_filter": override(rename="timeFilter"),
        "time_zone_difference_minutes": override(rename="timeZoneDifferenceMinutes"),
    },
    OverviewQuery: {
        "p_size": override(rename="pSize"),
        "use_interquartile": override(rename="useInterquartile"),
    },
    UsersQuery: {
        "user_ids": override(rename="userIds"),
        "time_filter": override(rename="timeFilter"),
    },
}
# Sums the server may send as null (ClickHouse sums over NULL tokens); they mean zero.
_NULL_IS_ZERO: dict[type[Any], frozenset[str]] = {
    UserMetrics: frozenset(
        {
            "active_for",
            "total_requests",
            "average_requests_per_day_active",
            "average_tokens_per_request",
            "total_completion_tokens",
            "total_prompt_tokens",
            "cost",
        }
    ),
    UserStats: frozenset({"count", "prompt_tokens", "completion_tokens", "cost"}),
}


# --- Lenient scalars -----------------------------------------------------------------------------


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {_kind(value)}")


def _to_int(value: Any, null_is_zero: bool = False) -> int:
    if value is None and null_is_zero:
        return 0
    if value.__class__ is str:  # the common lenient case first: ClickHouse's quoted integers
        try:
            return int(value)
        except ValueError:
            value = _to_float(value)
    elif isinstance(value, bool) or value is None:
        raise TypeError(f"expected an integer, got {_kind(value)}")
    elif isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"expected an integer, got {_show(value)}")


def _to_optional_int(value: Any) -> int | None:
    return None if value is None else _to_int(value)


def _to_float(value: Any, null_is_zero: bool = False) -> float:
    if value is None and null_is_zero:
        return 0.0
    if isinstance(value, bool) or value is None:
        raise TypeError(f"expected a number, got {_kind(value)}")
    if isinstance(value, (int, float)):
        try:
            result = float(value)
        except OverflowError:
            raise ValueError("expected a number, got one too large for a float") from None
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {_show(value)}") from None
    else:
        raise TypeError(f"expected a number, got {_kind(value)}")
    if not math.isfinite(result):
        raise ValueError(f"expected a finite number, got {_show(value)}")
    return result


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1, "true", "false"):
        return value in (1, "true")
    raise TypeError(f"expected a boolean, got {_kind(value)}")


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = parse_iso8601(value)
        except ValueError:
            raise ValueError(f"expected an ISO-8601 date-time, got {_show(value)}") from None
    else:
        raise TypeError(f"expected an ISO-8601 date-time string, got {_kind(value)}")
    if parsed.tzinfo is None:
        # The server writes UTC wall time; a missing offset means UTC, never local time.
        return parsed.replace(tzinfo=_UTC)
    if parsed.tzinfo is _UTC:
        return parsed
    try:
        return parsed.astimezone(_UTC)
    except OverflowError:
        raise ValueError(f"date-time {_show(value)} is out of range in UTC") from None


def _show(value: Any) -> str:
    try:
        return snippet(repr(value), 80)
    except ValueError:  # an int too long to print
        return "a number too long to show"


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# --- Field plans: one per attrs field, used by the fast code and by the slow locator -------------


@attrs.frozen
class _Plan:
    name: str
    wire: str
    kind: str  # "str" | "int" | "float" | "bool" | "datetime" | "opt_int" | "models"
    null_is_zero: bool
    has_default: bool
    item: type[Any] | None = None


_SCALARS: dict[Any, str] = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    datetime: "datetime",
}


def _plans(cls: type[Any]) -> list[_Plan]:
    hints = get_type_hints(cls, vars(_models))
    overrides = WIRE_OVERRIDES.get(cls, {})
    zero = _NULL_IS_ZERO.get(cls, frozenset())
    plans = []
    for field in attrs.fields(cls):
        rename = overrides[field.name].rename if field.name in overrides else None
        kind, item = _kind_of(hints[field.name], cls, field.name)
        plans.append(
            _Plan(
                name=field.name,
                wire=rename or field.name,
                kind=kind,
                null_is_zero=field.name in zero,
                has_default=field.default is not attrs.NOTHING,
                item=item,
            )
        )
    return plans


def _kind_of(hint: Any, cls: type[Any], name: str) -> tuple[str, type[Any] | None]:
    if hint in _SCALARS:
        return _SCALARS[hint], None
    args = get_args(hint)
    if get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return "models", args[0]
    if set(args) == {int, type(None)}:
        return "opt_int", None
    raise TypeError(f"{cls.__name__}.{name}: no decoder for {hint!r}")  # pragma: no cover


_CONVERT: dict[str, Callable[..., Any]] = {
    "str": _to_str,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "datetime": _to_datetime,
    "opt_int": _to_optional_int,
}
_EXACT_TYPE = {"str": "str", "int": "int", "float": "float", "bool": "bool"}


def _field_source(i: int, plan: _Plan, hooks: dict[str, Any]) -> list[str]:
    var = f"v{i}"
    read = (
        f"o[{plan.wire!r}] if {plan.wire!r} in o else _d_{plan.name}"
        if plan.has_default
        else f"o[{plan.wire!r}]"
    )
    lines = [f"    {var} = {read}"]
    if plan.kind == "models":
        assert plan.item is not None
        hooks[f"_h{i}"] = _fast_hook(plan.item)
        lines.append(f"    if {var}.__class__ is not list: raise TypeError('expected a list')")
        lines.append(f"    {var} = tuple([_h{i}(x) for x in {var}])")
    elif plan.kind == "int":
        # Quoted integers (ClickHouse's) are common: convert them here, without a call.
        zero = ", True" if plan.null_is_zero else ""
        lines.append(f"    if {var}.__class__ is not int:")
        lines.append(f"        if {var}.__class__ is str:")
        lines.append("            try:")
        lines.append(f"                {var} = _int({var})")
        lines.append("            except ValueError:")
        lines.append(f"                {var} = _c_int({var})")
        lines.append(f"        else: {var} = _c_int({var}{zero})")
    elif plan.kind in _EXACT_TYPE:
        zero = ", True" if plan.null_is_zero else ""
        # A float must also be finite: x - x is 0.0 (false) for finite x, NaN (true) otherwise.
        finite = f" or {var} - {var}" if plan.kind == "float" else ""
        lines.append(
            f"    if {var}.__class__ is not {_EXACT_TYPE[plan.kind]}{finite}: "
            f"{var} = _c_{plan.kind}({var}{zero})"
        )
    elif plan.kind == "opt_int":
        lines.append(f"    if {var} is not None and {var}.__class__ is not int:")
        lines.append(f"        if {var}.__class__ is str:")
        lines.append("            try:")
        lines.append(f"                {var} = _int({var})")
        lines.append("            except ValueError:")
        lines.append(f"                {var} = _c_int({var})")
        lines.append(f"        else: {var} = _c_opt_int({var})")
    else:  # datetime: the common "…Z" string parses in C on Python 3.11+, else the slow path
        lines.append(f"    if {var}.__class__ is str:")
        lines.append("        try:")
        lines.append(f"            {var} = _fromiso({var})")
        lines.append("        except ValueError:")
        lines.append(f"            {var} = _c_datetime({var})")
        lines.append(f"        if {var}.tzinfo is not _UTC: {var} = _c_datetime({var})")
        lines.append(f"    else: {var} = _c_datetime({var})")
    return lines


_FAST_HOOKS: dict[type[Any], Callable[[Any], Any]] = {}


def _slot_setter(cls: type[Any], name: str) -> Callable[[Any, Any], None]:
    descriptor = cls.__dict__[name]  # a slot's member descriptor sets past the frozen __setattr__
    setter: Callable[[Any, Any], None] = descriptor.__set__
    return setter


def _twin(cls: type[Any]) -> type[Any] | None:
    """A plain class with ``cls``'s bases and slots, whose instances can become ``cls``
    instances by ``__class__`` assignment; ``None`` where the layouts do not allow it."""
    twin = type(f"_{cls.__name__}Fill", cls.__bases__, {"__slots__": cls.__dict__["__slots__"]})
    probe = twin()
    try:
        probe.__class__ = cls
    except TypeError:  # e.g. a __weakref__ slot of the class itself (the models inherit theirs)
        return None
    return twin


def _fill_source(cls: type[Any], plans: list[_Plan], namespace: dict[str, Any]) -> list[str]:
    """The lines that build the instance from v0.. without the attrs __init__ (no validators or
    converters are declared on the models): plain slot stores on a twin, then a class swap,
    else one slot descriptor call per field."""
    twin = _twin(cls)
    if twin is not None:
        namespace["_twin"] = twin
        lines = ["    self = _twin()"]
        lines += [f"    self.{plan.name} = v{i}" for i, plan in enumerate(plans)]
        return [*lines, "    self.__class__ = _cls", "    return self"]
    lines = ["    self = _new(_cls)"]
    for i, plan in enumerate(plans):
        namespace[f"_set{i}"] = _slot_setter(cls, plan.name)
        lines.append(f"    _set{i}(self, v{i})")
    return [*lines, "    return self"]


def _fast_hook(cls: type[Any]) -> Callable[[Any], Any]:
    """Generate (once per class) straight-line code that builds ``cls`` from a wire dict."""
    if cls in _FAST_HOOKS:
        return _FAST_HOOKS[cls]
    plans = _plans(cls)
    namespace: dict[str, Any] = {f"_c_{kind}": fn for kind, fn in _CONVERT.items()}
    namespace.update(
        _cls=cls,
        _new=object.__new__,
        _fromiso=datetime.fromisoformat,
        _UTC=_UTC,
        _int=int,
    )
    for field in attrs.fields(cls):
        if field.default is not attrs.NOTHING:
            namespace[f"_d_{field.name}"] = field.default
    hooks: dict[str, Any] = {}
    body = [
        "def structure(o):",
        "    if o.__class__ is not dict: raise TypeError('expected an object')",
    ]
    for i, plan in enumerate(plans):
        body.extend(_field_source(i, plan, hooks))
    body.extend(_fill_source(cls, plans, namespace))
    namespace.update(hooks)
    exec(compile("\n".join(body), f"<structure {cls.__name__}>", "exec"), namespace)
    hook: Callable[[Any], Any] = namespace["structure"]
    _FAST_HOOKS[cls] = hook
    return hook


# --- The slow walk that names the field that does not fit ---------------------------------------


def locate_error(data: Any, cls: type[Any], path: str) -> tuple[str, str, Any]:
    """(field path, reason, the enclosing object) of the first value that does not fit ``cls``."""
    if get_origin(cls) is list:
        (item,) = get_args(cls)
        if not isinstance(data, list):
            return path, f"expected a list, got {_kind(data)}", data
        for index, element in enumerate(data):
            try:
                _fast_hook(item)(element)
            except Exception:
                return locate_error(element, item, f"{path}[{index}]")
        return path, "does not fit", data  # pragma: no cover
    if not isinstance(data, Mapping):
        return path, f"expected an object, got {_kind(data)}", data
    for plan in _plans(cls):
        where = f"{path}.{plan.wire}" if path else plan.wire
        if plan.wire not in data:
            if plan.has_default:
                continue
            return where, "missing", data
        value = data[plan.wire]
        if plan.kind == "models":
            assert plan.item is not None
            if not isinstance(value, list):
                return where, f"expected a list, got {_kind(value)}", data
            for index, item in enumerate(value):
                try:
                    _fast_hook(plan.item)(item)
                except Exception:
                    return locate_error(item, plan.item, f"{where}[{index}]")
            continue
        try:
            convert = _CONVERT[plan.kind]
            convert(value, True) if plan.null_is_zero else convert(value)
        except (TypeError, ValueError, ArithmeticError) as exc:
            return where, str(exc), data
    return path, "does not fit", data  # pragma: no cover - the fast path and this walk agree


def structure_or_raise(
    converter: cattrs.Converter,
    data: Any,
    cls: type[_T],
    *,
    method: str = "",
    path: str = "",
    root: str = "data",
) -> _T:
    """``converter.structure``; any misfit becomes a ResponseValidationError naming its path."""
    try:
        result: _T = converter.structure(data, cls)
        return result
    except Exception as exc:
        field_path, reason, enclosing = locate_error(data, cls, root)
        excerpt = snippet(json.dumps(_misfit_first(enclosing, field_path), default=str))
        raise ResponseValidationError(
            f"{method} {path} answered with a body that does not fit {cls.__name__}: "
            f"{field_path}: {reason}; near {excerpt}",
            method=method,
            path=path,
            field_path=field_path,
            body_snippet=excerpt,
        ) from exc


def _misfit_first(enclosing: Any, field_path: str) -> Any:
    # Show the offending value first, so that the snippet's cut never hides it.
    key = field_path.rsplit(".", 1)[-1]
    if isinstance(enclosing, Mapping) and key in enclosing:
        return {key: enclosing[key], **enclosing}
    return enclosing


# --- The C fast path for metrics pages (optional: the ``fast`` extra installs msgspec) ----------


def fast_metrics_page(raw: bytes, *, offset: int, limit: int) -> UserMetricsPage | None:
    """The page decoded in C by msgspec, when it is installed and the body is a plain success
    whose values need no leniency beyond numeric strings; ``None`` means "use the general path"
    (json + the converter), which also produces every error."""
    decoder = _page_decoder()
    if decoder is None:
        return None
    try:
        envelope = decoder.decode(raw)
    except (ValueError, TypeError):  # msgspec's DecodeError and ValidationError are ValueErrors
        return None
    data = envelope.data
    if data is None or envelope.error is not None:
        return None
    for user in data.users:
        if user.first_active.tzinfo is not _UTC or user.last_active.tzinfo is not _UTC:
            return None  # offsets or naive times: the general path normalises them
    return UserMetricsPage(
        users=tuple(data.users),
        count=data.count,
        has_users=data.has_users,
        offset=offset,
        limit=limit,
    )


_PAGE_DECODER: list[Any] = []


def _page_decoder() -> Any:
    if not _PAGE_DECODER:
        _PAGE_DECODER.append(_build_page_decoder())
    return _PAGE_DECODER[0]


def _build_page_decoder() -> Any:
    try:
        import msgspec
    except ImportError:
        return None
    has_users = WIRE_OVERRIDES[UserMetricsPage]["has_users"].rename or "has_users"

    # Built with defstruct: real types, not the string annotations of this module.
    page_data = msgspec.defstruct(
        "PageData",
        [
            ("users", list[UserMetrics]),
            ("count", int),
            ("has_users", bool, msgspec.field(name=has_users)),
        ],
    )
    envelope = msgspec.defstruct("Envelope", [("data", page_data | None), ("error", Any, None)])
    # strict=False accepts numbers sent as strings ("3", "1e-7"), like the converter does.
    return msgspec.json.Decoder(envelope, strict=False)


# --- The converter -------------------------------------------------------------------------------


def make_converter() -> cattrs.Converter:
    """A new converter for this SDK's models (the global cattrs converter is never touched)."""
    converter = cattrs.Converter(forbid_extra_keys=False)
    converter.register_structure_hook(datetime, lambda value, _: _to_datetime(value))
    converter.register_unstructure_hook(datetime, _format_datetime)
    for cls, overrides in WIRE_OVERRIDES.items():
        hook = _fast_hook(cls)
        converter.register_structure_hook(cls, _ignore_type(hook))
        unstructure = make_dict_unstructure_fn(cls, converter, **overrides)  # type: ignore[arg-type]
        converter.register_unstructure_hook(cls, unstructure)
    for cls, overrides in REQUEST_OVERRIDES.items():
        unstructure = make_dict_unstructure_fn(
            cls,
            converter,
            _cattrs_omit_if_default=True,
            **overrides,  # type: ignore[arg-type]
        )
        converter.register_unstructure_hook(cls, unstructure)
    return converter


def _ignore_type(hook: Callable[[Any], _T]) -> Callable[[Any, Any], _T]:
    def structure(value: Any, _type: Any) -> _T:
        return hook(value)

    return structure


def _format_datetime(value: datetime) -> str:
    return value.astimezone(_UTC).isoformat().replace("+00:00", "Z")
