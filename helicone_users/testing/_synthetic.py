"""A deterministic synthetic dataset, generated inside DuckDB so a million rows take seconds.

Every random draw is ``hash(hash(row, seed) xor k)`` mapped to [0, 1), one independent stream
per ``k``: the same seed gives the same rows.
Users follow a Zipf-like activity curve (user k gets about 1/k of the traffic), with one request
of each of the ``users`` users placed evenly through the data so that every one of them appears;
latency and token counts are log-normal, costs are tokens times a per-token price table, a few
requests are 429 or 500, and a few have no user id.
Row ``i`` falls in the ``i``-th of ``requests`` equal slices of the time span, so the rows are
generated (and stored) in time order, which lets DuckDB skip whole row groups on time bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from helicone_users._errors import InvalidRequestError
from helicone_users.testing._store import COLUMN_NAMES, DEFAULT_ORG_ID, ZERO_UUID, Store

#: Bumped when the same seed would generate other rows, so a stored dataset is not mistaken
#: for a fresh one (see ``describe``).
GENERATOR_VERSION: Final = 2

# (provider, model, USD per prompt token, USD per completion token, weight)
MODEL_PRICES: Final[tuple[tuple[str, str, float, float, int], ...]] = (
    ("openai", "gpt-4o", 2.5e-6, 10e-6, 5),
    ("openai", "gpt-4o-mini", 0.15e-6, 0.6e-6, 6),
    ("openai", "o3-mini", 1.1e-6, 4.4e-6, 2),
    ("anthropic", "claude-3-5-sonnet-20241022", 3e-6, 15e-6, 4),
    ("anthropic", "claude-3-5-haiku-20241022", 0.8e-6, 4e-6, 2),
    ("google", "gemini-1.5-flash", 0.075e-6, 0.3e-6, 2),
    ("mistral", "mistral-large-latest", 2e-6, 6e-6, 1),
)
TARGET_URLS: Final[dict[str, str]] = {
    "openai": "https://api.openai.com/v1/chat/completions",
    "anthropic": "https://api.anthropic.com/v1/messages",
    "google": "https://generativelanguage.googleapis.com/v1beta/models",
    "mistral": "https://api.mistral.ai/v1/chat/completions",
}
ENVIRONMENTS: Final = ["production", "production", "production", "staging", "development"]
FEATURES: Final = ["chat", "search", "summarize", "agent", "autocomplete"]
COUNTRIES: Final = ["US", "US", "US", "GB", "DE", "FR", "IN", "BR", "JP", "CA"]
DEFAULT_END: Final = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _slots() -> dict[str, list[Any]]:
    """Model table expanded by weight, so a uniform index picks a weighted model."""
    slots: dict[str, list[Any]] = {"provider": [], "model": [], "pp": [], "cp": [], "url": []}
    for provider, model, prompt_price, completion_price, weight in MODEL_PRICES:
        for _ in range(weight):
            slots["provider"].append(provider)
            slots["model"].append(model)
            slots["pp"].append(prompt_price)
            slots["cp"].append(completion_price)
            slots["url"].append(TARGET_URLS[provider])
    return slots


_DRAWS = """
SELECT i,
  (hash(xor(d0.h0, 1::UBIGINT)) >> 11)::DOUBLE / 9007199254740992.0 AS u_user,
  (hash(xor(d0.h0, 2::UBIGINT)) >> 11)::DOUBLE / 9007199254740992.0 AS u_time,
  (hash(xor(d0.h0, 3::UBIGINT)) >> 11)::DOUBLE / 9007199254740992.0 AS u_model,
  (hash(xor(d0.h0, 4::UBIGINT)) >> 11)::DOUBLE / 9007199254740992.0 AS u_status,
  (hash(xor(d0.h0, 5::UBIGINT)) >> 11)::DOUBLE / 9007199254740992.0 AS u_misc,
  (hash(xor(d0.h0, 6::UBIGINT)) >> 11)::DOUBLE / 9007199254740992.0 AS u_prop,
  sqrt(-2 * ln(1 - (hash(xor(d0.h0, 7::UBIGINT)) >> 11)::DOUBLE / 9007199254740992.0))
    * cos(2 * pi() * (hash(xor(d0.h0, 8::UBIGINT)) >> 11)::DOUBLE / 9007199254740992.0) AS z1,
  sqrt(-2 * ln(1 - (hash(xor(d0.h0, 9::UBIGINT)) >> 11)::DOUBLE / 9007199254740992.0))
    * cos(2 * pi() * (hash(xor(d0.h0, 10::UBIGINT)) >> 11)::DOUBLE / 9007199254740992.0) AS z2,
  sqrt(-2 * ln(1 - (hash(xor(d0.h0, 11::UBIGINT)) >> 11)::DOUBLE / 9007199254740992.0))
    * sin(2 * pi() * (hash(xor(d0.h0, 10::UBIGINT)) >> 11)::DOUBLE / 9007199254740992.0) AS z3,
  md5($seed::VARCHAR || ':' || i::VARCHAR) AS h
