"""Named opt-in quirks: each way the hosted Helicone server differs from its documentation."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Final

from helicone_users._errors import InvalidRequestError
from helicone_users.testing._weave import WEAVE_QUIRK_DESCRIPTIONS

# One line each; the README's quirk table says the same in more words.
HELICONE_QUIRK_DESCRIPTIONS: Final[dict[str, str]] = {
    "cross_table_or_matches_all": "an or between request and users_view leaves filters nothing",
    "users_view_ignored_on_overview": "users_view leaves count as true on metrics-overview",
    "user_query_time_in_ms": "/v1/user/query reads its timeFilter seconds as milliseconds",
    "user_query_arbitrary_100": "/v1/user/query returns an arbitrary 100 users, any userIds size",
    "timezone_sign_bug": "timeZoneDifferenceMinutes always subtracts |tz| minutes",
    "empty_sort_arbitrary_order": "sort: {} gives an arbitrary order",
    "numbers_as_strings": "64-bit counts come back as JSON strings",
    "errors_as_200": "overview and /v1/user/query report failures as HTTP 200",
    "empty_user_id_is_user": "requests without a user id form the user ''",
    "int32_filter_overflow": "whole-number filter values beyond Int32 make the query fail",
    "first_key_only": "a leaf uses only its first column and first operator",
    "timestamp_second_precision": "timestamp filters and timeFilter bounds are cut to seconds",
    "extra_rate_limited_count": "metrics rows also carry rate_limited_count",
    "count_cache_leak": "metrics count is cached for 60 ms whatever the filter",
    "raw_key_auth": "a key without the Bearer prefix is accepted",
    "empty_condition_500": "an empty column or operator object answers 500",
}
HELICONE_QUIRKS: Final[frozenset[str]] = frozenset(HELICONE_QUIRK_DESCRIPTIONS)
QUIRK_DESCRIPTIONS: Final[dict[str, str]] = {
    **HELICONE_QUIRK_DESCRIPTIONS,
    **WEAVE_QUIRK_DESCRIPTIONS,
}

QUIRKS: Final[frozenset[str]] = frozenset(QUIRK_DESCRIPTIONS)
HOSTED_PRESET: Final = "hosted"


def resolve_quirks(names: Iterable[str] | str) -> frozenset[str]:
    """Expand presets and refuse unknown names with a did-you-mean hint."""
    if isinstance(names, str):
        names = [part for part in names.split(",") if part.strip()]
    resolved: set[str] = set()
    for raw in names:
        name = raw.strip()
        if name == HOSTED_PRESET:
            resolved |= QUIRKS
        elif name in QUIRKS:
            resolved.add(name)
        else:
            close = difflib.get_close_matches(name, [*sorted(QUIRKS), HOSTED_PRESET], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidRequestError(
                f"unknown quirk {name!r}{hint} Known quirks: {', '.join(sorted(QUIRKS))}, "
                f"or {HOSTED_PRESET!r} for all of them.",
                field="quirks",
            )
    return frozenset(resolved)
