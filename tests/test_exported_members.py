"""The package's one public door: everything public is re-exported and reports the public path."""

from __future__ import annotations

import inspect
import subprocess
import sys
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
    assert {"UserMetricsPage", "MetricsOverview", "UserStatsList", "CallStats"} <= {
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

    for name in ("ALL", "F", "U", "Filter", "all_of", "any_of", "coerce"):
        assert getattr(helicone_users, name) is getattr(filters, name)
    for name in ("from_json", "parse", "coerce"):
        assert callable(getattr(filters, name))


def test_unknown_attributes_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = helicone_users.nope  # type: ignore[attr-defined]


LAZY_MODULES = ("helicone_users.weave", "helicone_users._weave_models", "helicone_users._sync")


def _fresh(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout


def test_importing_the_package_leaves_the_weave_client_and_sync_facade_unloaded() -> None:
    code = (
        "import sys, helicone_users\n"
        f"print(sorted(m for m in {LAZY_MODULES!r} if m in sys.modules))\n"
        "from helicone_users import F, AsyncHeliconeUsers, RetryPolicy\n"
        f"print(sorted(m for m in {LAZY_MODULES!r} if m in sys.modules))\n"
    )
    assert _fresh(code).splitlines() == ["[]", "[]"]


def test_lazy_names_load_on_first_use_and_stay_listed() -> None:
    code = (
        "import sys, helicone_users\n"
        "names = dir(helicone_users)\n"
        "print(all(n in names for n in helicone_users.__all__))\n"
        "from helicone_users import CallMetric, WeaveStats\n"
        "print(CallMetric.__module__, WeaveStats.__module__)\n"
        "print('helicone_users._sync' in sys.modules)\n"
    )
    assert _fresh(code).splitlines() == ["True", "helicone_users helicone_users", "True"]


def test_every_lazy_name_is_public_and_resolves_to_its_module() -> None:
    import importlib

    for name, module in helicone_users._LAZY.items():
        assert name in helicone_users.__all__
        assert getattr(helicone_users, name) is getattr(importlib.import_module(module), name)