FROM (SELECT i, hash(i, $seed) AS h0 FROM range($n) AS r(i)) AS d0
"""

_SHAPED = """
SELECT d.*,
  1 + floor(d.u_model * $slot_count)::INTEGER AS m,
  'user_' || lpad((CASE WHEN d.i * $users % $n < $users THEN d.i * $users // $n + 1
                        ELSE floor(pow($users + 1, d.u_user))::BIGINT END)::VARCHAR, 6, '0')
    AS named,
  d.u_misc < 0.004 AND d.i * $users % $n >= $users AS anonymous,
  CASE WHEN d.u_status < 0.02 THEN 429 WHEN d.u_status < 0.03 THEN 500 ELSE 200 END AS st,
  greatest(1, floor(exp(6.2 + 0.9 * d.z1)))::BIGINT AS lat,
  greatest(1, floor(exp(5.5 + 1.1 * d.z2)))::BIGINT AS pt,
  greatest(1, floor(exp(4.5 + 0.9 * d.z3)))::BIGINT AS ct,
  $start_ts + to_milliseconds(floor((d.i + d.u_time) / $n * $span_ms)::BIGINT) AS ts,
  substr(d.h, 1, 8) || '-' || substr(d.h, 9, 4) || '-' || substr(d.h, 13, 4) || '-'
    || substr(d.h, 17, 4) || '-' || substr(d.h, 21, 12) AS rid
FROM ({draws}) AS d
"""

_ROWS = """
SELECT
  s.rid, CASE WHEN s.anonymous THEN '' ELSE s.named END, s.ts, s.ts + to_milliseconds(s.lat),
  list_extract($models, s.m), list_extract($providers, s.m), s.lat,
  CASE WHEN s.st = 200 THEN floor(s.lat * (0.1 + 0.4 * s.u_prop))::BIGINT END,
  s.st, s.pt, CASE WHEN s.st = 200 THEN s.ct ELSE 0 END,
  s.pt + CASE WHEN s.st = 200 THEN s.ct ELSE 0 END,
  CASE WHEN s.u_prop < 0.2 THEN floor(s.pt * s.u_misc)::BIGINT ELSE 0 END, 0,
  CASE WHEN s.u_time * 1000 % 1 < 0.05 THEN NULL
       ELSE list_extract($countries, 1 + floor(s.u_prop * 10)::INTEGER) END,
  list_extract($urls, s.m),
  CASE WHEN s.st = 429
    THEN MAP(['environment', 'feature', 'Helicone-Rate-Limit-Status'],
             [list_extract($envs, 1 + floor(s.u_prop * 5)::INTEGER),
              list_extract($features, 1 + floor(s.u_misc * 5)::INTEGER), 'rate_limited'])
    ELSE MAP(['environment', 'feature'],
             [list_extract($envs, 1 + floor(s.u_prop * 5)::INTEGER),
              list_extract($features, 1 + floor(s.u_misc * 5)::INTEGER)]) END,
  CASE WHEN s.u_status > 0.9
    THEN MAP(['accuracy'], [floor((s.u_status - 0.9) * 1000)::BIGINT])
    ELSE MAP([]::VARCHAR[], []::BIGINT[]) END,
  '{{"model":"' || list_extract($models, s.m) || '","messages":[{{"role":"user","content":"'
    || list_extract($features, 1 + floor(s.u_misc * 5)::INTEGER) || ' request ' || s.i::VARCHAR
    || '"}}]}}',
  CASE WHEN s.st = 200 THEN '{{"choices":[{{"message":{{"content":"ok"}}}}]}}'
       ELSE '{{"error":"status ' || s.st::VARCHAR || '"}}' END,
  s.u_model * 100 % 1 < 0.03, s.u_model * 100 % 1 < 0.03,
  CASE WHEN s.u_model * 100 % 1 < 0.03 THEN s.rid ELSE $zero_uuid END,
  s.u_misc * 1000 % 1 < 0.001, $org,
  NULL, NULL,
  CASE WHEN s.u_prop * 10 % 1 < 0.3 THEN 'prompt-' || list_extract($features,
       1 + floor(s.u_misc * 5)::INTEGER) END,
  CASE WHEN s.u_prop * 10 % 1 < 0.3 THEN '1' END,
  NULL, false,
  round((s.pt * list_extract($pp, s.m)
         + CASE WHEN s.st = 200 THEN s.ct ELSE 0 END * list_extract($cp, s.m)) * 1e9)::BIGINT,
  '', '',
  list_extract($providers, s.m) || '.' || list_extract($models, s.m), s.rid, NULL,
  CASE WHEN NOT s.anonymous THEN s.named || ':thread-' || (s.i % 3)::VARCHAR END,
  NULL, NULL, NULL
