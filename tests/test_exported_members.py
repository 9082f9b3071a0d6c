"""The package's one public door: everything public is re-exported and reports the public path."""

from __future__ import annotations

import inspect
import typing

import pytest

import helicone_users


def test_every_error_and_warning_is_reexported() -> None:
    from helicone_users import _errors

    missing = sorted(set(_errors.__all__) - set(helicone_users.__all__))
    assert missing == []


def _project_classes_in_signature(func: object) -> set[type]:
    hints = typing.get_type_hints(func)
    found: set[type] = set()
    stack = list(hints.values())
    while stack:
        hint = stack.pop()
        stack.extend(typing.get_args(hint))
        origin = typing.get_origin(hint) or hint
        if isinstance(origin, type) and origin.__module__.startswith("helicone_users"):
            found.add(origin)
    return found


def _public_methods(cls: type) -> list[object]:
    return [
        member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    ]


def test_every_class_a_public_method_takes_or_returns_is_reexported() -> None:
    from helicone_users._client import Users

    owners = [helicone_users.AsyncHeliconeUsers, Users, helicone_users.AsyncWeaveStats]
    seen = set().union(
        *(_project_classes_in_signature(m) for owner in owners for m in _public_methods(owner))
    )
    # The resource and pager classes are reached through the client, never constructed.
    internal = {"Users"}
    missing = sorted(
        cls.__name__
        for cls in seen
        if cls.__name__ not in internal and cls.__name__ not in helicone_users.__all__
    )
    assert missing == []
    assert {"UserMetricsPage", "MetricsOverview", "UserStats", "CallStats"} <= {
        cls.__name__ for cls in seen
    }


def test_every_name_in_all_exists() -> None:
    for name in helicone_users.__all__:
        assert getattr(helicone_users, name) is not None, name


def test_all_has_no_duplicates() -> None:
    assert len(helicone_users.__all__) == len(set(helicone_users.__all__))


def test_reexported_classes_report_the_public_module() -> None:
    wrong = [
        name
        for name in helicone_users.__all__
        if isinstance(obj := getattr(helicone_users, name), type)
        and obj.__module__ != "helicone_users"
    ]
    assert wrong == [], f"set __module__ = 'helicone_users' on {wrong}"


def test_the_dsl_entry_points_are_public() -> None:
    from helicone_users import filters

    for name in ("ALL", "F", "U", "Filter", "all_of", "any_of"):
        assert getattr(helicone_users, name) is getattr(filters, name)
    for name in ("from_json", "parse", "coerce"):
        assert callable(getattr(filters, name))


def test_unknown_attributes_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = helicone_users.nope  # type: ignore[attr-defined]
