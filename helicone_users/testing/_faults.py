"""Deterministic fault injection for resilience tests."""

from __future__ import annotations

import random
from collections.abc import Iterable

import attrs

from helicone_users._errors import InvalidRequestError

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
