"""Defaults and API limits, in one place."""

from __future__ import annotations

from typing import Final

# --- Where ---------------------------------------------------------------------------------------
REGION_BASE_URLS: Final[dict[str, str]] = {
    "us": "https://api.helicone.ai",
    "eu": "https://eu.api.helicone.ai",
}
DEFAULT_REGION: Final = "us"
API_KEY_ENV: Final = "HELICONE_API_KEY"
BASE_URL_ENV: Final = "HELICONE_BASE_URL"

WEAVE_BASE_URL: Final = "https://trace.wandb.ai"
WEAVE_API_KEY_ENV: Final = "WANDB_API_KEY"
WEAVE_BASE_URL_ENV: Final = "WEAVE_BASE_URL"
WEAVE_BASIC_USER: Final = "api"

LOGGER_NAME: Final = "helicone_users"

# --- Timeouts and connections (aiohttp's own default total is 300 s) -----------------------------
DEFAULT_TIMEOUT: Final = 60.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_CONNECTION_LIMIT: Final = 32
DEFAULT_CONNECTION_LIMIT_PER_HOST: Final = 16

# --- Retries -------------------------------------------------------------------------------------
DEFAULT_MAX_ATTEMPTS: Final = 4
RETRY_INITIAL_DELAY: Final = 0.5
RETRY_MAX_DELAY: Final = 8.0
RETRY_AFTER_CAP: Final = 60.0
RETRYABLE_STATUSES: Final = frozenset({408, 409, 429, 500, 502, 503, 504})

# --- Helicone API limits -------------------------------------------------------------------------
MAX_PAGE_SIZE: Final = 1000
DEFAULT_PAGE_SIZE: Final = 1000
MAX_USER_IDS_PER_QUERY: Final = 100
DEFAULT_CONCURRENCY: Final = 8
HOSTED_RATE_LIMIT: Final = (200, 60.0)
# Pages a pager may hold finished ahead of the one it delivers, per request in flight: enough to
# keep every slot busy while one page waits out a one-second Retry-After.
DEFAULT_BUFFER_PER_SLOT: Final = 8

# --- Client-side rate limits ---------------------------------------------------------------------
# The limiter stretches its period by this fraction, so that requests still fit a sliding window of
# the same numbers when the network delays some more than others.
DEFAULT_RATE_MARGIN: Final = 0.05
REDIS_KEY_PREFIX: Final = "helicone-users:budget:"
DEFAULT_BUDGET_NAME: Final = "default"
INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1
NANO_USD_PER_USD: Final = 1_000_000_000

# --- Exports -------------------------------------------------------------------------------------
DEFAULT_ROW_GROUP_SIZE: Final = 32_768
# Pages an export may fetch ahead, per request in flight (the pager's default is 8).
EXPORT_BUFFER_PER_REQUEST: Final = 2
# ``export --since-last`` ends its window this long before now: requests reach Helicone late.
DEFAULT_EXPORT_LAG: Final = "5m"

# --- Weave API limits ----------------------------------------------------------------------------
WEAVE_MAX_RANGE_DAYS: Final = 31
WEAVE_MAX_BUCKETS: Final = 10_000

# --- Users client --------------------------------------------------------------------------------
DEFAULT_LIMIT: Final = 100
P_SIZES: Final = ("p50", "p75", "p95", "p99", "p99.9")
DEFAULT_P_SIZE: Final = "p95"
SORT_FIELDS: Final = (
    "id",
    "user_id",
    "active_for",
    "first_active",
    "last_active",
    "total_requests",
    "average_requests_per_day_active",
    "average_tokens_per_request",
    "total_prompt_tokens",
    "total_completion_tokens",
    "cost",
    "rate_limited_count",
)
