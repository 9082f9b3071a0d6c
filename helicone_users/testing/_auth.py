"""Authentication and the per-organisation rate limit, as the hosted middleware does them."""

from __future__ import annotations

import collections
import hmac
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

NO_HEADER: Final = {"error": "No authorization header"}
NO_KEY: Final = {"error": "No API key found", "trace": "isAuthenticated.error"}
BAD_HEADER: Final = {"error": "Invalid auth header"}
BAD_HEADER_FORMAT: Final = {"error": "Invalid auth header format"}
TOO_MANY: Final = {"error": "Too many requests, please try again later."}
RATE_LIMIT_MODES: Final = ("fixed", "sliding")


def check_auth(headers: Mapping[str, str], api_key: str, *, raw_key: bool) -> dict[str, Any] | None:
    """``None`` when the request may pass, else the 401 body."""
    authorization = headers.get("Authorization")
    if authorization is not None:
        return None if _key_matches(authorization, api_key, raw_key=raw_key) else dict(NO_KEY)
    helicone = headers.get("helicone-authorization")
    if helicone is None:
        return dict(NO_HEADER)
    try:
        parsed = json.loads(helicone)
    except ValueError:
        return dict(BAD_HEADER)
    if (
        not isinstance(parsed, dict)
        or parsed.get("_type") not in ("bearer", "jwt")
        or not isinstance(parsed.get("token"), str)
    ):
        return dict(BAD_HEADER_FORMAT)
    if parsed["_type"] == "bearer" and _key_matches(parsed["token"], api_key, raw_key=True):
        return None
    return dict(NO_KEY)


def _key_matches(token: str, api_key: str, *, raw_key: bool) -> bool:
    if token.startswith("Bearer "):
        candidate = token[len("Bearer ") :]
    elif raw_key:
        candidate = token
    else:
        return False
    return hmac.compare_digest(candidate.encode(), api_key.encode())


class RateLimiter:
    """``limit`` requests per ``window`` seconds, with the draft-6 headers on every answer.

    ``"fixed"`` (the hosted server's express-rate-limit): a window starts with its first request
    and every request in it counts, refused ones too. ``"sliding"`` (a gateway in front of the
    API): at most ``limit`` admitted requests in any span of ``window`` seconds; ``Reset`` and
    ``Retry-After`` say when the oldest of them leaves the window.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        mode: str = "fixed",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in RATE_LIMIT_MODES:
            raise ValueError(f"rate limit mode must be one of {RATE_LIMIT_MODES}, got {mode!r}")
        self.limit = limit
        self.window = window
        self.mode = mode
        self._clock = clock
        self._reset_at = 0.0
        self._used = 0
        self._admitted: collections.deque[float] = collections.deque()

    def hit(self) -> tuple[bool, dict[str, str]]:
        """Count one request; returns whether it may pass and the draft-6 headers."""
        now = self._clock()
        if self.mode == "sliding":
            allowed, remaining, reset = self._slide(now)
        else:
            allowed, remaining, reset = self._fix(now)
        headers = {
            "RateLimit-Policy": f"{self.limit};w={math.ceil(self.window)}",
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(max(0, math.ceil(reset))),
        }
        if not allowed:
            headers["Retry-After"] = headers["RateLimit-Reset"]
        return allowed, headers

    def _fix(self, now: float) -> tuple[bool, int, float]:
        if now >= self._reset_at:
            self._reset_at = now + self.window
            self._used = 0
        self._used += 1
        return self._used <= self.limit, max(0, self.limit - self._used), self._reset_at - now

    def _slide(self, now: float) -> tuple[bool, int, float]:
        admitted = self._admitted
        while admitted and now - admitted[0] >= self.window:
            admitted.popleft()
        allowed = len(admitted) < self.limit
        if allowed:
            admitted.append(now)
        return allowed, self.limit - len(admitted), admitted[0] + self.window - now