FROM ({shaped}) AS s
"""


def synthetic_insert_sql() -> str:
    """The ``INSERT ... SELECT`` that generates the rows (named parameters, no literals)."""
    shaped = _SHAPED.format(draws=_DRAWS)
    select = _ROWS.format(shaped=shaped)
    names = ", ".join(f'"{name}"' for name in COLUMN_NAMES)
    return f"INSERT INTO requests ({names}) {select}"


class SyntheticSource:
    """A deterministic synthetic dataset, generated inside DuckDB when the emulator starts."""

    def __init__(
        self,
        *,
        seed: int = 0,
        users: int = 50,
        requests: int = 1000,
        days: int = 30,
        end: datetime | None = None,
    ) -> None:
        if users < 1 or requests < 0 or days < 1:
            raise InvalidRequestError(
                "synthetic data needs users >= 1, requests >= 0 and days >= 1", field="users"
            )
        end_ts = (end or DEFAULT_END).astimezone(timezone.utc).replace(tzinfo=None)
        self.end = end_ts.replace(microsecond=end_ts.microsecond // 1000 * 1000)
        self.seed, self.users, self.requests, self.days = seed, users, requests, days

    def describe(self) -> str:
        """The parameters, as recorded in a database file and compared when it is reopened."""
        return (
            f"synthetic data (seed={self.seed}, users={self.users}, requests={self.requests}, "
            f"days={self.days}, end={self.end.isoformat()}Z, generator {GENERATOR_VERSION})"
        )

    def load(self, store: Store, finish: Callable[[Any], None]) -> int:
        """Insert the rows into ``store`` in one transaction; returns how many."""
        with store.write() as cursor:
            added = store.append(cursor, synthetic_insert_sql(), self._params())
            finish(cursor)
        return added

    def _params(self) -> dict[str, Any]:
        slots = _slots()
        span_ms = self.days * 86_400 * 1_000
        return {
            "seed": self.seed,
            "n": self.requests,
            "users": self.users,
            "slot_count": len(slots["model"]),
            "start_ts": self.end - timedelta(milliseconds=span_ms),
            "span_ms": span_ms,
            "models": slots["model"],
            "providers": slots["provider"],
            "pp": slots["pp"],
            "cp": slots["cp"],
            "urls": slots["url"],
            "countries": COUNTRIES,
            "envs": ENVIRONMENTS,
            "features": FEATURES,
            "zero_uuid": ZERO_UUID,
            "org": DEFAULT_ORG_ID,
        }
