"""aioresponses, made to work with the installed aiohttp: one place for the compatibility shim."""

from __future__ import annotations

import contextlib
import inspect
import types
from collections.abc import Iterator
from typing import Any

import aiohttp
from aioresponses import aioresponses
from aioresponses import core as aioresponses_core

# aiohttp 3.12+ requires a ``stream_writer`` argument that aioresponses 0.7.9 does not pass.
_NEEDS_STREAM_WRITER = "stream_writer" in inspect.signature(aiohttp.ClientResponse).parameters


class _CompatResponse(aiohttp.ClientResponse):
    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", types.SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


@contextlib.contextmanager
def mock_http() -> Iterator[aioresponses]:
    """``aioresponses()`` whose fake responses build on this aiohttp version."""
    original = aioresponses_core.ClientResponse
    if _NEEDS_STREAM_WRITER:
        aioresponses_core.ClientResponse = _CompatResponse  # type: ignore[misc]
    try:
        with aioresponses() as mocked:
            yield mocked
    finally:
        aioresponses_core.ClientResponse = original  # type: ignore[misc]
