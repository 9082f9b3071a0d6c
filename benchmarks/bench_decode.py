"""Decoding one 1000-user metrics page: this SDK vs pydantic v2 vs json.loads alone.

All three read the same bytes (the hosted server's shape, numbers partly quoted). Targets:
faster than a pydantic v2 TypeAdapter, and at most 3x json.loads alone. The SDK decodes in C
with msgspec when the ``fast`` extra is installed, else with json + its generated cattrs hooks;
both paths are measured. Run: ``python benchmarks/bench_decode.py``.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pydantic

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import wire_page, wire_user

from helicone_users import UserMetricsPage
from helicone_users._client import unwrap_envelope
from helicone_users._converter import fast_metrics_page, make_converter, structure_or_raise
from helicone_users._session import decode_json

USERS = 1000
ROUNDS = 60
RAW = wire_page([wire_user(i) for i in range(USERS)], 5000)
CONVERTER = make_converter()
PATH = "/v1/user/metrics/query"


class PydanticUser(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True)

    id: str
    user_id: str
    active_for: int
    first_active: datetime
    last_active: datetime
    total_requests: int
    average_requests_per_day_active: float
    average_tokens_per_request: float
    total_completion_tokens: int
    total_prompt_tokens: int
    cost: float
    rate_limited_count: int | None = None


class PydanticData(pydantic.BaseModel):
    users: list[PydanticUser]
    count: int
    has_users: bool = pydantic.Field(alias="hasUsers")


class PydanticEnvelope(pydantic.BaseModel):
    data: PydanticData | None
    error: str | None


ADAPTER = pydantic.TypeAdapter(PydanticEnvelope)


def json_loads_alone() -> Any:
    return json.loads(RAW)


def sdk_general_path() -> UserMetricsPage:
    """What the client does without msgspec: json, unwrap the envelope, structure."""
    data = unwrap_envelope(decode_json(RAW, method="POST", path=PATH), method="POST", path=PATH)
    data = {**data, "offset": 0, "limit": USERS}
    return structure_or_raise(CONVERTER, data, UserMetricsPage, method="POST", path=PATH)


def sdk_client_path() -> UserMetricsPage:
    """What the client does: the C fast path when available, else the general path."""
    page = fast_metrics_page(RAW, offset=0, limit=USERS)
    return page if page is not None else sdk_general_path()


def pydantic_v2() -> Any:
    return ADAPTER.validate_json(RAW)


def best_of(run: Callable[[], Any]) -> float:
    # As timeit does: no cyclic GC pauses inside the measured calls, for every contender alike.
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(ROUNDS):
            started = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - started)
    finally:
        gc.enable()
    return best


def main() -> int:
    assert len(sdk_client_path().users) == len(sdk_general_path().users) == USERS
    assert sdk_client_path() == sdk_general_path()
    fast_available = fast_metrics_page(RAW, offset=0, limit=USERS) is not None
    timings = {
        "json.loads alone": best_of(json_loads_alone),
        "pydantic v2 TypeAdapter": best_of(pydantic_v2),
        "sdk, core install (json + cattrs)": best_of(sdk_general_path),
        "sdk, fast extra (msgspec)": best_of(sdk_client_path),
    }
    print(f"one page of {USERS} users, {len(RAW) / 1024:.0f} KiB, best of {ROUNDS}")
    print(f"C fast path (msgspec): {'installed' if fast_available else 'not installed'}")
    for name, seconds in timings.items():
        print(f"  {name:<26} {seconds * 1000:7.2f} ms")
    loads, pyd = timings["json.loads alone"], timings["pydantic v2 TypeAdapter"]
    print()
    met = True
    for name in ("sdk, core install (json + cattrs)", "sdk, fast extra (msgspec)"):
        vs_loads, vs_pyd = timings[name] / loads, timings[name] / pyd
        ok = vs_loads <= 3 and vs_pyd < 1
        met = met and (ok or name != "sdk, fast extra (msgspec)")
        print(
            f"{name:<34} {vs_loads:5.2f}x json.loads (target <= 3), "
            f"{vs_pyd:5.2f}x pydantic (target < 1): {'met' if ok else 'missed'}"
        )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
