"""Deterministic fault injection for resilience tests."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Iterable

import attrs
from aiohttp import web

from helicone_users._errors import InvalidRequestError
from helicone_users.testing._auth import TOO_MANY

FAULT_KINDS: frozenset[str] = frozenset(
    {"429", "500", "502", "503", "reset", "slow", "truncate"}
)
_DEFAULT_KINDS: tuple[str, ...] = ("429", "500", "502", "503", "reset", "slow", "truncate")


def _kinds(value: Iterable[str]) -> tuple[str, ...]:
    kinds = tuple(str(kind) for kind in value)
    unknown = sorted(set(kinds) - FAULT_KINDS)
    if unknown or not kinds:
        raise InvalidRequestError(
            f"unknown fault kinds {unknown}; choose from {sorted(FAULT_KINDS)}",
            field="kinds",
        )
    return kinds


@attrs.frozen(kw_only=True)
class FaultPlan:
    """Which faults to inject, how often, and from which seed.

    Each API request, in arrival order, draws from one ``random.Random(seed)`` owned by the
    emulator: with probability ``rate`` it gets a fault whose kind is drawn from ``kinds``.
    The same seed and the same request order give the same faults.

    Example::

        Emulator(faults=FaultPlan(rate=0.2, seed=1, kinds=("429", "503")))
    """

    rate: float = attrs.field(default=0.1)
    seed: int = 0
    kinds: tuple[str, ...] = attrs.field(default=_DEFAULT_KINDS, converter=_kinds)
    delay: float = 0.5
    retry_after: float = 1.0

    @rate.validator
    def _check_rate(self, _attribute: object, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise InvalidRequestError("fault rate must be between 0 and 1", field="rate")


class FaultInjector:
    """Draws the fault (or none) for each request in arrival order."""

    def __init__(self, plan: FaultPlan | None) -> None:
        self.plan = plan
        self._rng = random.Random(plan.seed if plan else 0)
        self.injected: list[str] = []

    def draw(self) -> str | None:
        """The fault kind for the next request, or ``None``."""
        if self.plan is None or self.plan.rate <= 0:
            return None
        if self._rng.random() >= self.plan.rate:
            return None
        kind = self._rng.choice(self.plan.kinds)
        self.injected.append(kind)
        return kind


async def with_faults(
    request: web.Request,
    injector: FaultInjector,
    answer: Callable[[], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    """``answer()``, unless the next drawn fault replaces, delays, cuts or drops it."""
    kind = injector.draw()
    plan = injector.plan
    if kind is None or plan is None:
        return await answer()
    if kind == "slow":
        await asyncio.sleep(plan.delay)
        return await answer()
    if kind == "429":
        headers = {"Retry-After": str(max(0, math.ceil(plan.retry_after)))}
        return web.json_response(dict(TOO_MANY), status=429, headers=headers)
    if kind in ("500", "502", "503"):
        return web.json_response({"error": f"injected fault: HTTP {kind}"}, status=int(kind))
    if kind == "reset":
        return _reset(request)
    response = await answer()
    if isinstance(response, web.Response):
        return await _truncate(request, response)
    return response


async def _truncate(request: web.Request, response: web.Response) -> web.StreamResponse:
    # Announce the whole length, send half, then drop the socket: a body cut short.
    body = response.body if isinstance(response.body, bytes) else b""
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.abort()
    return stream


def _reset(request: web.Request) -> web.StreamResponse:
    # Abort the socket: the client sees the connection drop with no answer at all.
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=204)
