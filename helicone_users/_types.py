"""Small shared types: the ``NOT_GIVEN`` sentinel."""

from __future__ import annotations

import enum
from typing import Final, Literal, TypeVar, Union

__all__ = ["NOT_GIVEN", "NotGiven", "NotGivenOr"]

_T = TypeVar("_T")


class NotGiven(enum.Enum):
    """The type of ``NOT_GIVEN``: "use the default", as opposed to an explicit ``None``."""

    NOT_GIVEN = "NOT_GIVEN"

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> Literal[False]:
        return False


NOT_GIVEN: Final = NotGiven.NOT_GIVEN
NotGiven.__module__ = "helicone_users"

NotGivenOr = Union[_T, NotGiven]  # noqa: UP007 - a runtime alias must work on Python 3.10
